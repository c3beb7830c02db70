"""Exports: segment table, files, DuckDB upsert, change feed, and webhook delivery to a real local server."""

from __future__ import annotations

import base64
import json
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pandas as pd
import pytest

from segwise.errors import InputError
from segwise.export import (
    CHANGE_COLUMNS, EXPORT_COLUMNS, change_events, deliver_webhook, export_frame, previous_assignments,
    segment_changes, upsert_duckdb, write_change_feed, write_export_file,
)

T1 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
T2 = datetime(2025, 2, 1, 12, 0, tzinfo=timezone.utc)


def assignments(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "segment_id", "segment_name", "confidence"])


BEFORE = assignments([("a", 0, "Champions", 0.9), ("b", 1, "At Risk", 0.5), ("c", 1, "At Risk", 0.4),
                      ("d", 2, "Lost", 0.8)])
# b moved, c unchanged, d left, e entered; a kept its segment with another confidence.
AFTER = assignments([("a", 0, "Champions", 0.7), ("b", 0, "Champions", 0.6), ("c", 1, "At Risk", 0.4),
                     ("e", 2, "Lost", 0.3)])


def test_export_frame_has_the_contract_columns():
    frame = export_frame(BEFORE, model_version="m1", as_of="2025-01-01", updated_at=T1)
    assert list(frame.columns) == EXPORT_COLUMNS
    assert frame["model_version"].unique().tolist() == ["m1"]
    assert frame["as_of"].iloc[0] == datetime(2025, 1, 1).date()
    assert frame["updated_at"].iloc[0] == pd.Timestamp(T1)
    with pytest.raises(InputError, match="2 customers appear more than once"):
        export_frame(pd.concat([BEFORE, BEFORE.iloc[:2]]), model_version="m1", as_of=None)
    with pytest.raises(InputError, match="missing column\\(s\\) confidence"):
        export_frame(BEFORE.drop(columns="confidence"), model_version="m1", as_of=None)


