"""The feature build's DuckDB SQL has no ordered aggregate: DuckDB cannot spill one.

Ibis writes ``argmin``/``argmax`` as ``first(x ORDER BY key)``, which keeps every row
of every group in memory until it sorts them; segwise compiles them to DuckDB's own
``arg_min``/``arg_max`` (`segwise.engines.duckdb.duckdb_sql`), which keep one value
per group, so the features can run under a memory limit below the size of the log.
"""

from __future__ import annotations

import re

import ibis

from segwise.data import load_transactions
from segwise.engines.duckdb import DuckDBEngine, duckdb_sql
from segwise.features import build_features
from segwise.features.base import FAMILIES

from .test_seasonality_and_sequence import AS_OF, LOG

#: An aggregate whose argument list has an ORDER BY: DuckDB's ordered aggregates.
ORDERED_AGGREGATE = re.compile(r"\b(FIRST|LAST|LIST|ARRAY_AGG|STRING_AGG|ARG_MIN|ARG_MAX)\s*\([^()]*\bORDER\s+BY",
                               re.IGNORECASE)


class _RecordingEngine(DuckDBEngine):
    """A DuckDB engine that keeps the text of every statement it runs."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        super().__init__()

    def execute(self, query, params=None):
        self.statements.append(" ".join(str(query).split()))
        return super().execute(query, params)


def test_argmin_and_argmax_compile_to_duckdb_aggregates_that_keep_one_value_per_group():
    engine = DuckDBEngine()
    engine.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'b', 2.0), (1, 'a', 2.0), (1, 'c', 1.0), "
                   "(2, 'z', 3.0), (2, 'y', 3.0)) AS v(g, c, s)")
    t = engine.table("t")
    # The journey family's key: the most spend, ties to the first name in text order.
    key = ibis.struct({"negative_spend": -t.s, "category": t.c})
    expr = t.group_by("g").aggregate(main=t.c.argmin(key), last=t.c.argmax(t.c)).order_by("g")
    sql = duckdb_sql(expr)
    assert "ARG_MIN(" in sql and "ARG_MAX(" in sql
    assert not ORDERED_AGGREGATE.search(" ".join(sql.split()))
    rows = engine.fetch_df(expr)
    assert rows["main"].tolist() == ["a", "y"] and rows["last"].tolist() == ["c", "z"]


def test_no_feature_family_runs_an_ordered_aggregate_on_duckdb():
    engine = _RecordingEngine()
    families = [name for name in FAMILIES if name != "log_attributes"]
    table = build_features(load_transactions(LOG, engine=engine), as_of=AS_OF, families=families)
    assert "first_purchase_category" in table.frame  # the argmin of the journey family ran
    ordered = [s[:200] for s in engine.statements if ORDERED_AGGREGATE.search(s)]
    assert engine.statements and ordered == []
