"""SQL for the PostgreSQL engine: DuckDB-dialect text translated, Ibis output made portable, statements checked.

`to_postgres` turns the cleaning rules' SQL text (written in DuckDB's dialect, as
for every engine) into PostgreSQL with sqlglot, rewriting the functions
PostgreSQL lacks (`_rewrite`). `compile_ibis` compiles an Ibis expression for
PostgreSQL without Ibis's PostgreSQL backend, whose connection would install
helper functions in the database: `_portable` and `_fast_extract` rewrite what
would need them. `check_statement` refuses anything that could change the source.
"""

from __future__ import annotations

from typing import Any

import ibis
# Ibis adjusts sqlglot's PostgreSQL generator (make_date, ...) when this module is
# imported; sqlglot fixes a generator's functions on first use, so Ibis must come
# before this module's own first translation, or both would print sqlglot's names.
import ibis.backends.sql.dialects  # noqa: F401
import sqlglot
from sqlglot import exp

from segwise.engines.base import quote_identifier

__all__ = ["check_statement", "compile_ibis", "to_postgres"]


def compile_ibis(expr: ibis.Table) -> str:
    """PostgreSQL for an Ibis expression, runnable on a plain server (see `_portable`, `_fast_extract`)."""
    sql = ibis.to_sql(expr.op().replace(_portable).to_expr(), dialect="postgres")
    return sqlglot.parse_one(sql, read="postgres").transform(_fast_extract).sql(dialect="postgres")


_ALLOWED_CREATE = ("CREATE TEMPORARY TABLE", "CREATE TEMPORARY VIEW", "CREATE TEMP TABLE", "CREATE TEMP VIEW")


def check_statement(sql: str, created: set[str]) -> None:
    """Refuse any statement that could change the source database (that would be a bug of segwise)."""
    words = sql.split()
    head = " ".join(words[:4]).upper()
    first = head.split(" ", 1)[0] if head else ""
    if first == "CREATE" and not head.startswith(_ALLOWED_CREATE):
        raise RuntimeError(f"the PostgreSQL engine creates only TEMPORARY objects, not: {sql[:80]}")
    if first in ("INSERT", "UPDATE", "DELETE", "MERGE", "ALTER", "TRUNCATE", "GRANT", "REVOKE", "COMMENT", "COPY"):
        if not (first == "COPY" and head.startswith("COPY (")):  # COPY (SELECT ...) TO STDOUT reads
            raise RuntimeError(f"the PostgreSQL engine is read-only toward the source: {sql[:80]}")
    if first == "DROP":
        target = " ".join(words[2:6])
        if not any(f"pg_temp.{quote_identifier(name)}" in target for name in created):
            raise RuntimeError(f"the PostgreSQL engine drops only its own temporary objects: {sql[:80]}")


def _rewrite(node: exp.Expression) -> exp.Expression:
    """Replace DuckDB functions that PostgreSQL lacks by equivalent expressions (for `to_postgres`)."""
    if isinstance(node, exp.IsNan):
        # PostgreSQL's NaN equals itself (unlike IEEE), so this is exact.
        return exp.paren(exp.EQ(this=node.this, expression=_float_literal("NaN")))
    if isinstance(node, exp.IsInf):
        return exp.paren(exp.EQ(this=exp.Abs(this=node.this), expression=_float_literal("Infinity")))
    if isinstance(node, exp.TryCast) and node.to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT):
        # A number in text, as DuckDB's TRY_CAST reads it; anything else is NULL.
        # (PostgreSQL folds a CAST of a constant while planning, even in a branch
        # not taken: this is for column values, which every caller passes.)
        text = node.this
        pattern = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$|^\s*[+-]?(inf|infinity|nan)\s*$"
        test = exp.RegexpILike(this=text.copy(), expression=exp.Literal.string(pattern))
        return exp.Case(ifs=[exp.If(this=test, true=exp.Cast(this=text, to=exp.DataType.build("DOUBLE")))])
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        anchored = exp.Literal.string(f"^(?:{pattern.name})$") if isinstance(pattern, exp.Literal) else pattern
        return exp.RegexpLike(this=node.this.copy(), expression=anchored)
    if isinstance(node, exp.Contains):
        return exp.GT(this=exp.Anonymous(this="strpos", expressions=[node.this.copy(), node.expression.copy()]),
                      expression=exp.Literal.number(0))
    return node


def _portable(node: Any, kwargs: dict | None) -> Any:
    """An Ibis operation PostgreSQL runs as written (a replacer for ``Node.replace``).

    Ibis's SQL for PostgreSQL leans on what its own backend installs on connect or
    on implicit casts; compiling without that backend needs two rewrites:

    - a boolean cast to a float goes through an integer (PostgreSQL has no
      boolean-to-double cast): true is 1.0, false 0.0, as on DuckDB;
    - ``arbitrary()`` (any value of the group, a ``first`` aggregate Ibis would
      install) becomes ``min()``: any value is allowed, and the smallest is the
      same on every run.
    """
    import ibis.expr.datatypes as dt
    import ibis.expr.operations as ops

    if kwargs:
        node = node.__recreate__(kwargs)
    if isinstance(node, ops.Cast) and node.to.is_floating() and node.arg.dtype.is_boolean():
        return ops.Cast(ops.Cast(node.arg, dt.int32), node.to)
    if isinstance(node, ops.Arbitrary):
        return ops.Min(node.arg, where=node.where)
    if isinstance(node, ops.Log) and node.base is not None:
        # Ibis writes log(base, x) on NUMERIC (exact decimals, slow): in double
        # precision, as DuckDB computes it, the result agrees to a few ulps.
        return ops.Divide(ops.Ln(ops.Cast(node.arg, dt.float64)), ops.Ln(ops.Cast(node.base, dt.float64)))
    return node


def _fast_extract(node: exp.Expression) -> exp.Expression:
    """``EXTRACT`` returns NUMERIC on PostgreSQL 14 and later; ``date_part`` the same value as a double.

    Hours and days of the week are small integers, exact either way; the double
    spares each row a NUMERIC value (several times faster on a million rows).
    """
    if isinstance(node, exp.Extract):
        unit = node.this.name.strip("'\"").lower()
        return exp.Anonymous(this="date_part", expressions=[exp.Literal.string(unit), node.expression.copy()])
    return node


def _float_literal(value: str) -> exp.Expression:
    return exp.Cast(this=exp.Literal.string(value), to=exp.DataType.build("DOUBLE"))


def _alias_subqueries(tree: exp.Expression) -> None:
    """PostgreSQL (before 16) wants every subquery in FROM named."""
    for i, subquery in enumerate(tree.find_all(exp.Subquery)):
        if not subquery.alias and isinstance(subquery.parent, (exp.From, exp.Join)):
            subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"segwise_sq{i}")))


def to_postgres(sql: str) -> str:
    """Translate SQL text in DuckDB's dialect into PostgreSQL (``?`` parameters become ``%s``)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = tree.transform(_rewrite)
    _alias_subqueries(tree)
    return tree.sql(dialect="postgres")