@pytest.mark.parametrize("name", ["segments.csv", "segments.parquet"])
def test_files_round_trip(tmp_path, name):
    frame = export_frame(BEFORE, model_version="m1", as_of="2025-01-01", updated_at=T1)
    path = write_export_file(frame, tmp_path / name)
    back = pd.read_csv(path, dtype={"customer_id": str}) if name.endswith(".csv") else pd.read_parquet(path)
    assert list(back.columns) == EXPORT_COLUMNS
    assert back["customer_id"].tolist() == ["a", "b", "c", "d"]
    assert back["segment_id"].tolist() == [0, 1, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == [name], "no temporary file is left behind"
    with pytest.raises(InputError, match="unknown export format; use a .csv or .parquet file name"):
        write_export_file(frame, tmp_path / "segments.xlsx")


def _table(path, table="segwise_segments") -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(f"SELECT * FROM {table} ORDER BY customer_id").df()
    finally:
        con.close()


def test_duckdb_upsert_inserts_updates_and_keeps_unchanged_rows(tmp_path):
    path = tmp_path / "crm.duckdb"
    first = upsert_duckdb(export_frame(BEFORE, model_version="m1", as_of="2025-01-01", updated_at=T1), path)
    assert (first.inserted, first.updated, first.unchanged) == (4, 0, 0)
    second = upsert_duckdb(export_frame(AFTER, model_version="m1", as_of="2025-01-01", updated_at=T2), path)
    # a (confidence) and b (segment) changed, c did not, e is new; d stays (upsert, not replace).
    assert (second.inserted, second.updated, second.unchanged) == (1, 2, 1)
    table = _table(path).set_index("customer_id")
    assert table["segment_id"].to_dict() == {"a": 0, "b": 0, "c": 1, "d": 2, "e": 2}
    stamps = table["updated_at"].dt.tz_convert("UTC")
    assert stamps["c"] == pd.Timestamp(T1) and stamps["d"] == pd.Timestamp(T1)
    assert stamps["a"] == stamps["b"] == stamps["e"] == pd.Timestamp(T2)


def test_a_failed_duckdb_upsert_leaves_the_table_unchanged(tmp_path):
    path = tmp_path / "crm.duckdb"
    upsert_duckdb(export_frame(BEFORE, model_version="m1", as_of="2025-01-01", updated_at=T1), path, "segs")
    con = duckdb.connect(str(path))
    # A table the export did not create, with a rule the new rows break half-way.
    con.execute("CREATE TABLE strict AS SELECT * FROM segs").fetchall()
    con.execute("DROP TABLE segs").fetchall()
    con.execute("CREATE TABLE segs (customer_id VARCHAR PRIMARY KEY, segment_id INTEGER CHECK (segment_id < 2), "
                "segment_name VARCHAR, confidence DOUBLE, model_version VARCHAR, as_of DATE, "
                "updated_at TIMESTAMPTZ)").fetchall()
    con.execute("INSERT INTO segs SELECT * FROM strict WHERE segment_id < 2").fetchall()
    con.close()
    before = _table(path, "segs")
    with pytest.raises(InputError, match="the export to table 'segs' failed and was rolled back"):
        upsert_duckdb(export_frame(AFTER, model_version="m2", as_of="2025-02-01", updated_at=T2), path, "segs")
    pd.testing.assert_frame_equal(_table(path, "segs"), before)


def test_duckdb_upsert_refuses_a_table_without_the_columns(tmp_path):
    path = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE segwise_segments (customer_id VARCHAR PRIMARY KEY, segment INTEGER)").fetchall()
    con.close()
    with pytest.raises(InputError, match="exists without column\\(s\\) segment_id, segment_name"):
        upsert_duckdb(export_frame(BEFORE, model_version="m1", as_of=None), path)


# --------------------------------------------------------------------------- change feed


def test_segment_changes_between_two_assignment_tables():
    changes = segment_changes(BEFORE, AFTER)
    assert list(changes.columns) == CHANGE_COLUMNS
    rows = {r.customer_id: r for r in changes.itertuples()}
    assert set(rows) == {"b", "d", "e"}
    assert (rows["b"].change, rows["b"].from_segment_id, rows["b"].to_segment_id) == ("changed", 1, 0)
    assert (rows["b"].from_segment_name, rows["b"].to_segment_name) == ("At Risk", "Champions")
    assert rows["d"].change == "left" and pd.isna(rows["d"].to_segment_id)
    assert rows["e"].change == "entered" and pd.isna(rows["e"].from_segment_id)
    first = segment_changes(None, AFTER)
    assert first["change"].tolist() == ["entered"] * 4


def test_change_events_are_deterministic_and_carry_idempotency_keys(tmp_path):
    changes = segment_changes(BEFORE, AFTER)
    kwargs = dict(run_id="r2", previous_run_id="r1", model_version="m1", as_of="2025-02-01",
                  occurred_at="2025-02-01T12:00:00+00:00")
    events = change_events(changes, **kwargs)
    assert events == change_events(changes, **kwargs)
    assert len({e["event_id"] for e in events}) == 3
    assert change_events(changes, **{**kwargs, "run_id": "r3"})[0]["event_id"] != events[0]["event_id"]
    moved = next(e for e in events if e["customer_id"] == "b")
    assert moved["type"] == "segment.changed"
    assert moved["segment"] == {"id": 0, "name": "Champions"}
    assert moved["previous_segment"] == {"id": 1, "name": "At Risk"}
    left = next(e for e in events if e["customer_id"] == "d")
    assert left["type"] == "segment.left" and left["segment"] is None
    path = write_change_feed(events, tmp_path / "feed.jsonl")
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == events


def test_previous_assignments_come_from_the_store_or_a_given_run(small_run, tmp_path):
    result, run_dir = small_run
    run = result.run
    assert previous_assignments(run_dir, run) == (None, None)
    assert previous_assignments(tmp_path, run) == (None, None)
    previous_id, frame = previous_assignments(tmp_path, run, run_dir)
    assert previous_id == run["run_id"] and len(frame) == len(result.assignments)
    path = tmp_path / "old.csv"
    result.assignments.to_csv(path, index=False)
    file_id, frame = previous_assignments(tmp_path, run, path)
    assert file_id.startswith("file:") and file_id == previous_assignments(tmp_path, run, path)[0]
    with pytest.raises(InputError, match="no such run directory or assignments file"):
        previous_assignments(tmp_path, run, tmp_path / "nope")


# --------------------------------------------------------------------------- webhook


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers POSTs with scripted statuses."""

    def __init__(self, statuses: list[int], retry_after: str | None = None):
        self.statuses = list(statuses)
        self.retry_after = retry_after
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append({"status": status, "headers": dict(self.headers),
                                          "body": json.loads(body)})
                self.send_response(status)
                if status == 503 and receiver.retry_after:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/segments"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def events_for(n: int) -> list[dict]:
    current = assignments([(f"cust{i:03d}", i % 3, f"S{i % 3}", 0.5) for i in range(n)])
    return change_events(segment_changes(None, current), run_id="r1", previous_run_id=None, model_version="m1",
                         as_of="2025-01-01", occurred_at="2025-01-01T00:00:00+00:00")


def test_webhook_delivery_retries_an_injected_failure_with_the_same_key():
    events = events_for(5)
    with Receiver([503]) as receiver:
        report = deliver_webhook(events, receiver.url, batch_size=2, backoff_seconds=0.05)
    assert report == {"url": receiver.url, "events": 5, "batches": 3, "attempts": [2, 1, 1], "retries": 1}
    statuses = [r["status"] for r in receiver.requests]
    assert statuses == [503, 200, 200, 200]
    failed, retried = receiver.requests[0], receiver.requests[1]
    assert failed["headers"]["Idempotency-Key"] == retried["headers"]["Idempotency-Key"]
    assert failed["body"] == retried["body"]
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.requests[1:]]
    assert len(set(keys)) == 3
    delivered = [e for r in receiver.requests[1:] for e in r["body"]["events"]]
    assert delivered == events
    assert all(r["headers"]["Content-Type"] == "application/json" for r in receiver.requests)
    assert retried["body"]["batch_id"] == retried["headers"]["Idempotency-Key"]
    # Delivering the same changes again sends the same keys: the receiver can drop them.
    with Receiver([]) as again:
        deliver_webhook(events, again.url, batch_size=2)
    assert [r["headers"]["Idempotency-Key"] for r in again.requests] == keys


def test_webhook_honours_retry_after_and_backs_off():
    waits = []
    with Receiver([503, 500, 429], retry_after="2") as receiver:
        report = deliver_webhook(events_for(1), receiver.url, backoff_seconds=0.5, sleep=waits.append)
    assert report["attempts"] == [4] and report["retries"] == 3
    assert waits == [2.0, 1.0, 2.0]   # Retry-After, then 0.5 * 2**1 and 0.5 * 2**2


def test_webhook_stops_at_a_client_error_and_reports_what_was_delivered():
    with Receiver([200, 401]) as receiver:
        with pytest.raises(InputError) as info:
            deliver_webhook(events_for(4), receiver.url, batch_size=2, sleep=lambda s: None)
    message = str(info.value)
    assert "the webhook refused batch 2 of 2 (HTTP 401); 1 batches were delivered" in message
    assert "cust" not in message, "messages carry no customer ids"
    assert len(receiver.requests) == 2


def test_webhook_sends_url_credentials_as_basic_auth():
    with Receiver([]) as receiver:
        url = receiver.url.replace("http://", "http://crm:s3cret@")
        report = deliver_webhook(events_for(1), url)
    assert report["url"] == receiver.url
    assert receiver.requests[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"crm:s3cret").decode()


def test_webhook_gives_up_after_the_attempts_on_a_dead_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits = []
    with pytest.raises(InputError) as info:
        deliver_webhook(events_for(2), f"http://user:secret@127.0.0.1:{port}/x", max_attempts=3, sleep=waits.append,
                        timeout_seconds=2)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/x: batch 1 of 1 could not be delivered after 3 attempts" in message
    assert "secret" not in message and "ConnectionRefusedError" in message
    assert len(waits) == 2


def test_webhook_rejects_a_non_http_url():
    with pytest.raises(InputError, match="is not an http\\(s\\) URL"):
        deliver_webhook(events_for(1), "ftp://example.invalid/x")
