"""The run store: a DuckDB file (``segwise.duckdb``) with every run and its assignments.

Tables:

- ``runs``: one row per run (``run_id``, ``created_at``, ``source``, ``as_of``,
  ``method``, ``n_segments``, ``n_customers``, ``model_sha256``, ``run_json``);
- ``assignments``: ``run_id``, ``customer_id``, ``segment_id``, ``segment_name``,
  ``confidence``;
- ``experiments``: one row per A/B split (``name``, ``created_at``, ``run_id``,
  ``segments``, ``treatment_share``, ``seed``, ``n_customers``, ``n_treatment``);
- ``experiment_assignments``: ``experiment``, ``customer_id``, ``segment_id``, ``arm``.

A run is appended in one transaction: either all of it is there or none. DuckDB lets
one process write a file at a time; a second writer gets a clear "store is locked"
error instead of waiting or corrupting it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

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
    def _transaction(self, view: str, rows: pd.DataFrame) -> Iterator[None]:
        """One transaction with ``rows`` visible as ``view``: committed whole or rolled back."""
        self.con.register(view, pa.Table.from_pandas(rows, preserve_index=False))
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
