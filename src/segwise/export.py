"""Exporting segments to where the business acts on them.

Segment table (`export_frame`): one row per customer with the columns of
`EXPORT_COLUMNS`: ``customer_id``, ``segment_id``, ``segment_name``,
``confidence``, ``model_version`` (the model's id), ``as_of`` and ``updated_at``
(when the row was last written). It goes to

- a CSV or Parquet file (`write_export_file`, written atomically);
- a DuckDB table (`upsert_duckdb`) or a PostgreSQL table (`upsert_postgres`,
  needs ``segwise[postgres]``): created when missing, then upserted on
  ``customer_id`` inside one transaction. A row whose content did not change
  keeps its ``updated_at``; any failure rolls the whole export back, so the
  table is either fully updated or exactly as it was.

Change feed (`segment_changes`, `change_events`): who entered, changed or left a
segment between two assignment tables (a previous and a current run), as events
with a deterministic ``event_id`` (the idempotency key), written as JSON Lines
(`write_change_feed`) or POSTed to a webhook in batches with retries
(`deliver_webhook`), so a CRM can start a journey when a customer enters a segment.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from segwise._version import __version__
from segwise.errors import InputError
from segwise.persist import atomic_write_bytes

__all__ = [
    "EXPORT_COLUMNS", "CHANGE_COLUMNS", "UpsertResult", "export_frame", "write_export_file", "upsert_duckdb",
    "upsert_postgres", "segment_changes", "change_events", "write_change_feed", "deliver_webhook",
    "describe_postgres_url", "previous_assignments",
]

#: Columns of every exported segment table, in order.
EXPORT_COLUMNS = ["customer_id", "segment_id", "segment_name", "confidence", "model_version", "as_of", "updated_at"]
#: Columns compared to decide whether an existing row changed.
_CONTENT_COLUMNS = ["segment_id", "segment_name", "confidence", "model_version", "as_of"]
#: Columns of `segment_changes`.
CHANGE_COLUMNS = ["customer_id", "change", "from_segment_id", "from_segment_name", "to_segment_id", "to_segment_name"]


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows inserted, rows updated (content changed), rows unchanged."""

    target: str
    table: str
    inserted: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def export_frame(assignments: pd.DataFrame, *, model_version: str, as_of: str | date | None,
                 updated_at: datetime | None = None) -> pd.DataFrame:
    """The segment table to export, from a run's assignments.

    Parameters
    ----------
    assignments : DataFrame
        ``customer_id``, ``segment_id``, ``segment_name``, ``confidence``.
    model_version : str
        The model's id (``model.metadata["model_id"]``).
    as_of : str or date
        The observation date of the run.
    updated_at : datetime, optional
        Time of the export (default: now, UTC).
    """
    missing = [c for c in ("customer_id", "segment_id", "segment_name", "confidence") if c not in assignments]
    if missing:
        raise InputError(f"assignments: missing column(s) {', '.join(missing)}; export a run's assignments")
    frame = assignments[["customer_id", "segment_id", "segment_name", "confidence"]].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    repeated = int(frame["customer_id"].duplicated().sum())
    if repeated:
        raise InputError(f"assignments: {repeated} customers appear more than once; an upsert needs one row per "
                         "customer")
    frame["segment_id"] = frame["segment_id"].astype("int64")
    frame["segment_name"] = frame["segment_name"].astype(str)
    frame["confidence"] = frame["confidence"].astype("float64")
    frame["model_version"] = str(model_version)
    frame["as_of"] = pd.Timestamp(as_of).date() if as_of is not None else None
    stamp = pd.Timestamp(updated_at or datetime.now(timezone.utc))
    frame["updated_at"] = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return frame[EXPORT_COLUMNS].reset_index(drop=True)


