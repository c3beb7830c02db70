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

import re
from pathlib import Path

import duckdb
import pandas as pd

from bench.datasets import Dataset
from bench.timing import PhaseTimer, StepOutcome

__all__ = ["REFERENCE_FEATURES_SQL", "REFERENCE_COLUMNS", "SAME_COLUMNS_FAMILIES", "compute_reference_features",
           "compute_same_columns", "duckdb_reference", "learn_levels", "same_columns_sql"]

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


# --------------------------------------------------------------------------- same columns
#
# The yardstick the issue asks for: a hand-written query computing *the same columns*
# as ``segwise features`` for the families that are pure SQL. The value family is a
# model fit (BG/NBD, Gamma-Gamma), not a query, so the pair is measured without it:
# ``segwise features --features <SAME_COLUMNS_FAMILIES>`` against `same_columns_sql`.

#: The families of a default ``segwise features`` run that are pure SQL.
SAME_COLUMNS_FAMILIES = ("rfm", "affinity", "category_mix", "engagement", "journey", "seasonality")

#: segwise's limits on level columns (`segwise.features.build.MAX_CHANNEL_LEVELS`,
#: `segwise.features.categories.MAX_CATEGORY_LEVELS`), restated: nothing of segwise is imported here.
MAX_CHANNELS = 8
MAX_CATEGORIES = 12

#: The cleaned lines, shared by the level query and the feature query. ``$orders`` is
#: the Parquet log. Cleaning as segwise's: identical lines once, no customer / time /
#: finite amount removed, ``C``-prefixed invoices and negative amounts are returns,
#: texts trimmed with empty as missing, the order is the order id (or the time).
_LINES_CTE = """
source AS (
    SELECT DISTINCT * FROM read_parquet($orders)
),
typed AS (
    SELECT *, coalesce(starts_with(upper(order_id), 'C'), false) AS cancelled FROM source
),
lines AS (
    SELECT CAST(customer_id AS VARCHAR) AS customer_id,
           coalesce(NULLIF(trim(order_id), ''), CAST(ordered_at AS VARCHAR)) AS order_key,
           ordered_at AS ts,
           CASE WHEN cancelled THEN -abs(amount) ELSE amount END AS amount,
           cancelled OR amount < 0 AS is_return,
           NULLIF(trim(category), '') AS category,
           NULLIF(trim(channel), '') AS channel,
           discount
    FROM typed
    WHERE customer_id IS NOT NULL AND ordered_at IS NOT NULL AND isfinite(amount)
)"""

#: What the column set depends on: the channels (most lines first), the categories
#: (most customers first; ties by name) and whether the log has times of day. Read
#: without the duplicate rule: duplicates change neither the customers per category
#: nor, with fewer channels than `MAX_CHANNELS`, the set of channels.
_LEVELS_SQL = """
WITH lines AS (
    SELECT CAST(customer_id AS VARCHAR) AS customer_id, ordered_at AS ts,
           NULLIF(trim(category), '') AS category, NULLIF(trim(channel), '') AS channel,
           starts_with(upper(coalesce(order_id, '')), 'C') OR amount < 0 AS is_return
    FROM read_parquet($orders)
    WHERE customer_id IS NOT NULL AND ordered_at IS NOT NULL AND isfinite(amount)
)
SELECT
    (SELECT list(channel ORDER BY n DESC, channel) FROM (
        SELECT channel, count(*) AS n FROM lines WHERE channel IS NOT NULL AND NOT is_return
        GROUP BY channel ORDER BY n DESC, channel LIMIT {max_channels})) AS channels,
    (SELECT list(category ORDER BY n DESC, category) FROM (
        SELECT category, count(DISTINCT customer_id) AS n FROM lines WHERE category IS NOT NULL AND NOT is_return
        GROUP BY category ORDER BY n DESC, category LIMIT {max_categories})) AS categories,
    (SELECT bool_or(ts <> date_trunc('day', ts)) FROM lines) AS timed
"""


