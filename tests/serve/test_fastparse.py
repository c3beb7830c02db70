"""The fast reading of batches (`FeatureRequests`) accepts only what the pydantic schemas accept.

For valid batches it gives the same customers and values as the schemas; for every
mutation of a valid batch it either agrees with them or declines (None), so the
schemas answer, with their 422 naming the field.
"""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest

from segwise.serve.fastparse import FeatureRequests
from segwise.serve.schemas import InvalidRequest, RequestSchemas, value_bounds

MAX_BATCH = 50


def _schemas(input_columns: dict[str, str]) -> tuple[RequestSchemas, FeatureRequests]:
    known = {c: None for c in input_columns}
    schemas = RequestSchemas.for_model(input_columns, {**known, "described_only": None}, uses_category=False,
                                       uses_channel=False, uses_discount=False, max_batch_size=MAX_BATCH,
                                       max_transactions=10)
    numeric = [c for c, kind in input_columns.items() if kind == "numeric"]
    categorical = [c for c, kind in input_columns.items() if kind == "categorical"]
    fast = FeatureRequests(numeric, [value_bounds(None) for _ in numeric], categorical, MAX_BATCH)
    return schemas, fast


COLUMNS = {"recency_days": "numeric", "n_orders": "numeric", "monetary_total": "numeric", "region": "categorical"}


def _valid(n: int, rng: random.Random) -> dict:
    return {"customers": [
        {"customer_id": f"C-{i}", "features": {
            "recency_days": rng.choice([rng.uniform(0, 900), 12, None]),
            "n_orders": rng.choice([rng.randint(1, 40), 3.0]),
            "monetary_total": rng.uniform(-50, 5e4),
            "region": rng.choice(["north", "south", None, "é" * 10]),
        }} for i in range(n)]}


def _reference(schemas: RequestSchemas, body: bytes, numeric: list[str]):
    customers = schemas.parse_batch(body)
    values = np.array([[np.nan if c["features"][k] is None else c["features"][k] for k in numeric]
                       for c in customers], dtype=np.float64)
    return [c["customer_id"] for c in customers], values, {"region": [c["features"]["region"] for c in customers]}


def test_valid_batches_read_the_same_as_the_schemas():
    schemas, fast = _schemas(COLUMNS)
    rng = random.Random(0)
    for n in (1, 7, MAX_BATCH):
        body = json.dumps(_valid(n, rng)).encode()
        got = fast.batch(body)
        assert got is not None
        ids, values, categories = _reference(schemas, body, list(fast.numeric))
        assert got.customer_ids == ids
        np.testing.assert_array_equal(got.values, values)
        assert got.categories == categories


MUTATIONS = [
    lambda c, rng: c["features"].__setitem__("n_orders", "12"),
    lambda c, rng: c["features"].__setitem__("n_orders", True),
    lambda c, rng: c["features"].__setitem__("n_orders", [1]),
    lambda c, rng: c["features"].__setitem__("n_orders", {"v": 1}),
    lambda c, rng: c["features"].__setitem__("monetary_total", 1e13),
    lambda c, rng: c["features"].__setitem__("monetary_total", -1e13),
    lambda c, rng: c["features"].__setitem__("monetary_total", 10 ** 30),
    lambda c, rng: c["features"].__setitem__("region", 7),
    lambda c, rng: c["features"].__setitem__("region", "x" * 257),
    lambda c, rng: c["features"].pop("recency_days"),
    lambda c, rng: c["features"].pop("region"),
    lambda c, rng: c["features"].__setitem__("unknown", 1.0),
    lambda c, rng: c["features"].__setitem__("described_only", 1.0),
    lambda c, rng: c.__setitem__("customer_id", ""),
    lambda c, rng: c.__setitem__("customer_id", "x" * 257),
    lambda c, rng: c.__setitem__("customer_id", 17),
    lambda c, rng: c.__setitem__("customer_id", None),
    lambda c, rng: c.pop("customer_id"),
    lambda c, rng: c.__setitem__("as_of", "2024-01-01"),
    lambda c, rng: c.__setitem__("features", []),
    lambda c, rng: c.__setitem__("features", None),
]


@pytest.mark.parametrize("mutation", range(len(MUTATIONS)))
def test_mutated_customers_are_declined_or_read_as_the_schemas_read_them(mutation):
    schemas, fast = _schemas(COLUMNS)
    rng = random.Random(mutation)
    batch = _valid(9, rng)
    MUTATIONS[mutation](batch["customers"][rng.randrange(9)], rng)
    body = json.dumps(batch).encode()
    got = fast.batch(body)
    try:
        ids, values, categories = _reference(schemas, body, list(fast.numeric))
    except InvalidRequest:
        assert got is None
        return
    if got is not None:  # both accept it: they must read it the same
        assert got.customer_ids == ids
        np.testing.assert_array_equal(got.values, values)


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"{}", b'{"customers": []}', b'{"customers": {}}', b'{"customers": null}',
    b'{"customers": [1]}', b'{"customers": [], "more": 1}', b'{"customers": [{"customer_id": "a"}]}',
    b'{"customers": [{"customer_id": "a", "features": {"recency_days": NaN, "n_orders": 1, '
    b'"monetary_total": 1, "region": null}}]}',
    b'{"customers": [{"customer_id": "a", "features": {"recency_days": Infinity, "n_orders": 1, '
    b'"monetary_total": 1, "region": null}}]}',
    b'{"customers": [{"customer_id": "a", "features": {"recency_days": 1e400, "n_orders": 1, '
    b'"monetary_total": 1, "region": null}}]}',
], ids=lambda b: b[:40].decode(errors="replace"))
def test_bodies_the_schemas_refuse_are_declined(body):
    schemas, fast = _schemas(COLUMNS)
    with pytest.raises(InvalidRequest):
        schemas.parse_batch(body)
    assert fast.batch(body) is None


def test_a_batch_over_the_limit_is_declined():
    schemas, fast = _schemas(COLUMNS)
    body = json.dumps(_valid(MAX_BATCH + 1, random.Random(1))).encode()
    with pytest.raises(InvalidRequest):
        schemas.parse_batch(body)
    assert fast.batch(body) is None


def test_random_mutations_never_pass_where_the_schemas_refuse():
    schemas, fast = _schemas(COLUMNS)
    rng = random.Random(5)
    refused = 0
    for _ in range(300):
        batch = _valid(rng.randint(1, 6), rng)
        for _ in range(rng.randint(1, 3)):
            try:
                rng.choice(MUTATIONS)(rng.choice(batch["customers"]), rng)
            except (AttributeError, KeyError, TypeError):
                pass  # an earlier mutation removed what this one changes
        body = json.dumps(copy.deepcopy(batch)).encode()
        try:
            schemas.parse_batch(body)
        except InvalidRequest:
            refused += 1
            assert fast.batch(body) is None, body
    assert refused > 200
