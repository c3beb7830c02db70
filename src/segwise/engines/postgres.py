"""The PostgreSQL engine: cleaning and feature families run inside the database.

A transaction log that lives in PostgreSQL is read where it is. The cleaning rules
of `segwise.data` and every feature family run there as SQL (features are Ibis
expressions compiled with ``ibis.to_sql(expr, dialect="postgres")``); only one
row per customer crosses the network.

Read-only toward the source
    segwise never creates a persistent object in the source database. What it
    computes along the way (the cleaned log, the orders, the raw view with row
    numbers) lives in TEMPORARY tables and views: they belong to segwise's own
    session, are invisible to every other session and vanish when it ends. Every
    statement is checked before it is sent (`segwise.engines.postgres_sql.check_statement`): a CREATE must be
    TEMPORARY, a DROP may only name a temporary object this engine created, and
    nothing else may write. A user
    needs SELECT on the source and the TEMPORARY privilege on the database (granted
    to everyone by default).

Bounded
    Each statement runs under ``statement_timeout`` (default 10 minutes); rows that
    must come back (one per customer, or a whole table when another engine computes)
    are streamed with ``COPY ... TO STDOUT`` in chunks, never through one giant
    result set, and the bytes received are counted (`bytes_received`). The chunks
    are kept as CSV text until the stream ends, then parsed into Arrow in blocks
    (`BATCH_BYTES`): a fetched table takes about twice its size in memory.

SQL text
    The cleaning rules are written once for every engine, as text in DuckDB's
    dialect (segwise's reference dialect). This engine translates such text with
    sqlglot (the SQL compiler Ibis itself uses) and rewrites the few functions
    PostgreSQL lacks (`segwise.engines.postgres_sql`): ``isnan``, ``isinf``, ``TRY_CAST``,
    ``contains``, ``regexp_full_match``. Ibis expressions are compiled by Ibis
    for PostgreSQL, with the rewrites of `segwise.engines.postgres_sql` (what Ibis
    would otherwise leave to functions its own backend installs). A user's
    ``--query`` is PostgreSQL and is sent as written. An Ibis query PostgreSQL
    still cannot run (a function only an extension provides) runs in an embedded
    DuckDB on the columns it reads, fetched, with a `DataWarning`
    (`PostgresEngine.fetch_arrow`); every feature family of today runs in PostgreSQL.

The reading and cleaning dialect of this engine (``engine.cleaning``,
`PostgresCleaning`) is at the end of this module.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import re
import weakref
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

# PostgreSQL quotes identifiers exactly as DuckDB does.
from segwise.engines.base import ibis_type, quote_identifier
from segwise.engines.dialect import ISO_8601, ROW_COL, CleaningDialect, ParsedColumn, RawInput
from segwise.engines.postgres_sql import check_statement, compile_ibis, to_postgres
from segwise.engines.postgres_url import describe_postgres_url, mask_secrets, normalize_postgres_url, psycopg_module
from segwise.errors import InputError

__all__ = ["PostgresEngine", "PostgresCleaning"]

log = logging.getLogger(__name__)

_counter = itertools.count()

#: PostgreSQL type (``format_type`` output, without modifiers) to the type names segwise's
#: role detection and cleaning rules use (DuckDB's vocabulary, see `segwise.engines.base.value_kind`).
_TYPE_NAMES = {
    "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT",
    "real": "REAL", "double precision": "DOUBLE", "numeric": "DECIMAL",
    "text": "VARCHAR", "character varying": "VARCHAR", "character": "VARCHAR", "name": "VARCHAR",
    "citext": "VARCHAR", "uuid": "UUID",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "date": "DATE", "boolean": "BOOLEAN",
}
#: Arrow types of result columns by PostgreSQL type name (COPY text is parsed with these).
_ARROW_TYPES = {
    "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float4": pa.float32(), "float8": pa.float64(),
    "numeric": pa.float64(), "bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "text": pa.string(), "varchar": pa.string(),
    "bpchar": pa.string(), "name": pa.string(),
}

#: Bytes of CSV text parsed at a time into an Arrow block.
BATCH_BYTES = 16 * 1024 * 1024


class PostgresEngine:
    """A session on a PostgreSQL database where loading and features run.

    Parameters
    ----------
    url : str
        ``postgresql://USER@HOST:PORT/DATABASE``; the password may be in the URL, in
        ``PGPASSWORD`` or in ``~/.pgpass`` (libpq reads them). It is never shown:
        messages and records use `label` (the URL without its password).
    statement_timeout : str
        PostgreSQL's limit for any one statement, e.g. ``"10min"`` or ``"30s"``.
    work_mem : str or None
        Memory each sort or hash of segwise's queries may use before spilling to disk
        (this session only; PostgreSQL's default of 4MB spills the per-order
        aggregates of a million lines). None keeps the server's setting.
    connect_timeout : int
        Seconds to wait for the server to answer.
    """

    name = "postgres"
    dialect = "postgres"

    def __init__(self, url: str, *, statement_timeout: str = "10min", work_mem: str | None = "64MB",
                 connect_timeout: int = 10) -> None:
        psycopg = psycopg_module()
        self.url = normalize_postgres_url(url)
        self.label = describe_postgres_url(self.url)
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        #: Bytes of result data received from the server (COPY streams), for benchmarks.
        self.bytes_received = 0
        self._created: set[str] = set()
        try:
            # Autocommit: every statement is its own transaction, and the TEMPORARY
            # tables live for the session (not one transaction).
            self.con = psycopg.connect(self.url, connect_timeout=connect_timeout, autocommit=True,
                                       application_name="segwise")
        except psycopg.OperationalError as exc:
            raise InputError(
                f"{self.label}: cannot connect to PostgreSQL ({self._reason(exc)}). Check the host, port, "
                "database and user in the URL, that the server accepts connections, and the password "
                "(in PGPASSWORD or ~/.pgpass)"
            ) from None
        # The session ends (and its temporary tables with it) when the engine is
        # closed or collected, whichever comes first.
        self._close = weakref.finalize(self, self.con.close)
        self._run("SELECT set_config('statement_timeout', %s, false), set_config('TimeZone', 'UTC', false)",
                  [statement_timeout])
        if work_mem is not None:
            self._run("SELECT set_config('work_mem', %s, false)", [work_mem])

    # ------------------------------------------------------------------ protocol

    @property
    def cleaning(self) -> "PostgresCleaning":
        """Reading tables and queries of this database and typing their values."""
        return PostgresCleaning(self)

    #: Quote an identifier for this engine's SQL.
    quote = staticmethod(quote_identifier)

    def unique_name(self, prefix: str) -> str:
        """A fresh name for a temporary table or view of this session."""
        return f"{prefix}_{os.getpid()}_{next(_counter)}"

    def execute(self, query: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL text (DuckDB's dialect, translated) with ``?`` parameters; return all rows."""
        return self._run(to_postgres(query), params, fetch=True)

    def fetch_arrow(self, query: str | ibis.Table, params: list[Any] | None = None) -> pa.Table:
        """Run SQL text (translated) or an Ibis expression; stream the result back as Arrow.

        An Ibis expression PostgreSQL cannot run (a function it lacks, such as one
        an extension would add) is computed by an embedded DuckDB instead, on the
        columns it reads, fetched from the database; a `DataWarning` says so.
        """
        sql = self._sql(query)
        if params:
            # COPY takes no parameters; such queries are small lookups.
            return self._rows_to_arrow(sql, params)
        if isinstance(query, str):
            return self._copy_to_arrow(sql)
        psycopg = psycopg_module()
        try:
            check_statement(sql, self._created)
            with self.con.cursor() as cur:
                cur.execute(f"EXPLAIN {sql}")  # compiles the query: unknown functions show here
        except (psycopg.errors.UndefinedFunction, psycopg.errors.FeatureNotSupported) as exc:
            return self._computed_locally(query, self._reason(exc))
        except psycopg.Error:
            pass  # any other error is reported by the real run below, with its message
        return self._copy_to_arrow(sql)

    def fetch_df(self, query: str | ibis.Table, params: list[Any] | None = None) -> pd.DataFrame:
        """As `fetch_arrow`, as pandas."""
        return self.fetch_arrow(query, params).to_pandas()

    def table(self, name: str) -> ibis.Table:
        """An unbound Ibis table with the name and schema of a table or view of this session."""
        schema = {c: ibis_type(t) for c, t in self.columns(name).items()}
        return ibis.table(schema, name=name)

    def materialize(self, expr: ibis.Table | str, name: str | None = None) -> str:
        """Store an Ibis expression (or SQL text) as a TEMPORARY table of this session; return its name."""
        name = name or self.unique_name("segwise_t")
        self._created.add(name)
        self._run(f"DROP TABLE IF EXISTS pg_temp.{quote_identifier(name)}")
        self._run(f"CREATE TEMPORARY TABLE {quote_identifier(name)} AS {self._sql(expr)}")
        # Temporary tables get no statistics from autovacuum: without them the
        # planner guesses row counts and may choose nested loops over millions of rows.
        self._run(f"ANALYZE {quote_identifier(name)}")
        return name

    def temporary_view(self, name: str, sql: str) -> str:
        """A TEMPORARY view of this session over PostgreSQL text ``sql``."""
        self._created.add(name)
        self._run(f"CREATE TEMPORARY VIEW {quote_identifier(name)} AS {sql}")
        return name

    def columns(self, name: str) -> dict[str, str]:
        """Column name to type name (segwise's shared vocabulary, e.g. ``BIGINT``, ``VARCHAR``), in order."""
        rows = self._run(
            "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [quote_identifier(name)], fetch=True,
        )
        if not rows:
            raise InputError(f"{self.label}: no table {name!r}")
        return {column: _TYPE_NAMES.get(pg_type, pg_type.upper()) for column, pg_type in rows}

    def drop(self, name: str) -> None:
        """Drop a temporary table made by `materialize` (no error when it is gone)."""
        self._run(f"DROP TABLE IF EXISTS pg_temp.{quote_identifier(name)}")
        self._created.discard(name)

    def close(self) -> None:
        """End the session (its temporary tables and views go with it)."""
        self._close()

    def to_local(self, source: Any) -> Any:
        """A table of this database (``NAME`` or ``SCHEMA.NAME``) as Arrow, for the local engine.

        Anything else (a file path, a frame) is returned as it is.
        """
        if self.local_label(source) is None:
            return source
        return self.fetch_arrow(f"SELECT * FROM {table_sql(self, source)}")

    def _computed_locally(self, query: ibis.Table, reason: str) -> pa.Table:
        """``query`` run by DuckDB on the columns it reads from this session's tables."""
        import warnings

        import ibis.expr.operations as ops

        from segwise.engines.base import get_engine
        from segwise.errors import DataWarning

        local = get_engine("duckdb")
        n_rows = 0
        for source in query.op().find(ops.UnboundTable):
            needed = [c for c in source.schema.names
                      if any(f.rel == source and f.name == c for f in query.op().find(ops.Field))]
            columns = ", ".join(quote_identifier(c) for c in needed) or "1 AS segwise_none"
            rows = self._copy_to_arrow(f"SELECT {columns} FROM {quote_identifier(source.name)}")
            local.register(source.name, rows)
            n_rows += rows.num_rows
        message = (f"{self.label}: PostgreSQL cannot run a feature query ({reason}); it ran in DuckDB on the "
                   f"{n_rows:,} rows of the columns it needs, fetched from the database")
        warnings.warn(message, DataWarning, stacklevel=3)
        log.warning(message)
        try:
            return local.fetch_arrow(query)
        finally:
            local.close()

    def write_assignments(self, assignments: pd.DataFrame, out_dir: str | os.PathLike) -> None:
        """Nothing to add: the run directory holds the assignments; segwise writes to the
        database only when asked (``segwise export --to postgresql://...``)."""
        return None

    def local_label(self, source: Any) -> str | None:
        """How `to_local` names ``source`` in messages (None: not a table of this database)."""
        if not isinstance(source, str) or os.path.exists(source) or not _TABLE_NAME.fullmatch(source):
            return None
        return f"{self.label} (table {source})"

    # ------------------------------------------------------------------ internals

    def _sql(self, query: str | ibis.Table) -> str:
        if isinstance(query, str):
            return to_postgres(query)
        return compile_ibis(query)

    def _reason(self, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return mask_secrets(first, self.url)

    @contextlib.contextmanager
    def _errors(self):
        """Database errors as InputError naming the source (password masked) and the fix."""
        psycopg = psycopg_module()
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:
            raise InputError(
                f"{self.label}: permission denied ({self._reason(exc)}); segwise needs SELECT on the source "
                "table and the TEMPORARY privilege on the database: ask the owner to GRANT them"
            ) from None
        except psycopg.errors.QueryCanceled:
            raise InputError(
                f"{self.label}: a query ran longer than the statement timeout ({self.statement_timeout}) and was "
                "cancelled; raise it (Python: PostgresEngine(url, statement_timeout='30min')) or give a smaller "
                "--query"
            ) from None
        except psycopg.OperationalError as exc:
            raise InputError(f"{self.label}: the connection to PostgreSQL failed ({self._reason(exc)})") from None
        except psycopg.Error as exc:
            raise InputError(f"{self.label}: PostgreSQL could not run a query ({self._reason(exc)})") from None

    def _run(self, sql: str, params: list[Any] | None = None, fetch: bool = False) -> list[tuple]:
        """Send one PostgreSQL statement (checked by `check_statement`)."""
        check_statement(sql, self._created)
        with self._errors(), self.con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if fetch and cur.description is not None else []

    def _result_types(self, sql: str, params: list[Any] | None = None) -> list[tuple[str, pa.DataType]]:
        """Names and Arrow types of a query's columns (every fetch starts here, checked)."""
        check_statement(sql, self._created)
        with self._errors(), self.con.cursor() as cur:
            cur.execute(f"SELECT * FROM ({sql}) AS segwise_result LIMIT 0", params)
            description = cur.description
        types = []
        for column in description:
            info = self.con.adapters.types.get(column.type_code)
            types.append((column.name, _ARROW_TYPES.get(info.name if info else "", pa.string())))
        return types

    def _copy_to_arrow(self, sql: str) -> pa.Table:
        """Stream a result with COPY (CSV) and parse it into Arrow blocks as the bytes arrive.

        Only one block of CSV text (`BATCH_BYTES`) is held at a time besides the
        Arrow columns, so a fetched table takes about its Arrow size in memory.
        """
        types = self._result_types(sql)
        names = [n for n, _ in types]
        options = dict(
            read_options=pacsv.ReadOptions(column_names=names, block_size=BATCH_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: (pa.string() if pa.types.is_temporal(t) else t) for n, t in types},
                # CSV from COPY: NULL is an unquoted empty field, an empty text is "".
                strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""],
                true_values=["t"], false_values=["f"],
            ),
        )
        batches = []
        with self._errors(), self.con.cursor() as cur:
            with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER false)") as copy:
                stream = io.BufferedReader(_CopyStream(copy, self), buffer_size=BATCH_BYTES)
                if stream.peek(1):
                    batches = list(pacsv.open_csv(stream, **options))
        table = pa.Table.from_batches(batches, schema=pa.schema(
            [(n, pa.string() if pa.types.is_temporal(t) else t) for n, t in types]))
        for i, (name, arrow_type) in enumerate(types):
            if pa.types.is_temporal(arrow_type):
                table = table.set_column(i, name, _parse_times(table.column(i), arrow_type))
        return table

    def _rows_to_arrow(self, sql: str, params: list[Any]) -> pa.Table:
        types = dict(self._result_types(sql, params))
        with self._errors(), self.con.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
            names = [c.name for c in cur.description]
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        return pa.table({n: pa.array(list(v), types.get(n)) for n, v in zip(names, columns)})


