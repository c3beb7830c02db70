"""Loading transaction logs and customer tables, with named and counted cleaning.

`load_transactions` reads any supported source, detects the column roles, parses
the values and applies the cleaning rules below, each counted in the returned
`CleaningReport` (nothing is dropped silently):

=====================  ======================================================  ========
rule                   what it matches                                         action
=====================  ======================================================  ========
missing_customer_id    no customer id                                          removed
missing_timestamp      no date                                                 removed
invalid_amount         amount missing, NaN or infinite                         removed
non_positive_price     unit price of zero or below (quantity x price logs)     removed
zero_amount            a purchase of amount exactly zero (a free item)         kept, an
                                                                               order that
                                                                               adds no spend
duplicate_line         an identical line repeated within one order (only       removed
                       when the log has an order id: a double export)
cancellation           invoice id ``C123...`` or a negative amount             kept, netted
                                                                               against spend,
                                                                               not an order
after_as_of            timestamp on or after the as_of date (features step)    excluded
rare_category          a category outside the `MAX_CATEGORIES` most frequent   kept, as
                                                                               'other'
=====================  ======================================================  ========

The cleaned table has the canonical columns ``customer_id`` (text), ``order_id``
(text or NULL), ``ts`` (timestamp), ``amount`` (double, negative for returns),
``is_return`` (boolean) and, when the log has them, ``category``, ``channel`` and
``discount`` (boolean).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import ibis
import pandas as pd

from segwise.engines.base import Engine, get_engine, quote_identifier as q
from segwise.engines.dialect import DECIMAL_COMMA, ROW_COL, RawInput
from segwise.errors import DataWarning, InputError
from segwise.schema import ColumnRoles, detect_customer_id_column, detect_transaction_roles, normalize_name

__all__ = [
    "CLEANING_RULES",
    "CleaningReport",
    "Transactions",
    "CustomerTable",
    "load_transactions",
    "load_customers",
]

log = logging.getLogger(__name__)

#: Every cleaning rule, in the order it is applied, with what it means.
CLEANING_RULES: dict[str, str] = {
    "missing_customer_id": "rows without a customer id (removed)",
    "missing_timestamp": "rows without a date (removed)",
    "invalid_amount": "rows whose amount is missing, NaN or infinite (removed)",
    "non_positive_price": "rows with a unit price of zero or below (removed)",
    "zero_amount": (
        "purchases with an amount of exactly zero, e.g. a free item (kept: an order for recency, order "
        "counts and tenure that adds nothing to spend)"
    ),
    "duplicate_line": "identical lines repeated within one order: double exports (removed)",
    "cancellation": "cancellations and returns (kept, netted against spend, not counted as orders)",
    "after_as_of": "rows dated on or after as_of (excluded from features)",
    "rare_category": "rows whose category is not among the MAX_CATEGORIES most frequent (kept, category 'other')",
}

#: Rules that keep the row (they change or exclude it later instead of removing it).
_KEEPING_RULES = ("zero_amount", "cancellation", "after_as_of", "rare_category")
_REMOVING_RULES = [r for r in CLEANING_RULES if r not in (*_KEEPING_RULES, "duplicate_line")]

#: Distinct categories kept; rarer ones become "other" (so a SKU column cannot blow up profiles).
MAX_CATEGORIES = 1_000
#: An amount this large is not money but a broken export (sums of such values overflow).
MAX_ABS_AMOUNT = 1e15


@dataclass
class CleaningReport:
    """Rows in, and rows matched by each cleaning rule (see `CLEANING_RULES`)."""

    input_rows: int
    rules: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def removed_rows(self) -> int:
        """Rows removed by the loader (cancellations are kept, after_as_of is later)."""
        return sum(v for k, v in self.rules.items() if k not in _KEEPING_RULES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as written to run.json."""
        return {
            "input_rows": self.input_rows,
            "rules": dict(self.rules),
            "rule_descriptions": {k: CLEANING_RULES[k] for k in self.rules},
            "notes": list(self.notes),
        }


