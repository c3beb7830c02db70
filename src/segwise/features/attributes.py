"""Customer attributes read from the order log: country, region, store, customer type ...

An order log often repeats, on every line, something that describes the customer
rather than the purchase: the country of an online shop's customer, the store of a
retail chain, a B2B/B2C flag. Such a column is found generically, by how it
behaves, never by its name:

- it is text without a role (not the customer, date, amount, category, channel ...);
- it has few distinct values (at most `segwise.data.MAX_ATTRIBUTE_LEVELS`; the loader
  carries those columns into the cleaned log);
- it is (nearly) constant per customer: among customers with at least two purchase
  lines, the customer's most frequent value covers on average at least
  `MIN_MODE_SHARE` of their lines (a line-level column such as a payment method or a
  product colour is not);
- customers differ in it (their most frequent values are not all the same).

Each such column becomes two customer features, computed point-in-time from the
purchase lines dated before ``as_of``: the customer's most frequent value (ties go
to the first value in text order) named after the column (``country``), and the
share of their lines it covers (``country_share``). The first is categorical: it
describes segments in the profiles, joins the definition with ``--features``, and
is one of k-prototypes' categorical columns.
"""

from __future__ import annotations

import ibis

from segwise.data import Transactions, attribute_column
from segwise.errors import InputError
from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family
from segwise.schema import normalize_name

__all__ = ["detect_log_attributes", "MIN_MODE_SHARE"]

#: Average share of a customer's lines holding their most frequent value, for a column to
#: describe the customer (measured on customers with at least two purchase lines).
MIN_MODE_SHARE = 0.9


def _mode_per_customer(lines: ibis.Table, column: str) -> ibis.Table:
    """customer_id, the most frequent non-missing value of ``column``, its share of the lines."""
    totals = lines.group_by("customer_id").aggregate(n_lines=lines.count())
    present = lines.filter(lines[column].notnull())
    counts = present.group_by(["customer_id", column]).aggregate(n=present.count())
    window = ibis.window(group_by="customer_id", order_by=[ibis.desc("n"), column])
    top = counts.mutate(rank=ibis.row_number().over(window))
    top = top.filter(top["rank"] == 0).select("customer_id", value=top[column], n=top.n)
    joined = totals.left_join(top, "customer_id")
    return joined.select(
        joined.customer_id, value=joined.value, n_lines=joined.n_lines,
        share=(joined.n.fill_null(0).cast("float64") / joined.n_lines.cast("float64")),
    )


def detect_log_attributes(transactions: Transactions) -> dict[str, str]:
    """The carried log columns that describe the customer: feature name -> source column.

    Parameters
    ----------
    transactions : Transactions
        A cleaned log (its ``attribute_columns`` are the candidates).

    Returns
    -------
    dict
        Feature name (the source name normalised: ``"Country"`` -> ``"country"``) to the
        source column, for every candidate that passes the rules of the module docstring.
    """
    engine = transactions.engine
    table = transactions.table
    purchases = table.filter(~table.is_return)
    found: dict[str, str] = {}
    for canonical, source in transactions.attribute_columns.items():
        modes = _mode_per_customer(purchases, canonical)
        row = engine.fetch_df(modes.aggregate(
            distinct_modes=modes.value.nunique(),
            # Customers with one line hold one value trivially: judge on the others when there are any.
            share_several=modes.share.mean(where=modes.n_lines >= 2),
            share_all=modes.share.mean(),
        )).iloc[0]
        share = row["share_all"] if row["share_several"] is None or row["share_several"] != row["share_several"] \
            else row["share_several"]
        if int(row["distinct_modes"] or 0) >= 2 and float(share) >= MIN_MODE_SHARE:
            found[normalize_name(source) or canonical] = source
    return found


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    cols = []
    for name, source in spec.log_attributes.items():
        cols += [
            FeatureColumn(
                name, "log_attributes", "category",
                f"The customer's most frequent {source!r} on their purchase lines before as_of "
                "(read from the order log: a column that describes the customer).",
                kind="categorical",
            ),
            FeatureColumn(
                f"{name}_share", "log_attributes", "share 0-1",
                f"Share of the customer's purchase lines whose {source!r} is that most frequent value "
                "(1: always the same).",
            ),
        ]
    return cols


@register_family(
    "log_attributes", columns=_columns,
    applies=lambda spec: spec.has_transactions and bool(spec.log_attributes),
    description="customer attributes repeated on the order lines (country, region, store, customer type): "
                "the most frequent value and its share",
)
def log_attributes(ctx: FeatureContext) -> ibis.Table:
    """Most frequent value and its share, per customer, of every detected attribute column."""
    purchases = ctx.purchases
    result = None
    for name, source in ctx.spec.log_attributes.items():
        canonical = attribute_column(source)
        if canonical not in purchases.columns:
            raise InputError(
                f"the model uses the customer attribute {source!r} read from the order log, but this log has "
                f"no such column (or it has more than a few distinct values there); give a log with the "
                f"{source!r} column"
            )
        modes = _mode_per_customer(purchases, canonical)
        part = modes.select("customer_id", **{name: modes.value.cast("string"), f"{name}_share": modes.share})
        result = part if result is None else result.inner_join(part, "customer_id")
    return result
