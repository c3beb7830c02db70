"""A model defined with the overdue ratio, served over real HTTP.

The overdue ratio (`segwise.defining_columns.overdue_ratio`) is not a feature any
engine computes: the Segmenter derives it from the rfm columns with the interval
prior fitted in training. Assignment derives it the same way from those columns, so
neither form of ``/v1/assign`` asks a client for it.
"""

from __future__ import annotations

import pytest

import segwise
from segwise.defining_columns import OVERDUE_COLUMN, OVERDUE_SOURCES
from segwise.serve.compiled import CompiledAssigner

from .conftest import train_on
from .server import Server
from .test_api import customer_lines


@pytest.fixture(scope="module")
def overdue_model(tmp_path_factory):
    """500 customers, segments defined by rfm and the overdue ratio."""
    orders = segwise.generate_population(500, seed=3).orders
    return train_on(tmp_path_factory.mktemp("overdue_model"), orders, features=["rfm", "overdue"], k_range=(2, 5))


@pytest.fixture(scope="module")
def client(overdue_model, tmp_path_factory):
    running = Server([overdue_model.path], tmp_path_factory.mktemp("overdue_api") / "server.log").wait_ready()
    with running.client() as http:
        yield http
    running.stop()


def test_the_model_asks_for_the_columns_the_ratio_comes_from(overdue_model):
    model = overdue_model.model
    assert OVERDUE_COLUMN in model.segmenter.feature_columns_
    assert OVERDUE_COLUMN not in model.input_columns
    assert set(OVERDUE_SOURCES) <= set(model.input_columns)
    # Rows of the feature table without the ratio get the segments the run wrote, on both paths.
    rows = overdue_model.features[list(model.input_columns)].to_dict("records")
    expected = overdue_model.assignments.loc[overdue_model.features.index, "segment_id"].to_numpy()
    assert (model.assign_rows(rows).segment_id == expected).all()
    compiled = CompiledAssigner.from_model(model)
    assert (compiled.assign_rows(rows).segment_id == expected).all()
    assert (compiled.assign_rows(rows[:1]).segment_id == expected[:1]).all()   # the one-row path
    # A ratio sent with the row is derived again, not trusted: the same segment either way.
    sent = [{**row, OVERDUE_COLUMN: 1e6} for row in rows[:20]]
    assert (compiled.assign_rows(sent).segment_id == expected[:20]).all()


def test_transactions_form_equals_the_training_assignment(client, overdue_model):
    as_of = overdue_model.model.metadata["as_of"]
    for customer_id in [str(c) for c in overdue_model.features.index[::40]]:
        response = client.post("/v1/assign", json={"customer_id": customer_id, "as_of": as_of,
                                                   "transactions": customer_lines(overdue_model, customer_id)})
        assert response.status_code == 200, response.text
        expected = overdue_model.assignments.loc[customer_id]
        body = response.json()
        assert (body["segment_id"], body["segment_name"]) == (expected["segment_id"], expected["segment_name"])
        assert body["confidence"] == pytest.approx(expected["confidence"])


def test_features_forms_need_no_ratio(client, overdue_model):
    items = overdue_model.feature_rows(30)
    assert all(OVERDUE_COLUMN not in item["features"] for item in items)
    expected = [int(overdue_model.assignments.loc[item["customer_id"], "segment_id"]) for item in items]
    single = [client.post("/v1/assign", json=item) for item in items[:5]]
    assert all(r.status_code == 200 for r in single), single[0].text
    assert [r.json()["segment_id"] for r in single] == expected[:5]
    batch = client.post("/v1/assign/batch", json={"customers": items})
    assert batch.status_code == 200, batch.text
    assert [a["segment_id"] for a in batch.json()["assignments"]] == expected
