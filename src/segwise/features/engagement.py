"""Channel and time engagement: where and when a customer buys."""

from __future__ import annotations

import ibis

from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, level_column_name, register_family

#: Parts of the day by hour, [start, end).
DAYPARTS = {"night": (0, 6), "morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24)}


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    cols = [
        FeatureColumn(
            level_column_name("share_channel", level), "engagement", "share 0-1",
            f"Share of the customer's orders placed through the {level!r} channel.",
        )
        for level in spec.channel_levels
    ]
    cols.append(
        FeatureColumn(
            "share_weekend_orders", "engagement", "share 0-1",
            "Share of orders placed on Saturday or Sunday.",
        )
    )
    if spec.has_time_of_day:
        cols += [
            FeatureColumn(
                f"share_orders_{part}", "engagement", "share 0-1",
                f"Share of orders placed in the {part} ({start:02d}:00-{end:02d}:00).",
            )
            for part, (start, end) in DAYPARTS.items()
        ]
    return cols


@register_family("engagement", columns=_columns, description="channel shares, weekend share, part-of-day shares")
def engagement(ctx: FeatureContext) -> ibis.Table:
    """Shares of each customer's orders by channel, weekday/weekend and part of day."""
    orders = ctx.orders
    metrics = {}
    for level in ctx.spec.channel_levels:
        metrics[level_column_name("share_channel", level)] = (
            (orders.channel == level).fill_null(False).cast("float64").mean()
        )
    metrics["share_weekend_orders"] = (orders.order_ts.day_of_week.index() >= 5).cast("float64").mean()
    if ctx.spec.has_time_of_day:
        hour = orders.order_ts.hour()
        for part, (start, end) in DAYPARTS.items():
            metrics[f"share_orders_{part}"] = ((hour >= start) & (hour < end)).cast("float64").mean()
    return orders.group_by("customer_id").aggregate(**metrics)
