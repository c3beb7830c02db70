"""Reading raw inputs into Spark and parsing their values with Spark SQL.

The counterpart of `segwise.readers` for the Spark engine: the same function names,
used by the one set of cleaning rules in `segwise.data`. Formats are detected as on
DuckDB; the date format is detected by `segwise.readers.timestamp_sql` itself, run
on a sample of the column (the first 20,000 values), then checked on every value
with Spark. Rows of a distributed read have no stable line numbers, so messages
quote offending values rather than numbering their rows.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.errors import AnalysisException

from segwise import readers
from segwise.engine import DuckDBEngine
from segwise.errors import InputError
from segwise.readers import ROW_COL, ParsedColumn, RawInput, _offending, flag_sql, number_sql

__all__ = [
    "SparkRawInput", "read_raw", "timestamp_sql", "number_sql", "id_sql", "flag_sql", "text_sql", "full_match",
    "starts_with_c", "line_hash", "invalid_number", "NULL_TEXT", "spark_datetime_pattern",
]

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


# --------------------------------------------------------------------------- reading


def read_raw(engine, source: Any, *, table: str | None = None, delimiter: str | None = None,
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
    elif readers._is_frame(source):
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
        is_parquet = local_path.is_dir() or suffix in readers._PARQUET_SUFFIXES or readers._has_parquet_magic(local_path)
        if local_path.is_file() and (suffix in readers._DUCKDB_SUFFIXES or readers._has_duckdb_magic(local_path)):
            raise InputError(
                f"{label}: DuckDB files are read by the duckdb engine; on Spark, export the table to "
                "Parquet or register it as a Spark table"
            )
    else:
        is_parquet = suffix in readers._PARQUET_SUFFIXES or suffix == ""
    if is_parquet:
        try:
            frame = engine.spark.read.parquet(path)
        except AnalysisException as exc:
            raise InputError(f"{label}: not a readable Parquet file or directory ({readers._first_line(exc)})") from None
        if column_names:
            if len(column_names) != len(frame.columns):
                raise InputError(
                    f"{label}: {len(column_names)} column names given but the file has "
                    f"{len(frame.columns)} columns ({', '.join(frame.columns)})"
                )
            frame = frame.toDF(*column_names)
        return frame, label, False
    return _read_csv(engine, path, label, delimiter, header, column_names, encoding), label, True


def _read_csv(engine, path: str, label: str, delimiter, header, column_names, encoding) -> DataFrame:
    """A delimited text file, all columns as text; delimiter and header sniffed by DuckDB on its head."""
    spark_encoding = {"auto": "UTF-8", "utf-8": "UTF-8", "utf8": "UTF-8"}.get(encoding, "ISO-8859-1")
    head = [row.value for row in engine.spark.read.text(path).limit(_HEAD_LINES).collect()]
    if not any(line.strip() for line in head):
        raise InputError(f"{label}: the file holds no data (only blank lines)")
    if delimiter in ("whitespace", "space", " ") or (delimiter is None and readers._looks_whitespace_separated(head)):
        raise InputError(
            f"{label}: whitespace-separated text is read by the duckdb engine only; on Spark, convert it "
            "to CSV or Parquet"
        )
    sep = readers._unescape_delimiter(delimiter) if delimiter is not None else None
    if sep is None or header is None:
        with tempfile.TemporaryDirectory(prefix="segwise-sniff-") as tmp:
            sample = Path(tmp) / "head.csv"
            sample.write_text("\n".join(head) + "\n", encoding="utf-8")
            duck = DuckDBEngine()
            try:
                if sep is None:
                    sep = readers._detected_delimiter(duck, sample, "utf-8") or ","
                if header is None:
                    detected = readers._sniff_header(duck, sample, "utf-8")
                    header = True if detected is None else detected
            finally:
                duck.close()
    reader = engine.spark.read.option("mode", "PERMISSIVE").option("encoding", spark_encoding)
    frame = reader.csv(path, sep=sep, header=bool(header), inferSchema=False)
    if column_names:
        if len(column_names) != len(frame.columns):
            raise InputError(
                f"{label}: {len(column_names)} column names given but the file has "
                f"{len(frame.columns)} columns ({', '.join(frame.columns)})"
            )
        frame = frame.toDF(*column_names)
    else:
        frame = frame.toDF(*[c.replace("\ufeff", "").strip() for c in frame.columns])
    if len(frame.columns) == 1:
        only = frame.columns[0]
        for candidate in (";", ",", "\t", "|"):
            if candidate in only:
                shown = "\\t" if candidate == "\t" else candidate
                raise InputError(
                    f"{label}: only one column was found ({only!r}): the delimiter is probably "
                    f"{shown!r}, not {delimiter or 'the one detected'!r}. Pass --delimiter '{shown}' "
                    f"(Python: delimiter='{shown}')."
                )
    return frame


# --------------------------------------------------------------------------- SQL pieces of cleaning

#: A NULL text value.
NULL_TEXT = "CAST(NULL AS STRING)"


def full_match(text: str, pattern: str) -> str:
    """SQL: ``text`` matches the regular expression ``pattern`` entirely."""
    return f"({text} RLIKE '^{pattern}$')"


def starts_with_c(order: str) -> str:
    """SQL: the order id starts with C or c (an invoice-prefix cancellation)."""
    return f"coalesce(startswith(upper({order}), 'C'), false)"


def line_hash(quoted_columns: list[str]) -> str:
    """SQL: a hash of the whole source line, for finding double exports."""
    return f"xxhash64({', '.join(quoted_columns)})"


def invalid_number(column: str) -> str:
    """SQL: the number is missing, NaN or infinite."""
    return f"{column} IS NULL OR isnan({column}) OR abs({column}) = double('Infinity')"


def text_sql(column: str) -> str:
    """SQL for a trimmed text column with empty strings as NULL."""
    return f"NULLIF(trim(CAST({_q(column)} AS STRING)), '')"


def id_sql(raw: RawInput, column: str) -> str:
    """SQL turning an id column into trimmed text; ``12345.0`` becomes ``12345`` (as on DuckDB)."""
    col = _q(column)
    if raw.kinds[column] == "float":
        return (
            f"CASE WHEN {col} = floor({col}) AND abs({col}) < 1e18 "
            f"THEN CAST(CAST({col} AS BIGINT) AS STRING) ELSE CAST({col} AS STRING) END"
        )
    if raw.kinds[column] == "integer":
        return f"CAST({col} AS STRING)"
    text = text_sql(column)
    return f"CASE WHEN contains({text}, '.') THEN regexp_replace({text}, '^(-?[0-9]+)[.]0+$', '$1') ELSE {text} END"


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


def timestamp_sql(engine, raw: RawInput, column: str, date_format: str | None = None) -> ParsedColumn:
    """SQL turning ``column`` into a TIMESTAMP_NTZ, detecting the format as DuckDB does.

    Detection (`segwise.readers.timestamp_sql`) runs on the first 20,000 values;
    the format found is then checked on every value here.
    """
    kind = raw.kinds[column]
    col = _q(column)
    if kind in ("timestamp", "date"):
        return ParsedColumn(f"CAST({col} AS TIMESTAMP_NTZ)", f"native {kind}")
    sample = engine.fetch_arrow(
        f"SELECT {col} FROM {_q(raw.name)} WHERE {col} IS NOT NULL LIMIT {_SAMPLE}"
    )
    if sample.num_rows == 0:
        raise InputError(f"{raw.label}: column {column!r} is empty: it holds no dates")
    import pyarrow as pa

    sample = sample.append_column(ROW_COL, pa.array(range(1, sample.num_rows + 1), pa.int64()))
    duck = DuckDBEngine()
    try:
        name = duck.unique_name("segwise_sample")
        duck.register(name, sample)
        local = RawInput(name, raw.label, duck.columns(name), "sample row")
        detected = readers.timestamp_sql(duck, local, column, date_format)
    finally:
        duck.close()
    text = text_sql(column)
    if detected.how == "unix seconds":
        return ParsedColumn(f"CAST(timestamp_seconds(CAST({col} AS DOUBLE)) AS TIMESTAMP_NTZ)", detected.how)
    if detected.how == "unix milliseconds":
        return ParsedColumn(f"CAST(timestamp_millis(CAST({col} AS BIGINT)) AS TIMESTAMP_NTZ)", detected.how)
    if detected.how == readers._ISO:
        parsed = f"try_cast({text} AS TIMESTAMP_NTZ)"
    else:
        pattern = spark_datetime_pattern(_format_of(detected.how))
        parsed = f"CAST(try_to_timestamp({text}, '{pattern}') AS TIMESTAMP_NTZ)"
    bad = f"{text} IS NOT NULL AND {parsed} IS NULL"
    n_values, n_bad = engine.execute(
        f"SELECT count({text}), count(*) FILTER (WHERE {bad}) FROM {_q(raw.name)}"
    )[0]
    if n_bad:
        rows, values = _offending(engine, raw, bad, column)
        raise InputError(
            f"{raw.label}: column {column!r}: {n_bad} of {n_values} values could not be read as "
            f"dates in the format {detected.how} ({raw.rows_phrase(rows)}: "
            f"{', '.join(map(repr, values))}). Fix those rows, or pass the format with "
            "--date-format (Python: date_format=)."
        )
    return ParsedColumn(parsed, detected.how)