@dataclass
class Transactions:
    """A cleaned transaction log living in an engine.

    Attributes
    ----------
    engine : DuckDBEngine or SparkEngine
    table_name : str
        Name of the cleaned table in the engine (canonical columns, see module doc).
    roles : ColumnRoles
        Which source column played which role.
    source : str
        Where the data came from (file path or frame type).
    cleaning : CleaningReport
    timestamp_format : str
        How the date column was parsed (e.g. ``"%d/%m/%Y %H:%M (day first)"``).
    has_time_of_day : bool
        False when every timestamp is at midnight (dates only): part-of-day
        features are then not computed.
    n_rows, n_customers : int
    first_timestamp, last_timestamp : datetime
    """

    engine: Engine
    table_name: str
    roles: ColumnRoles
    source: str
    cleaning: CleaningReport
    timestamp_format: str
    has_time_of_day: bool
    n_rows: int
    n_customers: int
    first_timestamp: datetime
    last_timestamp: datetime
    #: Text columns of the log without a role, carried into the cleaned table as
    #: ``attr_<name>`` (`attribute_column`; canonical name -> source column): candidates for customer
    #: attributes (`segwise.features.attributes` decides which describe the customer).
    attribute_columns: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> ibis.Table:
        """The cleaned table as an Ibis expression."""
        return self.engine.table(self.table_name)

    @property
    def has_category(self) -> bool:
        return self.roles.category is not None

    @property
    def has_channel(self) -> bool:
        return self.roles.channel is not None

    @property
    def has_discount(self) -> bool:
        return self.roles.discount is not None

    @property
    def has_order_id(self) -> bool:
        return self.roles.order_id is not None

    def default_as_of(self) -> date:
        """The day after the last transaction (the default observation date)."""
        return (pd.Timestamp(self.last_timestamp).normalize() + pd.Timedelta(days=1)).date()

    def to_pandas(self) -> pd.DataFrame:
        """The cleaned rows as pandas (small logs only: this copies everything)."""
        return self.engine.fetch_df(f"SELECT * FROM {self.engine.quote(self.table_name)}")

    def summary(self) -> dict[str, Any]:
        """Facts about the log recorded with every run."""
        return {
            "source": self.source,
            "rows": self.n_rows,
            "customers": self.n_customers,
            "first_timestamp": str(self.first_timestamp),
            "last_timestamp": str(self.last_timestamp),
            "timestamp_format": self.timestamp_format,
            "has_time_of_day": self.has_time_of_day,
            "roles": self.roles.to_dict(),
            "cleaning": self.cleaning.to_dict(),
        }