class _CopyStream(io.RawIOBase):
    """The chunks of a ``COPY ... TO STDOUT`` as a readable byte stream (counted on the engine)."""

    def __init__(self, copy: Any, engine: PostgresEngine) -> None:
        self._chunks = iter(copy)
        self._engine = engine
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._pending):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(bytes(chunk))
            self._engine.bytes_received += len(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _parse_times(column: pa.ChunkedArray, arrow_type: pa.DataType) -> pa.ChunkedArray:
    """Dates and timestamps as PostgreSQL writes them in CSV (ISO; timestamptz with ``+00``: UTC session)."""
    import pyarrow.compute as pc

    if arrow_type == pa.date32():
        return column.cast(pa.date32())
    if getattr(arrow_type, "tz", None):
        column = pc.replace_substring_regex(column, r"\+00$", "")
    return column.cast(pa.timestamp("us")).cast(arrow_type)


# --------------------------------------------------------------------------- the reading and cleaning dialect

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
_ISO_TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"


class PostgresCleaning(CleaningDialect):
    """Reading a table or query of the database, and typing its values (``engine.cleaning``).

    The SQL is written like the other dialects' and translated by the engine
    (`to_postgres`), so the shared rules of `CleaningDialect` apply as they are.
    """

    NULL_TEXT = "CAST(NULL AS VARCHAR)"
    STRING = "VARCHAR"

    def full_match(self, text: str, pattern: str) -> str:
        # regexp_matches is a partial match: anchored, it is a full one (PostgreSQL's ~).
        return f"regexp_matches({text}, '^(?:{pattern})$')"

    def starts_with_c(self, order: str) -> str:
        return f"coalesce(left(upper({order}), 1) = 'C', false)"

    def line_hash(self, quoted_columns: list[str]) -> str:
        """SQL: the whole source line as one value, for finding double exports.

        ``json_build_array`` keeps NULL apart from the text 'null' and from an empty
        text, so two lines have the same value exactly when every column is equal.
        """
        return f"md5(CAST(json_build_array({', '.join(quoted_columns)}) AS VARCHAR))"

    def invalid_number(self, column: str) -> str:
        # PostgreSQL's NaN equals itself (unlike IEEE): the comparisons are exact.
        return (f"{column} IS NULL OR {column} = CAST('NaN' AS DOUBLE) "
                f"OR abs({column}) = CAST('Infinity' AS DOUBLE)")

    def _integral_text(self, text: str) -> str:
        return f"regexp_replace({text}, '^(-?[0-9]+)\\.0+$', '\\1')"

    def timestamp_sql(self, raw: RawInput, column: str, date_format: str | None = None) -> ParsedColumn:
        """SQL turning ``column`` into a TIMESTAMP.

        Native ``timestamp``/``date`` columns are used as they are (a ``timestamptz``
        as UTC wall-clock time: the session's time zone is UTC). Dates kept as text
        are read when they are ISO 8601 (``2024-01-31`` or ``2024-01-31 10:15:00``);
        any other text format is for the database to parse, in ``--query`` (e.g.
        ``to_timestamp(col, 'DD/MM/YYYY')``): telling day-first from month-first by
        the values is a feature of the DuckDB engine.
        """
        kind = raw.kinds[column]
        col = quote_identifier(column)
        if kind in ("timestamp", "date"):
            return ParsedColumn(f"CAST({col} AS TIMESTAMP)", f"native {kind}")
        text = self.text_sql(column)
        iso = self.full_match(text, _ISO_TIMESTAMP)
        n_values, n_iso = self.engine.execute(
            f"SELECT count({text}), count(*) FILTER (WHERE {iso}) FROM {quote_identifier(raw.name)}"
        )[0]
        if date_format is not None or n_values == 0 or n_iso < n_values:
            rows, values = self.offending(raw, f"{text} IS NOT NULL AND NOT ({iso})", column, 3)
            shown = f" ({raw.rows_phrase(rows)}: {', '.join(map(repr, values))})" if rows else ""
            raise InputError(
                f"{raw.label}: column {column!r} does not hold dates as timestamps or ISO 8601 text "
                f"(YYYY-MM-DD){shown}. Let PostgreSQL parse them: --query \"SELECT *, to_timestamp({column}, "
                "'DD/MM/YYYY HH24:MI') AS ordered_at FROM ...\" (or use --engine duckdb, which detects formats)"
            )
        return ParsedColumn(f"CASE WHEN {iso} THEN CAST({text} AS TIMESTAMP) END", ISO_8601)

    def read_raw(self, source: Any, *, table: str | None = None, query: str | None = None,
                 column_names: list[str] | None = None, what: str = "transaction log",
                 **_file_options: Any) -> RawInput:
        """The table or query as a TEMPORARY view with row numbers (no data is copied).

        ``source`` is the URL the engine is connected to; the options of text files
        (delimiter, header, encoding) do not apply to a database and are ignored.
        """
        engine = self.engine
        if (table is None) == (query is None):
            raise InputError(
                f"{engine.label}: name the {what} with --table NAME (or SCHEMA.NAME), or give --query "
                "\"SELECT ...\" (Python: table= or query=)"
            )
        if column_names:
            raise InputError(f"{engine.label}: column names cannot be given for a database table; it has its own")
        if table is not None:
            body, label = f"SELECT * FROM {table_sql(engine, table)}", f"{engine.label} (table {table})"
        else:
            body, label = query.strip().rstrip(";"), f"{engine.label} (query)"
            # Errors in the user's query (syntax, unknown column) come back here, named.
            engine._run(f"SELECT * FROM ({body}) AS segwise_query LIMIT 0")
        name = engine.unique_name("segwise_raw")
        # Row numbers only name rows in messages; a table or query has no order of its own.
        engine.temporary_view(name, f"SELECT segwise_src.*, row_number() OVER () AS {ROW_COL} "
                                    f"FROM ({body}) AS segwise_src")
        columns = engine.columns(name)
        if ROW_COL in list(columns)[:-1]:
            raise InputError(f"{label}: a column is named {ROW_COL!r}, which segwise uses itself; rename it")
        if not engine.execute(f"SELECT count(*) FROM (SELECT 1 FROM {quote_identifier(name)} LIMIT 1)")[0][0]:
            raise InputError(f"{label}: the {what} has no rows")
        return RawInput(name, label, columns, "row")


def table_sql(engine: PostgresEngine, table: str) -> str:
    """``"schema"."table"`` for ``NAME`` or ``SCHEMA.NAME``, checked to exist (the message lists tables)."""
    if not _TABLE_NAME.fullmatch(table):
        raise InputError(f"{engine.label}: --table {table!r} is not a table name; write NAME or SCHEMA.NAME "
                         "(or give a --query)")
    quoted = ".".join(map(quote_identifier, table.split(".")))
    if not engine._run("SELECT to_regclass(%s) IS NOT NULL", [quoted], fetch=True)[0][0]:
        tables = [r[0] for r in engine._run(
            "SELECT CASE WHEN table_schema = current_schema() THEN table_name "
            "ELSE table_schema || '.' || table_name END FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg_temp%%' "
            "ORDER BY 1 LIMIT 20", fetch=True)]
        raise InputError(
            f"{engine.label}: no table {table!r} in the database; tables you can see: "
            f"{', '.join(tables) or 'none'}. Name one with --table NAME or give a --query"
        )
    return quoted
