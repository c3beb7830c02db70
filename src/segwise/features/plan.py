"""The feature families of one build as one plan: shared aggregations computed once.

Families are written independently (`segwise.features.base`): rfm, engagement and
seasonality each group the orders by customer, rfm and journey each sum the lines by
customer, affinity and journey each sum purchase lines by customer, category and
order. Run family by family, every such aggregation is another pass over an
order-sized or line-sized table. `FeaturePlan` collects the families' Ibis
expressions and the intermediate tables they ask for (``ctx.stage``) before anything
runs, merges the aggregations that group the same input by the same keys into one
aggregation, stores it once, and rewrites each family to read its columns from it.
The rewritten families compute the same values (the same aggregate expressions over
the same groups; only sums of floats may differ in their last bits, as between two
runs of one parallel query).

Each stored table is one query (`engine.materialize`), so the engine's memory limit
applies to one aggregation at a time and DuckDB spills what does not fit, as before.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import ibis
import ibis.expr.operations as ops

__all__ = ["FeaturePlan"]

log = logging.getLogger(__name__)

#: Rounds of merging: an aggregation over a merged aggregation's result (two levels
#: of grouping) can only be merged once the level below it has been.
_MAX_ROUNDS = 4


class FeaturePlan:
    """Intermediate tables of a feature build, stored when first needed, merged where possible.

    Parameters
    ----------
    engine : Engine
        What runs the queries (``materialize``, ``unique_name``, ``drop``).
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._pending: dict[str, ibis.Table] = {}
        self._stored: list[str] = []
        #: Aggregations merged (one line each), for logs and the profile.
        self.merged: list[str] = []

    def stage(self, expr: ibis.Table) -> ibis.Table:
        """An intermediate table to compute once: a named placeholder, stored on first use."""
        name = self.engine.unique_name("segwise_stage")
        self._pending[name] = expr
        return ibis.table(expr.schema(), name=name)

    def merge(self, outputs: dict[str, ibis.Table]) -> dict[str, ibis.Table]:
        """Merge the aggregations of ``outputs`` and the pending stages that share input and keys.

        Returns the outputs rewritten to read merged aggregations; pending stages are
        rewritten in place.
        """
        for _ in range(_MAX_ROUNDS):
            replacements = self._merge_round(list(outputs.values()) + list(self._pending.values()))
            if not replacements:
                break
            outputs = {key: _replace(expr, replacements) for key, expr in outputs.items()}
            self._pending = {name: _replace(expr, replacements) for name, expr in self._pending.items()}
        return outputs

    def _merge_round(self, exprs: list[ibis.Table]) -> dict[ops.Node, ops.Node]:
        uses: dict[ops.Aggregate, int] = {}
        for expr in exprs:
            for node in expr.op().find(ops.Aggregate):
                uses[node] = uses.get(node, 0) + 1
        by_key: dict[tuple, list[ops.Aggregate]] = {}
        for node in uses:
            by_key.setdefault((node.parent, frozenset(node.groups.items())), []).append(node)
        replacements: dict[ops.Node, ops.Node] = {}
        for (parent, _groups), nodes in by_key.items():
            if len(nodes) < 2 and uses[nodes[0]] < 2:
                continue
            groups = dict(nodes[0].groups)
            columns: dict[ops.Node, str] = {}
            for node in nodes:
                for value in node.metrics.values():
                    # Equal expressions (two families' count of orders) share one column.
                    columns.setdefault(value, f"_metric_{len(columns)}")
            merged = ops.Aggregate(parent, groups, {name: value for value, name in columns.items()}).to_expr()
            stored = self.stage(merged)
            for node in nodes:
                replacements[node] = stored.select(
                    *[stored[name] for name in node.groups],
                    **{name: stored[columns[value]] for name, value in node.metrics.items()},
                ).op()
            self.merged.append(
                f"{len(nodes)} aggregations by {', '.join(groups)} merged into one of {len(columns)} columns"
            )
            log.debug(self.merged[-1])
        return replacements

    def store(self, expr: ibis.Table) -> ibis.Table:
        """Compute ``expr`` now (after the stages it reads) as a stored table; return it."""
        self._require(expr)
        name = self.engine.materialize(expr)
        self._stored.append(name)
        return ibis.table(expr.schema(), name=name)

    def _require(self, expr: ibis.Table) -> None:
        for node in expr.op().find(ops.UnboundTable):
            if node.name in self._pending:
                stage = self._pending.pop(node.name)
                self._require(stage)
                self.engine.materialize(stage, node.name)
                self._stored.append(node.name)

    def fetch(self, expr: ibis.Table, fetch: Callable[[ibis.Table], Any]) -> Any:
        """``fetch(expr)`` once the stages ``expr`` reads are stored."""
        self._require(expr)
        return fetch(expr)

    def drop(self) -> None:
        """Drop every table this plan stored."""
        for name in self._stored:
            self.engine.drop(name)
        self._stored.clear()
        self._pending.clear()


def _replace(expr: ibis.Table, replacements: dict[ops.Node, ops.Node]) -> ibis.Table:
    return expr.op().replace(replacements).to_expr()
