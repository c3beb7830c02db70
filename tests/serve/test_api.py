"""Every endpoint of the real server (``segwise serve``, uvicorn, no authentication), over HTTP."""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket

import pandas as pd
import pytest

from segwise.serve.schemas import MAX_ABS_VALUE

from .server import Server


@pytest.fixture(scope="module")
def server(model_a, tmp_path_factory):
    log = tmp_path_factory.mktemp("api") / "server.log"
    running = Server([model_a.path], log).wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    with server.client() as http:
        yield http


def customer_lines(model, customer_id: str) -> list[dict]:
    """One training customer's order lines as API transactions."""
    orders = model.orders.to_pandas()
    mine = orders[orders["customer_id"].astype("Int64").astype(str) == customer_id]
    return [{"order_id": row.order_id, "ts": row.ordered_at.isoformat(), "amount": float(row.amount),
             "category": row.category, "channel": row.channel, "discount": bool(row.discount)}
            for row in mine.itertuples()]


# --------------------------------------------------------------------------- operations endpoints


def test_server_binds_loopback_by_default(server):
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in server.log


def test_healthz_and_readyz(client, model_a):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": model_a.model.file_sha256}


def test_model_metadata(client, model_a):
    info = client.get("/v1/model").json()
    meta = model_a.model.metadata
    assert info["model_version"] == info["file_sha256"] == hashlib.sha256(model_a.path.read_bytes()).hexdigest()
    assert info["method"] == "kmeans"
    assert info["n_segments"] == model_a.model.segmenter.n_segments_
    assert info["as_of"] == meta["as_of"] and info["created_at"] == meta["created_at"]
    assert info["training_customers"] == meta["n_customers"] == len(model_a.features)
    assert info["model_id"] == meta["model_id"]
    assert info["has_probabilities"] is False and info["has_playbook"] is False and info["transactions_form"] is True
    by_name = {f["name"]: f for f in info["features"]}
    assert {n for n, f in by_name.items() if f["required"]} == set(model_a.model.input_columns)
    assert set(by_name) == set(model_a.features.columns)
    assert by_name["top_category_share"]["minimum"] == 0 and by_name["top_category_share"]["maximum"] == 1
    assert by_name["recency_days"]["unit"] == "days" and by_name["recency_days"]["minimum"] == 0
    assert by_name["monetary_total"]["minimum"] == -MAX_ABS_VALUE


def test_segments(client, model_a):
    body = client.get("/v1/segments").json()
    profiles = json.loads((model_a.path.parent / "profiles.json").read_text())
    assert body["model_version"] == model_a.model.file_sha256
    assert body["value_column"] == "monetary_total"
    assert body["segments"] == profiles["segments"]
    assert [s["segment_id"] for s in body["segments"]] == list(range(model_a.model.segmenter.n_segments_))
    assert sum(s["n_customers"] for s in body["segments"]) == len(model_a.features)
    for segment in body["segments"]:
        assert segment["name"] and segment["description"]
        # Numeric columns have means; categorical ones (e.g. a country) shares of their levels.
        numeric = {c for c in model_a.features.columns if pd.api.types.is_numeric_dtype(model_a.features[c])}
        assert set(segment["means"]) == numeric
        assert set(segment["categories"]) == set(model_a.features.columns) - numeric


# --------------------------------------------------------------------------- assignment


def test_assign_features_equals_the_training_assignment(client, model_a):
    for item in model_a.feature_rows(25, start=40):
        response = client.post("/v1/assign", json=item)
        assert response.status_code == 200, response.text
        body = response.json()
        expected = model_a.assignments.loc[item["customer_id"]]
        assert body["customer_id"] == item["customer_id"]
        assert body["segment_id"] == expected["segment_id"]
        assert body["segment_name"] == expected["segment_name"]
        assert body["confidence"] == pytest.approx(expected["confidence"])
        assert body["probabilities"] is None  # k-means has no probabilities
        assert body["actions"] is None  # no playbook
        assert body["as_of"] is None
        assert body["model_version"] == model_a.model.file_sha256


def test_assign_accepts_the_whole_feature_row_and_null_values(client, model_a):
    customer_id = str(model_a.features.index[3])
    row = {c: (None if pd.isna(v) else v if isinstance(v, str) else float(v))
           for c, v in model_a.features.iloc[3].items()}
    body = client.post("/v1/assign", json={"customer_id": customer_id, "features": row}).json()
    assert body["segment_id"] == model_a.assignments.loc[customer_id, "segment_id"]
    column = next(iter(model_a.model.input_columns))
    row[column] = None  # unknown: imputed as in training
    response = client.post("/v1/assign", json={"customer_id": customer_id, "features": row})
    assert response.status_code == 200
    expected = model_a.model.assign_rows([row])
    assert response.json()["segment_id"] == int(expected.segment_id[0])


