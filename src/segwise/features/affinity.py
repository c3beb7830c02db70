"""Product affinity: how broad or concentrated a customer's buying is, and discounts."""

from __future__ import annotations

import ibis

from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    cols = []
    if spec.has_category:
        cols += [
            FeatureColumn(
                "n_categories", "affinity", "categories",
                "Distinct product categories bought (category breadth).", higher_is="better",
            ),
            FeatureColumn(
                "top_category_share", "affinity", "share 0-1",
                "Share of the customer's orders that include their most frequent "
                "category: 1 means every order has it (a single-category specialist, "
                "or a one-time buyer). Counted on orders rather than spend so that one "
                "order of two lines does not look like a split loyalty.",
            ),
            FeatureColumn(
                "category_entropy", "affinity", "bits",
                "Shannon entropy of the spend shares across categories: 0 for one "
                "category, higher when spend is spread evenly over many.",
            ),
        ]
    if spec.has_discount:
        cols.append(
            FeatureColumn(
                "discount_share", "affinity", "share 0-1",
                "Share of orders with a discount or promotion: price sensitivity "
                "(deal hunters are near 1).",
            )
        )
    return cols


@register_family(
    "affinity", columns=_columns,
    applies=lambda spec: spec.has_transactions and (spec.has_category or spec.has_discount),
    description="category breadth, concentration and entropy; discount share",
)
def affinity(ctx: FeatureContext) -> ibis.Table:
    """Category columns from purchase lines with a category; discount from orders."""
    parts = []
    if ctx.spec.has_category:
        purchases = ctx.purchases.filter(ctx.purchases.category.notnull())
        # Group by order first, then count rows: the same as distinct orders per
        # category, without a distinct count per group (much slower on 10M lines).
        category_orders = purchases.group_by(["customer_id", "category", "order_key"]).aggregate(
            spend=purchases.amount.sum()
        )
        by_category = category_orders.group_by(["customer_id", "category"]).aggregate(
            spend=category_orders.spend.sum(), orders_with=category_orders.count()
        )
        share = by_category.spend / by_category.spend.sum().over(group_by=by_category.customer_id)
        shares = by_category.mutate(share=share)
        per_customer = shares.group_by("customer_id").aggregate(
            n_categories=shares.count().cast("float64"),
            top_orders=shares.orders_with.max().cast("float64"),
            category_entropy=(-(shares.share * shares.share.log2())).sum().clip(lower=0.0),
        )
        # Orders with at least one categorised purchase line: flagged in the orders table.
        orders = ctx.orders.filter(ctx.orders.has_category)
        n_orders = orders.group_by("customer_id").aggregate(n_orders=orders.count())
        joined = per_customer.inner_join(n_orders, "customer_id")
        parts.append(
            joined.select(
                "customer_id", "n_categories",
                top_category_share=joined.top_orders / joined.n_orders.cast("float64"),
                category_entropy=joined.category_entropy,
            )
        )
    if ctx.spec.has_discount:
        orders = ctx.orders
        parts.append(
            orders.group_by("customer_id").aggregate(
                discount_share=orders.discount.cast("float64").mean()
            )
        )
    result = parts[0]
    for part in parts[1:]:
        result = result.outer_join(part, "customer_id")
        result = result.mutate(customer_id=result.customer_id.fill_null(result.customer_id_right)).drop(
            "customer_id_right"
        )
    return result
