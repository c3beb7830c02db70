"""The run store: a DuckDB file (``segwise.duckdb``) with every run and its assignments.

Tables:

- ``runs``: one row per run (``run_id``, ``created_at``, ``source``, ``as_of``,
  ``method``, ``n_segments``, ``n_customers``, ``model_sha256``, ``run_json``);
- ``assignments``: ``run_id``, ``customer_id``, ``segment_id``, ``segment_name``,
  ``confidence``;
- ``experiments``: one row per A/B split (``name``, ``created_at``, ``run_id``,
  ``segments``, ``treatment_share``, ``seed``, ``n_customers``, ``n_treatment``);
- ``experiment_assignments``: ``experiment``, ``customer_id``, ``segment_id``, ``arm``;
- ``segment_history`` (written by ``segwise update``): each customer's segment as a
  slowly changing dimension of type 2: ``customer_id``, ``segment_id``,
  ``segment_name``, ``model_id``, ``valid_from``, ``valid_to`` (NULL while current).
  A customer has at most one current row; a change of segment closes it
  (``valid_to`` = the update's as_of) and opens a new one from that date;
- ``segment_migrations``: per update, every customer who is ``new`` (no current
  row before), ``moved`` (another segment id) or ``gone`` (current row but absent
  from the data): ``as_of``, ``customer_id``, ``from_segment_id``,
  ``from_segment_name``, ``to_segment_id``, ``to_segment_name``, ``kind``, ``model_id``;
- ``segment_updates``: one row per update (``as_of``, ``model_id``, counts, whether
  a retrain is recommended, and the summary with the drift as JSON).

A run, or an update, is written in one transaction: either all of it is there or none. DuckDB lets
one process write a file at a time; a second writer gets a clear "store is locked"
error instead of waiting or corrupting it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pandas as pd
import pyarrow as pa

from segwise.errors import InputError

__all__ = ["RunStore", "STORE_FILENAME", "MIGRATION_COLUMNS"]

STORE_FILENAME = "segwise.duckdb"

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMP NOT NULL,
        source VARCHAR,
        as_of DATE,
        method VARCHAR NOT NULL,
        n_segments INTEGER NOT NULL,
        n_customers BIGINT NOT NULL,
        model_sha256 VARCHAR,
        run_json VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS assignments (
        run_id VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL,
        segment_id INTEGER NOT NULL,
        segment_name VARCHAR NOT NULL,
        confidence DOUBLE NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS experiments (
        name VARCHAR PRIMARY KEY,
        created_at TIMESTAMP NOT NULL,
        run_id VARCHAR,
        segments VARCHAR NOT NULL,
        treatment_share DOUBLE NOT NULL,
        seed BIGINT NOT NULL,
        n_customers BIGINT NOT NULL,
        n_treatment BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS experiment_assignments (
        experiment VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL,
        segment_id INTEGER NOT NULL,
        arm VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS segment_history (
        customer_id VARCHAR NOT NULL,
        segment_id INTEGER NOT NULL,
        segment_name VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        valid_from DATE NOT NULL,
        valid_to DATE
    )""",
    """CREATE TABLE IF NOT EXISTS segment_migrations (
        as_of DATE NOT NULL,
        customer_id VARCHAR NOT NULL,
        from_segment_id INTEGER,
        from_segment_name VARCHAR,
        to_segment_id INTEGER,
        to_segment_name VARCHAR,
        kind VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS segment_updates (
        as_of DATE PRIMARY KEY,
        model_id VARCHAR NOT NULL,
        model_sha256 VARCHAR,
        created_at TIMESTAMP NOT NULL,
        n_customers BIGINT NOT NULL,
        n_new BIGINT NOT NULL,
        n_moved BIGINT NOT NULL,
        n_gone BIGINT NOT NULL,
        retrain_recommended BOOLEAN,
        summary_json VARCHAR NOT NULL
    )""",
]

#: Columns of the migrations list, in order.
MIGRATION_COLUMNS = [
    "as_of", "customer_id", "from_segment_id", "from_segment_name", "to_segment_id", "to_segment_name", "kind",
    "model_id",
]