def write_export_file(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the segment table as CSV or Parquet (by suffix), atomically."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    if path.suffix.lower() in (".parquet", ".pq"):
        pq.write_table(table, buffer)
    elif path.suffix.lower() == ".csv":
        pacsv.write_csv(table, buffer)
    else:
        raise InputError(f"{path}: unknown export format; use a .csv or .parquet file name")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _check_incoming(frame: pd.DataFrame) -> None:
    missing = [c for c in EXPORT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"export: missing column(s) {', '.join(missing)}; build the table with export_frame")
    if frame["customer_id"].duplicated().any():
        raise InputError("export: customers appear more than once; an upsert needs one row per customer")


# --------------------------------------------------------------------------- DuckDB


def upsert_duckdb(frame: pd.DataFrame, path: str | Path, table: str = "segwise_segments") -> UpsertResult:
    """Upsert the segment table into a DuckDB file, in one transaction."""
    import duckdb
    import pyarrow as pa

    from segwise.engines import quote_identifier as q

    _check_incoming(frame)
    path = Path(path)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise InputError(f"{path}: cannot open the DuckDB file ({str(exc).splitlines()[0]}); is another process "
                         "writing it?") from None
    name = q(table)
    set_clause = ", ".join(f"{c} = excluded.{c}" for c in EXPORT_COLUMNS[1:])
    changed = " OR ".join(f"{name}.{c} IS DISTINCT FROM excluded.{c}" for c in _CONTENT_COLUMNS)
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (customer_id VARCHAR PRIMARY KEY, segment_id INTEGER NOT NULL, "
            "segment_name VARCHAR NOT NULL, confidence DOUBLE NOT NULL, model_version VARCHAR NOT NULL, "
            "as_of DATE, updated_at TIMESTAMPTZ NOT NULL)"
        ).fetchall()
        existing = {row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()}
        lacking = [c for c in EXPORT_COLUMNS if c not in existing]
        if lacking:
            raise InputError(f"{path}: table {table!r} exists without column(s) {', '.join(lacking)}; export to "
                             "another --table or drop it")
        con.register("segwise_incoming", pa.Table.from_pandas(frame, preserve_index=False))
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            inserted, updated = con.execute(
                "SELECT count(*) FILTER (WHERE t.customer_id IS NULL), "
                "count(*) FILTER (WHERE t.customer_id IS NOT NULL AND ("
                + " OR ".join(f"t.{c} IS DISTINCT FROM i.{c}" for c in _CONTENT_COLUMNS)
                + f")) FROM segwise_incoming i LEFT JOIN {name} t USING (customer_id)"
            ).fetchall()[0]
            con.execute(
                f"INSERT INTO {name} SELECT {', '.join(EXPORT_COLUMNS)} FROM segwise_incoming "
                f"ON CONFLICT (customer_id) DO UPDATE SET {set_clause} WHERE {changed}"
            ).fetchall()
            con.execute("COMMIT").fetchall()
        except BaseException:
            con.execute("ROLLBACK").fetchall()
            raise
    except duckdb.Error as exc:
        raise InputError(f"{path}: the export to table {table!r} failed and was rolled back "
                         f"({str(exc).splitlines()[0]})") from None
    finally:
        con.close()
    return UpsertResult(str(path), table, int(inserted), int(updated), len(frame) - int(inserted) - int(updated))


# --------------------------------------------------------------------------- PostgreSQL


def _psycopg():
    from segwise.engines.postgres_url import psycopg_module

    return psycopg_module()


def describe_postgres_url(url: str) -> str:
    """The URL without its password (for messages and output)."""
    from segwise.engines.postgres_url import describe_postgres_url as describe

    return describe(url, what="--to")


def _table_identifier(table: str):
    from psycopg import sql

    parts = table.split(".")
    if len(parts) > 2 or not all(p.strip() for p in parts):
        raise InputError(f"--table: {table!r} is not a table name; write NAME or SCHEMA.NAME")
    return sql.Identifier(*parts), (parts[0] if len(parts) == 2 else None), parts[-1]


def upsert_postgres(frame: pd.DataFrame, url: str, table: str = "segwise_segments", *,
                    connect_timeout: int = 10) -> UpsertResult:
    """Upsert the segment table into PostgreSQL on ``customer_id``, in one transaction.

    The table is created when missing (``customer_id`` text primary key). Rows are
    copied into a temporary table, then ``INSERT ... ON CONFLICT (customer_id) DO
    UPDATE`` changes only rows whose content differs. Any failure (connection lost,
    a constraint or trigger of the table, a type error) rolls everything back: the
    table is exactly as it was.
    """
    psycopg = _psycopg()
    from psycopg import sql

    _check_incoming(frame)
    target = describe_postgres_url(url)
    ident, schema, name = _table_identifier(table)
    columns = sql.SQL(", ").join(map(sql.Identifier, EXPORT_COLUMNS))
    changed = sql.SQL(" OR ").join(
        sql.SQL("t.{c} IS DISTINCT FROM excluded.{c}").format(c=sql.Identifier(c)) for c in _CONTENT_COLUMNS
    )
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in EXPORT_COLUMNS[1:]
    )
    try:
        conn = psycopg.connect(url, connect_timeout=connect_timeout, autocommit=False)
    except psycopg.OperationalError as exc:
        raise InputError(f"{target}: cannot connect to PostgreSQL ({str(exc).strip().splitlines()[0]}); check "
                         "the URL and that the server accepts connections") from None
    rows = frame[EXPORT_COLUMNS].itertuples(index=False, name=None)
    try:
        with conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {t} (customer_id text PRIMARY KEY, segment_id integer NOT NULL, "
                "segment_name text NOT NULL, confidence double precision NOT NULL, model_version text NOT NULL, "
                "as_of date, updated_at timestamptz NOT NULL)"
            ).format(t=ident))
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = coalesce(%s, current_schema())",
                [name, schema],
            )
            present = {r[0] for r in cur.fetchall()}
            lacking = [c for c in EXPORT_COLUMNS if c not in present]
            if lacking:
                raise InputError(f"{target}: table {table!r} exists without column(s) {', '.join(lacking)}; "
                                 "export to another --table or add them")
            cur.execute(sql.SQL(
                "CREATE TEMPORARY TABLE segwise_incoming (LIKE {t} INCLUDING DEFAULTS) ON COMMIT DROP"
            ).format(t=ident))
            with cur.copy(sql.SQL("COPY segwise_incoming ({cols}) FROM STDIN").format(cols=columns)) as copy:
                for row in rows:
                    copy.write_row([_pg_value(v) for v in row])
            cur.execute(sql.SQL(
                "WITH up AS (INSERT INTO {t} AS t ({cols}) SELECT {cols} FROM segwise_incoming "
                "ON CONFLICT (customer_id) DO UPDATE SET {updates} WHERE {changed} "
                "RETURNING (xmax = 0) AS inserted) "
                "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
            ).format(t=ident, cols=columns, updates=updates, changed=changed))
            inserted, updated = cur.fetchone()
    except psycopg.errors.InvalidColumnReference:
        raise InputError(f"{target}: table {table!r} has no primary key or unique constraint on customer_id, "
                         "which the upsert needs; add one or export to another --table") from None
    except psycopg.Error as exc:
        raise InputError(f"{target}: the export to table {table!r} failed and was rolled back; the table is "
                         f"unchanged ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})") from None
    finally:
        conn.close()
    return UpsertResult(target, table, int(inserted), int(updated), len(frame) - int(inserted) - int(updated))