def load_transactions(
    source: Any,
    *,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
    order_id_col: str | None = None,
    quantity_col: str | None = None,
    price_col: str | None = None,
    category_col: str | None = None,
    channel_col: str | None = None,
    discount_col: str | None = None,
    date_format: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    column_names: list[str] | None = None,
    encoding: str = "auto",
    table: str | None = None,
    query: str | None = None,
    engine: Engine | str | None = None,
) -> Transactions:
    """Load, type and clean a transaction log.

    Parameters
    ----------
    source : str, Path, DataFrame, pyarrow.Table or ibis.Table
        CSV / TSV / whitespace-separated text (any delimiter, header detected),
        Parquet file or directory, DuckDB file (with ``table``), a PostgreSQL URL
        ``postgresql://USER@HOST:PORT/DATABASE`` (with ``table`` or ``query``), a
        pandas / polars / Arrow frame, or an Ibis table expression (executed by its
        own backend).
    customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col, \
category_col, channel_col, discount_col : str, optional
        Column names for each role; detected from the column names when not given.
        Without an amount column the amount is ``quantity * price``.
    date_format : str, optional
        strptime format of the date column, e.g. ``"%d/%m/%Y %H:%M"``; detected when
        not given (day-first vs month-first is decided from the values).
    delimiter : str, optional
        Field delimiter of a text file (``","``, ``";"``, ``"\\t"``, ``"|"`` or
        ``"whitespace"``); detected when not given.
    header : bool, optional
        Whether a text file has a header line; detected when not given.
    column_names : list of str, optional
        Column names for a file without a header line.
    encoding : {"auto", "utf-8", "latin-1"}
        ``"auto"``: UTF-8 with or without BOM, falling back to Latin-1 with a
        `DataWarning` when the bytes are not UTF-8.
    table : str, optional
        Table to read from a DuckDB file or a PostgreSQL database (``NAME`` or
        ``SCHEMA.NAME``); on the Spark engine, a table of the Spark catalog (with
        ``source=None``).
    query : str, optional
        With a PostgreSQL URL: a SELECT whose rows are the log (instead of ``table``).
    engine : DuckDBEngine, SparkEngine, PostgresEngine, "duckdb", "spark", "postgres" or a SparkSession, optional
        Where the data is loaded; a new in-memory DuckDB by default, and the database
        itself for a PostgreSQL URL (``"duckdb"`` or a DuckDB engine fetches the rows
        instead). On Spark, ``source`` may also be a Spark DataFrame or any
        Hadoop-compatible URI.

    Returns
    -------
    Transactions

    Raises
    ------
    InputError
        Missing or ambiguous columns, unreadable dates or numbers, empty or
        unreadable files; the message names the source, the column, some offending
        rows and the fix.
    """
    source, engine, source_options = _resolve_source(source, engine, table, query)
    label = source_options.pop("label", None)
    raw = engine.cleaning.read_raw(
        source, delimiter=delimiter, header=header,
        column_names=column_names, encoding=encoding, what="transaction log", **source_options,
    )
    raw.label = label or raw.label
    overrides = {
        "customer_id": customer_id_col, "timestamp": timestamp_col, "amount": amount_col,
        "order_id": order_id_col, "quantity": quantity_col, "unit_price": price_col,
        "category": category_col, "channel": channel_col, "discount": discount_col,
    }
    roles = detect_transaction_roles(raw.kinds, overrides, source=raw.label)
    return _clean(engine, raw, roles, date_format)


def _resolve_source(source: Any, engine: Any, table: str | None, query: str | None) -> tuple[Any, Engine, dict]:
    """The source, the engine that reads it, and the read_raw options naming the table.

    A PostgreSQL URL is read by a PostgreSQL engine (the work runs in the database)
    unless a DuckDB engine is asked for: then its table or query is fetched, in
    streamed chunks, into DuckDB. An Ibis expression is executed by its backend.
    """
    from segwise.engines.postgres_url import is_postgres_url

    if is_postgres_url(source):
        from segwise.engines.postgres import PostgresEngine

        wants_duckdb = engine == "duckdb" or getattr(engine, "name", None) == "duckdb"
        if isinstance(engine, PostgresEngine):
            return source, engine, {"table": table, "query": query}
        if engine not in (None, "postgres") and not wants_duckdb:
            raise InputError(f"a PostgreSQL source runs on --engine postgres or duckdb, not {engine!r}")
        pg = PostgresEngine(source)
        if not wants_duckdb:
            return source, pg, {"table": table, "query": query}
        raw = pg.cleaning.read_raw(source, table=table, query=query)
        source = pg.fetch_arrow(f"SELECT * FROM {pg.quote(raw.name)} ORDER BY {ROW_COL}").drop_columns([ROW_COL])
        pg.close()
        return source, get_engine(engine), {"label": raw.label}
    if query is not None:
        raise InputError("query= (--query) reads from a PostgreSQL database: give a postgresql:// URL as the source")
    if type(source).__module__.startswith("ibis") and hasattr(source, "to_pyarrow"):
        # An Ibis expression on any backend: its rows, as Arrow, read like a frame.
        source = source.to_pyarrow()
    return source, get_engine(engine), {"table": table}


