"""The run store: a DuckDB file (``segwise.duckdb``) with every run and its assignments.

Tables:

- ``runs``: one row per run (``run_id``, ``created_at``, ``source``, ``as_of``,
  ``method``, ``n_segments``, ``n_customers``, ``model_sha256``, ``run_json``);
- ``assignments``: ``run_id``, ``customer_id``, ``segment_id``, ``segment_name``,
  ``confidence``.

A run is appended in one transaction: either all of it is there or none. DuckDB lets
one process write a file at a time; a second writer gets a clear "store is locked"
error instead of waiting or corrupting it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from segwise.errors import InputError

__all__ = ["RunStore", "STORE_FILENAME"]

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

    def append_run(self, run: dict[str, Any], assignments: pd.DataFrame, model_sha256: str | None) -> None:
        """Insert one run and its assignments in a single transaction."""
        arrow = pa.Table.from_pandas(
            assignments[["customer_id", "segment_id", "segment_name", "confidence"]], preserve_index=False
        )
        self.con.register("segwise_new_assignments", arrow)
        try:
            self.con.execute("BEGIN TRANSACTION").fetchall()
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
            self.con.execute("COMMIT").fetchall()
        except BaseException:
            self.con.execute("ROLLBACK").fetchall()
            raise
        finally:
            self.con.unregister("segwise_new_assignments")

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
