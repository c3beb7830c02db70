"""Reading raw inputs into DuckDB: text (delimited or whitespace-separated), Parquet, DuckDB files, frames.

`read_raw` turns any supported source into a relation of raw rows of a
`segwise.engines.duckdb.DuckDBEngine` plus a description used in messages
(`segwise.engines.dialect.RawInput`); the engine's cleaning dialect
(``engine.cleaning``) calls it. `sniff_header` and `detected_delimiter` are DuckDB's
CSV sniffer, which the Spark engine also asks (through a DuckDB engine it gets by
name) about the head of a file.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from segwise.engines import files
from segwise.engines.base import quote_identifier as q
from segwise.engines.dialect import ROW_COL, RawInput
from segwise.errors import DataWarning, InputError

__all__ = ["read_raw", "sniff_header", "detected_delimiter"]


def read_raw(
    engine,
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
    if files.is_frame(source):
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
        found = sorted(path.glob("**/*.parquet")) + sorted(path.glob("**/*.pq"))
        if not found:
            raise InputError(f"{label}: the directory holds no Parquet files (*.parquet)")
        return _read_parquet(engine, [str(f) for f in found], label, column_names)
    if path.stat().st_size == 0:
        raise InputError(f"{label}: the file is empty (0 bytes); export the {what} again")
    suffix = path.suffix.lower()
    if suffix in files.PARQUET_SUFFIXES or files.has_parquet_magic(path):
        return _read_parquet(engine, [str(path)], label, column_names)
    if suffix in files.DUCKDB_SUFFIXES or files.has_duckdb_magic(path):
        return _read_duckdb(engine, str(path), table, label, column_names)
    return _read_text(engine, path, label, delimiter, header, column_names, encoding, what)


def _read_frame(engine, frame: Any, column_names, what: str) -> RawInput:
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


def _read_parquet(engine, paths: list[str], label: str, column_names) -> RawInput:
    name = engine.unique_name("segwise_raw")
    file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in paths) + "]"
    try:
        engine.execute(
            f"CREATE VIEW {q(name)} AS SELECT * REPLACE (file_row_number + 1 AS file_row_number) "
            f"FROM read_parquet({file_list}, file_row_number = true)"
        )
        columns = engine.columns(name)
    except duckdb.Error as exc:
        raise InputError(f"{label}: not a readable Parquet file ({files.first_line(exc)})") from None
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


def _read_duckdb(engine, path: str, table: str | None, label: str, column_names) -> RawInput:
    alias = engine.unique_name("segwise_src")
    try:
        engine.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {q(alias)} (READ_ONLY)")
    except duckdb.Error as exc:
        raise InputError(f"{label}: not a readable DuckDB database ({files.first_line(exc)})") from None
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


def _read_text(engine, path: Path, label, delimiter, header, column_names, encoding, what) -> RawInput:
    head = files.read_head(path)
    encoding = files.choose_encoding(path, head, encoding, label)
    text_head = files.decode_head(head, "utf-8" if encoding in ("auto", "utf-8") else "latin-1")
    lines = text_head.splitlines()
    if len(head) == files.SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last line of the sample may be cut
    if not any(ln.strip() for ln in lines):
        raise InputError(f"{label}: the file holds no data (only blank lines)")
    if delimiter in ("whitespace", "space", " ") or (delimiter is None and files.looks_whitespace_separated(lines)):
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
            warnings.warn(message, DataWarning, stacklevel=5)
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
        options.append(f"delim = '{_sql_escape(files.unescape_delimiter(delimiter))}'")
    if header is not None:
        options.append(f"header = {'true' if header else 'false'}")
    elif delimiter is None:
        detected = sniff_header(engine, path, enc)
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
        raise InputError(f"{label}: the file could not be read as CSV ({files.first_line(exc)})") from None
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
    files.one_column_hint(label, list(columns), delimiter)
    delim = detected_delimiter(engine, path, enc) if delimiter is None else delimiter
    if has_header:
        files.check_unique_header(path, enc, delim, label)
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
            warnings.warn(message, DataWarning, stacklevel=6)
            notes.append(message)
    raw = RawInput(view, label, engine.columns(view), "line", notes, enc, delim)
    if not files.ends_with_line_break(path):
        raw.unterminated_row = engine.execute(f"SELECT max({ROW_COL}) FROM {q(view)}")[0][0]
    return raw


def _sql_escape(value: str) -> str:
    return value.replace("'", "''")


def _sniffed(engine, path: Path, enc: str, field: str):
    """One field of DuckDB's CSV sniffer for the file (None when it cannot tell)."""
    try:
        rows = engine.execute(
            f"SELECT {field} FROM sniff_csv('{_sql_escape(str(path))}', encoding = '{enc}', "
            "strict_mode = false, null_padding = true)"
        )
    except duckdb.Error:
        return None
    return rows[0][0] if rows else None


def sniff_header(engine, path: Path, enc: str) -> bool | None:
    """Whether the sniffer sees a header line (None: it cannot tell)."""
    found = _sniffed(engine, path, enc, "HasHeader")
    return None if found is None else bool(found)


def detected_delimiter(engine, path: Path, enc: str) -> str | None:
    """The delimiter the sniffer finds, if any."""
    return _sniffed(engine, path, enc, "Delimiter")


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
        looks_like_names = not any(files.is_number(t) for t in first)
        # A single line of names is a header with no data (reported below); with more
        # lines, the first is a header when it has no numbers and the others do.
        header = looks_like_names and (not rest or any(files.is_number(t) for tokens in rest for t in tokens))
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
        raise InputError(f"{label}: the file could not be read ({files.first_line(exc)})") from None
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

