"""Predicted customer value in ``/v1/assign``: the stored BG/NBD and Gamma-Gamma parameters, over real HTTP."""

from __future__ import annotations

import pytest

import segwise
from segwise.features.value import VALUE_COLUMNS
from segwise.model import load_model
from segwise.runs import segment

from ..features.test_value_family import AS_OF, buying_log, first_purchase_day_only
from .conftest import train_on
from .server import Server


@pytest.fixture(scope="module")
def value_model(tmp_path_factory):
    """A model trained on 300 customers whose histories the value family fits."""
    log = buying_log()
    result = segment(log, as_of=AS_OF, n_segments=3, random_state=0)
    root = tmp_path_factory.mktemp("value_model")
    result.save(root)
    return root / "model.segwise", result, log


@pytest.fixture(scope="module")
def client(value_model, tmp_path_factory):
    running = Server([value_model[0]], tmp_path_factory.mktemp("value_api") / "server.log").wait_ready()
    with running.client() as http:
        yield http
    running.stop()


def lines_of(log, customer_id):
    mine = log[log["customer_id"] == customer_id]
    return [{"ts": row.ordered_at.isoformat(), "amount": float(row.amount)} for row in mine.itertuples()]


def test_transactions_form_returns_the_training_values(client, value_model):
    path, result, log = value_model
    frame = result.features.frame
    # No refit: the served model's parameters are the training run's.
    assert load_model(path).spec.models["value"]["bgnbd"] == result.features.spec.models["value"]["bgnbd"]
    # Customers with one purchase and with many, so both branches of the model are served.
    orders = log.groupby("customer_id").size()
    chosen = [orders.idxmin(), orders.idxmax(), *frame.index[::50]]
    for customer_id in chosen:
        response = client.post("/v1/assign", json={"customer_id": customer_id,
                                                   "transactions": lines_of(log, customer_id),
                                                   "as_of": str(AS_OF)})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body["value"]) == set(VALUE_COLUMNS)
        for column in VALUE_COLUMNS:
            assert body["value"][column] == pytest.approx(frame.loc[customer_id, column], rel=1e-9), column
        assert body["segment_id"] == result.assignments.set_index("customer_id").loc[customer_id, "segment_id"]


def test_features_form_returns_the_value_columns_it_carries(client, value_model):
    _, result, _ = value_model
    model = result.model
    row = result.features.frame.iloc[0]
    features = {c: float(row[c]) for c in model.input_columns}
    body = client.post("/v1/assign", json={"customer_id": "x", "features": features}).json()
    assert body["value"] is None and body["segment_name"] in model.names.values()
    carrying = {**features, **{c: float(row[c]) for c in VALUE_COLUMNS}}
    body = client.post("/v1/assign", json={"customer_id": "x", "features": carrying}).json()
    assert body["value"] == {c: float(row[c]) for c in VALUE_COLUMNS}


def batch_item(frame, customer_id, columns):
    row = frame.loc[customer_id]
    return {"customer_id": customer_id, "features": {c: float(row[c]) for c in columns}}


def test_batch_returns_the_value_columns_in_request_order(client, value_model):
    _, result, _ = value_model
    frame, model = result.features.frame, result.model
    assert not set(VALUE_COLUMNS) & set(model.input_columns)  # describing columns: not needed to assign
    with_value = [*model.input_columns, *VALUE_COLUMNS]
    chosen = list(frame.index[::7])
    # Every third customer sends the defining features only: null, as in /v1/assign.
    items = [batch_item(frame, c, model.input_columns if i % 3 == 2 else with_value) for i, c in enumerate(chosen)]
    response = client.post("/v1/assign/batch", json={"customers": items})
    assert response.status_code == 200, response.text
    assignments = response.json()["assignments"]
    assert [a["customer_id"] for a in assignments] == chosen
    expected = result.assignments.set_index("customer_id")
    for i, (customer_id, assignment) in enumerate(zip(chosen, assignments)):
        assert assignment["segment_id"] == expected.loc[customer_id, "segment_id"]
        if i % 3 == 2:
            assert assignment["value"] is None
        else:
            assert assignment["value"] == {c: float(frame.loc[customer_id, c]) for c in VALUE_COLUMNS}
        # The same answer as one customer at a time.
        single = client.post("/v1/assign", json=items[i]).json()
        assert single["value"] == assignment["value"] and single["segment_id"] == assignment["segment_id"]
    # A value column missing (null) gives null too.
    gap = batch_item(frame, chosen[0], with_value)
    gap["features"]["p_alive"] = None
    assert client.post("/v1/assign/batch", json={"customers": [gap]}).json()["assignments"][0]["value"] is None


def test_value_columns_sent_out_of_their_range_are_refused(client, value_model):
    _, result, _ = value_model
    frame, model = result.features.frame, result.model
    item = batch_item(frame, frame.index[0], [*model.input_columns, *VALUE_COLUMNS])
    item["features"]["p_alive"] = 1.5
    item["features"]["clv_365d"] = -3.0
    response = client.post("/v1/assign/batch", json={"customers": [item]})
    assert response.status_code == 422
    issues = {tuple(i["loc"]): i["type"] for i in response.json()["detail"]}
    assert issues == {("body", "customers", 0, "features", "p_alive"): "less_than_equal",
                      ("body", "customers", 0, "features", "clv_365d"): "greater_than_equal"}


def test_model_info_and_openapi_document_the_value(client):
    info = client.get("/v1/model").json()
    assert info["value_columns"] == list(VALUE_COLUMNS)
    bounds = {f["name"]: (f["minimum"], f["maximum"]) for f in info["features"]}
    assert bounds["p_alive"] == (0.0, 1.0) and bounds["clv_365d"][0] == 0.0
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["CustomerValue"]["properties"]) == set(VALUE_COLUMNS)
    assert "value" in schemas["AssignResponse"]["properties"]
    assert schemas["BatchResponse"]["properties"]["assignments"]["items"] == {"$ref": "#/components/schemas/"
                                                                                      "BatchAssignment"}
    value = schemas["BatchAssignment"]["properties"]["value"]
    assert {"$ref": "#/components/schemas/CustomerValue"} in value["anyOf"] and {"type": "null"} in value["anyOf"]
    assert schemas["Features"]["properties"]["p_alive"]["anyOf"][0]["maximum"] == 1.0


def test_a_model_without_the_value_family_returns_none(tmp_path):
    # Ten repeat customers are too few for the value models: the family was left out.
    orders = first_purchase_day_only(segwise.generate_population(600, seed=11).orders)
    trained = train_on(tmp_path / "model", orders, k_range=(2, 6))
    assert "value" not in trained.model.spec.families
    running = Server([trained.path], tmp_path / "server.log").wait_ready()
    try:
        with running.client() as http:
            assert http.get("/v1/model").json()["value_columns"] == []
            customer = orders["customer_id"].iloc[0]
            mine = orders[orders["customer_id"] == customer]
            lines = [{"order_id": r.order_id, "ts": r.ordered_at.isoformat(), "amount": float(r.amount),
                      "category": r.category, "channel": r.channel, "discount": bool(r.discount)}
                     for r in mine.itertuples()]
            body = http.post("/v1/assign", json={"customer_id": str(customer), "transactions": lines,
                                                 "as_of": trained.model.metadata["as_of"]}).json()
            assert body["value"] is None and "segment_id" in body
            items = trained.feature_rows(2)
            batch = http.post("/v1/assign/batch", json={"customers": items}).json()
            assert [a["value"] for a in batch["assignments"]] == [None, None]
    finally:
        running.stop()
