"""Customer features, one definition per family, computed point-in-time (as_of).

Families: ``rfm`` (recency, frequency, monetary, tenure), ``affinity`` (category
breadth/concentration/entropy, discount share), ``category_mix`` (share of orders
per category), ``engagement`` (channel shares,
weekend and part-of-day shares), ``journey`` (inter-purchase rhythm, purchase-rate
change, spend trend), ``seasonality`` (share of orders per quarter, concentration in
the year), ``value`` (expected purchases, probability alive and lifetime
value from buy-till-you-die models), ``returns`` (share of orders returned or
cancelled, when the log has returns), ``log_attributes`` (customer attributes repeated
on the order lines, e.g. a country) and ``attributes`` (columns of a customer table).
"""

# Import order is registration order, which is the column order of feature tables.
from segwise.features import rfm  # noqa: F401,I001  (registers the family)
from segwise.features import affinity, categories, engagement, journey  # noqa: F401,I001
from segwise.features import seasonality, value  # noqa: F401,I001  (register the families)
from segwise.features import returns  # noqa: F401,I001  (after value: earlier families keep their column order)
from segwise.features import attributes  # noqa: F401,I001  (customer attributes read from the log)
from segwise.features.base import FAMILIES, FeatureColumn, FeatureSpec
from segwise.features.build import FeatureTable, build_features, learn_spec, parse_as_of

__all__ = [
    "FAMILIES", "FeatureColumn", "FeatureSpec", "FeatureTable", "build_features", "learn_spec", "parse_as_of",
    "reference_markdown",
]


def reference_markdown() -> str:
    """The feature reference (docs/features.md), generated from the family definitions."""
    example = FeatureSpec(
        families=list(FAMILIES), channel_levels=["web", "app"], category_levels=["toys"], has_category=True,
        has_discount=True, has_time_of_day=True, has_returns=True, log_attributes={"country": "Country"},
    )
    lines = [
        "# Feature reference",
        "",
        "Generated from the feature definitions (`segwise.features.reference_markdown()`); a test keeps",
        "this file equal to it. Every feature is computed point-in-time: only rows dated before `as_of`",
        "count, and `as_of` (default: the day after the last transaction) is recorded with every result.",
        "Channel columns are made per channel found in the data (the most frequent 8); `web` and `app`",
        "below are examples. Category share columns are made per category (those bought by the most",
        "customers, at most 12); `toys` is an example. Part-of-day columns exist only when the timestamps",
        "have a time of day.",
        "",
    ]
    for name, family in FAMILIES.items():
        lines += [f"## `{name}`: {family.description}", "", "| column | unit | meaning |", "|---|---|---|"]
        for column in family.columns(example):
            lines.append(f"| `{column.name}` | {column.unit} | {column.description} |")
        lines.append("")
    lines += [
        "## `attributes`: columns of a customer table",
        "",
        "Numeric columns are used as they are (a column of two values, such as a 0/1 flag, is",
        "prepared like a yes/no text column), text columns as categories (one-hot encoded when they",
        "define segments), date columns become `days_since_<column>` at `as_of`. Missing values stay",
        "missing until preparation imputes them (with a `<column>_missing` indicator).",
        "",
    ]
    return "\n".join(lines)