def _cancellation_prefix_rule(engine: Engine, raw: RawInput, order_col: str) -> bool:
    """Whether invoice ids like ``C536379`` mark cancellations in this log.

    Only when such ids are a minority and the other ids are plain numbers (the
    UCI/Online-Retail convention); order ids such as ``CA-2016-152156`` that merely
    start with C are left alone.
    """
    sql = engine.cleaning
    text = sql.text_sql(order_col)
    n, n_c, n_numeric = engine.execute(
        f"SELECT count({text}), count(*) FILTER (WHERE {sql.full_match(text, '[Cc][0-9]+')}), "
        f"count(*) FILTER (WHERE {sql.full_match(text, '[0-9]+')}) FROM {engine.quote(raw.name)}"
    )[0]
    return 0 < n_c < 0.5 * n and n_numeric >= 0.9 * (n - n_c)


def _check_not_empty(engine: Engine, raw: RawInput, roles: ColumnRoles) -> None:
    """A role given to a column without a single value is a wrong column, not dirty rows."""
    q = engine.quote
    columns = [(role, getattr(roles, role)) for role in ("customer_id", "timestamp", "amount", "unit_price")
               if getattr(roles, role) is not None]
    kinds = raw.kinds

    def filled(column: str) -> str:
        # Only text can hold blanks; counting a typed column's values avoids
        # casting every timestamp or number to text (a second per 10M rows).
        if kinds.get(column) in ("timestamp", "date", "integer", "float", "boolean"):
            return f"count({q(column)})"
        return f"count(NULLIF(trim(CAST({q(column)} AS STRING)), ''))"

    # One scan for all roles.
    counts = engine.execute(
        f"SELECT count(*), {', '.join(filled(column) for _, column in columns)} FROM {q(raw.name)}"
    )[0]
    n_rows = counts[0]
    for (role, column), n_filled in zip(columns, counts[1:]):
        if n_filled == 0:
            option = {"customer_id": "--customer-id-col", "timestamp": "--timestamp-col",
                      "unit_price": "--price-col"}.get(role, "--amount-col")
            raise InputError(
                f"{raw.label}: column {column!r} (the {role.replace('_', ' ')}) is empty in all {n_rows} rows; "
                f"export it again with its values, or name another column with {option} NAME"
            )


def _check_amount_magnitude(engine: Engine, raw: RawInput, amount_sql: str, column: str) -> None:
    value = f"CAST({amount_sql} AS DOUBLE)"
    # Infinity and NaN are counted by the invalid_amount cleaning rule; written without
    # isinf(), which Spark SQL lacks.
    finite_and_huge = (f"NOT isnan({value}) AND abs({value}) >= {MAX_ABS_AMOUNT} "
                       f"AND abs({value}) < CAST('inf' AS DOUBLE)")
    engine.cleaning.check_values(
        raw, finite_and_huge, column,
        f"amounts are {MAX_ABS_AMOUNT:.0e} or larger",
        "That is not a plausible amount of money (sums would overflow); fix those values or choose another column.",
    )


def _cap_categories(engine: Engine, raw: RawInput, column: str, notes: list[str]) -> tuple[str, int]:
    """SQL for the category with all but the `MAX_CATEGORIES` most frequent as 'other' (DuckDB)."""
    text = engine.cleaning.text_sql(column)
    n_distinct = engine.execute(f"SELECT count(DISTINCT {text}) FROM {q(raw.name)}")[0][0]
    if n_distinct <= MAX_CATEGORIES:
        return text, 0
    top = engine.unique_name("segwise_top_categories")
    engine.execute(
        f"CREATE TEMP TABLE {q(top)} AS SELECT {text} AS category FROM {q(raw.name)} WHERE {text} IS NOT NULL "
        f"GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {MAX_CATEGORIES - 1}"
    )
    n_rare = engine.execute(
        f"SELECT count(*) FROM {q(raw.name)} WHERE {text} IS NOT NULL AND {text} NOT IN (SELECT category FROM {q(top)})"
    )[0][0]
    message = (
        f"{raw.label}: column {column!r} has {n_distinct:,} distinct categories; the {MAX_CATEGORIES - 1:,} most "
        f"frequent are kept and the other {n_distinct - MAX_CATEGORIES + 1:,} ({n_rare:,} rows) are counted as "
        "'other' (use a coarser category column for category features)"
    )
    warnings.warn(message, DataWarning, stacklevel=4)
    notes.append(message)
    capped = (f"CASE WHEN {text} IS NULL THEN NULL WHEN {text} IN (SELECT category FROM {q(top)}) THEN {text} "
              "ELSE 'other' END")
    return capped, int(n_rare)


