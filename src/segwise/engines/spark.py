"""The Spark engine: a SparkSession behind the engine protocol, and its Spark SQL dialect.

Feature definitions are Ibis expressions over unbound tables; here they are
compiled to Spark SQL with Ibis's PySpark compiler and run by ``spark.sql``, as
the DuckDB engine compiles them to DuckDB SQL. Ibis's PySpark *backend* (its
connection code) is not used. Intermediate tables are temporary views over
persisted DataFrames (memory, spilling to disk), dropped when no longer needed.

`SparkCleaning` (``engine.cleaning``) reads raw inputs into Spark and types their
values with Spark SQL, by the same rules as on DuckDB (`segwise.data`). Formats are
detected as on DuckDB: the CSV head and a sample of a date column (the first
20,000 values) are given to a DuckDB engine found by name; the date format found is
then checked on every value with Spark. Rows of a distributed read have no stable
line numbers, so messages quote offending values rather than numbering their rows.

PySpark is the optional ``spark`` extra (``pip install 'segwise[spark]'``); this
module is imported only when a Spark engine is made (`segwise.engines.get_engine`).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sys
import uuid
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import ibis
import pandas as pd
import pyarrow as pa

from segwise.engines import files
from segwise.engines.base import get_engine, ibis_type
from segwise.engines.dialect import ISO_8601, ROW_COL, CleaningDialect, ParsedColumn, RawInput
from segwise.errors import InputError

__all__ = ["SparkEngine", "SparkCleaning", "spark_sql", "DEFAULT_CONF", "require_pyspark", "spark_datetime_pattern"]


def require_pyspark() -> Any:
    """Import pyspark, or say which extra to install."""
    try:
        import pyspark
    except ImportError:
        raise ImportError(
            "the Spark engine needs PySpark: pip install 'segwise[spark]' (and Java 17 or later)"
        ) from None
    return pyspark


require_pyspark()

from ibis.backends.sql.compilers.pyspark import PySparkCompiler  # noqa: E402
from pyspark import StorageLevel  # noqa: E402
from pyspark.errors import AnalysisException  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

_counter = itertools.count()
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
    """The DuckDB-style type name of a Spark type (the vocabulary of `segwise.engines.base.value_kind`)."""
    for cls, name in _SQL_TYPES.items():
        if isinstance(data_type, cls):
            return name
    if isinstance(data_type, T.DecimalType):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    if isinstance(data_type, T.CharType | T.VarcharType):
        return "VARCHAR"
    return data_type.simpleString().upper()


class SparkEngine:
    """A SparkSession as an engine of segwise.

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
            # getOrCreate hands back a session that is already running (another engine's):
            # that one is not this engine's to stop.
            already_running = SparkSession.getActiveSession()
            session = builder.getOrCreate()
            self._owns_session = already_running is None
        session.conf.set("spark.sql.session.timeZone", "UTC")
        # Date patterns are parsed by the Java 8 time API only (no fallback to the
        # pre-3.0 parser, which would raise instead of returning NULL on mismatch).
        session.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        self.spark = session
        self._persisted: dict[str, DataFrame] = {}

    # ------------------------------------------------------------------ names and SQL

    @property
    def cleaning(self) -> "SparkCleaning":
        """How this engine reads raw inputs and types their values (Spark SQL)."""
        return SparkCleaning(self)

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
        schema = {column: ibis_type(sql_type) for column, sql_type in self.columns(name).items()}
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

    # ------------------------------------------------------------------ fitting and outputs

    def customer_statistics(self, frame: pd.DataFrame) -> Any:
        """The customers of ``frame`` on Spark, asked for statistics instead of rows
        (`segwise.engines.spark_stats.SparkCustomers`): preparation, clustering (MLlib)
        and profile aggregates run here."""
        from segwise.engines.spark_stats import SparkCustomers

        return SparkCustomers(self, frame)

    def write_assignments(self, assignments: pd.DataFrame, out_dir: str | os.PathLike) -> str:
        """Write assignments as Parquet partitioned by ``segment_id`` to ``out_dir/assignments_by_segment``
        (the layout Spark jobs read in parallel); returns where.

        A local directory is written beside its final name and renamed into place (the
        previous one is replaced only once the new one is complete); on other URIs
        Spark's output committer makes the write all-or-nothing (``_SUCCESS``).
        """
        uri = str(out_dir).rstrip("/") + "/assignments_by_segment"
        frame = self.to_spark(assignments)
        if "://" in uri and not uri.startswith("file://"):
            frame.write.mode("overwrite").partitionBy("segment_id").parquet(uri)
            return uri
        target = Path(uri[len("file://"):] if uri.startswith("file://") else uri).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        frame.write.partitionBy("segment_id").parquet(str(staging))
        previous = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
        if target.exists():
            os.replace(target, previous)
        os.replace(staging, target)
        shutil.rmtree(previous, ignore_errors=True)
        return str(target)

    def close(self) -> None:
        """Release persisted data; stop the session if this engine started it."""
        for name in list(self._persisted):
            self.drop(name)
        if self._owns_session:
            self.spark.stop()


