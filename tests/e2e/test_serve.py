"""``segwise serve``: the service assigns like ``segwise assign``; bad starts; several workers."""

from __future__ import annotations

import signal
import socket
import threading
import time

import httpx
import pandas as pd
import pytest

from ..serve.server import Server, wait_for
from . import datasets
from .conftest import Jobs, assert_bad_input, assert_ok

NEW_ID_OFFSET = 2_000_000
AS_OF = "2025-01-01"
TOKEN = "e2e-token-91c4d0"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def jobs(root, trained):
    """``segwise assign`` and ``segwise features`` on new customers, and the bad starts of ``segwise serve``."""
    new_orders = datasets.offset_customer_ids(datasets.population(250, 41).orders, NEW_ID_OFFSET)
    datasets.write_order_log(root / "new_orders.csv", new_orders)
    (root / "garbage.segwise").write_bytes(b"not a model")
    (root / "empty_token").write_text("\n")
    model = trained.out / "model.segwise"
    argv = {
        "assign": ["assign", model, "new_orders.csv", "--as-of", AS_OF, "--out", "assigned.csv"],
        "features": ["features", "new_orders.csv", "--as-of", AS_OF, "--out", "features.parquet"],
        "no_model": ["serve", "missing.segwise"],
        "garbage_model": ["serve", "garbage.segwise"],
        "empty_token_file": ["serve", model, "--token-file", "empty_token"],
        "missing_token_file": ["serve", model, "--token-file", "nowhere"],
        "no_workers": ["serve", model, "--workers", "0"],
        "bad_port": ["serve", model, "--port", "70000"],
        "help": ["serve", "--help"],
    }
    return Jobs({name: (args, root) for name, args in argv.items()})


@pytest.fixture(scope="module")
def server(root, trained):
    running = Server([trained.out / "model.segwise"], root / "server.log").wait_ready()
    yield running
    running.stop()


def _assigned(jobs) -> pd.DataFrame:
    result = assert_ok(jobs["assign"])
    return pd.read_csv(result.cwd / "assigned.csv", dtype={"customer_id": str}).set_index("customer_id")


def test_batch_assignments_equal_segwise_assign(jobs, server):
    expected = _assigned(jobs)
    features = pd.read_parquet(assert_ok(jobs["features"]).cwd / "features.parquet").set_index("customer_id")
    with server.client() as http:
        required = [f["name"] for f in http.get("/v1/model").json()["features"] if f["required"]]
        items = [{"customer_id": str(cid), "features": {c: (None if pd.isna(v) else float(v)) for c, v in row.items()}}
                 for cid, row in zip(features.index, features[required].to_dict("records"))]
        body = http.post("/v1/assign/batch", json={"customers": items}).json()
    served = pd.DataFrame(body["assignments"]).set_index("customer_id")
    assert set(served.index) == set(expected.index) and len(served) == len(expected)
    served = served.loc[expected.index]
    assert (served["segment_id"] == expected["segment_id"]).all()
    assert (served["segment_name"] == expected["segment_name"]).all()
    assert served["confidence"].to_numpy() == pytest.approx(expected["confidence"].to_numpy())


def test_transactions_form_equals_segwise_assign(jobs, server):
    expected = _assigned(jobs)
    orders = pd.read_csv(jobs["assign"].cwd / "new_orders.csv", dtype={"customer_id": "Int64", "order_id": str})
    orders["customer_id"] = orders["customer_id"].astype(str)
    chosen = list(expected.index[::25])
    assert len(chosen) >= 8
    with server.client() as http:
        for customer_id in chosen:
            mine = orders[orders["customer_id"] == customer_id]
            lines = [{"order_id": r.order_id, "ts": str(r.ordered_at).replace(" ", "T"), "amount": float(r.amount),
                      "category": r.category, "channel": r.channel, "discount": bool(r.discount)}
                     for r in mine.itertuples()]
            response = http.post("/v1/assign", json={"customer_id": customer_id, "transactions": lines, "as_of": AS_OF})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["segment_id"] == expected.loc[customer_id, "segment_id"], customer_id
            assert body["segment_name"] == expected.loc[customer_id, "segment_name"]
            assert body["confidence"] == pytest.approx(expected.loc[customer_id, "confidence"])


@pytest.mark.parametrize("job, fragments", [
    ("no_model", ["missing.segwise: no such model file"]),
    ("garbage_model", ["garbage.segwise: not a segwise model file (not a zip archive)"]),
    ("empty_token_file", ["--token-file empty_token: the file is empty; put the bearer token in it"]),
    ("missing_token_file", ["--token-file nowhere: no such file"]),
    ("no_workers", ["--workers must be at least 1, got 0"]),
    ("bad_port", ["--port must be in 0..65535, got 70000"]),
])
def test_bad_starts_exit_2_with_a_diagnosis(jobs, job, fragments):
    assert_bad_input(jobs[job], *fragments)


