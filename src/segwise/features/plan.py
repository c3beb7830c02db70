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
    release_early : bool
        Drop a stage as soon as nothing left to store reads it (`store_all`). Right
        where storing computes the table (DuckDB, PostgreSQL); on Spark a stored table
        is a persisted view computed at its first use, and a stage released before that
        would be computed again for every table that reads it.
    """

    def __init__(self, engine: Any, *, release_early: bool = True) -> None:
        self.engine = engine
        self.release_early = release_early
        self._pending: dict[str, ibis.Table] = {}
        self._stored: list[str] = []
        self._stage_prefix = "segwise_stage"
        #: Aggregations merged (one line each), for logs and the profile.
        self.merged: list[str] = []

    def stage(self, expr: ibis.Table) -> ibis.Table:
        """An intermediate table to compute once: a named placeholder, stored on first use."""
        name = self.engine.unique_name(self._stage_prefix)
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
        hosts = {expr.op(): name for name, expr in self._pending.items()}
        for (parent, _groups), nodes in by_key.items():
            if len(nodes) < 2 and uses[nodes[0]] < 2:
                continue
            # An aggregation that is itself a pending stage (the orders table) hosts the
            # others: its stored table gains their columns, and no copy of it is made.
            host = next((node for node in nodes if node in hosts), None)
            if host is not None:
                nodes = [host] + [node for node in nodes if node is not host]
            groups = dict(nodes[0].groups)
            columns: dict[ops.Node, str] = {}
            if host is not None:
                columns.update({value: name for name, value in host.metrics.items()})
            for node in nodes:
                for value in node.metrics.values():
                    # Equal expressions (two families' count of orders) share one column.
                    columns.setdefault(value, f"_metric_{len(columns)}")
            merged = ops.Aggregate(parent, groups, {name: value for value, name in columns.items()}).to_expr()
            if host is None:
                stored = self.stage(merged)
            else:
                if len(nodes) == 1:
                    continue
                self._pending[hosts[host]] = merged
                stored = ibis.table(merged.schema(), name=hosts[host])
            for node in nodes:
                if node is host:
                    continue
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
        """Compute ``expr`` now (after the stages it reads) as a stored table; return it.

        Stages stay stored (other expressions may read them): `store_all` drops them.
        """
        self._require(expr, keep=None)
        name = self.engine.materialize(expr)
        self._stored.append(name)
        return ibis.table(expr.schema(), name=name)

    def store_all(self, outputs: dict[str, ibis.Table]) -> dict[str, ibis.Table]:
        """Store every output in order, each after the stages it reads; return them as tables.

        A stage is dropped as soon as neither a pending stage nor an output still to be
        stored reads it: the line-sized ones (purchase lines by customer, category and
        order; a family's lines joined to their orders) do not pile up while the families
        after them run, and the engine has their memory back.
        """
        remaining = dict(outputs)
        stored: dict[str, ibis.Table] = {}
        for key in list(remaining):
            expr = remaining[key]
            self._require(expr, keep=list(remaining.values()) if self.release_early else None)
            name = self.engine.materialize(expr)
            self._stored.append(name)
            stored[key] = ibis.table(expr.schema(), name=name)
            del remaining[key]
            if self.release_early:
                self._release(list(remaining.values()))
        return stored

    def _require(self, expr: ibis.Table, keep: list[ibis.Table] | None) -> None:
        """Store the pending stages ``expr`` reads; with ``keep``, drop those nothing else reads."""
        for node in expr.op().find(ops.UnboundTable):
            if node.name in self._pending:
                stage = self._pending.pop(node.name)
                # The stage's own inputs stay until it is stored.
                self._require(stage, None if keep is None else keep + [stage])
                self.engine.materialize(stage, node.name)
                self._stored.append(node.name)
                if keep is not None:
                    self._release(keep)

    def _release(self, keep: list[ibis.Table]) -> None:
        """Drop the stored stages that neither ``keep`` nor a pending stage reads."""
        needed = {node.name for expr in list(keep) + list(self._pending.values())
                  for node in expr.op().find(ops.UnboundTable)}
        for name in [n for n in self._stored if n not in needed and n.startswith(self._stage_prefix)]:
            self.engine.drop(name)
            self._stored.remove(name)

    def fetch(self, expr: ibis.Table, fetch: Callable[[ibis.Table], Any]) -> Any:
        """``fetch(expr)`` once the stages ``expr`` reads are stored."""
        self._require(expr, keep=None)
        return fetch(expr)

    def drop(self) -> None:
        """Drop every table this plan stored."""
        for name in self._stored:
            self.engine.drop(name)
        self._stored.clear()
        self._pending.clear()


def _replace(expr: ibis.Table, replacements: dict[ops.Node, ops.Node]) -> ibis.Table:
    return expr.op().replace(replacements).to_expr()