# --------------------------------------------------------------------------- reading

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SAMPLE = 20_000
_HEAD_LINES = 1_000


@dataclass
class SparkRawInput(RawInput):
    """A raw input on Spark: offending rows are shown by value, not by number."""

    def rows_phrase(self, rows: list[int]) -> str:
        return "for example"


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _read_raw(engine, source: Any, *, table: str | None = None, delimiter: str | None = None,
             header: bool | None = None, column_names: list[str] | None = None, encoding: str = "auto",
             what: str = "transaction log") -> SparkRawInput:
    """Load ``source`` into the Spark session as a view of raw rows.

    ``source`` is a Spark DataFrame, a pandas / polars / Arrow frame, a Parquet or
    CSV path (local, or any Hadoop-compatible URI such as ``hdfs://`` or ``s3a://``),
    or None with ``table`` naming a table of the Spark catalog.
    """
    persist = False
    if source is None and table is not None:
        try:
            frame = engine.spark.table(table)
        except AnalysisException:
            raise InputError(
                f"no table {table!r} in the Spark catalog; tables are: "
                f"{', '.join(sorted(t.name for t in engine.spark.catalog.listTables())) or 'none'}"
            ) from None
        label = f"Spark table {table}"
    elif isinstance(source, DataFrame):
        frame, label = source, "Spark DataFrame"
    elif isinstance(source, (str, os.PathLike)):
        frame, label, persist = _read_path(engine, str(source), delimiter, header, column_names, encoding, what)
    elif files.is_frame(source):
        frame, label = engine.to_spark(source), f"{type(source).__module__.split('.')[0]} DataFrame"
    else:
        raise InputError(
            f"cannot read a {type(source).__name__} as a {what} on the Spark engine: pass a path, a Spark "
            "DataFrame, a pandas or polars DataFrame, a pyarrow Table, or table='NAME' for a Spark table"
        )
    if column_names and not isinstance(source, (str, os.PathLike)):
        if len(column_names) != len(frame.columns):
            raise InputError(
                f"{label}: {len(column_names)} column names given but it has {len(frame.columns)} columns "
                f"({', '.join(frame.columns)})"
            )
        frame = frame.toDF(*column_names)
    frame = frame.withColumn(ROW_COL, F.monotonically_increasing_id())
    name = engine.unique_name("segwise_raw")
    if persist:
        # Text is parsed once and kept (memory, then disk): cleaning reads it several times.
        engine.materialize(frame, name)
    else:
        frame.createOrReplaceTempView(name)
    if not engine.execute(f"SELECT 1 FROM {_q(name)} LIMIT 1"):
        raise InputError(f"{label}: the {what} has no rows")
    return SparkRawInput(name, label, engine.columns(name), "row")


def _read_path(engine, path: str, delimiter, header, column_names, encoding, what) -> tuple[DataFrame, str, bool]:
    label = path
    local = not _URI.match(path) or path.startswith("file://")
    suffix = Path(path).suffix.lower()
    if local:
        local_path = Path(path[len("file://"):] if path.startswith("file://") else path)
        if not local_path.exists():
            raise InputError(f"{label}: no such file or directory")
        if local_path.is_file() and local_path.stat().st_size == 0:
            raise InputError(f"{label}: the file is empty (0 bytes); export the {what} again")
        is_parquet = local_path.is_dir() or suffix in files.PARQUET_SUFFIXES or files.has_parquet_magic(local_path)
        if local_path.is_file() and (suffix in files.DUCKDB_SUFFIXES or files.has_duckdb_magic(local_path)):
            raise InputError(
                f"{label}: DuckDB files are read by the duckdb engine; on Spark, export the table to "
                "Parquet or register it as a Spark table"
            )
    else:
        is_parquet = suffix in files.PARQUET_SUFFIXES or suffix == ""
    if is_parquet:
        try:
            frame = engine.spark.read.parquet(path)
        except AnalysisException as exc:
            raise InputError(f"{label}: not a readable Parquet file or directory ({files.first_line(exc)})") from None
        if column_names:
            frame = _renamed(frame, column_names, label)
        return frame, label, False
    return _read_csv(engine, path, label, delimiter, header, column_names, encoding), label, True