def test_assign_from_transactions_equals_the_training_assignment(client, model_a):
    as_of = model_a.model.metadata["as_of"]
    chosen = [str(c) for c in model_a.features.index[::60]]
    for customer_id in chosen:
        lines = customer_lines(model_a, customer_id)
        response = client.post("/v1/assign", json={"customer_id": customer_id, "transactions": lines,
                                                   "as_of": as_of})
        assert response.status_code == 200, response.text
        body = response.json()
        expected = model_a.assignments.loc[customer_id]
        assert (body["segment_id"], body["segment_name"]) == (expected["segment_id"], expected["segment_name"])
        assert body["confidence"] == pytest.approx(expected["confidence"])
        assert body["as_of"] == as_of


def test_transactions_after_as_of_do_not_count(client, model_a):
    customer_id = str(model_a.features.index[0])
    lines = customer_lines(model_a, customer_id)
    as_of = model_a.model.metadata["as_of"]
    future = [dict(lines[0], order_id="LATER-1", ts="2030-01-01T10:00:00", amount=9999.0)]
    plain = client.post("/v1/assign", json={"customer_id": customer_id, "transactions": lines, "as_of": as_of})
    with_future = client.post("/v1/assign", json={"customer_id": customer_id, "transactions": lines + future,
                                                   "as_of": as_of})
    assert plain.json() == with_future.json()


def test_batch_keeps_request_order_and_equals_training(client, model_a):
    items = model_a.feature_rows(300)
    random.Random(3).shuffle(items)
    response = client.post("/v1/assign/batch", json={"customers": items})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == model_a.model.file_sha256
    assert [a["customer_id"] for a in body["assignments"]] == [i["customer_id"] for i in items]
    for assignment in body["assignments"]:
        expected = model_a.assignments.loc[assignment["customer_id"]]
        assert set(assignment) == {"customer_id", "segment_id", "segment_name", "confidence", "value"}
        assert assignment["value"] is None  # this model has no value family
        assert assignment["segment_id"] == expected["segment_id"]
        assert assignment["segment_name"] == expected["segment_name"]
        assert assignment["confidence"] == pytest.approx(expected["confidence"])


def test_batch_takes_up_to_10000_customers(client, model_a):
    items = (model_a.feature_rows(500) * 20)[:10_000]
    response = client.post("/v1/assign/batch", json={"customers": items})
    assert response.status_code == 200
    assert len(response.json()["assignments"]) == 10_000
    too_many = client.post("/v1/assign/batch", json={"customers": items + items[:1]})
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == [{"type": "too_long", "loc": ["body", "customers"],
                                          "msg": "List should have at most 10000 items after validation, not 10001"}]


# --------------------------------------------------------------------------- bad input


def _feature_item(model_a, **changes):
    item = model_a.feature_rows(1, start=5)[0]
    for key, value in changes.items():
        if value is _DELETE:
            del item["features"][key]
        else:
            item["features"][key] = value
    return item


_DELETE = object()

#: (description, change to a valid single request's features, expected issue type, loc after "features")
FEATURE_CASES = [
    ("missing", {"recency_days": _DELETE}, "missing", "recency_days"),
    ("extra", {"favourite_colour": 1.0}, "extra_forbidden", "favourite_colour"),
    ("text for a number", {"n_orders": "3"}, "float_type", "n_orders"),
    ("boolean for a number", {"n_orders": True}, "float_type", "n_orders"),
    ("object for a number", {"n_orders": {"value": 3}}, "float_type", "n_orders"),
    ("negative days", {"recency_days": -1}, "greater_than_equal", "recency_days"),
    ("share above 1", {"top_category_share": 1.5}, "less_than_equal", "top_category_share"),
    ("huge amount", {"monetary_total": 1e13}, "less_than_equal", "monetary_total"),
]


@pytest.mark.parametrize("what, changes, kind, field", FEATURE_CASES, ids=[c[0] for c in FEATURE_CASES])
def test_bad_features_get_422_naming_the_field(client, model_a, what, changes, kind, field):
    item = _feature_item(model_a, **changes)
    for path, body in (("/v1/assign", item), ("/v1/assign/batch", {"customers": [item]})):
        response = client.post(path, json=body)
        assert response.status_code == 422, (what, path, response.text)
        prefix = ["body"] if path == "/v1/assign" else ["body", "customers", 0]
        issues = response.json()["detail"]
        assert {"type": kind, "loc": [*prefix, "features", field]} in [
            {"type": i["type"], "loc": i["loc"]} for i in issues], issues


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_get_422(client, model_a, literal):
    item = model_a.feature_rows(1)[0]
    text = json.dumps(item).replace('"n_orders": ' + json.dumps(item["features"]["n_orders"]),
                                    f'"n_orders": {literal}')
    assert literal in text
    response = client.post("/v1/assign", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"type": "finite_number", "loc": ["body", "features", "n_orders"],
                                          "msg": "Input should be a finite number"}]