def _pg_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


# --------------------------------------------------------------------------- change feed


def _assignment_table(frame: pd.DataFrame | None, label: str) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame({"customer_id": pd.Series(dtype=str), "segment_id": pd.Series(dtype="int64"),
                             "segment_name": pd.Series(dtype=str)})
    missing = [c for c in ("customer_id", "segment_id", "segment_name") if c not in frame.columns]
    if missing:
        raise InputError(f"{label} assignments: missing column(s) {', '.join(missing)}")
    out = frame[["customer_id", "segment_id", "segment_name"]].copy()
    out["customer_id"] = out["customer_id"].astype(str)
    if out["customer_id"].duplicated().any():
        raise InputError(f"{label} assignments: customers appear more than once; use one run's assignments")
    return out


def segment_changes(previous: pd.DataFrame | None, current: pd.DataFrame) -> pd.DataFrame:
    """Customers who entered, changed or left a segment between two assignment tables.

    Parameters
    ----------
    previous : DataFrame or None
        ``customer_id``, ``segment_id``, ``segment_name`` of the earlier run (None:
        no earlier run, everyone has entered).
    current : DataFrame
        The same columns for the later run.

    Returns
    -------
    DataFrame
        `CHANGE_COLUMNS`: ``change`` is ``entered`` (not in the previous table),
        ``changed`` (another segment id) or ``left`` (not in the current table);
        ``from_*`` / ``to_*`` are missing where there is no segment. Ordered by
        customer id. Tracking's segment migrations have the same shape.
    """
    before = _assignment_table(previous, "previous")
    after = _assignment_table(current, "current")
    merged = before.merge(after, on="customer_id", how="outer", suffixes=("_from", "_to"), indicator=True)
    change = pd.Series(pd.NA, index=merged.index, dtype="string")
    change[merged["_merge"] == "right_only"] = "entered"
    change[merged["_merge"] == "left_only"] = "left"
    both = merged["_merge"] == "both"
    change[both & (merged["segment_id_from"] != merged["segment_id_to"])] = "changed"
    merged["change"] = change
    merged = merged[merged["change"].notna()].rename(columns={
        "segment_id_from": "from_segment_id", "segment_name_from": "from_segment_name",
        "segment_id_to": "to_segment_id", "segment_name_to": "to_segment_name",
    })
    for column in ("from_segment_id", "to_segment_id"):
        merged[column] = merged[column].astype("Int64")
    return merged[CHANGE_COLUMNS].sort_values("customer_id", kind="stable").reset_index(drop=True)