def _renamed(frame: DataFrame, column_names: list[str], label: str) -> DataFrame:
    """The file's columns under the names given (as many names as columns)."""
    if len(column_names) != len(frame.columns):
        raise InputError(
            f"{label}: {len(column_names)} column names given but the file has "
            f"{len(frame.columns)} columns ({', '.join(frame.columns)})"
        )
    return frame.toDF(*column_names)


def _read_csv(engine, path: str, label: str, delimiter, header, column_names, encoding) -> DataFrame:
    """A delimited text file, all columns as text; delimiter and header sniffed by DuckDB on its head."""
    spark_encoding = {"auto": "UTF-8", "utf-8": "UTF-8", "utf8": "UTF-8"}.get(encoding, "ISO-8859-1")
    head = [row.value for row in engine.spark.read.text(path).limit(_HEAD_LINES).collect()]
    if not any(line.strip() for line in head):
        raise InputError(f"{label}: the file holds no data (only blank lines)")
    if delimiter in ("whitespace", "space", " ") or (delimiter is None and files.looks_whitespace_separated(head)):
        raise InputError(
            f"{label}: whitespace-separated text is read by the duckdb engine only; on Spark, convert it "
            "to CSV or Parquet"
        )
    sep = files.unescape_delimiter(delimiter) if delimiter is not None else None
    if sep is None or header is None:
        with tempfile.TemporaryDirectory(prefix="segwise-sniff-") as tmp:
            sample = Path(tmp) / "head.csv"
            sample.write_text("\n".join(head) + "\n", encoding="utf-8")
            # DuckDB's CSV sniffer, on a local copy of the head (the engine is found by name).
            duck = get_engine("duckdb")
            try:
                if sep is None:
                    sep = duck.cleaning.detected_delimiter(sample, "utf-8") or ","
                if header is None:
                    detected = duck.cleaning.sniff_header(sample, "utf-8")
                    header = True if detected is None else detected
            finally:
                duck.close()
    reader = engine.spark.read.option("mode", "PERMISSIVE").option("encoding", spark_encoding)
    frame = reader.csv(path, sep=sep, header=bool(header), inferSchema=False)
    if column_names:
        frame = _renamed(frame, column_names, label)
    else:
        frame = frame.toDF(*[c.replace("\ufeff", "").strip() for c in frame.columns])
    files.one_column_hint(label, list(frame.columns), delimiter)
    return frame


# --------------------------------------------------------------------------- dates

_SPARK_FIELDS = {"%Y": "yyyy", "%y": "yy", "%m": "M", "%d": "d", "%H": "H", "%M": "m", "%S": "s",
                 "%b": "MMM", "%B": "MMMM"}
_FIXED_WIDTH = {"%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss"}


def spark_datetime_pattern(fmt: str) -> str:
    """The Spark datetime pattern of a strptime format (``%d/%m/%Y`` -> ``d/M/yyyy``).

    Fields are parsed with variable width (``5/1/2024`` and ``05/01/2024`` both
    read, as with strptime), except in formats without separators (``%Y%m%d``),
    where widths are fixed.
    """
    fields = _SPARK_FIELDS if re.search(r"[^%A-Za-z]", fmt.replace("%", "")) or " " in fmt else {
        **_SPARK_FIELDS, **_FIXED_WIDTH}
    out = []
    i = 0
    while i < len(fmt):
        token = fmt[i:i + 2]
        if token in fields:
            out.append(fields[token])
            i += 2
        elif fmt[i].isalpha():
            out.append(f"'{fmt[i]}'")
            i += 1
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _format_of(how: str) -> str:
    return re.sub(r" \((day|month) first\)$", "", how)