def _clean(engine: Engine, raw: RawInput, roles: ColumnRoles, date_format: str | None) -> Transactions:
    sql = engine.cleaning
    _check_not_empty(engine, raw, roles)
    q = engine.quote
    ts = sql.timestamp_sql(raw, roles.timestamp, date_format)
    unit_price_sql = None
    notes = list(raw.notes)

    def number(column: str) -> str:
        parsed = sql.number_sql(raw, column)
        if parsed.how == DECIMAL_COMMA:
            notes.append(f"column {column!r} is written with a decimal comma and read that way ('1.234,56' is 1234.56)")
        return parsed.sql

    if roles.amount is not None:
        amount_sql = number(roles.amount)
    else:
        unit_price_sql = number(roles.unit_price)
        quantity = number(roles.quantity) if roles.quantity else "1.0"
        amount_sql = f"({quantity}) * ({unit_price_sql})"
    _check_amount_magnitude(engine, raw, amount_sql, roles.amount or roles.unit_price)
    n_rare_category = 0
    order_sql = sql.id_sql(raw, roles.order_id) if roles.order_id else sql.NULL_TEXT
    prefix_rule = roles.order_id is not None and _cancellation_prefix_rule(engine, raw, roles.order_id)
    cancel_id = sql.starts_with_c(order_sql) if prefix_rule else "false"
    extra: dict[str, str] = {}
    if roles.category:
        if engine.name in ("duckdb", "postgres"):
            extra["category"], n_rare_category = _cap_categories(engine, raw, roles.category, notes)
        else:  # Spark SQL has no IN (subquery) in a select list; its categories are not capped
            extra["category"] = sql.text_sql(roles.category)
    if roles.channel:
        extra["channel"] = sql.text_sql(roles.channel)
    if roles.discount:
        extra["discount"] = sql.flag_sql(raw, roles.discount).sql
    attribute_columns = _attribute_candidates(engine, raw, roles)
    extra.update({name: sql.text_sql(source) for name, source in attribute_columns.items()})
    extra_names = list(extra)
    extra_select = "".join(f", {expr} AS {name}" for name, expr in extra.items())
    extra_cols = "".join(f", {name}" for name in extra_names)
    raw_cols = [c for c in raw.columns if c != ROW_COL]
    # Duplicates are judged on the whole source line (all its columns), not on the
    # canonical columns: two different products with the same price in one order
    # are two lines, not a double export.
    line_hash = sql.line_hash([q(c) for c in raw_cols]) if roles.order_id else "0"
    price_rule = "WHEN unit_price <= 0 THEN 'non_positive_price'" if unit_price_sql is not None else ""
    # A subquery, not a temporary view: on Spark, dropping a view uncaches every
    # persisted table computed from it (cascading invalidation), so the cleaned
    # table would be recomputed from the raw file by every later query.
    typed = f"""(
        SELECT customer_id, order_id, ts, amount_raw, cancel_id, line_hash{extra_cols},
            CASE WHEN customer_id IS NULL THEN 'missing_customer_id'
                 WHEN ts IS NULL THEN 'missing_timestamp'
                 WHEN {sql.invalid_number('amount_raw')} THEN 'invalid_amount'
                 {price_rule}
            END AS drop_rule
        FROM (
            SELECT {sql.id_sql(raw, roles.customer_id)} AS customer_id,
                   {order_sql} AS order_id,
                   {ts.sql} AS ts,
                   CAST({amount_sql} AS DOUBLE) AS amount_raw,
                   {f'CAST({unit_price_sql} AS DOUBLE)' if unit_price_sql else 'NULL'} AS unit_price,
                   {cancel_id} AS cancel_id,
                   {line_hash} AS line_hash{extra_select}
            FROM {q(raw.name)}
        )
    ) AS typed"""
    counts = dict(engine.execute(f"SELECT coalesce(drop_rule, 'kept'), count(*) FROM {typed} GROUP BY 1"))
    input_rows = sum(counts.values())
    kept = counts.get("kept", 0)
    rules = {rule: int(counts.get(rule, 0)) for rule in _REMOVING_RULES}
    if unit_price_sql is None:
        rules.pop("non_positive_price")
    canonical = (
        "customer_id, order_id, ts, "
        "CASE WHEN cancel_id THEN -abs(amount_raw) ELSE amount_raw END AS amount, "
        "(cancel_id OR amount_raw < 0) AS is_return" + extra_cols
    )
    clean = engine.unique_name("segwise_transactions")
    if roles.order_id:
        distinct_cols = "customer_id, order_id, ts, amount_raw, cancel_id, line_hash" + extra_cols
        engine.materialize(
            f"SELECT {canonical} FROM "
            f"(SELECT DISTINCT {distinct_cols} FROM {typed} WHERE drop_rule IS NULL)",
            clean,
        )
    else:
        engine.materialize(f"SELECT {canonical} FROM {typed} WHERE drop_rule IS NULL", clean)
        notes.append("the log has no order id: identical rows are kept as separate purchases")
    stats = engine.execute(
        f"SELECT count(*), count(DISTINCT customer_id), min(ts), max(ts), "
        f"count(*) FILTER (WHERE is_return), count(*) FILTER (WHERE ts <> date_trunc('day', ts)), "
        f"count(*) FILTER (WHERE amount = 0 AND NOT is_return) "
        f"FROM {q(clean)}"
    )[0]
    n_rows, n_customers, first_ts, last_ts, n_returns, n_timed, n_zero = stats
    # A $0.00 line (a free item, a promotional CD) is still a purchase: dropping it
    # would lose customers whose only purchases were free and miscount others' orders.
    rules["zero_amount"] = int(n_zero)
    rules["duplicate_line"] = int(kept - n_rows)
    rules["cancellation"] = int(n_returns)
    if n_rare_category:
        rules["rare_category"] = n_rare_category
    if not prefix_rule and roles.order_id:
        notes.append("cancellations are recognised by negative amounts")
    if n_rows == 0:
        detail = ", ".join(f"{k}: {v}" for k, v in rules.items() if v)
        raise InputError(
            f"{raw.label}: no usable rows are left after cleaning ({input_rows} rows in; {detail}). "
            "Check the column roles (--customer-id-col, --amount-col, ...) and the data."
        )
    n_purchases = n_rows - n_returns
    if n_purchases == 0:
        raise InputError(
            f"{raw.label}: every one of the {n_rows} usable rows is a cancellation or return "
            "(negative amount or invoice id starting with 'C'); there are no purchases to segment"
        )
    report = CleaningReport(input_rows=int(input_rows), rules=rules, notes=notes)
    log.info("loaded %s: %d rows in, %d kept, %d customers", raw.label, input_rows, n_rows, n_customers)
    return Transactions(
        engine=engine,
        table_name=clean,
        roles=roles,
        source=raw.label,
        cleaning=report,
        timestamp_format=ts.how,
        has_time_of_day=bool(n_timed),
        n_rows=int(n_rows),
        n_customers=int(n_customers),
        first_timestamp=first_ts,
        last_timestamp=last_ts,
        attribute_columns=attribute_columns,
    )


