"""Reading raw inputs into the engine and parsing their values.

`read_raw` turns any supported source (CSV or whitespace-separated text, Parquet,
a DuckDB table, a pandas / polars / Arrow frame) into a relation of the engine plus
a description used in messages. The parse helpers turn a column into typed SQL
(timestamps, numbers, ids, flags), detecting formats from the values and raising an
`InputError` that names the source, column, offending rows and the fix.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from segwise.engine import DuckDBEngine, quote_identifier as q, value_kind
from segwise.errors import DataWarning, InputError

__all__ = ["RawInput", "read_raw", "timestamp_sql", "number_sql", "id_sql", "flag_sql", "text_sql", "check_values"]

log = logging.getLogger(__name__)

ROW_COL = "__segwise_row"

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
_SNIFF_BYTES = 64 * 1024


@dataclass
class RawInput:
    """A source loaded into the engine, before any typing or cleaning.

    ``row_kind`` says how ``__segwise_row`` numbers rows in messages: ``"line"`` for
    text files (1-based line in the file), ``"row"`` for everything else (1-based).
    """

    name: str
    label: str
    columns: dict[str, str]
    row_kind: str = "row"
    notes: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    #: Number of the last row when the file does not end with a line break (it may be cut off).
    unterminated_row: int | None = None

    @property
    def kinds(self) -> dict[str, str]:
        """Column name to coarse value kind, without the internal row column."""
        return {c: value_kind(t) for c, t in self.columns.items() if c != ROW_COL}

    def rows_phrase(self, rows: list[int]) -> str:
        """'lines 4, 9, 12' or 'rows 4, 9, 12'."""
        word = self.row_kind + ("s" if len(rows) != 1 else "")
        return f"{word} {', '.join(str(int(r)) for r in rows)}"

    def cut_off_hint(self, rows: list[int]) -> str:
        """A sentence when the last row is among ``rows`` and the file lacks a final line break."""
        if self.unterminated_row is None or self.unterminated_row not in rows:
            return ""
        return (f" {self.row_kind.capitalize()} {self.unterminated_row} is the last one and the file does not "
                "end with a line break: the file was probably cut off (truncated); export it again.")


def read_raw(
    engine: DuckDBEngine,
    source: Any,
    *,
    table: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    column_names: list[str] | None = None,
    encoding: str = "auto",
    what: str = "transaction log",
) -> RawInput:
    """Load ``source`` into ``engine`` as raw (untyped for text) rows.

    Parameters
    ----------
    engine : DuckDBEngine
    source : str, Path, pandas.DataFrame, polars.DataFrame or pyarrow.Table
        A file path (CSV/TSV/text, Parquet file or directory, DuckDB file) or a frame.
    table : str, optional
        Table name inside a DuckDB file.
    delimiter : str, optional
        Field delimiter of a text file; ``"whitespace"`` for runs of spaces/tabs.
        Detected when not given.
    header : bool, optional
        Whether a text file has a header line. Detected when not given.
    column_names : list of str, optional
        Names for the columns (required in practice when there is no header).
    encoding : {"auto", "utf-8", "latin-1"}
        ``"auto"`` reads UTF-8 (with or without BOM) and falls back to Latin-1 with a
        `DataWarning` when the bytes are not UTF-8.
    what : str
        What the source is, for messages.
    """
    if _is_frame(source):
        return _read_frame(engine, source, column_names, what)
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"cannot read a {type(source).__name__} as a {what}: pass a file path, "
            "a pandas or polars DataFrame, or a pyarrow Table"
        )
    path = Path(source)
    label = str(source)
    if not path.exists():
        raise InputError(f"{label}: no such file or directory")
    if path.is_dir():
        files = sorted(path.glob("**/*.parquet")) + sorted(path.glob("**/*.pq"))
        if not files:
            raise InputError(f"{label}: the directory holds no Parquet files (*.parquet)")
        return _read_parquet(engine, [str(f) for f in files], label, column_names)
    if path.stat().st_size == 0:
        raise InputError(f"{label}: the file is empty (0 bytes); export the {what} again")
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES or _has_parquet_magic(path):
        return _read_parquet(engine, [str(path)], label, column_names)
    if suffix in _DUCKDB_SUFFIXES or _has_duckdb_magic(path):
        return _read_duckdb(engine, str(path), table, label, column_names)
    return _read_text(engine, path, label, delimiter, header, column_names, encoding, what)


# --------------------------------------------------------------------------- frames


def _is_frame(source: Any) -> bool:
    module = type(source).__module__
    return module.startswith(("pandas", "polars", "pyarrow"))


def _read_frame(engine: DuckDBEngine, frame: Any, column_names, what: str) -> RawInput:
    module = type(frame).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"cannot read a {type(frame).__name__} as a {what}; pass a DataFrame")
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
    elif module.startswith("polars"):
        arrow = frame.to_arrow()
    else:
        arrow = frame
    if column_names:
        arrow = arrow.rename_columns(list(column_names))
    arrow = arrow.append_column(ROW_COL, pa.array(range(1, arrow.num_rows + 1), pa.int64()))
    name = engine.unique_name("segwise_raw")
    engine.register(name, arrow)
    label = f"{type(frame).__module__.split('.')[0]} DataFrame"
    if arrow.num_rows == 0:
        raise InputError(f"{label}: the {what} has no rows")
    return RawInput(name, label, engine.columns(name), "row")


# --------------------------------------------------------------------------- parquet


def _has_parquet_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _has_duckdb_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return len(head) == 16 and head[8:12] == b"DUCK"


def _read_parquet(engine: DuckDBEngine, files: list[str], label: str, column_names) -> RawInput:
    name = engine.unique_name("segwise_raw")
    file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    try:
        engine.execute(
            f"CREATE VIEW {q(name)} AS SELECT * REPLACE (file_row_number + 1 AS file_row_number) "
            f"FROM read_parquet({file_list}, file_row_number = true)"
        )
        columns = engine.columns(name)
    except duckdb.Error as exc:
        raise InputError(f"{label}: not a readable Parquet file ({_first_line(exc)})") from None
    renamed = {c: c for c in columns}
    view = name
    if column_names:
        data_cols = [c for c in columns if c != "file_row_number"]
        if len(column_names) != len(data_cols):
            raise InputError(
                f"{label}: {len(column_names)} column names given but the file has "
                f"{len(data_cols)} columns ({', '.join(data_cols)})"
            )
        renamed = dict(zip(data_cols, column_names))
    view = engine.unique_name("segwise_raw")
    select = ", ".join(f"{q(c)} AS {q(renamed[c])}" for c in columns if c != "file_row_number")
    engine.execute(f"CREATE VIEW {q(view)} AS SELECT {select}, file_row_number AS {ROW_COL} FROM {q(name)}")
    n = engine.execute(f"SELECT count(*) FROM {q(view)}")[0][0]
    if n == 0:
        raise InputError(f"{label}: the Parquet file has no rows")
    return RawInput(view, label, engine.columns(view), "row")


# --------------------------------------------------------------------------- duckdb file


def _read_duckdb(engine: DuckDBEngine, path: str, table: str | None, label: str, column_names) -> RawInput:
    alias = engine.unique_name("segwise_src")
    try:
        engine.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {q(alias)} (READ_ONLY)")
    except duckdb.Error as exc:
        raise InputError(f"{label}: not a readable DuckDB database ({_first_line(exc)})") from None
    tables = [
        r[0]
        for r in engine.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
            "UNION SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal",
            [alias, alias],
        )
    ]
    if table is None:
        if len(tables) != 1:
            raise InputError(
                f"{label}: the database holds {len(tables)} tables ({', '.join(sorted(tables)) or 'none'}); "
                "name one with --table NAME (Python: table='NAME')"
            )
        table = tables[0]
    elif table not in tables:
        raise InputError(
            f"{label}: no table {table!r} in the database; tables are: {', '.join(sorted(tables)) or 'none'}"
        )
    name = engine.unique_name("segwise_raw")
    engine.execute(
        f"CREATE TEMP VIEW {q(name)} AS SELECT *, row_number() OVER () AS {ROW_COL} "
        f"FROM {q(alias)}.{q(table)}"
    )
    columns = engine.columns(name)
    if column_names:
        raise InputError(f"{label}: column names cannot be given for a DuckDB table; it has its own")
    return RawInput(name, f"{label} (table {table})", columns, "row")


# --------------------------------------------------------------------------- text


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_SNIFF_BYTES)


def _decode_head(head: bytes, encoding: str) -> str:
    return head.decode("utf-8-sig" if encoding == "utf-8" else "latin-1", errors="replace")


def _choose_encoding(path: Path, head: bytes, encoding: str, label: str) -> str:
    if b"\x00" in head:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputError(
                f"{label}: the file is UTF-16 encoded; save it as UTF-8 (or CSV UTF-8 in Excel) and try again"
            )
        raise InputError(f"{label}: the file holds NUL bytes and does not look like a text file")
    if encoding not in ("auto", "utf-8", "utf8", "latin-1", "latin1", "cp1252", "iso-8859-1"):
        raise InputError(f"unknown encoding {encoding!r}: use auto, utf-8 or latin-1")
    if encoding in ("latin1", "cp1252", "iso-8859-1"):
        return "latin-1"
    if encoding == "utf8":
        return "utf-8"
    return encoding


def _looks_whitespace_separated(lines: list[str]) -> bool:
    sample = [ln for ln in lines[:50] if ln.strip()]
    if not sample:
        return False
    if any(ch in ln for ln in sample for ch in ",;\t|"):
        return False
    return all(len(ln.split()) > 1 for ln in sample)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _read_text(engine, path: Path, label, delimiter, header, column_names, encoding, what) -> RawInput:
    head = _read_head(path)
    encoding = _choose_encoding(path, head, encoding, label)
    text_head = _decode_head(head, "utf-8" if encoding in ("auto", "utf-8") else "latin-1")
    lines = text_head.splitlines()
    if len(head) == _SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last line of the sample may be cut
    if not any(ln.strip() for ln in lines):
        raise InputError(f"{label}: the file holds no data (only blank lines)")
    if delimiter in ("whitespace", "space", " ") or (delimiter is None and _looks_whitespace_separated(lines)):
        return _read_whitespace(engine, path, label, header, column_names, encoding, lines, what)
    attempts = [encoding] if encoding != "auto" else ["utf-8", "latin-1"]
    last_error = None
    for enc in attempts:
        try:
            raw = _read_delimited(engine, path, label, delimiter, header, column_names, enc)
        except UnicodeError as exc:
            last_error = exc
            continue
        if enc == "latin-1" and encoding == "auto":
            message = f"{label}: the file is not valid UTF-8; it was read as Latin-1 (cp1252-compatible)"
            warnings.warn(message, DataWarning, stacklevel=4)
            raw.notes.append(message)
        return raw
    raise InputError(
        f"{label}: the file is not valid UTF-8 ({last_error}). If it was saved by Excel or an "
        "older system, read it with --encoding latin-1 (Python: encoding='latin-1'), or re-save it as UTF-8."
    )


def _read_delimited(engine, path: Path, label, delimiter, header, column_names, enc) -> RawInput:
    name = engine.unique_name("segwise_raw")
    options = ["all_varchar = true", f"encoding = '{enc}'", "strict_mode = false", "null_padding = true"]
    if delimiter is not None:
        options.append(f"delim = '{_sql_escape(_unescape_delimiter(delimiter))}'")
    if header is not None:
        options.append(f"header = {'true' if header else 'false'}")
    elif delimiter is None:
        detected = _sniff_header(engine, path, enc)
        if detected is not None:
            options.append(f"header = {'true' if detected else 'false'}")
    if column_names:
        options.append("names = [" + ", ".join("'" + _sql_escape(c) + "'" for c in column_names) + "]")
    file_sql = "'" + _sql_escape(str(path)) + "'"
    try:
        try:
            engine.execute(f"CREATE TABLE {q(name)} AS SELECT * FROM read_csv({file_sql}, {', '.join(options)})")
        except duckdb.Error as exc:
            # Quoted fields holding line breaks need the serial reader.
            if "parallel=false" not in str(exc):
                raise
            options.append("parallel = false")
            engine.execute(f"CREATE TABLE {q(name)} AS SELECT * FROM read_csv({file_sql}, {', '.join(options)})")
    except duckdb.Error as exc:
        message = str(exc)
        if "unicode" in message.lower() or "utf-8" in message.lower():
            line = re.search(r"Line: (\d+)", message)
            where = f"line {line.group(1)}" if line else "somewhere in the file"
            raise UnicodeError(f"non-UTF-8 bytes at {where}") from None
        raise InputError(f"{label}: the file could not be read as CSV ({_first_line(exc)})") from None
    columns = engine.columns(name)
    has_header = _header_of(engine, name, header)
    notes: list[str] = []
    cleaned = {c: c.replace("\ufeff", "").strip() for c in columns}
    if any(k != v for k, v in cleaned.items()):
        engine.execute(
            f"CREATE OR REPLACE TABLE {q(name)} AS SELECT "
            + ", ".join(f"{q(k)} AS {q(v)}" for k, v in cleaned.items())
            + f" FROM {q(name)}"
        )
        columns = engine.columns(name)
    n_rows = engine.execute(f"SELECT count(*) FROM {q(name)}")[0][0]
    if n_rows == 0:
        raise InputError(f"{label}: the file has a header line but no data rows; export the data again with its "
                         "rows (the export may have been cut off, or a filter matched nothing)")
    if len(columns) == 1:
        only = next(iter(columns))
        for candidate in (";", ",", "\t", "|"):
            if candidate in only:
                shown = "\\t" if candidate == "\t" else candidate
                raise InputError(
                    f"{label}: only one column was found ({only!r}): the delimiter is probably "
                    f"{shown!r}, not {delimiter or 'the one detected'!r}. Pass --delimiter '{shown}' "
                    f"(Python: delimiter='{shown}')."
                )
    delim = _detected_delimiter(engine, path, enc) if delimiter is None else delimiter
    if has_header:
        _check_unique_header(path, enc, delim, label)
    offset = 1 if has_header else 0
    view = engine.unique_name("segwise_raw")
    # A line equal to the header is a second export appended to the first: skipped, counted.
    repeats_header = " AND ".join(f"{q(c)} IS NOT DISTINCT FROM '{_sql_escape(c)}'" for c in columns)
    keep = f"WHERE NOT ({repeats_header})" if has_header else ""
    engine.execute(f"CREATE VIEW {q(view)} AS SELECT *, rowid + {offset + 1} AS {ROW_COL} FROM {q(name)} {keep}")
    if has_header:
        n_repeats = n_rows - engine.execute(f"SELECT count(*) FROM {q(view)}")[0][0]
        if n_repeats:
            message = (f"{label}: {n_repeats} line(s) repeat the header line (exports appended to each other); "
                       "they were skipped")
            warnings.warn(message, DataWarning, stacklevel=5)
            notes.append(message)
    raw = RawInput(view, label, engine.columns(view), "line", notes, enc, delim)
    if not _ends_with_line_break(path):
        raw.unterminated_row = engine.execute(f"SELECT max({ROW_COL}) FROM {q(view)}")[0][0]
    return raw


def _ends_with_line_break(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) in (b"\n", b"\r")


def _check_unique_header(path: Path, enc: str, delimiter: str | None, label: str) -> None:
    """Refuse a header naming a column twice: which of the two is meant cannot be known."""
    if not delimiter or len(delimiter) != 1:
        return
    with open(path, encoding=enc, errors="replace", newline="") as fh:
        first = fh.readline()
    try:
        names = next(csv.reader([first.lstrip("\ufeff")], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return
    names = [n.strip() for n in names]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{label}: the header line names {', '.join(map(repr, repeated))} more than once; segwise cannot "
            "tell which is meant. Rename or remove the duplicate column and export again."
        )


def _sql_escape(value: str) -> str:
    return value.replace("'", "''")


def _unescape_delimiter(delimiter: str) -> str:
    return {"\\t": "\t", "tab": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}.get(delimiter, delimiter)


def _sniff_header(engine, path: Path, enc: str) -> bool | None:
    try:
        rows = engine.execute(
            f"SELECT HasHeader FROM sniff_csv('{_sql_escape(str(path))}', encoding = '{enc}', "
            "strict_mode = false, null_padding = true)"
        )
    except duckdb.Error:
        return None
    return bool(rows[0][0]) if rows else None


def _detected_delimiter(engine, path: Path, enc: str) -> str | None:
    try:
        rows = engine.execute(
            f"SELECT Delimiter FROM sniff_csv('{_sql_escape(str(path))}', encoding = '{enc}', "
            "strict_mode = false, null_padding = true)"
        )
    except duckdb.Error:
        return None
    return rows[0][0] if rows else None


def _header_of(engine, name: str, header: bool | None) -> bool:
    if header is not None:
        return header
    columns = list(engine.columns(name))
    return not all(re.fullmatch(r"column\d+", c) for c in columns)


def _read_whitespace(engine, path: Path, label, header, column_names, encoding, lines, what) -> RawInput:
    """Whitespace-separated text (e.g. the CDNOW log): runs of blanks separate fields.

    DuckDB's CSV reader takes a single delimiter character, so lines are read whole
    and split on runs of whitespace in SQL (still vectorised, no Python loop).
    """
    sample = [ln.split() for ln in lines if ln.strip()]
    width = max(len(tokens) for tokens in sample)
    if header is None:
        first, rest = sample[0], sample[1:6]
        looks_like_names = not any(_is_number(t) for t in first)
        # A single line of names is a header with no data (reported below); with more
        # lines, the first is a header when it has no numbers and the others do.
        header = looks_like_names and (not rest or any(_is_number(t) for tokens in rest for t in tokens))
    names = list(column_names) if column_names else (sample[0] if header else [f"column{i}" for i in range(width)])
    names = [n.replace("\ufeff", "") for n in names]
    if len(names) != width:
        raise InputError(
            f"{label}: {len(names)} column names for {width} whitespace-separated fields; "
            "give one name per field with --column-names"
        )
    enc = "utf-8" if encoding == "auto" else encoding
    raw_lines = engine.unique_name("segwise_lines")
    file_sql = "'" + _sql_escape(str(path)) + "'"
    try:
        engine.execute(
            f"CREATE TABLE {q(raw_lines)} AS SELECT line FROM read_csv({file_sql}, "
            f"columns = {{'line': 'VARCHAR'}}, delim = '\x1f', quote = '', escape = '', "
            f"header = false, encoding = '{enc}', strict_mode = false)"
        )
    except duckdb.Error as exc:
        raise InputError(f"{label}: the file could not be read ({_first_line(exc)})") from None
    offset = 1 if header else 0
    parts = ", ".join(f"tokens[{i + 1}] AS {q(n)}" for i, n in enumerate(names))
    view = engine.unique_name("segwise_raw")
    engine.execute(
        f"CREATE VIEW {q(view)} AS SELECT {parts}, {ROW_COL} FROM ("
        f"SELECT string_split_regex(trim(replace(line, '\ufeff', '')), '\\s+') AS tokens, "
        f"rowid + 1 AS {ROW_COL} FROM {q(raw_lines)}) "
        f"WHERE {ROW_COL} > {offset} AND len(tokens) > 0 AND tokens[1] <> ''"
    )
    n_rows = engine.execute(f"SELECT count(*) FROM {q(view)}")[0][0]
    if n_rows == 0:
        raise InputError(f"{label}: the file has a header line but no data rows; export the data again with its "
                         "rows (the export may have been cut off, or a filter matched nothing)")
    return RawInput(view, label, engine.columns(view), "line", [], enc, "whitespace")


# --------------------------------------------------------------------------- value parsing

# Candidate timestamp formats, tried on a sample and then on every value. Day-first
# and month-first variants are paired so an undecidable file can be reported.
_DATE_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y/%m/%d", "%Y%m%d", "%Y%m%d%H%M%S",
    "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M",
    "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y %H:%M", "%m/%d/%y %H:%M", "%d/%m/%y", "%m/%d/%y",
    "%d-%m-%Y %H:%M:%S", "%m-%d-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%m-%d-%Y %H:%M",
    "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d, %Y", "%d-%b-%Y", "%d-%b-%y",
]
_ISO = "ISO 8601"


def _swap_day_month(fmt: str) -> str | None:
    if "%d" in fmt and "%m" in fmt:
        return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return None


def _describe_format(fmt: str) -> str:
    if fmt == _ISO:
        return "ISO 8601"
    if fmt.startswith("%Y"):
        return fmt  # year first: the month always comes before the day
    if "%d" in fmt and "%m" in fmt and fmt.index("%d") < fmt.index("%m"):
        return f"{fmt} (day first)"
    if "%d" in fmt and "%m" in fmt and fmt.index("%m") < fmt.index("%d"):
        return f"{fmt} (month first)"
    return fmt


def _strptime_sql(col: str, fmt: str, try_: bool = True) -> str:
    if fmt == _ISO:
        return f"TRY_CAST({col} AS TIMESTAMP)"
    fn = "try_strptime" if try_ else "strptime"
    return f"{fn}({col}, '{_sql_escape(fmt)}')"


def _offending(engine, raw: RawInput, condition: str, column: str, limit: int = 5) -> tuple[list[int], list[str]]:
    # Written for DuckDB and Spark SQL alike (the Spark engine uses it too).
    rows = engine.execute(
        f"SELECT {ROW_COL}, CAST({engine.quote(column)} AS STRING) FROM {engine.quote(raw.name)} "
        f"WHERE {condition} ORDER BY {ROW_COL} LIMIT {limit}"
    )
    return [r[0] for r in rows], [r[1] for r in rows]


@dataclass
class ParsedColumn:
    """SQL for a typed column, and how it was parsed (recorded with the run)."""

    sql: str
    how: str


def timestamp_sql(engine: DuckDBEngine, raw: RawInput, column: str, date_format: str | None = None) -> ParsedColumn:
    """SQL turning ``column`` into a TIMESTAMP, detecting the format from the values.

    Day-first versus month-first is decided from all values (a day above 12 settles
    it). When both readings fit every value and give different dates, the data cannot
    tell, and the error asks for ``--date-format``.
    """
    kind = raw.kinds[column]
    col = q(column)
    if kind == "timestamp":
        return ParsedColumn(f"CAST({col} AS TIMESTAMP)", "native timestamp")
    if kind == "date":
        return ParsedColumn(f"CAST({col} AS TIMESTAMP)", "native date")
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    if kind == "integer" and date_format is None:
        lo, hi = engine.execute(f"SELECT min({col}), max({col}) FROM {q(raw.name)}")[0]
        if lo is not None and 19000101 <= lo and hi <= 21001231:
            date_format = "%Y%m%d"
        elif lo is not None and 10**9 <= lo and hi < 4 * 10**9:
            return ParsedColumn(f"to_timestamp(CAST({col} AS DOUBLE))::TIMESTAMP", "unix seconds")
        elif lo is not None and 10**12 <= lo and hi < 4 * 10**12:
            return ParsedColumn(f"to_timestamp(CAST({col} AS DOUBLE) / 1000)::TIMESTAMP", "unix milliseconds")
    n_values = engine.execute(f"SELECT count({text}) FROM {q(raw.name)}")[0][0]
    if n_values == 0:
        raise InputError(f"{raw.label}: column {column!r} is empty: it holds no dates")
    if date_format is not None:
        fmt = date_format
        bad = f"{text} IS NOT NULL AND {_strptime_sql(text, fmt)} IS NULL"
        n_bad = engine.execute(f"SELECT count(*) FROM {q(raw.name)} WHERE {bad}")[0][0]
        if n_bad:
            rows, values = _offending(engine, raw, bad, column)
            raise InputError(
                f"{raw.label}: column {column!r}: {n_bad} values do not match the date format "
                f"{fmt!r} ({raw.rows_phrase(rows)}: {', '.join(map(repr, values))}). "
                "Fix those values or pass the right --date-format (e.g. '%d/%m/%Y %H:%M')."
            )
        return ParsedColumn(_strptime_sql(text, fmt, try_=False), _describe_format(fmt))
    sample_sql = (
        f"SELECT {text} AS v FROM {q(raw.name)} WHERE {text} IS NOT NULL LIMIT 20000"
    )
    candidates = [_ISO] + _DATE_FORMATS
    counts = engine.execute(
        "SELECT count(*), " + ", ".join(f"count({_strptime_sql('v', f)})" for f in candidates)
        + f" FROM ({sample_sql})"
    )[0]
    sample_n, hits = counts[0], counts[1:]
    best = max(hits)
    if best == 0:
        rows, values = _offending(engine, raw, f"{text} IS NOT NULL", column, 3)
        raise InputError(
            f"{raw.label}: column {column!r} does not hold dates segwise can read "
            f"({raw.rows_phrase(rows)}: {', '.join(map(repr, values))}). Pass the format with "
            "--date-format (Python: date_format=), e.g. '%d/%m/%Y %H:%M' or '%Y%m%d'."
        )
    survivors = [f for f, h in zip(candidates, hits) if h == sample_n] or [
        f for f, h in zip(candidates, hits) if h == best
    ]
    full = engine.execute(
        "SELECT " + ", ".join(f"count({_strptime_sql(text, f)})" for f in survivors) + f" FROM {q(raw.name)}"
    )[0]
    complete = [f for f, n in zip(survivors, full) if n == n_values]
    if not complete:
        fmt = survivors[int(max(range(len(full)), key=lambda i: full[i]))]
        bad = f"{text} IS NOT NULL AND {_strptime_sql(text, fmt)} IS NULL"
        n_bad = n_values - max(full)
        rows, values = _offending(engine, raw, bad, column)
        cut_off = raw.cut_off_hint(rows)
        mixed = " The column seems to mix date formats." if n_bad > 0 and max(full) > 0 and not cut_off else ""
        raise InputError(
            f"{raw.label}: column {column!r}: {n_bad} of {n_values} values could not be read as "
            f"dates in the format {_describe_format(fmt)} ({raw.rows_phrase(rows)}: "
            f"{', '.join(map(repr, values))}).{mixed}{cut_off} Fix those rows, or pass the format with "
            "--date-format (Python: date_format=)."
        )
    fmt = complete[0]
    swapped = _swap_day_month(fmt) if fmt != _ISO else None
    if swapped in complete:
        differ = engine.execute(
            f"SELECT count(*) FROM {q(raw.name)} WHERE "
            f"{_strptime_sql(text, fmt)} <> {_strptime_sql(text, swapped)}"
        )[0][0]
        if differ:
            rows, values = _offending(
                engine, raw, f"{_strptime_sql(text, fmt)} <> {_strptime_sql(text, swapped)}", column, 3
            )
            raise InputError(
                f"{raw.label}: column {column!r}: the dates could be day-first or month-first "
                f"(e.g. {', '.join(map(repr, values))} at {raw.rows_phrase(rows)}) and no value "
                f"settles it. Pass --date-format '{fmt}' for day first or --date-format "
                f"'{swapped}' for month first (Python: date_format=)."
            )
    return ParsedColumn(_strptime_sql(text, fmt, try_=fmt == _ISO), _describe_format(fmt))


def number_sql(engine, raw: RawInput, column: str) -> ParsedColumn:
    """SQL turning ``column`` into DOUBLE; text that is not a number is an error.

    The SQL is valid for DuckDB and Spark alike (`segwise.spark.parse` uses it).
    """
    kind = raw.kinds[column]
    col = engine.quote(column)
    if kind in ("integer", "float"):
        return ParsedColumn(f"CAST({col} AS DOUBLE)", "native number")
    if kind == "boolean":
        return ParsedColumn(f"CAST({col} AS DOUBLE)", "boolean as 0/1")
    text = f"NULLIF(trim(CAST({col} AS STRING)), '')"
    parsed = f"TRY_CAST({text} AS DOUBLE)"
    check_values(
        engine, raw, f"{text} IS NOT NULL AND {parsed} IS NULL", column, "values are not numbers",
        "Numbers must use '.' for decimals and no currency signs or thousands separators; fix those values "
        "or choose another column.",
    )
    return ParsedColumn(parsed, "text as number")


def check_values(engine, raw: RawInput, bad: str, column: str, what: str, fix: str) -> None:
    """Raise an InputError naming the first rows where the SQL condition ``bad`` holds, if any.

    The message reads "LABEL: column 'C': N WHAT (lines ...: values). FIX".
    """
    n_bad = engine.execute(f"SELECT count(*) FROM {engine.quote(raw.name)} WHERE {bad}")[0][0]
    if n_bad:
        rows, values = _offending(engine, raw, bad, column)
        raise InputError(
            f"{raw.label}: column {column!r}: {n_bad} {what} "
            f"({raw.rows_phrase(rows)}: {', '.join(map(repr, values))}).{raw.cut_off_hint(rows)} {fix}"
        )


def id_sql(raw: RawInput, column: str) -> str:
    """SQL turning an id column into trimmed text; ``12345.0`` becomes ``12345``.

    Ids exported through spreadsheets or pandas often arrive as floats; without this
    the same customer would not match across files.
    """
    kind = raw.kinds[column]
    col = q(column)
    if kind == "float":
        return (
            f"CASE WHEN {col} = floor({col}) AND abs({col}) < 1e18 "
            f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) ELSE CAST({col} AS VARCHAR) END"
        )
    if kind == "integer":
        return f"CAST({col} AS VARCHAR)"
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    # Only a text with a '.' can end in '.0': the cheap test spares most ids the regex
    # (a second per 10M lines).
    return f"CASE WHEN contains({text}, '.') THEN regexp_replace({text}, '^(-?[0-9]+)\\.0+$', '\\1') ELSE {text} END"


def text_sql(column: str) -> str:
    """SQL for a trimmed text column with empty strings as NULL."""
    return f"NULLIF(trim(CAST({q(column)} AS VARCHAR)), '')"


# The SQL pieces of cleaning that differ between engines (see `segwise.data._sql_dialect`;
# `segwise.spark.parse` defines the same names for Spark SQL).

#: A NULL text value.
NULL_TEXT = "CAST(NULL AS VARCHAR)"


def full_match(text: str, pattern: str) -> str:
    """SQL: ``text`` matches the regular expression ``pattern`` entirely."""
    return f"regexp_full_match({text}, '{pattern}')"


def starts_with_c(order: str) -> str:
    """SQL: the order id starts with C or c (an invoice-prefix cancellation)."""
    return f"coalesce(starts_with(upper({order}), 'C'), false)"


def line_hash(quoted_columns: list[str]) -> str:
    """SQL: a hash of the whole source line, for finding double exports."""
    return f"hash({', '.join(quoted_columns)})"


def invalid_number(column: str) -> str:
    """SQL: the number is missing, NaN or infinite."""
    return f"{column} IS NULL OR isnan({column}) OR isinf({column})"


_TRUE = ("true", "t", "yes", "y", "1", "1.0", "x")
_FALSE = ("false", "f", "no", "n", "0", "0.0", "")


def flag_sql(engine, raw: RawInput, column: str) -> ParsedColumn:
    """SQL turning a flag column into BOOLEAN (true/yes/1, or any positive amount).

    The SQL is valid for DuckDB and Spark alike (`segwise.spark.parse` uses it).
    """
    kind = raw.kinds[column]
    col = engine.quote(column)
    if kind == "boolean":
        return ParsedColumn(f"CAST({col} AS BOOLEAN)", "boolean")
    if kind in ("integer", "float"):
        return ParsedColumn(f"({col} > 0)", "positive number means yes")
    text = f"lower(trim(CAST({col} AS STRING)))"
    numeric = f"TRY_CAST({text} AS DOUBLE)"
    truthy = "(" + ", ".join(f"'{v}'" for v in _TRUE) + ")"
    falsy = "(" + ", ".join(f"'{v}'" for v in _FALSE) + ")"
    bad = f"{col} IS NOT NULL AND {text} NOT IN {truthy} AND {text} NOT IN {falsy} AND {numeric} IS NULL"
    n_bad = engine.execute(f"SELECT count(*) FROM {engine.quote(raw.name)} WHERE {bad}")[0][0]
    if n_bad:
        rows, values = _offending(engine, raw, bad, column)
        raise InputError(
            f"{raw.label}: column {column!r}: {n_bad} values are not yes/no flags "
            f"({raw.rows_phrase(rows)}: {', '.join(map(repr, values))}). Use true/false, "
            "yes/no, 1/0 or a discount amount."
        )
    return ParsedColumn(
        f"CASE WHEN {col} IS NULL THEN NULL WHEN {text} IN {truthy} THEN true "
        f"WHEN {text} IN {falsy} THEN false ELSE {numeric} > 0 END",
        "text flag",
    )
