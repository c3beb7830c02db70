"""A hand-written DuckDB query: the yardstick for segwise's feature step.

One SQL statement reads the raw order log and computes twelve of segwise's
customer features with segwise's definitions and cleaning rules (see
`segwise.data` and `segwise.features`): lines without a customer, date or finite
amount are removed (zero amounts are purchases), identical lines are removed once, ``C``-prefixed
invoices and negative amounts are returns (netted against spend, not orders),
and ``as_of`` is the day after the last line. It is what an analyst fluent in
SQL would write for this one log, with none of segwise's column detection,
validation, reporting or engine portability.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from bench.datasets import Dataset
from bench.timing import PhaseTimer, StepOutcome

__all__ = ["REFERENCE_FEATURES_SQL", "REFERENCE_COLUMNS", "compute_reference_features", "duckdb_reference"]

#: The features computed by `REFERENCE_FEATURES_SQL`, in output order.
REFERENCE_COLUMNS = (
    "recency_days",
    "n_orders",
    "monetary_total",
    "monetary_avg",
    "tenure_days",
    "n_categories",
    "top_category_share",
    "category_entropy",
    "discount_share",
    "share_weekend_orders",
    "interpurchase_days_mean",
    "purchase_rate_change",
)

#: The query; ``$orders`` is the path of the Parquet order log.
REFERENCE_FEATURES_SQL = """
WITH lines AS (
    SELECT CAST(customer_id AS VARCHAR) AS customer_id,
           order_id,
           ordered_at AS ts,
           CASE WHEN starts_with(order_id, 'C') THEN -abs(amount) ELSE amount END AS amount,
           starts_with(order_id, 'C') OR amount < 0 AS is_return,
           category,
           discount
    FROM (SELECT DISTINCT * FROM read_parquet($orders))
    WHERE customer_id IS NOT NULL AND ordered_at IS NOT NULL AND isfinite(amount)
),
observation AS (
    SELECT CAST(max(ts) AS DATE) + 1 AS as_of FROM lines
),
orders AS (
    SELECT customer_id, order_id, min(ts) AS order_ts, bool_or(coalesce(discount, false)) AS discount
    FROM lines
    WHERE NOT is_return
    GROUP BY customer_id, order_id
),
per_customer AS (
    SELECT customer_id,
           count(*) AS n_orders,
           min(order_ts) AS first_ts,
           max(order_ts) AS last_ts,
           avg(CAST(discount AS DOUBLE)) AS discount_share,
           avg(CAST(isodow(order_ts) >= 6 AS DOUBLE)) AS share_weekend_orders,
           count(*) FILTER (WHERE order_ts >= as_of - INTERVAL 90 DAY) AS orders_recent,
           count(*) FILTER (WHERE order_ts >= as_of - INTERVAL 180 DAY
                              AND order_ts < as_of - INTERVAL 90 DAY) AS orders_previous
    FROM orders, observation
    GROUP BY customer_id
),
spend AS (
    SELECT customer_id, sum(amount) AS monetary_total FROM lines GROUP BY customer_id
),
by_category AS (
    SELECT customer_id, category, sum(amount) AS spend, count(DISTINCT order_id) AS orders_with
    FROM lines
    WHERE NOT is_return AND category IS NOT NULL
    GROUP BY customer_id, category
),
categories AS (
    SELECT customer_id,
           count(*) AS n_categories,
           max(orders_with) AS top_orders,
           greatest(sum(-share * log2(share)), 0.0) AS category_entropy
    FROM (SELECT *, spend / sum(spend) OVER (PARTITION BY customer_id) AS share FROM by_category)
    GROUP BY customer_id
),
category_orders AS (
    SELECT customer_id, count(DISTINCT order_id) AS n_orders
    FROM lines
    WHERE NOT is_return AND category IS NOT NULL
    GROUP BY customer_id
)
SELECT p.customer_id,
       CAST(date_diff('day', CAST(p.last_ts AS DATE), o.as_of) AS DOUBLE) AS recency_days,
       CAST(p.n_orders AS DOUBLE) AS n_orders,
       coalesce(s.monetary_total, 0.0) AS monetary_total,
       coalesce(s.monetary_total, 0.0) / p.n_orders AS monetary_avg,
       CAST(date_diff('day', CAST(p.first_ts AS DATE), o.as_of) AS DOUBLE) AS tenure_days,
       CAST(c.n_categories AS DOUBLE) AS n_categories,
       c.top_orders / co.n_orders AS top_category_share,
       c.category_entropy,
       p.discount_share,
       p.share_weekend_orders,
       -- The mean gap between consecutive orders telescopes to (last - first) / (n - 1).
       CASE WHEN p.n_orders > 1
            THEN (epoch(p.last_ts) - epoch(p.first_ts)) / 86400.0 / (p.n_orders - 1) END AS interpurchase_days_mean,
       CASE WHEN p.orders_recent + p.orders_previous = 0 THEN 0.0
            ELSE (p.orders_recent - p.orders_previous) / (p.orders_recent + p.orders_previous) END
           AS purchase_rate_change
FROM per_customer AS p
CROSS JOIN observation AS o
LEFT JOIN spend AS s USING (customer_id)
LEFT JOIN categories AS c USING (customer_id)
LEFT JOIN category_orders AS co USING (customer_id)
"""


def compute_reference_features(orders_path: str | Path) -> pd.DataFrame:
    """Run `REFERENCE_FEATURES_SQL` on a Parquet order log in a fresh in-memory DuckDB.

    Parameters
    ----------
    orders_path : str or Path
        Parquet file with ``order_id``, ``customer_id``, ``ordered_at``,
        ``amount``, ``category`` and ``discount`` columns (the synthetic log).

    Returns
    -------
    pandas.DataFrame
        One row per customer with a purchase, indexed by ``customer_id`` (text),
        with the `REFERENCE_COLUMNS`.
    """
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")
        frame = connection.execute(REFERENCE_FEATURES_SQL, {"orders": str(orders_path)}).df()
    return frame.set_index("customer_id")


def duckdb_reference(dataset: Dataset) -> StepOutcome:
    """The measured step: `compute_reference_features` on the dataset's order log."""
    timer = PhaseTimer()
    with timer.phase("query"):
        features = compute_reference_features(dataset.orders_path)
    return StepOutcome(
        phases=timer.phases,
        info={"customers": len(features), "feature_columns": len(features.columns)},
        output=features,
    )