#: Most distinct values of a role-less text column carried as a candidate customer attribute:
#: a country, region, store or customer type has a few dozen; product names have thousands.
MAX_ATTRIBUTE_LEVELS = 100


def _attribute_candidates(engine: Engine, raw: RawInput, roles: ColumnRoles) -> dict[str, str]:
    """Role-less text columns with at most `MAX_ATTRIBUTE_LEVELS` distinct values (canonical name -> source)."""
    used = {v for v in roles.to_dict().values() if isinstance(v, str) and v}
    text = [c for c, kind in raw.kinds.items() if kind == "string" and c not in used]
    if not text:
        return {}
    # One approximate pass over the log for every column (a sketch, not a distinct count per column).
    counts = engine.execute("SELECT " + ", ".join(f"approx_count_distinct({q(c)})" for c in text)
                            + f" FROM {q(raw.name)}")[0]
    chosen = [c for c, n in zip(text, counts) if 2 <= int(n) <= MAX_ATTRIBUTE_LEVELS]
    return {attribute_column(c): c for c in chosen}


def attribute_column(source: str) -> str:
    """Name in the cleaned table of a carried role-less text column (from its source name)."""
    return "attr_" + (normalize_name(source) or "blank")


# --------------------------------------------------------------------------- customers


@dataclass
class CustomerTable:
    """A customer attribute table: one row per customer.

    Attributes
    ----------
    frame : pandas.DataFrame
        Indexed by ``customer_id`` (text); numeric columns as float64, categorical
        columns as text, date columns as datetime64.
    kinds : dict
        Column to ``"numeric"``, ``"categorical"`` or ``"date"``.
    id_column : str
        The source column that held the customer id.
    source : str
    left_out : dict
        Columns not used, with the reason (id-like, constant, empty).
    notes : list of str
    """

    frame: pd.DataFrame
    kinds: dict[str, str]
    id_column: str
    source: str
    left_out: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_rows: int = 0
    rows_without_id: int = 0

    def summary(self) -> dict[str, Any]:
        """Facts recorded with the run."""
        return {
            "source": self.source,
            "rows": int(len(self.frame)),
            "input_rows": self.input_rows,
            "rows_without_id": self.rows_without_id,
            "id_column": self.id_column,
            "columns": dict(self.kinds),
            "left_out": dict(self.left_out),
            "notes": list(self.notes),
        }


