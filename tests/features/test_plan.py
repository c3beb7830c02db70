"""FeaturePlan: aggregations that share input and keys are computed once, with the same values."""

from __future__ import annotations

import pandas as pd

from segwise.engines.duckdb import DuckDBEngine
from segwise.features.plan import FeaturePlan


def _engine_with_orders() -> tuple[DuckDBEngine, object]:
    engine = DuckDBEngine()
    engine.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES ('a', 'o1', 10.0, 'x'), ('a', 'o2', 5.0, 'y'), "
        "('b', 'o3', 7.5, 'x'), ('c', 'o4', 1.0, NULL), ('c', 'o5', 2.0, 'x'), ('c', 'o6', 4.0, 'x')) "
        "AS t(customer_id, order_key, value, category)"
    )
    return engine, engine.table("orders")


def _fetch(engine, expr) -> pd.DataFrame:
    return engine.fetch_df(expr).sort_values("customer_id", ignore_index=True)


def test_two_families_grouping_the_same_table_by_customer_share_one_aggregation():
    engine, orders = _engine_with_orders()
    first = orders.group_by("customer_id").aggregate(n=orders.count(), total=orders.value.sum())
    second = orders.group_by("customer_id").aggregate(n_orders=orders.count(), top=orders.value.max())
    expected = {"first": _fetch(engine, first), "second": _fetch(engine, second)}
    plan = FeaturePlan(engine)
    merged = plan.merge({"first": first, "second": second})
    assert plan.merged == ["2 aggregations by customer_id merged into one of 3 columns"]  # count() shared
    for name, expr in merged.items():
        pd.testing.assert_frame_equal(_fetch(engine, plan.store(expr)), expected[name])
    # One aggregation stored (the merged one) plus the two outputs, which only select from it.
    assert len(plan._stored) == 3
    plan.drop()
    assert [r[0] for r in engine.execute("SELECT table_name FROM duckdb_tables()")] == ["orders"]


def test_a_stage_is_stored_when_first_read_and_merged_with_an_equal_grouping_inside_a_family():
    engine, orders = _engine_with_orders()
    plan = FeaturePlan(engine)
    by_category = orders.group_by(["customer_id", "category"]).aggregate(spend=orders.value.sum())
    staged = plan.stage(by_category.filter(by_category.category.notnull()))
    assert plan._stored == []  # nothing runs before the plan is complete
    per_customer = staged.group_by("customer_id").aggregate(categories=staged.count())
    other = orders.group_by(["category", "customer_id"]).aggregate(orders_with=orders.count())
    family = per_customer.join(other.group_by("customer_id").aggregate(most=other.orders_with.max()), "customer_id")
    expected = _fetch(engine, family.op().replace({staged.op(): by_category.filter(
        by_category.category.notnull()).op()}).to_expr())
    outputs = plan.merge({"family": family})
    # The two groupings list their keys in different orders: the same groups all the same.
    assert len(plan.merged) == 1 and plan.merged[0].endswith("merged into one of 2 columns")
    pd.testing.assert_frame_equal(_fetch(engine, plan.store(outputs["family"])), expected)
    plan.drop()


def test_stages_are_dropped_once_nothing_left_to_store_reads_them():
    engine, orders = _engine_with_orders()
    plan = FeaturePlan(engine)
    lines = plan.stage(orders.filter(orders.value > 1.5))
    per_category = plan.stage(lines.group_by(["customer_id", "category"]).aggregate(spend=lines.value.sum()))
    first = per_category.group_by("customer_id").aggregate(categories=per_category.count())
    second = lines.group_by("customer_id").aggregate(top=lines.value.max())
    tables = plan.store_all({"first": first, "second": second})

    def present() -> set[str]:
        return {r[0] for r in engine.execute("SELECT table_name FROM duckdb_tables()")}

    # per_category went once `first` was stored; lines once `second` was.
    assert present() == {"orders", tables["first"].get_name(), tables["second"].get_name()}
    assert _fetch(engine, tables["first"])["categories"].tolist() == [2, 1, 1]
    assert _fetch(engine, tables["second"])["top"].tolist() == [10.0, 7.5, 4.0]
    plan.drop()
    assert present() == {"orders"}


def test_an_aggregation_equal_in_groups_to_a_stage_is_merged_into_that_stage_without_a_copy():
    # The orders table is a stage; a family grouping the same lines by the same keys
    # (a family's per-order flags) adds its columns to it instead of a second pass.
    engine, orders = _engine_with_orders()
    plan = FeaturePlan(engine)
    stage = plan.stage(orders.group_by(["customer_id", "order_key"]).aggregate(value=orders.value.sum()))
    flags = orders.group_by(["order_key", "customer_id"]).aggregate(has_x=(orders.category == "x").fill_null(False).any())
    share = flags.group_by("customer_id").aggregate(share_x=flags.has_x.cast("float64").mean())
    total = stage.group_by("customer_id").aggregate(total=stage.value.sum())
    expected = {"share": _fetch(engine, share), "total": _fetch(engine, total.op().replace(
        {stage.op(): orders.group_by(["customer_id", "order_key"]).aggregate(value=orders.value.sum()).op()}
    ).to_expr())}
    outputs = plan.merge({"share": share, "total": total})
    assert plan.merged == ["2 aggregations by customer_id, order_key merged into one of 2 columns"]
    stored: list[str] = []
    materialize = engine.materialize
    engine.materialize = lambda expr, name=None: stored.append(materialize(expr, name)) or stored[-1]
    tables = plan.store_all(outputs)
    for name, table in tables.items():
        pd.testing.assert_frame_equal(_fetch(engine, table), expected[name])
    # The stage (with both columns) and the two outputs: no separate copy of the merged aggregation.
    assert stored == [stage.get_name(), tables["share"].get_name(), tables["total"].get_name()]
    plan.drop()