class RunStore:
    """A DuckDB store of runs. Use as a context manager or call `close`."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise InputError(
                    f"{self.path}: the store is locked by another segwise process; wait for it to "
                    "finish (or use another --out directory)"
                ) from None
            raise
        if not read_only:
            for statement in _SCHEMA:
                self.con.execute(statement).fetchall()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def _transaction(self, view: str, rows: pd.DataFrame | pa.Table) -> Iterator[None]:
        """One transaction with ``rows`` visible as ``view``: committed whole or rolled back."""
        arrow = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
        self.con.register(view, arrow)
        try:
            self.con.execute("BEGIN TRANSACTION").fetchall()
            yield
            self.con.execute("COMMIT").fetchall()
        except BaseException:
            self.con.execute("ROLLBACK").fetchall()
            raise
        finally:
            self.con.unregister(view)

    def append_run(self, run: dict[str, Any], assignments: pd.DataFrame, model_sha256: str | None) -> None:
        """Insert one run and its assignments in a single transaction."""
        rows = assignments[["customer_id", "segment_id", "segment_name", "confidence"]]
        with self._transaction("segwise_new_assignments", rows):
            self.con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run["run_id"], run["created_at"].replace("Z", "").split("+")[0], run.get("source"),
                    run.get("as_of"), run["method"], run["n_segments"], run["n_customers"], model_sha256,
                    json.dumps(run, allow_nan=False),
                ],
            ).fetchall()
            self.con.execute(
                "INSERT INTO assignments SELECT ?, customer_id, segment_id, segment_name, confidence "
                "FROM segwise_new_assignments",
                [run["run_id"]],
            ).fetchall()

    def append_experiment(self, experiment: dict[str, Any], split: pd.DataFrame) -> None:
        """Insert one experiment and its arm assignments in a single transaction.

        ``experiment`` has ``name``, ``created_at`` (ISO text), ``run_id``,
        ``segments`` (list of ids), ``treatment_share`` and ``seed``.
        """
        with self._transaction("segwise_new_split", split[["customer_id", "segment_id", "arm"]]):
            self.con.execute(
                "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    experiment["name"], experiment["created_at"].replace("Z", "").split("+")[0],
                    experiment.get("run_id"), json.dumps(list(experiment["segments"])),
                    float(experiment["treatment_share"]), int(experiment["seed"]), int(len(split)),
                    int((split["arm"] == "treatment").sum()),
                ],
            ).fetchall()
            self.con.execute(
                "INSERT INTO experiment_assignments SELECT ?, customer_id, segment_id, arm FROM segwise_new_split",
                [experiment["name"]],
            ).fetchall()

    def experiment(self, name: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """An experiment's settings and its arm assignments, or None when there is none of that name."""
        rows = self.con.execute(
            "SELECT name, created_at, run_id, segments, treatment_share, seed, n_customers, n_treatment "
            "FROM experiments WHERE name = ?",
            [name],
        ).fetchall()
        if not rows:
            return None
        keys = ("name", "created_at", "run_id", "segments", "treatment_share", "seed", "n_customers", "n_treatment")
        meta = dict(zip(keys, rows[0]))
        meta["segments"] = json.loads(meta["segments"])
        split = self.con.sql(
            "SELECT customer_id, segment_id, arm FROM experiment_assignments WHERE experiment = ? "
            "ORDER BY segment_id, customer_id",
            params=[name],
        ).df()
        return meta, split

    def experiments(self) -> pd.DataFrame:
        """Every experiment, oldest first."""
        return self.con.sql(
            "SELECT name, created_at, run_id, segments, treatment_share, seed, n_customers, n_treatment "
            "FROM experiments ORDER BY created_at, name"
        ).df()

    def previous_run(self, run_id: str) -> str | None:
        """The run appended just before ``run_id`` (None for the first; the latest when ``run_id`` is not stored)."""
        order = [r[0] for r in self.con.execute("SELECT run_id FROM runs ORDER BY rowid").fetchall()]
        if run_id in order:
            position = order.index(run_id)
            return order[position - 1] if position > 0 else None
        return order[-1] if order else None

    def runs(self) -> pd.DataFrame:
        """Every run, oldest first (without the run JSON)."""
        return self.con.sql(
            "SELECT run_id, created_at, source, as_of, method, n_segments, n_customers, model_sha256 "
            "FROM runs ORDER BY created_at, run_id"
        ).df()

    def assignments(self, run_id: str) -> pd.DataFrame:
        """The assignments of one run."""
        return self.con.sql(
            "SELECT customer_id, segment_id, segment_name, confidence FROM assignments WHERE run_id = ? "
            "ORDER BY customer_id",
            params=[run_id],
        ).df()

    # ------------------------------------------------------------------ segment history

    def last_update(self) -> dict[str, Any] | None:
        """The latest recorded update (``as_of``, ``model_id``, ``summary``), or None."""
        rows = self.con.execute(
            "SELECT as_of, model_id, summary_json FROM segment_updates ORDER BY as_of DESC LIMIT 1"
        ).fetchall()
        if not rows:
            return None
        as_of, model_id, summary = rows[0]
        return {"as_of": as_of, "model_id": model_id, "summary": json.loads(summary)}

    def record_update(
        self, as_of: date, model_id: str, model_sha256: str | None, assignments: pd.DataFrame,
        summary: dict[str, Any],
    ) -> dict[str, int]:
        """Apply one update to ``segment_history`` and log its migrations, in one transaction.

        ``assignments`` holds ``customer_id``, ``segment_id``, ``segment_name`` of every
        current customer. Returns the counts of new, moved, gone and unchanged
        customers (also stored with ``summary``). The caller checks the order of
        updates (`last_update`); a second update at the same as_of is refused by the
        primary key.
        """
        arrow = pa.Table.from_pandas(
            assignments[["customer_id", "segment_id", "segment_name"]].astype(
                {"customer_id": str, "segment_id": "int64", "segment_name": str}
            ),
            preserve_index=False,
        )
        with self._transaction("segwise_current", arrow):
            self.con.execute(
                """INSERT INTO segment_migrations
                SELECT ?::DATE, customer_id, from_id, from_name, to_id, to_name, kind, ? FROM (
                    SELECT c.customer_id, h.segment_id AS from_id, h.segment_name AS from_name,
                           c.segment_id AS to_id, c.segment_name AS to_name,
                           CASE WHEN h.customer_id IS NULL THEN 'new' ELSE 'moved' END AS kind
                    FROM segwise_current c
                    LEFT JOIN segment_history h ON h.customer_id = c.customer_id AND h.valid_to IS NULL
                    WHERE h.customer_id IS NULL OR h.segment_id <> c.segment_id
                    UNION ALL
                    SELECT h.customer_id, h.segment_id, h.segment_name, NULL, NULL, 'gone'
                    FROM segment_history h ANTI JOIN segwise_current c ON c.customer_id = h.customer_id
                    WHERE h.valid_to IS NULL
                )""",
                [as_of, model_id],
            ).fetchall()
            self.con.execute(
                """UPDATE segment_history SET valid_to = ?::DATE
                WHERE valid_to IS NULL AND customer_id IN (
                    SELECT customer_id FROM segment_migrations WHERE as_of = ?::DATE AND kind IN ('moved', 'gone'))""",
                [as_of, as_of],
            ).fetchall()
            self.con.execute(
                """INSERT INTO segment_history
                SELECT customer_id, to_segment_id, to_segment_name, model_id, as_of, NULL
                FROM segment_migrations WHERE as_of = ?::DATE AND kind IN ('new', 'moved')""",
                [as_of],
            ).fetchall()
            counts = dict(self.con.execute(
                "SELECT kind, count(*) FROM segment_migrations WHERE as_of = ?::DATE GROUP BY kind", [as_of]
            ).fetchall())
            result = {
                "n_customers": int(len(assignments)),
                "n_new": int(counts.get("new", 0)),
                "n_moved": int(counts.get("moved", 0)),
                "n_gone": int(counts.get("gone", 0)),
            }
            result["n_unchanged"] = result["n_customers"] - result["n_new"] - result["n_moved"]
            stored = {**summary, **result}
            self.con.execute(
                "INSERT INTO segment_updates VALUES (?::DATE, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
                [as_of, model_id, model_sha256, result["n_customers"], result["n_new"], result["n_moved"],
                 result["n_gone"], (summary.get("drift") or {}).get("retrain_recommended"),
                 json.dumps(stored, allow_nan=False)],
            ).fetchall()
        return result

    def segment_history(self) -> pd.DataFrame:
        """Every history row, by customer and valid_from."""
        return self.con.sql(
            "SELECT customer_id, segment_id, segment_name, model_id, valid_from, valid_to FROM segment_history "
            "ORDER BY customer_id, valid_from"
        ).df()

    def migrations(self, as_of: date | None = None) -> pd.DataFrame:
        """Migrations of one update (or of every update), by as_of and customer."""
        where, params = ("WHERE as_of = ?::DATE", [as_of]) if as_of is not None else ("", [])
        return self.con.sql(
            f"SELECT {', '.join(MIGRATION_COLUMNS)} FROM segment_migrations {where} ORDER BY as_of, customer_id",
            params=params,
        ).df()

    def updates(self) -> pd.DataFrame:
        """One row per recorded update, oldest first (without the summary JSON)."""
        return self.con.sql(
            "SELECT as_of, model_id, model_sha256, created_at, n_customers, n_new, n_moved, n_gone, "
            "retrain_recommended FROM segment_updates ORDER BY as_of"
        ).df()
