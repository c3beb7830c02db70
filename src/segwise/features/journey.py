"""Customer-journey dynamics: rhythm of buying, whether it speeds up or slows down, and
(with categories) the sequence of categories bought."""

from __future__ import annotations

import ibis

from segwise.features.affinity import category_orders, category_spend
from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family

#: Length of the two comparison windows, in days.
WINDOW_DAYS = 90
#: Categories in the customer's "top categories" spend share.
TOP_CATEGORIES = 3


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
    ] + (_sequence_columns() if spec.has_category else [])


def _sequence_columns() -> list[FeatureColumn]:
    # In journey, not affinity: affinity defines segments by default and these must not change the defaults.
    return [
        FeatureColumn(
            f"spend_share_top{TOP_CATEGORIES}_categories", "journey", "share 0-1",
            f"Share of the customer's category spend in their {TOP_CATEGORIES} biggest categories: near 1 for a "
            "customer who sticks to a few kinds of product, lower for one who buys across the range.",
        ),
        FeatureColumn(
            "repeat_category_rate", "journey", "share 0-1",
            "Share of the orders after the first that include a category the customer had bought in an earlier "
            "order (missing with one order): do they come back for the same kind of product?",
        ),
        FeatureColumn(
            "category_switching_rate", "journey", "share 0-1",
            "Share of consecutive order pairs whose main category (the category with the most spend in the "
            "order) differs (missing with one order): how much the customer wanders between categories.",
        ),
        FeatureColumn(
            "first_purchase_category", "journey", "category",
            "Main category of the customer's first order (the category with the most spend in the order, ties "
            "to the first name in text order; the first order is the earliest one with a category, and of "
            "orders placed at the same time the one with the smaller order id in text order; missing without "
            "a purchase with a category): the door the customer came in by. A categorical column: it describes "
            "segments and defines them only with the journey family in --features.",
            kind="categorical",
        ),
    ]


def _sequence(ctx: FeatureContext) -> ibis.Table:
    """Purchase-sequence features: which categories, in what order."""
    orders = ctx.orders.select("customer_id", "order_key", "order_ts")
    # The purchase lines by customer, category and order as affinity builds them: the
    # plan computes the aggregation once for both families (`segwise.features.plan`).
    per = category_orders(ctx)
    # Stored stages (ctx.stage): the main category of every order, and the per-customer
    # sequence and shares. As one plan, the windows, joins and aggregates over
    # order-sized tables held memory together and did not fit a DuckDB memory limit
    # below the size of the log (it failed instead of spilling).
    joined = per.join(orders, ["customer_id", "order_key"])
    # When the customer first bought the category: a window, not a join of a per-category table.
    firsts = joined.mutate(category_first_ts=joined.order_ts.min().over(
        ibis.window(group_by=[joined.customer_id, joined.category])))
    # One row per order, as a grouped aggregate rather than a rank window over the
    # order's rows and a filter (a window over the 8.5M order-category rows of a 10M-line
    # log costs about three times the aggregate). The main category is the one with the
    # smallest key (-spend, category): the most spend, ties to the first name in text
    # order. The key is a struct, compared field by field on DuckDB and Spark and as a
    # row on PostgreSQL, so every engine picks the same category (an ordered ``first``
    # has no Spark or PostgreSQL form in Ibis; `arg_min` compiles on all three).
    main_key = ibis.struct({"negative_spend": -firsts.spend, "category": firsts.category})
    per_order = ctx.stage(firsts.group_by(["customer_id", "order_key"]).aggregate(
        order_ts=firsts.order_ts.min(),  # the order's time, on each of its rows
        # The order repeats a category when any of its categories was bought in an earlier order.
        repeat=ibis.ifelse(firsts.category_first_ts < firsts.order_ts, 1, 0).max(),
        main=firsts.category.argmin(main_key),
    ))
    text_null = ibis.null("string")
    # position 0 is the first order: earliest time, then the smaller order key (text; the same on every engine).
    in_time = ibis.window(group_by=per_order.customer_id, order_by=[per_order.order_ts, per_order.order_key])
    ordered = per_order.mutate(previous=per_order.main.lag().over(in_time),
                               position=ibis.row_number().over(in_time))
    sequence = ctx.stage(ordered.group_by("customer_id").aggregate(
        n_orders=ordered.count(),
        switches=(ordered.previous.notnull() & (ordered.previous != ordered.main)).cast("float64").sum(),
        repeat_orders=ordered.repeat.cast("float64").sum(),
        first_purchase_category=ibis.ifelse(ordered.position == 0, ordered.main, text_null).max(),
    ))
    # Spend by category, ranked, as affinity aggregates it: one pass for both families.
    categories = category_spend(ctx)
    shares = ctx.stage(categories.group_by("customer_id").aggregate(
        top=ibis.ifelse(categories["rank"] < TOP_CATEGORIES, categories.spend, 0.0).sum(),
        total=categories.spend.sum(),
    ))
    joined = sequence.join(shares, "customer_id")
    later = (joined.n_orders - 1).cast("float64")
    null = ibis.null("float64")
    return joined.select(
        "customer_id",
        **{f"spend_share_top{TOP_CATEGORIES}_categories": ibis.ifelse(joined.total > 0, joined.top / joined.total,
                                                                      null)},
        repeat_category_rate=ibis.ifelse(later > 0, joined.repeat_orders / later, null),
        category_switching_rate=ibis.ifelse(later > 0, joined.switches / later, null),
        first_purchase_category=joined.first_purchase_category.cast("string"),
    )


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
    result = joined.select(
        "customer_id",
        "interpurchase_days_mean",
        "interpurchase_days_std",
        purchase_rate_change=_symmetric_change(joined.orders_recent, joined.orders_previous),
        # Net spend rounded to 1e-6: returns that cancel a purchase leave float noise (1e-14)
        # whose sign depends on the engine's summation order, and would read as a trend of -1 or 1.
        spend_trend=_symmetric_change(joined.spend_recent.fill_null(0.0).round(6),
                                      joined.spend_previous.fill_null(0.0).round(6)),
    )
    if ctx.spec.has_category:
        result = result.left_join(_sequence(ctx), "customer_id").drop("customer_id_right")
    return result