def test_port_in_use_exits_2(root, trained):
    from .conftest import run_segwise

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_segwise("serve", trained.out / "model.segwise", "--port", str(port), cwd=root)
    assert_bad_input(result, f"port {port} on 127.0.0.1 is already in use: choose another --port")


def test_help_lists_the_options(jobs):
    help_text = assert_ok(jobs["help"]).out
    for option in ("--host", "--port", "--workers", "--token-file", "SIGHUP", "/v1/assign"):
        assert option in help_text


@pytest.mark.slow
def test_several_workers_reload_together_without_downtime(root, trained, tmp_path):
    """Two workers: a reload (HTTP or SIGHUP) replaces both, one by one, with no failed request."""
    model_path = tmp_path / "served.segwise"
    model_path.write_bytes((trained.out / "model.segwise").read_bytes())
    other = root / "other"
    assert_ok(run_other_training(other))
    (tmp_path / "token").write_text(TOKEN)
    server = Server([model_path, "--workers", "2", "--token-file", tmp_path / "token"], tmp_path / "server.log")
    try:
        server.wait_ready()
        first = httpx.get(f"{server.url}/readyz").json()["model_version"]
        failures: list[str] = []
        answered = [0]
        stop = threading.Event()

        def ask() -> httpx.Response:
            # A new connection each time, so both workers answer.
            return httpx.get(f"{server.url}/v1/segments", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

        def keep_asking() -> None:
            while not stop.is_set():
                try:
                    try:
                        response = ask()
                    except (httpx.RemoteProtocolError, httpx.ReadError):
                        # A worker being retired closes connections whose request it has not
                        # read yet (a reset when the bytes had arrived); clients retry those,
                        # as for any closed idle connection.
                        response = ask()
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    answered[0] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.01)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            second_bytes = (other / "model.segwise").read_bytes()
            model_path.write_bytes(second_bytes)
            response = httpx.post(f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"},
                                  timeout=60)
            assert response.status_code == 200 and response.json()["workers_restarting"] is True
            second = response.json()["model"]["model_version"]
            assert second != first
            # Both answering with the new version is not enough: the worker that took the
            # reload serves it before the supervisor has replaced it.
            _wait_workers_replaced(server, 2)
            _wait_all_workers_serve(server, second)
            # SIGHUP to the supervisor with a broken file: the restart is aborted, both keep serving.
            model_path.write_bytes(b"broken")
            server.signal(signal.SIGHUP)
            wait_for(lambda: "aborting the restart" in server.log, timeout=180, what="the aborted restart")
            _wait_all_workers_serve(server, second)
            # SIGHUP with the first model back: both workers are replaced again.
            model_path.write_bytes((trained.out / "model.segwise").read_bytes())
            server.signal(signal.SIGHUP)
            _wait_workers_replaced(server, 4)
            _wait_all_workers_serve(server, first)
        finally:
            stop.set()
            asker.join()
        assert failures == []
        assert answered[0] > 10
        metrics = httpx.get(f"{server.url}/metrics").text
        counted = sum(float(line.split()[-1]) for line in metrics.splitlines()
                      if line.startswith('segwise_http_requests_total{endpoint="/v1/segments"'))
        assert counted >= answered[0]  # every worker's counts, whichever worker answers the scrape
    finally:
        assert server.stop() == 0, server.log


def run_other_training(out):
    from .conftest import run_segwise

    out.parent.mkdir(parents=True, exist_ok=True)
    data = datasets.write_order_log(out.parent / "other_orders.parquet", datasets.population(300, 23).orders)
    return run_segwise("run", data, "--segments", "3", "--out", out, "--no-store", cwd=out.parent)


def _wait_workers_replaced(server: Server, count: int) -> None:
    """Wait until the supervisor has retired ``count`` workers in all (it logs each one)."""
    wait_for(lambda: server.log.count("Terminated child process") >= count, timeout=240,
             what=f"{count} workers replaced")


def _wait_all_workers_serve(server: Server, version: str) -> None:
    def twenty_in_a_row() -> bool:
        for _ in range(20):
            try:
                answer = httpx.get(f"{server.url}/readyz", timeout=30)
            except httpx.TransportError:
                return False  # a worker being retired; ask again
            if answer.json()["model_version"] != version:
                return False
        return True

    wait_for(twenty_in_a_row, timeout=240, interval=1, what=f"every worker serving {version[:12]}")