def previous_assignments(run_dir: str | Path, run: dict[str, Any], previous: str | Path | None = None
                         ) -> tuple[str | None, pd.DataFrame | None]:
    """The assignments to compare a run with for the change feed, and their run id.

    ``previous`` may be another run directory (its ``run.json`` and
    ``assignments.parquet``) or an assignments file (CSV/Parquet; its id is
    ``file:`` plus a hash of its bytes, so the event ids stay deterministic).
    Without it, the run appended before this one in ``RUN_DIR/segwise.duckdb`` is
    used; with no earlier run, ``(None, None)``: every customer has entered.
    """
    from segwise.outputs import recover
    from segwise.store import STORE_FILENAME, RunStore

    if previous is not None:
        previous = Path(previous)
        if previous.is_dir():
            recover(previous)
            run_file, assignments_file = previous / "run.json", previous / "assignments.parquet"
            if not run_file.exists() or not assignments_file.exists():
                raise InputError(f"--previous {previous}: not a segwise run directory (no run.json or "
                                 "assignments.parquet)")
            return json.loads(run_file.read_text())["run_id"], pd.read_parquet(assignments_file)
        if not previous.is_file():
            raise InputError(f"--previous {previous}: no such run directory or assignments file")
        data = previous.read_bytes()
        suffix = previous.suffix.lower()
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(previous)
        elif suffix == ".csv":
            frame = pd.read_csv(previous, dtype={"customer_id": str})
        else:
            raise InputError(f"--previous {previous}: use a run directory or a .parquet/.csv assignments file")
        return f"file:{hashlib.sha256(data).hexdigest()[:16]}", frame
    store_path = Path(run_dir) / STORE_FILENAME
    if not store_path.exists():
        return None, None
    with RunStore(store_path, read_only=True) as store:
        previous_id = store.previous_run(run["run_id"])
        return (previous_id, store.assignments(previous_id)) if previous_id else (None, None)


def _event_id(previous_run_id: str | None, run_id: str, customer_id: str) -> str:
    key = f"{previous_run_id or ''}\x1f{run_id}\x1f{customer_id}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def change_events(changes: pd.DataFrame, *, run_id: str, previous_run_id: str | None, model_version: str,
                  as_of: str | None, occurred_at: str) -> list[dict[str, Any]]:
    """Events of a change table (from `segment_changes`), ready for a feed or a webhook.

    Each event has ``event_id`` (deterministic in the two run ids and the customer:
    the same change always has the same id, so a receiver can drop repeats),
    ``type`` (``segment.entered``, ``segment.changed`` or ``segment.left``),
    ``customer_id``, ``segment`` and ``previous_segment`` (``{"id", "name"}`` or
    None), ``run_id``, ``previous_run_id``, ``model_version``, ``as_of`` and
    ``occurred_at`` (when the current run was made).
    """
    events = []
    for row in changes.itertuples(index=False):
        def segment(segment_id, segment_name):
            return None if pd.isna(segment_id) else {"id": int(segment_id), "name": str(segment_name)}

        events.append({
            "event_id": _event_id(previous_run_id, run_id, row.customer_id),
            "type": f"segment.{row.change}",
            "customer_id": row.customer_id,
            "segment": segment(row.to_segment_id, row.to_segment_name),
            "previous_segment": segment(row.from_segment_id, row.from_segment_name),
            "run_id": run_id,
            "previous_run_id": previous_run_id,
            "model_version": model_version,
            "as_of": as_of,
            "occurred_at": occurred_at,
        })
    return events