def test_messages_do_not_echo_the_input(client, model_a):
    item = _feature_item(model_a, n_orders="jane.doe@example.com")
    item["customer_id"] = 12345
    response = client.post("/v1/assign", json=item)
    assert response.status_code == 422
    assert "jane.doe" not in response.text and "12345" not in response.text
    assert {"type": "string_type", "loc": ["body", "customer_id"], "msg": "Input should be a valid string"} in \
        response.json()["detail"]


#: (description, raw body, expected status, expected (type, loc) among the issues)
BODY_CASES = [
    ("not json", b"{customer_id: 1", "json_invalid", ["body"]),
    ("empty body", b"", "json_invalid", ["body"]),
    ("a list", b"[1, 2]", "dict_type", ["body"]),
    ("no customer id", {"features": {}}, "missing", ["body", "customer_id"]),
    ("empty customer id", {"customer_id": "", "features": {}}, "string_too_short", ["body", "customer_id"]),
    ("long customer id", {"customer_id": "x" * 300, "features": {}}, "string_too_long", ["body", "customer_id"]),
    ("unknown top-level field", {"customer_id": "a", "features": {}, "segment": 1}, "extra_forbidden",
     ["body", "segment"]),
    ("neither form", {"customer_id": "a"}, "missing", ["body", "features"]),
    ("transactions without as_of", {"customer_id": "a", "transactions": [
        {"ts": "2024-01-01T10:00:00", "amount": 10.0, "category": "books", "discount": False}]},
     "missing", ["body", "as_of"]),
    ("empty transactions", {"customer_id": "a", "transactions": [], "as_of": "2025-01-01"}, "too_short",
     ["body", "transactions"]),
    ("line without ts", {"customer_id": "a", "as_of": "2025-01-01", "transactions": [
        {"amount": 10.0, "category": "books", "discount": False}]}, "missing", ["body", "transactions", 0, "ts"]),
    ("ts not a date-time", {"customer_id": "a", "as_of": "2025-01-01", "transactions": [
        {"ts": "yesterday", "amount": 10.0, "category": "books", "discount": False}]}, "datetime_parsing",
     ["body", "transactions", 0, "ts"]),
    ("as_of not a date", {"customer_id": "a", "as_of": "01/01/2025", "transactions": [
        {"ts": "2024-01-01T10:00:00", "amount": 10.0, "category": "books", "discount": False}]}, "date_parsing",
     ["body", "as_of"]),
    ("category the model needs is missing", {"customer_id": "a", "as_of": "2025-01-01", "transactions": [
        {"ts": "2024-01-01T10:00:00", "amount": 10.0, "discount": False}]}, "missing",
     ["body", "transactions", 0, "category"]),
    ("as_of before the first line", {"customer_id": "a", "as_of": "2023-01-01", "transactions": [
        {"ts": "2024-01-01T10:00:00", "amount": 10.0, "category": "books", "discount": False}]}, "value_error",
     ["body", "as_of"]),
    ("only returns", {"customer_id": "a", "as_of": "2025-01-01", "transactions": [
        {"ts": "2024-01-01T10:00:00", "amount": -10.0, "category": "books", "discount": False}]}, "value_error",
     ["body", "transactions"]),
    ("empty batch", {"customers": []}, "too_short", ["body", "customers"]),
]


