"""What every engine is: the `Engine` protocol, the registry of engines by name, shared type names.

An engine holds transaction tables and runs feature queries. Feature definitions
are Ibis expressions over *unbound* tables (a name and a schema); an engine
compiles them to its SQL dialect and runs the SQL on its own connection. Ibis is a
portable query compiler only, so the same definitions run on every engine.

Engines are found by name (`get_engine`, `ENGINES`) and imported only when one is
made, so no engine imports another and DuckDB users never import PySpark.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import ibis
import pandas as pd
import pyarrow as pa

__all__ = ["Engine", "ENGINES", "engine_class", "get_engine", "ibis_type", "quote_identifier", "value_kind"]

#: Engine name to the module and class that implement it (imported on first use).
_ENGINE_CLASSES = {
    "duckdb": ("segwise.engines.duckdb", "DuckDBEngine"),
    "spark": ("segwise.engines.spark", "SparkEngine"),
    "postgres": ("segwise.engines.postgres", "PostgresEngine"),
}

#: Engines `get_engine` knows by name.
ENGINES = tuple(_ENGINE_CLASSES)


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


_IBIS_TYPES = {
    "VARCHAR": "string", "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp", "DATE": "date", "DOUBLE": "float64", "FLOAT": "float32", "REAL": "float32",
    "BOOLEAN": "boolean", "BIGINT": "int64", "INTEGER": "int32", "SMALLINT": "int16", "TINYINT": "int8",
    "UBIGINT": "uint64", "UINTEGER": "uint32", "HUGEINT": "decimal(38, 0)",
}


def ibis_type(sql_type: str) -> str:
    """The Ibis type of a DuckDB-style type name (every engine names its column types so)."""
    base = sql_type.upper()
    if base in _IBIS_TYPES:
        return _IBIS_TYPES[base]
    if base.startswith("DECIMAL"):
        return base.lower()
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


@runtime_checkable
class Engine(Protocol):
    """What loading and feature building need from an engine (DuckDB and Spark satisfy it).

    Tables are referred to by name; `table` gives an unbound Ibis table that
    `fetch_df` / `materialize` compile to the engine's SQL dialect (``dialect``).
    SQL given as text must be valid in that dialect; identifiers go through `quote`.
    ``cleaning`` reads raw inputs and writes the SQL that types and cleans their
    values (`segwise.engines.dialect.CleaningDialect`).
    """

    name: str
    dialect: str

    @property
    def cleaning(self) -> Any: ...

    def quote(self, name: str) -> str: ...

    def unique_name(self, prefix: str) -> str: ...

    def execute(self, query: str, params: list[Any] | None = None) -> list[tuple]: ...

    def fetch_df(self, query: str | ibis.Table, params: list[Any] | None = None) -> pd.DataFrame: ...

    def fetch_arrow(self, query: str | ibis.Table, params: list[Any] | None = None) -> pa.Table: ...

    def table(self, name: str) -> ibis.Table: ...

    def materialize(self, expr: ibis.Table | str, name: str | None = None) -> str: ...

    def columns(self, name: str) -> dict[str, str]: ...

    def drop(self, name: str) -> None: ...


def engine_class(name: str) -> type:
    """The class of the engine called ``name`` (its module is imported now)."""
    if name not in _ENGINE_CLASSES:
        from segwise.errors import InputError

        raise InputError(f"unknown engine {name!r}; available: {', '.join(map(repr, ENGINES))}")
    module, cls = _ENGINE_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def get_engine(engine: Engine | str | None = None, **options: Any) -> Engine:
    """Return an engine object for ``engine``.

    Parameters
    ----------
    engine : Engine, "duckdb", "spark", a SparkSession or None
        None and ``"duckdb"`` make a new embedded DuckDB engine; ``"spark"`` a
        `segwise.engines.spark.SparkEngine` (``options``: ``master``, ``conf``,
        ``session``); a SparkSession is wrapped in a SparkEngine; an engine object
        is returned as is.
    """
    if engine is None or engine == "duckdb":
        return engine_class("duckdb")(**options)
    if isinstance(engine, Engine) and not isinstance(engine, str):
        return engine
    if engine in ("spark", "postgres"):  # postgres: options url=, statement_timeout=, ...
        return engine_class(engine)(**options)
    if type(engine).__name__ == "SparkSession":
        return engine_class("spark")(session=engine, **options)
    from segwise.errors import InputError

    raise InputError(f"unknown engine {engine!r}; available: {', '.join(map(repr, ENGINES))}")