def write_change_feed(events: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write events as JSON Lines (one event per line), atomically."""
    path = Path(path)
    text = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in events)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- webhook

#: Statuses worth another attempt: the receiver may succeed later.
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 60.0


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(float(value), _MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return min(max((parsed - datetime.now(timezone.utc)).total_seconds(), 0.0), _MAX_RETRY_AFTER_SECONDS)


def _redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def deliver_webhook(
    events: Sequence[dict[str, Any]],
    url: str,
    *,
    batch_size: int = 500,
    max_attempts: int = 4,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 10.0,
    headers: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """POST events to a webhook in batches, retrying failures.

    Each batch is ``{"batch_id": KEY, "events": [...]}`` with the header
    ``Idempotency-Key: KEY``, where KEY is a hash of the batch's event ids: a
    retried or re-run delivery of the same changes carries the same key.
    Credentials in the URL (``https://user:token@host/...``) are sent as HTTP
    basic auth and never shown in messages. A batch is
    retried after a connection error, a timeout or a status in 408, 425, 429 and
    5xx, waiting ``backoff_seconds * 2**attempt`` (or the server's Retry-After, at
    most 60 s), up to ``max_attempts`` tries; any other 4xx stops at once.

    Returns
    -------
    dict
        ``url`` (without credentials), ``events``, ``batches``, ``attempts`` (per
        batch) and ``retries``.

    Raises
    ------
    InputError
        A batch that could not be delivered; the message says which batches were.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--to: {url!r} is not an http(s) URL for a webhook")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if max_attempts < 1:
        raise InputError(f"--attempts must be at least 1, got {max_attempts}")
    shown = _redact_url(url)
    auth: dict[str, str] = {}
    if parts.username or parts.password:
        # urllib does not take credentials from the URL: send them as HTTP basic auth.
        token = base64.b64encode(
            f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}".encode()
        ).decode()
        auth = {"Authorization": f"Basic {token}"}
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    batches = [list(events[i:i + batch_size]) for i in range(0, len(events), batch_size)]
    attempts_per_batch = []
    for number, batch in enumerate(batches, 1):
        key = hashlib.sha256("\n".join(e["event_id"] for e in batch).encode()).hexdigest()[:32]
        body = json.dumps({"batch_id": key, "events": batch}, ensure_ascii=False).encode("utf-8")
        request_headers = {
            "Content-Type": "application/json", "Idempotency-Key": key,
            "User-Agent": f"segwise/{__version__}", **auth, **(headers or {}),
        }
        last_problem = ""
        for attempt in range(1, max_attempts + 1):
            wait = backoff_seconds * 2 ** (attempt - 1)
            request = urllib.request.Request(url, data=body, headers=request_headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                    response.read()
                attempts_per_batch.append(attempt)
                break
            except urllib.error.HTTPError as exc:
                exc.read()
                exc.close()
                last_problem = f"HTTP {exc.code}"
                if exc.code not in _RETRY_STATUSES:
                    raise InputError(
                        f"{shown}: the webhook refused batch {number} of {len(batches)} ({last_problem}); "
                        f"{number - 1} batches were delivered. Fix the endpoint or its authentication and "
                        "export again (the same changes carry the same idempotency keys)"
                    ) from None
                wait = _retry_after(exc.headers.get("Retry-After")) or wait
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                    socket.timeout) as exc:
                reason = getattr(exc, "reason", exc)
                last_problem = f"{type(reason).__name__}: {reason}"
            if attempt < max_attempts:
                sleep(wait)
        else:
            raise InputError(
                f"{shown}: batch {number} of {len(batches)} could not be delivered after {max_attempts} attempts "
                f"(last: {last_problem}); {number - 1} batches were delivered. Export again when the endpoint "
                "is back (the same changes carry the same idempotency keys)"
            )
    return {
        "url": shown, "events": len(events), "batches": len(batches), "attempts": attempts_per_batch,
        "retries": sum(a - 1 for a in attempts_per_batch),
    }