@pytest.mark.parametrize("what, body, kind, loc", BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_bad_bodies_get_422_naming_the_field(client, model_a, what, body, kind, loc):
    path = "/v1/assign/batch" if isinstance(body, dict) and "customers" in body else "/v1/assign"
    if isinstance(body, dict) and body.get("features") == {}:
        body = dict(body, features=model_a.feature_rows(1)[0]["features"])
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    issues = response.json()["detail"]
    assert (kind, loc) in [(i["type"], i["loc"][:len(loc)]) for i in issues], issues
    assert all(i["msg"] for i in issues)


def test_both_forms_at_once_and_as_of_with_features_are_refused(client, model_a):
    item = model_a.feature_rows(1)[0]
    line = {"ts": "2024-01-01T10:00:00", "amount": 10.0, "category": "books", "discount": False}
    both = client.post("/v1/assign", json={**item, "transactions": [line], "as_of": "2025-01-01"})
    assert both.status_code == 422
    assert both.json()["detail"][0]["msg"] == "give either features or transactions (with as_of), not both"
    dated = client.post("/v1/assign", json={**item, "as_of": "2025-01-01"})
    assert dated.status_code == 422
    assert dated.json()["detail"][0]["loc"] == ["body", "as_of"]


def test_batch_items_take_features_only(client, model_a):
    item = model_a.feature_rows(1)[0]
    line = {"ts": "2024-01-01T10:00:00", "amount": 10.0, "category": "books", "discount": False}
    response = client.post("/v1/assign/batch", json={"customers": [
        item, {"customer_id": "b", "transactions": [line]}]})
    assert response.status_code == 422
    kinds = {(i["type"], tuple(i["loc"])) for i in response.json()["detail"]}
    assert ("missing", ("body", "customers", 1, "features")) in kinds
    assert ("extra_forbidden", ("body", "customers", 1, "transactions")) in kinds


def test_body_over_the_limit_gets_413_without_being_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/assign/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 40000000\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.1 413 ")
    assert "larger than the limit of 33,554,432 bytes" in reply


def test_chunked_body_over_the_limit_gets_413(client):
    chunk = b" " * (1024 * 1024)

    def body():
        for _ in range(40):
            yield chunk

    response = client.post("/v1/assign/batch", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]


def test_unknown_paths_and_methods(client):
    assert client.get("/v1/nothing-here").status_code == 404
    assert client.get("/v1/assign").status_code == 405
    assert client.post("/healthz").status_code == 405


# --------------------------------------------------------------------------- metrics and documentation


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_latency_and_assignments(server, model_a):
    with server.client() as http:
        before = http.get("/metrics").text
        items = model_a.feature_rows(40)
        for item in items[:10]:
            assert http.post("/v1/assign", json=item).status_code == 200
        assert http.post("/v1/assign/batch", json={"customers": items}).status_code == 200
        assert http.post("/v1/assign", content=b"nope").status_code == 422
        assert http.get("/no/such/page").status_code == 404
        response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = response.text

    def grew(name, **labels):
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("segwise_http_requests_total", endpoint="/v1/assign", method="POST", status="200") == 10
    assert grew("segwise_http_requests_total", endpoint="/v1/assign/batch", method="POST", status="200") == 1
    assert grew("segwise_http_requests_total", endpoint="/v1/assign", method="POST", status="422") == 1
    assert grew("segwise_http_requests_total", endpoint="other", method="GET", status="404") == 1
    assert grew("segwise_http_request_duration_seconds_count", endpoint="/v1/assign", status="200") == 10
    assert grew("segwise_http_request_duration_seconds_bucket", endpoint="/v1/assign", status="200", le="+Inf") == 10
    expected = model_a.assignments.loc[[i["customer_id"] for i in items[:10] + items]]
    for (segment_id, name), count in expected.groupby(["segment_id", "segment_name"]).size().items():
        assert grew("segwise_assignments_total", segment_id=str(segment_id), segment_name=name) == count
    assert _sample(after, "segwise_model_info", model_version=model_a.model.file_sha256) == 1
    assert "segwise_http_requests_total{" in after and 'status="5' not in after


def test_openapi_documents_the_model_features_with_examples(client, model_a):
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "segwise assignment API"
    assert {"/v1/assign", "/v1/assign/batch", "/v1/segments", "/v1/model", "/v1/admin/reload", "/healthz",
            "/readyz", "/metrics"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    features = components["Features"]
    assert set(features["required"]) == set(model_a.model.input_columns)
    assert features["additionalProperties"] is False
    assert features["properties"]["top_category_share"]["anyOf"][0] == {
        "type": "number", "minimum": 0.0, "maximum": 1.0,
        "description": features["properties"]["top_category_share"]["anyOf"][0]["description"]}
    assert "securitySchemes" not in schema.get("components", {})  # no token: no authentication
    assign = schema["paths"]["/v1/assign"]["post"]
    assert {"200", "413", "422"} <= set(assign["responses"])
    examples = assign["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"features", "transactions"}
    for example in examples.values():
        response = client.post("/v1/assign", json=example["value"])
        assert response.status_code == 200, response.text
    batch = schema["paths"]["/v1/assign/batch"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert client.post("/v1/assign/batch", json=batch["features"]["value"]).status_code == 200


def test_readme_example_request_is_valid_and_answers_as_shown(client):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Serving segments", 1)[1]
    request = json.loads(section.split("-d '", 1)[1].split("'", 1)[0])
    shown = json.loads(section.split("answers (with the model of `segwise demo`):", 1)[1].split("```")[1])
    response = client.post("/v1/assign", json=request)
    assert response.status_code == 200, response.text
    assert set(response.json()) == set(shown)
    assert response.json()["customer_id"] == shown["customer_id"]
