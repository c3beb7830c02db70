"""The DuckDB engine: an embedded database, and its SQL dialect for reading and cleaning.

`DuckDBEngine` runs in-process (the default engine). Feature definitions compile to
DuckDB SQL with ``ibis.to_sql`` and run on the engine's own connection.
`DuckDBCleaning` (``engine.cleaning``) reads raw inputs (`segwise.engines.duckdb_files`)
and writes the DuckDB SQL that types their values; timestamps are parsed by
detecting the format from the values themselves.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import weakref
from typing import Any

import duckdb
import ibis
import pandas as pd
import pyarrow as pa
from ibis.backends.sql.compilers.duckdb import DuckDBCompiler

from segwise.engines import duckdb_files
from segwise.engines.base import ibis_type, quote_identifier
from segwise.engines.base import quote_identifier as q
from segwise.engines.dialect import ISO_8601, CleaningDialect, ParsedColumn, RawInput
from segwise.errors import InputError

__all__ = ["DuckDBEngine", "DuckDBCleaning", "default_memory_limit", "duckdb_sql", "MEMORY_FRACTION"]

log = logging.getLogger(__name__)

_counter = itertools.count()
#: Rows per Arrow batch when a result leaves DuckDB (`DuckDBEngine.fetch_df`).
_FETCH_BATCH_ROWS = 100_000


class DuckDBEngine:
    """An embedded DuckDB database plus an Ibis backend on the same connection.

    Parameters
    ----------
    database : str
        ``":memory:"`` (default) or a path to a DuckDB file.
    memory_limit : str, optional
        DuckDB memory limit such as ``"2GB"``; above it DuckDB spills to disk. Default:
        `default_memory_limit` (the ``SEGWISE_DUCKDB_MEMORY_LIMIT`` environment variable,
        else `MEMORY_FRACTION` of the machine's memory).
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
        # Memory DuckDB frees goes back to the system: without the allocator's background
        # threads, freed pages of the feature build's intermediate tables stay resident
        # (1M order lines: 245 MiB of 625 MiB after the features, bench/memory_stages.py)
        # while the clustering that follows needs them.
        self.execute("SET allocator_background_threads = true")
        self._remove_temp_directory = None
        if temp_directory is None:
            temp_directory = tempfile.mkdtemp(prefix="segwise-duckdb-")
            # Our own directory: removed when the engine closes, is collected, or at exit.
            self._remove_temp_directory = weakref.finalize(self, shutil.rmtree, temp_directory, True)
        self.execute(f"SET temp_directory = '{_sql_string(temp_directory)}'")
        if memory_limit is None:
            memory_limit = default_memory_limit()
        if memory_limit is not None:
            try:
                self.execute(f"SET memory_limit = '{_sql_string(str(memory_limit))}'")
            except duckdb.Error:
                self.con.close()
                raise InputError(
                    f"DuckDB memory limit {memory_limit!r} (argument memory_limit, --memory-limit or "
                    f"{MEMORY_LIMIT_ENV}) is not a size: give one such as 4GB or 500MB"
                ) from None
        if threads is not None:
            self.execute(f"SET threads = {int(threads)}")

    @property
    def cleaning(self) -> "DuckDBCleaning":
        """How this engine reads raw inputs and types their values (DuckDB SQL)."""
        return DuckDBCleaning(self)

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
        """Run SQL text or an Ibis expression and return pandas.

        The rows leave DuckDB as a stream of Arrow batches: ``.df()`` would first
        collect the whole result inside DuckDB, under its memory limit, and a wide
        feature table can be larger than the limit by itself. Each batch is then
        converted by DuckDB (the same pandas types as ``.df()``), after the stream ends.
        """
        reader = self.con.sql(self._sql(query), params=params).to_arrow_reader(_FETCH_BATCH_ROWS)
        rows = reader.read_all()
        if rows.num_rows <= _FETCH_BATCH_ROWS:
            return self.con.from_arrow(rows).df()
        parts = [self.con.from_arrow(rows.slice(start, _FETCH_BATCH_ROWS)).df()
                 for start in range(0, rows.num_rows, _FETCH_BATCH_ROWS)]
        return pd.concat(parts, ignore_index=True)

    def fetch_arrow(self, query: str | ibis.Table, params: list[Any] | None = None) -> pa.Table:
        """Run SQL text or an Ibis expression and return Arrow.

        Streamed in batches (see `fetch_df`): the result is never collected whole inside
        DuckDB, and the batches become the table's chunks without a copy.
        """
        return self.con.sql(self._sql(query), params=params).to_arrow_reader(_FETCH_BATCH_ROWS).read_all()

    @staticmethod
    def _sql(query: str | ibis.Table) -> str:
        return query if isinstance(query, str) else duckdb_sql(query)

    def table(self, name: str) -> ibis.Table:
        """An unbound Ibis table with the name and schema of a table or view of this engine."""
        schema = {column: ibis_type(sql_type) for column, sql_type in self.columns(name).items()}
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

    def customer_statistics(self, frame: pd.DataFrame) -> None:
        """None: the customer feature table is already in this process's memory, so
        fitting reads it directly (`segwise.segmenter.Segmenter.fit` on a frame)."""
        return None

    def write_assignments(self, assignments: pd.DataFrame, out_dir: str | os.PathLike) -> None:
        """Nothing to add: the run directory's assignments file is what DuckDB users read."""
        return None

    def close(self) -> None:
        """Close the connection (and remove the spill directory the engine created)."""
        self.con.close()
        if self._remove_temp_directory is not None:
            self._remove_temp_directory()


class _SegwiseDuckDBCompiler(DuckDBCompiler):
    """Ibis's DuckDB compiler, with ``argmin``/``argmax`` as DuckDB's own aggregates.

    Ibis writes ``x.argmin(key)`` as ``first(x ORDER BY key)``, an ordered aggregate:
    DuckDB keeps every row of a group until it can sort them, and its documentation
    lists ordered aggregates among the operators that cannot spill to disk, so a
    memory limit below what they hold fails instead of spilling. ``arg_min(x, key)``
    keeps one value per group and spills like any aggregate. (The journey family's
    main category of each order, over the 8.5M order-category rows of a 10M-line log,
    is such an argmin; at the default memory limit the peak RSS is the same either way,
    bench/results/issue21-...-argmin.) The two agree wherever the key and the argument
    are not NULL (``arg_min`` skips rows with a NULL key, the ordered ``first`` puts
    them last); segwise's features argmin by keys that are never NULL (a struct, a
    day) over arguments that are not NULL.
    """

    def visit_ArgMin(self, op, *, arg, key, where):
        return self.agg.arg_min(arg, key, where=where)

    def visit_ArgMax(self, op, *, arg, key, where):
        return self.agg.arg_max(arg, key, where=where)


_COMPILER = _SegwiseDuckDBCompiler()


def duckdb_sql(expr: ibis.Table) -> str:
    """DuckDB SQL for an Ibis expression over unbound tables (`_SegwiseDuckDBCompiler`)."""
    return _COMPILER.to_sqlglot(expr.unbind()).sql(dialect=_COMPILER.dialect, pretty=True)


#: Share of the machine's memory DuckDB may use by default. DuckDB's own default (80%)
#: leaves too little for what the same process holds beside it: the feature table, the
#: prepared matrix and the clustering's arrays (docs/scaling.md).
MEMORY_FRACTION = 0.5

#: Environment variable that sets the default memory limit (e.g. ``4GB``).
MEMORY_LIMIT_ENV = "SEGWISE_DUCKDB_MEMORY_LIMIT"


def _machine_memory_bytes() -> int | None:
    """Physical memory, or the container's (cgroup) limit when that is lower; None when unknown."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as limit_file:
                text = limit_file.read().strip()
        except OSError:
            continue
        if text.isdigit():
            sizes.append(int(text))
    sizes = [size for size in sizes if size > 0]
    return min(sizes) if sizes else None


def default_memory_limit() -> str | None:
    """The DuckDB memory limit used when none is given.

    ``SEGWISE_DUCKDB_MEMORY_LIMIT`` (e.g. ``4GB``) when set, else `MEMORY_FRACTION` of
    the machine's memory (the container's limit when lower), in whole MiB; None (DuckDB
    decides) when the machine's memory cannot be read.
    """
    configured = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if configured:
        return configured
    total = _machine_memory_bytes()
    if total is None:
        return None
    return f"{max(int(total * MEMORY_FRACTION) // 2**20, 64)}MiB"


def _sql_string(value: str) -> str:
    return value.replace("'", "''")


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
_ISO = ISO_8601


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
    return f"{fn}({col}, '{_sql_string(fmt)}')"


class DuckDBCleaning(CleaningDialect):
    """Reading raw inputs into DuckDB and typing their values in DuckDB SQL."""

    NULL_TEXT = "CAST(NULL AS VARCHAR)"
    STRING = "VARCHAR"

    def read_raw(self, source: Any, **options: Any) -> RawInput:
        """Load ``source`` as raw rows (see `segwise.engines.duckdb_files.read_raw`)."""
        return duckdb_files.read_raw(self.engine, source, **options)

    def sniff_header(self, path, encoding: str) -> bool | None:
        """Whether DuckDB's CSV sniffer sees a header line in the file (None: it cannot tell)."""
        return duckdb_files.sniff_header(self.engine, path, encoding)

    def detected_delimiter(self, path, encoding: str) -> str | None:
        """The delimiter DuckDB's CSV sniffer finds in the file, if any."""
        return duckdb_files.detected_delimiter(self.engine, path, encoding)

    def full_match(self, text: str, pattern: str) -> str:
        return f"regexp_full_match({text}, '{pattern}')"

    def starts_with_c(self, order: str) -> str:
        return f"coalesce(starts_with(upper({order}), 'C'), false)"

    def line_hash(self, quoted_columns: list[str]) -> str:
        return f"hash({', '.join(quoted_columns)})"

    def invalid_number(self, column: str) -> str:
        return f"{column} IS NULL OR isnan({column}) OR isinf({column})"

    def _integral_text(self, text: str) -> str:
        return f"regexp_replace({text}, '^(-?[0-9]+)\\.0+$', '\\1')"

    def timestamp_sql(self, raw: RawInput, column: str, date_format: str | None = None) -> ParsedColumn:
        """SQL turning ``column`` into a TIMESTAMP, detecting the format from the values.

        Day-first versus month-first is decided from all values (a day above 12 settles
        it). When both readings fit every value and give different dates, the data cannot
        tell, and the error asks for ``--date-format``.
        """
        engine = self.engine
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
                rows, values = self.offending(raw, bad, column)
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
            rows, values = self.offending(raw, f"{text} IS NOT NULL", column, 3)
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
            rows, values = self.offending(raw, bad, column)
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
                rows, values = self.offending(
                    raw, f"{_strptime_sql(text, fmt)} <> {_strptime_sql(text, swapped)}", column, 3
                )
                raise InputError(
                    f"{raw.label}: column {column!r}: the dates could be day-first or month-first "
                    f"(e.g. {', '.join(map(repr, values))} at {raw.rows_phrase(rows)}) and no value "
                    f"settles it. Pass --date-format '{fmt}' for day first or --date-format "
                    f"'{swapped}' for month first (Python: date_format=)."
                )
        return ParsedColumn(_strptime_sql(text, fmt, try_=fmt == _ISO), _describe_format(fmt))

