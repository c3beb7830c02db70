"""Category mix: which product categories a customer buys, one share per category.

The affinity family says how broad or concentrated a customer's buying is, not
*which* categories: two specialists in different categories look the same to it.
This family adds, per category level learned at fit time (`learn_category_levels`,
stored as ``FeatureSpec.category_levels`` like the channel levels), the share of the
customer's orders that include that category.

Shares of orders, not of spend, because the reliability gate and the shrinkage
(`segwise.features.selection`, `segwise.features.shrink`) model a share as
binomial in the customer's number of orders: an order includes the category or
not. A spend share has no such sampling model (one large line moves it as much
as many orders). An order can include several categories, so the shares need not
sum to 1 and none is redundant with the others: no level is left out.

A category unseen at fit time counts in no level at assignment; the customer's
shares of the known levels are then lower, as the orders went elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from segwise.features.affinity import category_spend
from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, level_column_name, register_family

if TYPE_CHECKING:  # pragma: no cover
    from segwise.data import Transactions

__all__ = ["MAX_CATEGORY_LEVELS", "PREFIX", "learn_category_levels"]

#: Most category levels made into columns: the loader keeps up to
#: `segwise.data.MAX_CATEGORIES` (1,000) categories, far too many columns for a
#: default definition; the levels bought by the most customers are kept.
MAX_CATEGORY_LEVELS = 12

#: Column name prefix of the shares.
PREFIX = "share_category"


def learn_category_levels(transactions: "Transactions") -> list[str]:
    """The categories bought by the most customers (at most `MAX_CATEGORY_LEVELS`).

    Ties go to the first name in text order, so every engine learns the same
    levels. A level whose column name would repeat an earlier one's (names that
    differ only in case or punctuation) is skipped: its orders count in no level.
    """
    if not transactions.has_category:
        return []
    engine = transactions.engine
    rows = engine.execute(
        f"SELECT category, count(DISTINCT customer_id) AS n FROM {engine.quote(transactions.table_name)} "
        "WHERE category IS NOT NULL AND NOT is_return GROUP BY 1 ORDER BY n DESC, category "
        f"LIMIT {4 * MAX_CATEGORY_LEVELS}"
    )
    levels: list[str] = []
    names: set[str] = set()
    for category, _ in rows:
        name = level_column_name(PREFIX, str(category))
        if name in names:
            continue
        names.add(name)
        levels.append(str(category))
        if len(levels) == MAX_CATEGORY_LEVELS:
            break
    return levels


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    return [
        FeatureColumn(
            level_column_name(PREFIX, level), "category_mix", "share 0-1",
            f"Share of the customer's orders that include a purchase in the {level!r} category.",
        )
        for level in spec.category_levels
    ]


@register_family(
    "category_mix", columns=_columns,
    applies=lambda spec: spec.has_transactions and spec.has_category and bool(spec.category_levels),
    description="share of orders per category (the most bought categories)",
)
def category_mix(ctx: FeatureContext) -> ibis.Table:
    """Per customer and level: orders including the level over all the customer's orders."""
    # The orders including each category are counted in affinity's per-customer category
    # table (``orders_with``); summed by customer there, the plan merges these counts into
    # the pass that affinity and journey make over that table, instead of another pass
    # over the purchase lines by order (`segwise.features.plan`).
    categories = category_spend(ctx)
    counts = categories.group_by("customer_id").aggregate(**{
        f"in_{i}": ibis.ifelse(categories.category == level, categories.orders_with, 0).sum()
        for i, level in enumerate(ctx.spec.category_levels)
    })
    # The denominator is every order of the customer (every order has a purchase line,
    # as the gate's binomial model expects), with a category or not.
    orders = ctx.orders
    n_orders = orders.group_by("customer_id").aggregate(n_orders=orders.count())
    joined = n_orders.left_join(counts, "customer_id").drop("customer_id_right")
    return joined.select(
        "customer_id",
        **{
            level_column_name(PREFIX, level): joined[f"in_{i}"].fill_null(0).cast("float64")
            / joined.n_orders.cast("float64")
            for i, level in enumerate(ctx.spec.category_levels)
        },
    )
