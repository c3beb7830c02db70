"""Execution engines: where transaction tables live and feature queries run.

DuckDB (embedded, in-process) is the default. Feature definitions are Ibis
expressions over *unbound* tables (a name and a schema); the engine compiles them
to its SQL dialect with `ibis.to_sql` and runs the SQL on its own connection. Ibis
is used as a portable query compiler only, so the same definitions compile for
another engine (Spark) without going through any one backend's connection code.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import weakref
from typing import Any, Protocol, runtime_checkable

import duckdb
import ibis
import pandas as pd
import pyarrow as pa

__all__ = ["DuckDBEngine", "Engine", "ENGINES", "get_engine", "quote_identifier", "value_kind"]

#: Engines `get_engine` knows by name.
ENGINES = ("duckdb", "spark")

log = logging.getLogger(__name__)

_counter = itertools.count()


def quote_identifier(name: str) -> str:
    """Quote a SQL identifier for DuckDB (the only place identifiers are quoted)."""
    return '"' + name.replace('"', '""') + '"'


def value_kind(duckdb_type: str) -> str:
    """Map a DuckDB type name to the coarse kind used by role detection."""
    t = duckdb_type.upper()
    if t.startswith(("TIMESTAMP", "DATETIME")):
        return "timestamp"
    if t == "DATE":
        return "date"
    if t in ("BOOLEAN", "BOOL"):
        return "boolean"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
             "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"):
        return "integer"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t.startswith(("VARCHAR", "STRING", "TEXT")):
        return "string"
    return "other"


@runtime_checkable
class Engine(Protocol):
    """What loading and feature building need from an engine (DuckDB and Spark satisfy it).

    Tables are referred to by name; `table` gives an unbound Ibis table that
    `fetch_df` / `materialize` compile to the engine's SQL dialect (``dialect``).
    SQL given as text must be valid in that dialect; identifiers go through `quote`.
    """

    name: str
    dialect: str

    def quote(self, name: str) -> str: ...

    def unique_name(self, prefix: str) -> str: ...

    def execute(self, query: str, params: list[Any] | None = None) -> list[tuple]: ...

    def fetch_df(self, query: str | ibis.Table, params: list[Any] | None = None) -> pd.DataFrame: ...

    def fetch_arrow(self, query: str | ibis.Table, params: list[Any] | None = None) -> pa.Table: ...

    def table(self, name: str) -> ibis.Table: ...

    def materialize(self, expr: ibis.Table | str, name: str | None = None) -> str: ...

    def columns(self, name: str) -> dict[str, str]: ...

    def drop(self, name: str) -> None: ...


class DuckDBEngine:
    """An embedded DuckDB database plus an Ibis backend on the same connection.

    Parameters
    ----------
    database : str
        ``":memory:"`` (default) or a path to a DuckDB file.
    memory_limit : str, optional
        DuckDB memory limit such as ``"2GB"``; above it DuckDB spills to disk.
    threads : int, optional
        Number of DuckDB worker threads (default: all cores).
    temp_directory : str, optional
        Where DuckDB spills; defaults to a fresh directory under the system temp dir.
    """

    name = "duckdb"
    dialect = "duckdb"

    def __init__(
        self,
        database: str = ":memory:",
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: str | None = None,
    ) -> None:
        self.database = database
        self.memory_limit = memory_limit
        self.threads = threads
        self.con = duckdb.connect(database)
        # Timestamps are naive wall-clock times throughout segwise; make any
        # TIMESTAMPTZ cast deterministic instead of depending on the host zone.
        self.execute("SET TimeZone = 'UTC'")
        # Library code never prints: DuckDB draws a progress bar on stdout for long queries.
        self.execute("SET enable_progress_bar = false")
        self._remove_temp_directory = None
        if temp_directory is None:
            temp_directory = tempfile.mkdtemp(prefix="segwise-duckdb-")
            # Our own directory: removed when the engine closes, is collected, or at exit.
            self._remove_temp_directory = weakref.finalize(self, shutil.rmtree, temp_directory, True)
        self.execute(f"SET temp_directory = '{_sql_string(temp_directory)}'")
        if memory_limit is not None:
            self.execute(f"SET memory_limit = '{_sql_string(str(memory_limit))}'")
        if threads is not None:
            self.execute(f"SET threads = {int(threads)}")

    @staticmethod
    def quote(name: str) -> str:
        """Quote an identifier for this engine's SQL."""
        return quote_identifier(name)

    def unique_name(self, prefix: str) -> str:
        """A fresh table name (engines are shared by several loads)."""
        return f"{prefix}_{os.getpid()}_{next(_counter)}"

    def execute(self, query: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL with bound parameters and return all rows (fully fetched)."""
        return self.con.execute(query, params or []).fetchall()

    def fetch_df(self, query: str | ibis.Table, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL text or an Ibis expression and return pandas."""
        return self.con.sql(self._sql(query), params=params).df()

    def fetch_arrow(self, query: str | ibis.Table, params: list[Any] | None = None) -> pa.Table:
        """Run SQL text or an Ibis expression and return Arrow."""
        return self.con.sql(self._sql(query), params=params).to_arrow_table()

    @staticmethod
    def _sql(query: str | ibis.Table) -> str:
        return query if isinstance(query, str) else ibis.to_sql(query, dialect="duckdb")

    def table(self, name: str) -> ibis.Table:
        """An unbound Ibis table with the name and schema of a table or view of this engine."""
        schema = {column: _ibis_type(sql_type) for column, sql_type in self.columns(name).items()}
        return ibis.table(schema, name=name)

    def materialize(self, expr: ibis.Table | str, name: str | None = None) -> str:
        """Store an Ibis expression (or SQL text) as a table; return its name."""
        name = name or self.unique_name("segwise_t")
        self.execute(f"CREATE OR REPLACE TABLE {quote_identifier(name)} AS {self._sql(expr)}")
        return name

    def register(self, name: str, data: Any) -> None:
        """Expose a pandas / polars / Arrow object as a view."""
        self.con.register(name, data)

    def columns(self, name: str) -> dict[str, str]:
        """Column name to DuckDB type name of a table or view, in order."""
        rows = self.execute(f"DESCRIBE {quote_identifier(name)}")
        return {row[0]: row[1] for row in rows}

    def drop(self, name: str) -> None:
        """Drop a table made by `materialize` (no error when it is gone)."""
        self.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    def close(self) -> None:
        """Close the connection (and remove the spill directory the engine created)."""
        self.con.close()
        if self._remove_temp_directory is not None:
            self._remove_temp_directory()


_IBIS_TYPES = {
    "VARCHAR": "string", "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp", "DATE": "date", "DOUBLE": "float64", "FLOAT": "float32", "REAL": "float32",
    "BOOLEAN": "boolean", "BIGINT": "int64", "INTEGER": "int32", "SMALLINT": "int16", "TINYINT": "int8",
    "UBIGINT": "uint64", "UINTEGER": "uint32", "HUGEINT": "decimal(38, 0)",
}


def _ibis_type(sql_type: str) -> str:
    base = sql_type.upper()
    if base in _IBIS_TYPES:
        return _IBIS_TYPES[base]
    if base.startswith("DECIMAL"):
        return base.lower()
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


def _sql_string(value: str) -> str:
    return value.replace("'", "''")


def get_engine(engine: Engine | str | None = None, **options: Any) -> Engine:
    """Return an engine object for ``engine``.

    Parameters
    ----------
    engine : Engine, "duckdb", "spark", a SparkSession or None
        None and ``"duckdb"`` make a new embedded DuckDB engine; ``"spark"`` a
        `segwise.spark.SparkEngine` (``options``: ``master``, ``conf``, ``session``);
        a SparkSession is wrapped in a SparkEngine; an engine object is returned as is.
    """
    if engine is None or engine == "duckdb":
        return DuckDBEngine(**options)
    if isinstance(engine, Engine) and not isinstance(engine, str):
        return engine
    if engine == "spark" or type(engine).__name__ == "SparkSession":
        from segwise.spark import SparkEngine

        if engine == "spark":
            return SparkEngine(**options)
        return SparkEngine(session=engine, **options)
    from segwise.errors import InputError

    raise InputError(f"unknown engine {engine!r}; available: {', '.join(map(repr, ENGINES))}")
