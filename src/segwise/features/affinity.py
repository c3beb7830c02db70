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
                reliability_from="category_mix",
            ),
            FeatureColumn(
                "top_category_share", "affinity", "share 0-1",
                "Share of the customer's orders that include their most frequent "
                "category: 1 means every order has it (a single-category specialist, "
                "or a one-time buyer). Counted on orders rather than spend so that one "
                "order of two lines does not look like a split loyalty.",
                reliability_from="category_mix",
            ),
            FeatureColumn(
                "category_entropy", "affinity", "bits",
                "Shannon entropy of the spend shares across categories: 0 for one "
                "category, higher when spend is spread evenly over many.",
                reliability_from="category_mix",
            ),
        ]
    if spec.has_discount:
        cols.append(
            FeatureColumn(
                "discount_share", "affinity", "share 0-1",
                "Share of orders with a discount or promotion: price sensitivity "
                "(deal hunters are near 1).",
                reliability_from="discount_share",
            )
        )
    return cols


def category_orders(ctx: FeatureContext) -> ibis.Table:
    """Purchase lines with a category by customer, category and order: ``spend``.

    Journey reads the same table: built here once, it is one expression, and the
    feature plan computes it once for both families.
    """
    purchases = ctx.purchases.filter(ctx.purchases.category.notnull())
    return purchases.group_by(["customer_id", "category", "order_key"]).aggregate(spend=purchases.amount.sum())


def category_spend(ctx: FeatureContext) -> ibis.Table:
    """Per customer and category: ``spend``, ``orders_with`` (orders including it), ``share``
    (of the customer's category spend) and ``rank`` (0 = most spend, ties to the first name).

    Affinity (breadth, concentration, entropy) and journey (spend in the top categories)
    aggregate this table by customer: the plan merges the two into one pass.
    """
    # Group by order first, then count rows: the same as distinct orders per
    # category, without a distinct count per group (much slower on 10M lines).
    orders = category_orders(ctx)
    by_category = orders.group_by(["customer_id", "category"]).aggregate(
        spend=orders.spend.sum(), orders_with=orders.count()
    )
    in_customer = ibis.window(group_by=by_category.customer_id,
                              order_by=[ibis.desc(by_category.spend), by_category.category])
    return by_category.mutate(
        share=by_category.spend / by_category.spend.sum().over(group_by=by_category.customer_id),
        rank=ibis.row_number().over(in_customer),
    )


@register_family(
    "affinity", columns=_columns,
    applies=lambda spec: spec.has_transactions and (spec.has_category or spec.has_discount),
    description="category breadth, concentration and entropy; discount share",
)
def affinity(ctx: FeatureContext) -> ibis.Table:
    """Category columns from purchase lines with a category; discount from orders."""
    parts = []
    if ctx.spec.has_category:
        shares = category_spend(ctx)
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
