"""`SparkEngine`: a SparkSession behind the same interface as `segwise.engine.DuckDBEngine`.

Feature definitions are Ibis expressions over unbound tables; here they are
compiled to Spark SQL with Ibis's PySpark compiler and run by ``spark.sql``, as
the DuckDB engine compiles them to DuckDB SQL. Ibis's PySpark *backend* (its
connection code) is not used. Intermediate tables are temporary views over
persisted DataFrames (memory, spilling to disk), dropped when no longer needed.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any, Mapping

import ibis
import pandas as pd
import pyarrow as pa

from segwise.engine import _ibis_type
from segwise.errors import InputError
from segwise.spark import require_pyspark

require_pyspark()

from ibis.backends.sql.compilers.pyspark import PySparkCompiler  # noqa: E402
from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

__all__ = ["SparkEngine", "spark_sql", "DEFAULT_CONF"]

_counter = itertools.count()

#: Settings segwise gives a session it creates (``conf`` overrides them). Timestamps
#: are wall-clock times throughout segwise, so the session time zone is UTC, as in
#: the DuckDB engine; the console progress bar would interleave with the CLI's output.
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


class _SegwiseSparkCompiler(PySparkCompiler):
    """Ibis's PySpark compiler with one portable fix.

    ``epoch_seconds`` compiles to ``unix_timestamp`` in Spark, which drops the
    fraction of a second that DuckDB's ``epoch`` keeps; inter-purchase gaps (journey
    family) would then differ for sub-second timestamps. Microseconds divided by
    10^6 keep the fraction, so both engines give the same gaps.
    """

    def visit_ExtractEpochSeconds(self, op, *, arg):
        return self.f.unix_micros(self.cast(arg, op.arg.dtype)) / 1_000_000.0


_COMPILER: _SegwiseSparkCompiler | None = None


def spark_sql(expr: ibis.Table) -> str:
    """Spark SQL for an Ibis expression over unbound tables."""
    global _COMPILER
    if _COMPILER is None:
        # The compiler reads ibis.options.pyspark, which only the backend registers.
        from ibis.backends.pyspark import Backend

        if ibis.options.get("pyspark") is None:
            Backend.register_options()
        _COMPILER = _SegwiseSparkCompiler()
    return _COMPILER.to_sqlglot(expr.unbind()).sql(dialect=_COMPILER.dialect)


_SQL_TYPES = {
    T.StringType: "VARCHAR", T.TimestampType: "TIMESTAMP", T.TimestampNTZType: "TIMESTAMP", T.DateType: "DATE",
    T.DoubleType: "DOUBLE", T.FloatType: "FLOAT", T.LongType: "BIGINT", T.IntegerType: "INTEGER",
    T.ShortType: "SMALLINT", T.ByteType: "TINYINT", T.BooleanType: "BOOLEAN",
}


def type_name(data_type: T.DataType) -> str:
    """The DuckDB-style type name of a Spark type (the vocabulary of `segwise.engine.value_kind`)."""
    for cls, name in _SQL_TYPES.items():
        if isinstance(data_type, cls):
            return name
    if isinstance(data_type, T.DecimalType):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    if isinstance(data_type, T.CharType | T.VarcharType):
        return "VARCHAR"
    return data_type.simpleString().upper()


class SparkEngine:
    """A SparkSession as a segwise engine.

    Parameters
    ----------
    session : SparkSession, optional
        An existing session (e.g. on Databricks or in a notebook). Its time zone is
        set to UTC, which segwise's point-in-time features assume.
    master : str, optional
        Where a new session runs: ``"local[2]"``, ``"spark://host:7077"``, ``"yarn"``...
        Default: the active session, else ``"local[*]"``.
    conf : mapping, optional
        Spark settings for a new session (``{"spark.executor.memory": "8g"}``).
    app_name : str
        Application name of a new session.
    """

    name = "spark"
    dialect = "pyspark"

    def __init__(self, session: SparkSession | None = None, *, master: str | None = None,
                 conf: Mapping[str, str] | None = None, app_name: str = "segwise") -> None:
        self.master = master
        self.conf = dict(conf or {})
        self._owns_session = False
        if session is None:
            session = SparkSession.getActiveSession() if master is None and not self.conf else None
        if session is None:
            builder = SparkSession.builder.appName(app_name).master(master or "local[*]")
            settings = dict(DEFAULT_CONF)
            if (master or "local").startswith("local"):
                # 200 shuffle partitions (Spark's default) is sized for clusters; on one
                # machine a few per core avoid thousands of tiny tasks.
                settings["spark.sql.shuffle.partitions"] = str(4 * (os.cpu_count() or 2))
                # Python workers (used by RDD k-means) run this interpreter, with segwise's packages.
                settings["spark.pyspark.python"] = sys.executable
            settings.update(self.conf)
            for key, value in settings.items():
                builder = builder.config(key, str(value))
            session = builder.getOrCreate()
            self._owns_session = True
        session.conf.set("spark.sql.session.timeZone", "UTC")
        # Date patterns are parsed by the Java 8 time API only (no fallback to the
        # pre-3.0 parser, which would raise instead of returning NULL on mismatch).
        session.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        self.spark = session
        self._persisted: dict[str, DataFrame] = {}

    # ------------------------------------------------------------------ names and SQL

    @staticmethod
    def quote(name: str) -> str:
        """Quote an identifier for Spark SQL."""
        return "`" + name.replace("`", "``") + "`"

    def unique_name(self, prefix: str) -> str:
        """A fresh view name."""
        return f"{prefix}_{os.getpid()}_{next(_counter)}"

    @staticmethod
    def _sql(query: str | ibis.Table) -> str:
        return query if isinstance(query, str) else spark_sql(query)

    def sql(self, query: str | ibis.Table, params: list[Any] | None = None) -> DataFrame:
        """A Spark DataFrame for SQL text (``?`` parameters) or an Ibis expression."""
        return self.spark.sql(self._sql(query), args=list(params) if params else None)

    def execute(self, query: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL with bound parameters and return all rows as tuples."""
        return [tuple(row) for row in self.sql(query, params).collect()]

    def fetch_arrow(self, query: str | ibis.Table, params: list[Any] | None = None) -> pa.Table:
        """Run SQL text or an Ibis expression and return Arrow."""
        return self.sql(query, params).toArrow()

    def fetch_df(self, query: str | ibis.Table, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL text or an Ibis expression and return pandas (through Arrow)."""
        return self.fetch_arrow(query, params).to_pandas()

    # ------------------------------------------------------------------ tables

    def table(self, name: str) -> ibis.Table:
        """An unbound Ibis table with the name and schema of a view of this session."""
        schema = {column: _ibis_type(sql_type) for column, sql_type in self.columns(name).items()}
        return ibis.table(schema, name=name)

    def columns(self, name: str) -> dict[str, str]:
        """Column name to DuckDB-style type name, in order."""
        return {f.name: type_name(f.dataType) for f in self.spark.table(self.quote(name)).schema.fields}

    def dataframe(self, name: str) -> DataFrame:
        """The DataFrame of a view."""
        return self.spark.table(self.quote(name))

    def materialize(self, expr: ibis.Table | str | DataFrame, name: str | None = None) -> str:
        """Persist an Ibis expression, SQL text or DataFrame as a temporary view; return its name.

        The data is persisted (memory, then disk) so that the several queries that
        read an intermediate table compute it once.
        """
        name = name or self.unique_name("segwise_t")
        frame = expr if isinstance(expr, DataFrame) else self.sql(expr)
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self.drop(name)
        frame.createOrReplaceTempView(name)
        self._persisted[name] = frame
        return name

    def register(self, name: str, data: Any) -> None:
        """Expose a Spark, pandas, polars or Arrow frame as a temporary view."""
        self.to_spark(data).createOrReplaceTempView(name)

    def to_spark(self, data: Any) -> DataFrame:
        """A Spark DataFrame from a Spark, pandas, polars or Arrow frame."""
        if isinstance(data, DataFrame):
            return data
        module = type(data).__module__
        if module.startswith("pandas"):
            data = pa.Table.from_pandas(data, preserve_index=False)
        elif module.startswith("polars"):
            data = data.to_arrow()
        if not isinstance(data, pa.Table):
            raise InputError(
                f"cannot read a {type(data).__name__} on the Spark engine: pass a path, a Spark "
                "table name (table=), a Spark DataFrame, a pandas or polars DataFrame or a pyarrow Table"
            )
        return self.spark.createDataFrame(data)

    def to_local(self, source: Any) -> Any:
        """``source`` readable by the DuckDB engine: a Spark DataFrame becomes Arrow."""
        return source.toArrow() if isinstance(source, DataFrame) else source

    def drop(self, name: str) -> None:
        """Drop a view made by `materialize` and release its persisted data."""
        frame = self._persisted.pop(name, None)
        if frame is not None:
            frame.unpersist()
        self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        """Release persisted data; stop the session if this engine started it."""
        for name in list(self._persisted):
            self.drop(name)
        if self._owns_session:
            self.spark.stop()
