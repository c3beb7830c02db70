"""Seasonality: when in the year a customer buys.

Defined only with enough history: a customer needs at least `MIN_SEASON_ORDERS` orders
and a first order at least `MIN_SEASON_DAYS` days before ``as_of`` (every season could
have been seen); otherwise the columns are missing (imputed later, with an indicator,
if they are used to define segments). Seasons are calendar quarters of the order date.
"""

from __future__ import annotations

import math
from typing import Any

import ibis
import pandas as pd

from segwise.errors import InputError
from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family

#: Orders a customer needs before their seasonality means anything.
MIN_SEASON_ORDERS = 4
#: Days of history (first order to as_of) a customer needs: a full year, so every season was observable.
MIN_SEASON_DAYS = 365
#: Days of a year on the circle of purchase days.
_YEAR_DAYS = 365.25

_RULE = (f"missing with fewer than {MIN_SEASON_ORDERS} orders or a first order less than {MIN_SEASON_DAYS} days "
         "before as_of")


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    quarters = [
        FeatureColumn(
            f"share_orders_q{q}", "seasonality", "share 0-1",
            f"Share of the customer's orders placed in calendar quarter {q} ({_RULE}).",
        )
        for q in range(1, 5)
    ]
    return quarters + [
        FeatureColumn(
            "share_orders_top_season", "seasonality", "share 0.25..1",
            "Share of the customer's orders in their busiest quarter: 1 when every order falls in one season, "
            f"near 0.25 when orders are spread over the year ({_RULE}).",
        ),
        FeatureColumn(
            "season_concentration", "seasonality", "0..1",
            "Circular concentration of the customer's order days in the year (length of the mean vector of "
            "the days as angles on a 365.25-day circle): 1 when every order is on the same day of the year, "
            f"near 0 when spread evenly; catches a season that straddles two quarters ({_RULE}).",
        ),
    ]


def _finish(frame: pd.DataFrame, spec: FeatureSpec, fit: bool) -> dict[str, Any]:
    """At training, leave the family out when no customer has the history it needs."""
    if fit and frame["share_orders_top_season"].isna().all():
        raise InputError(
            f"no customer has {MIN_SEASON_ORDERS} orders and a first order {MIN_SEASON_DAYS} days before as_of, "
            "so seasonality is not defined for anyone (a longer history is needed)"
        )
    return {"customers_with_enough_history": int(frame["share_orders_top_season"].notna().sum())}


@register_family("seasonality", columns=_columns, finish=_finish,
                 description="share of orders per quarter, share in the top season, concentration in the year")
def seasonality(ctx: FeatureContext) -> ibis.Table:
    """Quarter shares and circular concentration of each customer's order dates."""
    orders = ctx.orders
    quarter = orders.order_ts.quarter()
    angle = (orders.order_ts.day_of_year().cast("float64") - 1.0) * (2 * math.pi / _YEAR_DAYS)
    per = orders.group_by("customer_id").aggregate(
        n=orders.count(),
        first_ts=orders.order_ts.min(),
        cos_mean=angle.cos().mean(),
        sin_mean=angle.sin().mean(),
        **{f"in_q{q}": (quarter == q).cast("float64").sum() for q in range(1, 5)},
    )
    history_days = ctx.as_of_date.delta(per.first_ts.date(), unit="day")
    enough = (per.n >= MIN_SEASON_ORDERS) & (history_days >= MIN_SEASON_DAYS)
    n = per.n.cast("float64")
    shares = {f"share_orders_q{q}": per[f"in_q{q}"] / n for q in range(1, 5)}
    null = ibis.null("float64")
    top = ibis.greatest(*shares.values())
    concentration = (per.cos_mean * per.cos_mean + per.sin_mean * per.sin_mean).sqrt()
    return per.select(
        "customer_id",
        **{name: ibis.ifelse(enough, share, null) for name, share in shares.items()},
        share_orders_top_season=ibis.ifelse(enough, top, null),
        # Rounded: the sums of sines and cosines differ in their last bits between engines.
        season_concentration=ibis.ifelse(enough, concentration.round(12), null),
    )
