"""Reloading the model without downtime: POST /v1/admin/reload and SIGHUP, good and broken files."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .server import Server, wait_for

TOKEN = "reload-token-5f2c"


@pytest.fixture(scope="module")
def served_file(tmp_path_factory, model_a):
    path = tmp_path_factory.mktemp("reload") / "served.segwise"
    shutil.copyfile(model_a.path, path)
    return path


@pytest.fixture(scope="module")
def server(served_file, tmp_path_factory):
    root = served_file.parent
    (root / "token").write_text(TOKEN + "\n")
    running = Server([served_file, "--token-file", root / "token"], root / "server.log").wait_ready()
    yield running
    running.stop()


@pytest.fixture
def http(server, served_file, model_a):
    with server.client(TOKEN) as client:
        yield client
    # Each test starts from model A being served.
    put(served_file, model_a.path.read_bytes())
    response = httpx.post(f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert response.status_code == 200, response.text


def put(path, data: bytes) -> None:
    """Replace the served file atomically, as a deployment would."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def version(client) -> str:
    return client.get("/readyz").json()["model_version"]


def test_reload_swaps_in_a_new_model(http, served_file, model_a, model_b):
    put(served_file, model_b.path.read_bytes())
    response = http.post("/v1/admin/reload")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "reloaded" and body["workers_restarting"] is False
    assert body["previous_model_version"] == model_a.model.file_sha256
    assert body["model"]["model_version"] == model_b.model.file_sha256
    assert body["model"]["n_segments"] == 3
    assert version(http) == model_b.model.file_sha256
    assert len(http.get("/v1/segments").json()["segments"]) == 3
    assert http.get("/v1/model").json()["training_customers"] == len(model_b.features)
    for item in model_b.feature_rows(10):
        assert http.post("/v1/assign", json=item).json()["segment_id"] == \
            model_b.assignments.loc[item["customer_id"], "segment_id"]


def _tampered(model_b) -> bytes:
    source = zipfile.ZipFile(model_b.path)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "model.json":
                document = json.loads(data)
                document["metadata"]["n_customers"] = 1
                data = json.dumps(document).encode()
            target.writestr(name, data)
    return out.getvalue()


def _not_a_segmentation(model_b) -> bytes:
    from segwise.persist import model_bytes, read_model_file

    document, arrays, _ = read_model_file(model_b.path)
    document["kind"] = "report"
    return model_bytes(document, arrays, segwise_version="0.1.0", created_at="2025-01-01")


BROKEN = {
    "garbage": (lambda m: b"this is not a model", "not a segwise model file (not a zip archive)"),
    "truncated": (lambda m: m.path.read_bytes()[:2000], "not a segwise model file"),
    "tampered": (_tampered, "does not match its SHA-256 in the manifest"),
    "wrong kind": (_not_a_segmentation, "not a segmentation model (kind 'report')"),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_broken_file_is_rejected_and_the_old_model_keeps_serving(http, served_file, model_a, model_b, broken):
    make, message = BROKEN[broken]
    put(served_file, make(model_b))
    response = http.post("/v1/admin/reload")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith("reload rejected, the previous model keeps serving: ")
    assert message in detail
    assert version(http) == model_a.model.file_sha256
    item = model_a.feature_rows(1)[0]
    assert http.post("/v1/assign", json=item).json()["model_version"] == model_a.model.file_sha256


def test_missing_file_is_rejected(http, served_file, model_a):
    served_file.unlink()
    response = http.post("/v1/admin/reload")
    assert response.status_code == 409
    assert "no such model file" in response.json()["detail"]
    assert version(http) == model_a.model.file_sha256


def test_sighup_reloads_and_a_broken_file_keeps_the_old_model(http, server, served_file, model_a, model_b):
    put(served_file, model_b.path.read_bytes())
    server.signal(signal.SIGHUP)
    wait_for(lambda: version(http) == model_b.model.file_sha256, what="the SIGHUP reload")
    put(served_file, b"broken")
    server.signal(signal.SIGHUP)
    wait_for(lambda: server.log.count("rejected, the previous model keeps serving") >= 1, what="the rejection")
    assert server.process.poll() is None
    assert version(http) == model_b.model.file_sha256


def test_reloads_are_counted(http, served_file, model_a):
    def count(outcome):
        for line in http.get("/metrics").text.splitlines():
            if line.startswith(f'segwise_model_reloads_total{{outcome="{outcome}"}}'):
                return float(line.split()[-1])
        return 0.0

    ok, rejected = count("ok"), count("rejected")
    assert http.post("/v1/admin/reload").status_code == 200
    put(served_file, b"broken")
    assert http.post("/v1/admin/reload").status_code == 409
    assert (count("ok"), count("rejected")) == (ok + 1, rejected + 1)


def test_requests_during_reloads_never_fail_nor_mix_models(http, server, served_file, model_a, model_b):
    assert model_a.model.input_columns == model_b.model.input_columns
    items = model_a.feature_rows(600) * 3
    rows = [i["features"] for i in items]
    expected = {}
    for trained in (model_a, model_b):
        result = trained.model.assign_rows(rows)
        expected[trained.model.file_sha256] = (result.segment_id.tolist(), result.confidence.tolist())
    done = threading.Event()
    seen: dict[str, int] = {}

    def keep_asking() -> int:
        answered = 0
        with server.client(TOKEN) as client:
            while not done.is_set():
                response = client.post("/v1/assign/batch", json={"customers": items})
                assert response.status_code == 200, response.text
                body = response.json()
                segment_ids, confidences = expected[body["model_version"]]
                assert [a["segment_id"] for a in body["assignments"]] == segment_ids
                assert [a["confidence"] for a in body["assignments"]] == pytest.approx(confidences)
                seen[body["model_version"]] = seen.get(body["model_version"], 0) + 1
                answered += 1
        return answered

    with ThreadPoolExecutor(2) as pool:
        askers = [pool.submit(keep_asking) for _ in range(2)]
        try:
            for trained in (model_b, model_a, model_b, model_a):
                new_version = trained.model.file_sha256
                before = seen.get(new_version, 0)
                put(served_file, trained.path.read_bytes())
                assert http.post("/v1/admin/reload").status_code == 200
                wait_for(lambda: seen.get(new_version, 0) > before, what="an answer from the new model")
        finally:
            done.set()
        answered = sum(f.result() for f in askers)
    assert set(seen) == {model_a.model.file_sha256, model_b.model.file_sha256}
    assert answered >= 4