class SparkCleaning(CleaningDialect):
    """Reading raw inputs into Spark and typing their values in Spark SQL."""

    NULL_TEXT = "CAST(NULL AS STRING)"
    STRING = "STRING"

    def read_raw(self, source: Any, **options: Any) -> SparkRawInput:
        """Load ``source`` into the Spark session as a view of raw rows.

        ``source`` is a Spark DataFrame, a pandas / polars / Arrow frame, a Parquet or
        CSV path (local, or any Hadoop-compatible URI such as ``hdfs://`` or ``s3a://``),
        or None with ``table`` naming a table of the Spark catalog.
        """
        return _read_raw(self.engine, source, **options)

    def full_match(self, text: str, pattern: str) -> str:
        return f"({text} RLIKE '^{pattern}$')"

    def starts_with_c(self, order: str) -> str:
        return f"coalesce(startswith(upper({order}), 'C'), false)"

    def line_hash(self, quoted_columns: list[str]) -> str:
        return f"xxhash64({', '.join(quoted_columns)})"

    def invalid_number(self, column: str) -> str:
        return f"{column} IS NULL OR isnan({column}) OR abs({column}) = double('Infinity')"

    def _integral_text(self, text: str) -> str:
        return f"regexp_replace({text}, '^(-?[0-9]+)[.]0+$', '$1')"

    def timestamp_sql(self, raw: RawInput, column: str, date_format: str | None = None) -> ParsedColumn:
        """SQL turning ``column`` into a TIMESTAMP_NTZ, detecting the format as DuckDB does.

        Detection (`segwise.engines.duckdb.DuckDBCleaning.timestamp_sql`) runs on the first 20,000 values;
        the format found is then checked on every value here.
        """
        engine = self.engine
        kind = raw.kinds[column]
        col = _q(column)
        if kind in ("timestamp", "date"):
            return ParsedColumn(f"CAST({col} AS TIMESTAMP_NTZ)", f"native {kind}")
        sample = engine.fetch_arrow(
            f"SELECT {col} FROM {_q(raw.name)} WHERE {col} IS NOT NULL LIMIT {_SAMPLE}"
        )
        if sample.num_rows == 0:
            raise InputError(f"{raw.label}: column {column!r} is empty: it holds no dates")

        sample = sample.append_column(ROW_COL, pa.array(range(1, sample.num_rows + 1), pa.int64()))
        # The DuckDB engine's detection, run on the sample (the engine is found by name).
        duck = get_engine("duckdb")
        try:
            name = duck.unique_name("segwise_sample")
            duck.register(name, sample)
            local = RawInput(name, raw.label, duck.columns(name), "sample row")
            detected = duck.cleaning.timestamp_sql(local, column, date_format)
        finally:
            duck.close()
        text = self.text_sql(column)
        if detected.how == "unix seconds":
            return ParsedColumn(f"CAST(timestamp_seconds(CAST({col} AS DOUBLE)) AS TIMESTAMP_NTZ)", detected.how)
        if detected.how == "unix milliseconds":
            return ParsedColumn(f"CAST(timestamp_millis(CAST({col} AS BIGINT)) AS TIMESTAMP_NTZ)", detected.how)
        if detected.how == ISO_8601:
            parsed = f"try_cast({text} AS TIMESTAMP_NTZ)"
        else:
            pattern = spark_datetime_pattern(_format_of(detected.how))
            parsed = f"CAST(try_to_timestamp({text}, '{pattern}') AS TIMESTAMP_NTZ)"
        bad = f"{text} IS NOT NULL AND {parsed} IS NULL"
        n_values, n_bad = engine.execute(
            f"SELECT count({text}), count(*) FILTER (WHERE {bad}) FROM {_q(raw.name)}"
        )[0]
        if n_bad:
            rows, values = self.offending(raw, bad, column)
            raise InputError(
                f"{raw.label}: column {column!r}: {n_bad} of {n_values} values could not be read as "
                f"dates in the format {detected.how} ({raw.rows_phrase(rows)}: "
                f"{', '.join(map(repr, values))}). Fix those rows, or pass the format with "
                "--date-format (Python: date_format=)."
            )
        return ParsedColumn(parsed, detected.how)
