"""Returns: how often a customer sends back or cancels what they ordered.

The loader keeps returns and cancellations (negative amounts, ``C``-prefixed
invoices) as lines of the log: they lower ``monetary_total`` and are not orders
(`segwise.features.rfm`). Customers who return a large part of what they order
are a type of their own for a retailer (the cost of serving them, a policy to
change), and spend net of returns cannot tell them from customers who simply buy
less. This family gives each customer the share of their orders that were
returned or cancelled.

A returned order is counted by the order keys of the return lines: a
cancellation invoice (``C536379``) is one returned order, and so is an order
whose own lines include a negative one (a log that records returns under the
original order id). The share is those keys over the customer's orders, at most
1 (several partial returns of one order are still one returned order at most per
order). It is a per-order share, binomial in the number of orders like the
engagement shares, so the reliability gate (`segwise.features.selection`) and
the shrinkage (`segwise.features.shrink`) treat it as they treat those.

The family applies only when the training log has returns
(``FeatureSpec.has_returns``): a log without any has no such column at all,
rather than a constant one.
"""

from __future__ import annotations

import ibis

from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family

__all__ = ["RETURN_SHARE_COLUMN"]

#: The family's one column.
RETURN_SHARE_COLUMN = "share_returned_orders"


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    return [
        FeatureColumn(
            RETURN_SHARE_COLUMN, "returns", "share 0-1",
            "Share of the customer's orders that were returned or cancelled (return or cancellation "
            "invoices, or orders with a returned line, over the orders; at most 1): how much of what "
            "the customer buys comes back.", higher_is="worse",
        )
    ]


@register_family(
    "returns", columns=_columns,
    applies=lambda spec: spec.has_transactions and spec.has_returns,
    description="share of orders returned or cancelled",
)
def returns(ctx: FeatureContext) -> ibis.Table:
    """Per customer with an order: returned order keys over orders, capped at 1."""
    orders = ctx.orders
    # The same aggregation as rfm's order count: the feature plan computes it once.
    per_customer = orders.group_by("customer_id").aggregate(n_orders=orders.count())
    lines = ctx.lines
    returned = lines.filter(lines.is_return)
    per_returns = returned.group_by("customer_id").aggregate(n_returned=returned.order_key.nunique())
    joined = per_customer.left_join(per_returns, "customer_id").drop("customer_id_right")
    share = joined.n_returned.fill_null(0).cast("float64") / joined.n_orders.cast("float64")
    return joined.select("customer_id", **{RETURN_SHARE_COLUMN: ibis.least(share, 1.0)})