_ID_HINTS = ("name", "email", "mail", "phone", "address", "uuid", "guid", "ssn", "iban")


def load_customers(
    source: Any,
    *,
    customer_id_col: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    column_names: list[str] | None = None,
    encoding: str = "auto",
    table: str | None = None,
    date_format: str | None = None,
    engine: Engine | str | None = None,
) -> CustomerTable:
    """Load a customer attribute table (one row per customer).

    Column types are inferred from the values: numbers, dates (converted to
    ``days_since_<column>`` when features are built) and categories. Columns that
    look like identifiers or free text (nearly one distinct value per row, or names
    such as email/phone), constant columns and empty columns are left out, each
    with a note. Missing values stay missing (they are imputed later, with a
    missing-indicator column).

    Parameters
    ----------
    source : str, Path or DataFrame
    customer_id_col : str, optional
        The id column; detected (customer_id, CustomerID, ID, ...) when not given.
    delimiter, header, column_names, encoding, table, date_format, engine
        As for `load_transactions`.

    Returns
    -------
    CustomerTable
    """
    engine = get_engine(engine)
    if engine.name != "duckdb":
        # One row per customer: read on the driver with DuckDB, whatever engine holds
        # the transaction log (a Spark DataFrame arrives as Arrow).
        # (A table of a PostgreSQL database keeps its name, password-free, in messages.)
        label = engine.local_label(source) if hasattr(engine, "local_label") else None
        source = engine.to_local(source)
        engine = get_engine()
    else:
        label = None
    raw = engine.cleaning.read_raw(
        source, table=table, delimiter=delimiter, header=header,
        column_names=column_names, encoding=encoding, what="customer table",
    )
    raw.label = label or raw.label
    id_col = detect_customer_id_column(raw.kinds, customer_id_col, source=raw.label)
    id_expr = engine.cleaning.id_sql(raw, id_col)
    n_rows, n_missing_id, n_distinct = engine.execute(
        f"SELECT count(*), count(*) FILTER (WHERE ({id_expr}) IS NULL), count(DISTINCT {id_expr}) FROM {q(raw.name)}"
    )[0]
    if n_distinct < n_rows - n_missing_id:
        rows = engine.execute(
            f"SELECT {ROW_COL} FROM (SELECT {ROW_COL}, count(*) OVER (PARTITION BY {id_expr}) AS n "
            f"FROM {q(raw.name)} WHERE ({id_expr}) IS NOT NULL) WHERE n > 1 ORDER BY {ROW_COL} LIMIT 6"
        )
        raise InputError(
            f"{raw.label}: {n_rows - n_missing_id - n_distinct} customer ids in column {id_col!r} "
            f"appear more than once ({raw.rows_phrase([r[0] for r in rows])}); a customer table "
            "needs one row per customer. Remove the duplicates or pass the right --customer-id-col."
        )
    selects = [f"{id_expr} AS customer_id"]
    kinds: dict[str, str] = {}
    left_out: dict[str, str] = {}
    n_valid = n_rows - n_missing_id
    for column, kind in raw.kinds.items():
        if column == id_col:
            continue
        text = f"NULLIF(trim(CAST({q(column)} AS VARCHAR)), '')"
        n_values, n_unique = engine.execute(
            f"SELECT count({text}), count(DISTINCT {text}) FROM {q(raw.name)} WHERE ({id_expr}) IS NOT NULL"
        )[0]
        if n_values == 0:
            left_out[column] = "empty: no values"
            continue
        if n_unique <= 1:
            left_out[column] = "constant: one value for every customer"
            continue
        col_kind, sql = _infer_attribute(engine, raw, column, kind, date_format)
        if col_kind != "numeric" and col_kind != "date" and (
            (n_valid >= 20 and n_unique >= 0.9 * n_values)
            or any(h in normalize_name(column) for h in _ID_HINTS)
        ):
            left_out[column] = "looks like an identifier or free text (nearly one value per customer)"
            continue
        if col_kind == "numeric" and normalize_name(column) in ("index", "unnamed0", "rownumber", "row"):
            left_out[column] = "looks like a row number"
            continue
        kinds[column] = col_kind
        selects.append(f"{sql} AS {q(column)}")
    if not kinds:
        raise InputError(
            f"{raw.label}: no usable attribute columns besides the id {id_col!r} "
            f"(left out: {', '.join(f'{c} ({r})' for c, r in left_out.items()) or 'none'})"
        )
    frame = engine.fetch_df(
        f"SELECT {', '.join(selects)} FROM {q(raw.name)} WHERE ({id_expr}) IS NOT NULL ORDER BY {ROW_COL}"
    )
    frame = frame.set_index("customer_id")
    for column, col_kind in kinds.items():
        if col_kind == "numeric":
            frame[column] = frame[column].astype("float64")
        elif col_kind == "categorical":
            frame[column] = frame[column].astype("object")
    notes = list(raw.notes)
    if n_missing_id:
        notes.append(f"{n_missing_id} rows without a customer id were removed")
    for column, reason in left_out.items():
        notes.append(f"column {column!r} left out: {reason}")
    return CustomerTable(
        frame=frame, kinds=kinds, id_column=id_col, source=raw.label, left_out=left_out,
        notes=notes, input_rows=int(n_rows), rows_without_id=int(n_missing_id),
    )


def _infer_attribute(engine, raw: RawInput, column: str, kind: str, date_format: str | None) -> tuple[str, str]:
    col = q(column)
    if kind in ("integer", "float"):
        return "numeric", f"CAST({col} AS DOUBLE)"
    if kind == "boolean":
        return "numeric", f"CAST({col} AS DOUBLE)"
    if kind in ("timestamp", "date"):
        return "date", f"CAST({col} AS TIMESTAMP)"
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    n_values, n_numeric = engine.execute(
        f"SELECT count({text}), count(TRY_CAST({text} AS DOUBLE)) FROM {q(raw.name)}"
    )[0]
    if n_values and n_numeric == n_values:
        return "numeric", f"TRY_CAST({text} AS DOUBLE)"
    looks_dated = engine.execute(
        f"SELECT count(*) FROM (SELECT {text} AS v FROM {q(raw.name)} WHERE {text} IS NOT NULL LIMIT 200) "
        "WHERE regexp_matches(v, '^[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}')"
    )[0][0]
    if looks_dated and looks_dated >= 0.9 * min(n_values, 200):
        try:
            parsed = engine.cleaning.timestamp_sql(raw, column, date_format)
        except InputError:
            pass
        else:
            return "date", parsed.sql
    return "categorical", text
