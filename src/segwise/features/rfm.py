"""Recency, frequency, monetary value, tenure and the active span.

The classic RFM summary, computed point-in-time at ``as_of`` from cleaned lines:
cancellations and returns reduce ``monetary_total`` but are not orders.

Tenure is recency plus the active span (first to last purchase). The three are kept
for profiles and names, but tenure does not define segments by default: beside recency
it would count the time since the last purchase twice (docs/quality.md, eighth pass).
"""

from __future__ import annotations

import ibis

from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    return [
        FeatureColumn(
            "recency_days", "rfm", "days",
            "Whole days from the date of the last purchase to the as_of date: how long "
            "since the customer last bought (low = recently active).", higher_is="worse", log_scale=True,
        ),
        FeatureColumn(
            "n_orders", "rfm", "orders",
            "Distinct orders (order id, or distinct purchase time when the log has no "
            "order id), cancellations excluded: how often the customer buys.", higher_is="better",
            log_scale=True,
        ),
        FeatureColumn(
            "monetary_total", "rfm", "currency",
            "Total spend net of returns and cancellations: what the customer is worth so far.",
            higher_is="better",
        ),
        FeatureColumn(
            "monetary_avg", "rfm", "currency per order",
            "monetary_total / n_orders: the typical basket value.", higher_is="better",
        ),
        FeatureColumn(
            "tenure_days", "rfm", "days",
            "Whole days from the date of the first purchase to the as_of date: how long "
            "the customer has been with the business. Equal to recency_days + active_days, "
            "so it describes segments but does not define them by default.",
            higher_is="neutral", log_scale=True, defines=False,
        ),
        FeatureColumn(
            "active_days", "rfm", "days",
            "Whole days from the date of the first purchase to the date of the last (0 when "
            "every purchase is on one day): how long the customer has kept buying. "
            "tenure_days = active_days + recency_days.", higher_is="neutral", log_scale=True,
        ),
    ]


@register_family("rfm", columns=_columns, description="recency, frequency, monetary value, tenure, active span")
def rfm(ctx: FeatureContext) -> ibis.Table:
    """One row per customer with at least one purchase before as_of."""
    orders = ctx.orders
    per_orders = orders.group_by("customer_id").aggregate(
        n_orders=orders.count(),
        first_ts=orders.order_ts.min(),
        last_ts=orders.order_ts.max(),
    )
    lines = ctx.lines
    spend = lines.group_by("customer_id").aggregate(monetary_total=lines.amount.sum())
    joined = per_orders.left_join(spend, "customer_id").drop("customer_id_right")
    monetary_total = joined.monetary_total.fill_null(0.0)
    return joined.select(
        "customer_id",
        recency_days=ctx.as_of_date.delta(joined.last_ts.date(), unit="day").cast("float64"),
        n_orders=joined.n_orders.cast("float64"),
        monetary_total=monetary_total,
        monetary_avg=monetary_total / joined.n_orders.cast("float64"),
        tenure_days=ctx.as_of_date.delta(joined.first_ts.date(), unit="day").cast("float64"),
        active_days=joined.last_ts.date().delta(joined.first_ts.date(), unit="day").cast("float64"),
    )