def level_name(prefix: str, level: str) -> str:
    """The column name of one level (``share_channel_web``): lower case, runs of other characters as ``_``."""
    slug = re.sub(r"[^0-9a-z]+", "_", level.lower()).strip("_") or "blank"
    return f"{prefix}_{slug}"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def same_columns_sql(channels: list[str], categories: list[str], timed: bool) -> str:
    """The hand-written query for the columns of `SAME_COLUMNS_FAMILIES` on one log's levels.

    A level column per channel and per category is one ``avg`` in the per-customer
    aggregation; the rest is fixed text. ``$orders`` is the Parquet log.
    """
    # Category levels whose column names collide count in no column (as in segwise).
    names: dict[str, str] = {}
    for category in categories:
        names.setdefault(level_name("share_category", category), category)
    in_category = "".join(f",\n           bool_or(coalesce(category = {_text(c)}, false)) AS in_{i}"
                          for i, c in enumerate(names.values()))
    category_shares = "".join(f",\n           avg(CAST(in_{i} AS DOUBLE)) AS {name}"
                              for i, name in enumerate(names))
    channel_shares = "".join(
        f",\n           avg(CAST(coalesce(channel = {_text(c)}, false) AS DOUBLE)) AS {level_name('share_channel', c)}"
        for c in channels)
    dayparts = "".join(
        f",\n           avg(CAST(hour(order_ts) >= {a} AND hour(order_ts) < {b} AS DOUBLE)) AS share_orders_{part}"
        for part, (a, b) in (("night", (0, 6)), ("morning", (6, 12)), ("afternoon", (12, 18)),
                             ("evening", (18, 24)))) if timed else ""
    level_columns = [*names, *(level_name("share_channel", c) for c in channels)]
    daypart_columns = [f"share_orders_{p}" for p in ("night", "morning", "afternoon", "evening")] if timed else []
    passthrough = "".join(f", p.{c}" for c in [*level_columns, "share_weekend_orders", *daypart_columns])
    return f"""
WITH {_LINES_CTE.strip()},
observation AS (
    SELECT CAST(CAST(max(ts) AS DATE) + 1 AS TIMESTAMP) AS as_of FROM lines
),
dated AS (
    SELECT lines.* FROM lines, observation WHERE ts < as_of
),
orders AS (
    SELECT customer_id, order_key,
           min(ts) AS order_ts,
           bool_or(coalesce(discount, false)) AS discount,
           any_value(channel) AS channel{in_category}
    FROM dated
    WHERE NOT is_return
    GROUP BY customer_id, order_key
),
per_customer AS (
    SELECT customer_id,
           count(*) AS n_orders,
           min(order_ts) AS first_ts,
           max(order_ts) AS last_ts,
           avg(CAST(discount AS DOUBLE)) AS discount_share{category_shares}{channel_shares},
           avg(CAST(isodow(order_ts) >= 6 AS DOUBLE)) AS share_weekend_orders{dayparts},
           avg(gap_days) AS gap_mean,
           CASE WHEN count(gap_days) >= 2 THEN stddev_pop(gap_days) END AS gap_std,
           count(*) FILTER (WHERE order_ts >= as_of - INTERVAL 90 DAY) AS orders_recent,
           count(*) FILTER (WHERE order_ts >= as_of - INTERVAL 180 DAY
                              AND order_ts < as_of - INTERVAL 90 DAY) AS orders_previous,
           count(*) FILTER (WHERE quarter(order_ts) = 1) AS in_q1,
           count(*) FILTER (WHERE quarter(order_ts) = 2) AS in_q2,
           count(*) FILTER (WHERE quarter(order_ts) = 3) AS in_q3,
           count(*) FILTER (WHERE quarter(order_ts) = 4) AS in_q4,
           avg(cos((dayofyear(order_ts) - 1.0) * (2 * pi() / 365.25))) AS cos_mean,
           avg(sin((dayofyear(order_ts) - 1.0) * (2 * pi() / 365.25))) AS sin_mean
    FROM (
        SELECT *, (epoch(order_ts) - epoch(lag(order_ts) OVER (PARTITION BY customer_id ORDER BY order_ts)))
                  / 86400.0 AS gap_days
        FROM orders
    ), observation
    GROUP BY customer_id
),
spend AS (
    SELECT customer_id,
           sum(amount) AS monetary_total,
           sum(CASE WHEN ts >= as_of - INTERVAL 90 DAY THEN amount ELSE 0.0 END) AS spend_recent,
           sum(CASE WHEN ts >= as_of - INTERVAL 180 DAY AND ts < as_of - INTERVAL 90 DAY
                    THEN amount ELSE 0.0 END) AS spend_previous
    FROM dated, observation
    GROUP BY customer_id
),
order_categories AS (
    -- Purchase lines by order and category, with the order's time and the time the
    -- customer first bought the category.
    SELECT c.*, o.order_ts,
           min(o.order_ts) OVER (PARTITION BY c.customer_id, c.category) AS category_first_ts
    FROM (SELECT customer_id, order_key, category, sum(amount) AS spend
          FROM dated WHERE NOT is_return AND category IS NOT NULL
          GROUP BY customer_id, order_key, category) AS c
    JOIN orders AS o USING (customer_id, order_key)
),
order_main AS (
    -- The main category of an order: the most spend, ties to the first name.
    SELECT customer_id, order_key, min(order_ts) AS order_ts,
           first(category ORDER BY spend DESC, category) AS main_category,
           bool_or(category_first_ts < order_ts) AS is_repeat
    FROM order_categories
    GROUP BY customer_id, order_key
),
sequence AS (
    SELECT customer_id,
           count(*) AS category_orders,
           count(*) FILTER (WHERE previous <> main_category) AS switches,
           count(*) FILTER (WHERE is_repeat) AS repeat_orders,
           first(main_category ORDER BY order_ts, order_key) AS first_purchase_category
    FROM (SELECT *, lag(main_category) OVER (PARTITION BY customer_id ORDER BY order_ts, order_key) AS previous
          FROM order_main)
    GROUP BY customer_id
),
categories AS (
    SELECT customer_id,
           count(*) AS n_categories,
           max(orders_with) AS top_orders,
           greatest(sum(-share * log2(share)), 0.0) AS category_entropy,
           sum(spend) FILTER (WHERE rank <= 3) AS top3_spend,
           sum(spend) AS category_spend
    FROM (SELECT *, spend / sum(spend) OVER (PARTITION BY customer_id) AS share,
                 row_number() OVER (PARTITION BY customer_id ORDER BY spend DESC, category) AS rank
          FROM (SELECT customer_id, category, sum(spend) AS spend, count(*) AS orders_with
                FROM order_categories GROUP BY customer_id, category))
    GROUP BY customer_id
),
trend AS (
    SELECT customer_id, round(coalesce(spend_recent, 0.0), 6) AS recent, round(coalesce(spend_previous, 0.0), 6) AS previous
    FROM per_customer LEFT JOIN spend USING (customer_id)
)
SELECT p.customer_id,
       CAST(date_diff('day', CAST(p.last_ts AS DATE), CAST(o.as_of AS DATE)) AS DOUBLE) AS recency_days,
       CAST(p.n_orders AS DOUBLE) AS n_orders,
       coalesce(s.monetary_total, 0.0) AS monetary_total,
       coalesce(s.monetary_total, 0.0) / p.n_orders AS monetary_avg,
       CAST(date_diff('day', CAST(p.first_ts AS DATE), CAST(o.as_of AS DATE)) AS DOUBLE) AS tenure_days,
       CAST(date_diff('day', CAST(p.first_ts AS DATE), CAST(p.last_ts AS DATE)) AS DOUBLE) AS active_days,
       CAST(c.n_categories AS DOUBLE) AS n_categories,
       c.top_orders / q.category_orders AS top_category_share,
       c.category_entropy,
       p.discount_share{passthrough},
       p.gap_mean AS interpurchase_days_mean,
       p.gap_std AS interpurchase_days_std,
       CASE WHEN p.orders_recent + p.orders_previous = 0 THEN 0.0
            ELSE (p.orders_recent - p.orders_previous) / (p.orders_recent + p.orders_previous) END
           AS purchase_rate_change,
       CASE WHEN abs(t.recent) + abs(t.previous) = 0 THEN 0.0
            ELSE (t.recent - t.previous) / (abs(t.recent) + abs(t.previous)) END AS spend_trend,
       CASE WHEN c.category_spend > 0 THEN c.top3_spend / c.category_spend END AS spend_share_top3_categories,
       CASE WHEN q.category_orders > 1 THEN q.repeat_orders / (q.category_orders - 1) END AS repeat_category_rate,
       CASE WHEN q.category_orders > 1 THEN q.switches / (q.category_orders - 1) END AS category_switching_rate,
       q.first_purchase_category,
       season.*
FROM per_customer AS p
CROSS JOIN observation AS o
LEFT JOIN spend AS s USING (customer_id)
LEFT JOIN trend AS t USING (customer_id)
LEFT JOIN categories AS c USING (customer_id)
LEFT JOIN sequence AS q USING (customer_id)
CROSS JOIN LATERAL (
    -- Seasonality needs 4 orders and a first order a year before as_of.
    SELECT CASE WHEN enough THEN p.in_q1 / p.n_orders END AS share_orders_q1,
           CASE WHEN enough THEN p.in_q2 / p.n_orders END AS share_orders_q2,
           CASE WHEN enough THEN p.in_q3 / p.n_orders END AS share_orders_q3,
           CASE WHEN enough THEN p.in_q4 / p.n_orders END AS share_orders_q4,
           CASE WHEN enough THEN greatest(p.in_q1, p.in_q2, p.in_q3, p.in_q4) / p.n_orders END
               AS share_orders_top_season,
           CASE WHEN enough THEN round(sqrt(p.cos_mean * p.cos_mean + p.sin_mean * p.sin_mean), 12) END
               AS season_concentration
    FROM (SELECT p.n_orders >= 4
                 AND date_diff('day', CAST(p.first_ts AS DATE), CAST(o.as_of AS DATE)) >= 365 AS enough)
) AS season
"""


def learn_levels(connection: duckdb.DuckDBPyConnection, orders_path: str | Path) -> tuple[list[str], list[str], bool]:
    """The channels, categories and time-of-day flag that decide the query's columns."""
    sql = _LEVELS_SQL.format(max_channels=MAX_CHANNELS, max_categories=4 * MAX_CATEGORIES)
    channels, categories, timed = connection.execute(sql, {"orders": str(orders_path)}).fetchone()
    kept: list[str] = []
    for category in categories or []:
        if level_name("share_category", category) not in {level_name("share_category", k) for k in kept}:
            kept.append(category)
    return list(channels or []), kept[:MAX_CATEGORIES], bool(timed)


def compute_same_columns(orders_path: str | Path) -> pd.DataFrame:
    """`same_columns_sql` on a Parquet order log in a fresh in-memory DuckDB, indexed by ``customer_id``."""
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")
        sql = same_columns_sql(*learn_levels(connection, orders_path))
        frame = connection.execute(sql, {"orders": str(orders_path)}).df()
    return frame.set_index("customer_id")
