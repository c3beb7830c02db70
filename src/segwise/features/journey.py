"""Customer-journey dynamics: rhythm of buying and whether it speeds up or slows down."""

from __future__ import annotations

import ibis

from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family

#: Length of the two comparison windows, in days.
WINDOW_DAYS = 90


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    return [
        FeatureColumn(
            "interpurchase_days_mean", "journey", "days",
            "Mean days between consecutive orders (missing with fewer than 2 orders): "
            "the customer's buying rhythm.", higher_is="worse", log_scale=True,
        ),
        FeatureColumn(
            "interpurchase_days_std", "journey", "days",
            "Standard deviation (population) of the days between consecutive orders "
            "(missing with fewer than 3 orders): low means a regular rhythm.",
        ),
        FeatureColumn(
            "purchase_rate_change", "journey", "ratio -1..1",
            f"(orders in the last {WINDOW_DAYS} days - orders in the {WINDOW_DAYS} days "
            "before) / (their sum), 0 when both are 0: above 0 the customer is speeding "
            "up, below 0 slowing down.", higher_is="better",
        ),
        FeatureColumn(
            "spend_trend", "journey", "ratio -1..1",
            f"(net spend in the last {WINDOW_DAYS} days - net spend in the {WINDOW_DAYS} "
            "days before) / (sum of their absolute values), 0 when both are 0.",
            higher_is="better",
        ),
    ]


def _symmetric_change(recent, previous):
    denominator = recent.abs() + previous.abs()
    return ibis.ifelse(denominator == 0, 0.0, (recent - previous) / denominator)


@register_family("journey", columns=_columns, description="inter-purchase rhythm, purchase-rate change, spend trend")
def journey(ctx: FeatureContext) -> ibis.Table:
    """Gaps between a customer's orders and the last-90-days vs previous-90-days change."""
    orders = ctx.orders
    window = ibis.window(group_by=orders.customer_id, order_by=orders.order_ts)
    gaps = orders.mutate(
        gap_days=(orders.order_ts.epoch_seconds() - orders.order_ts.lag().over(window).epoch_seconds()) / 86400.0
    )
    recent_start = ctx.as_of_ts - ibis.interval(days=WINDOW_DAYS)
    previous_start = ctx.as_of_ts - ibis.interval(days=2 * WINDOW_DAYS)
    in_recent = gaps.order_ts >= recent_start
    in_previous = (gaps.order_ts >= previous_start) & (gaps.order_ts < recent_start)
    rhythm = gaps.group_by("customer_id").aggregate(
        interpurchase_days_mean=gaps.gap_days.mean(),
        interpurchase_days_std=ibis.ifelse(
            gaps.gap_days.count() >= 2, gaps.gap_days.std(how="pop"), ibis.null("float64")
        ),
        orders_recent=in_recent.cast("float64").sum(),
        orders_previous=in_previous.cast("float64").sum(),
    )
    lines = ctx.lines
    line_recent = lines.ts >= recent_start
    line_previous = (lines.ts >= previous_start) & (lines.ts < recent_start)
    spend = lines.group_by("customer_id").aggregate(
        spend_recent=ibis.ifelse(line_recent, lines.amount, 0.0).sum(),
        spend_previous=ibis.ifelse(line_previous, lines.amount, 0.0).sum(),
    )
    joined = rhythm.left_join(spend, "customer_id").drop("customer_id_right")
    return joined.select(
        "customer_id",
        "interpurchase_days_mean",
        "interpurchase_days_std",
        purchase_rate_change=_symmetric_change(joined.orders_recent, joined.orders_previous),
        spend_trend=_symmetric_change(joined.spend_recent.fill_null(0.0), joined.spend_previous.fill_null(0.0)),
    )
