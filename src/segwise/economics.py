"""Business validation: what each segment is worth, and whether it can be acted on.

`segment_economics` is what a run records under ``"economics"`` in run.json:

``as_of``, ``period_days`` (90), ``currency_column`` (the spend column, usually
``monetary_total``), ``definitions`` (the text of every measure) and ``segments``,
one dict per segment in id order, plus ``total`` for everyone, with:

``customers``, ``share_customers``
    size;
``revenue``, ``share_revenue``
    sum of net spend before ``as_of`` (returns deducted), and its share of the total;
``average_order_value``
    revenue / orders of the segment;
``orders_per_customer``
    mean number of orders;
``share_active``
    share of customers whose last purchase is at most ``period_days`` before as_of;
``retention_proxy``
    share of customers who bought both in the last ``period_days`` and in the
    ``period_days`` before those (needs the transaction log; None otherwise);
``clv_mean``, ``clv_total``, ``share_clv``
    mean and sum of the predicted 365-day customer value (``clv_365d`` of the
    ``value`` family), and the segment's share of the predicted total;
``p_alive_median``
    median probability that a customer is still active (``p_alive``);
``expected_purchases_90d_mean``, ``expected_purchases_365d_mean``
    mean expected purchases in the next 90 and 365 days.

A measure the data cannot give (a customer attribute table has no orders; the value
family was left out because its models could not be fitted) is None: nothing is
estimated in its place.

`actionability` is recorded under ``"actionability"``: ``min_share``,
``min_difference``, ``actionable`` (no flags), ``flags`` (each ``{"kind":
"too_small" | "too_similar", "segment_ids", "segment_names", "detail",
"suggestion"}``) and ``rule``. A segment is **too small** below ``min_share`` (1%)
of customers; two segments are **too similar** when no feature that defines the
segments differs between their means by ``min_difference`` (0.5) population
standard deviations or more: no campaign could tell them apart.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Mapping

import numpy as np
import pandas as pd


__all__ = ["segment_economics", "retention_flags", "actionability", "ECONOMICS_PERIOD_DAYS", "MIN_SEGMENT_SHARE", "MIN_DIFFERENCE"]

ECONOMICS_PERIOD_DAYS = 90
#: Segments below this share of customers are flagged as too small.
MIN_SEGMENT_SHARE = 0.01
#: Two segments whose defining features all differ by less than this many population
#: standard deviations are flagged as too similar.
MIN_DIFFERENCE = 0.5

_DEFINITIONS = {
    "customers": "customers in the segment",
    "share_customers": "customers / all customers",
    "revenue": "net spend before as_of (returns and cancellations deducted)",
    "share_revenue": "revenue / total revenue",
    "average_order_value": "revenue / orders",
    "orders_per_customer": "mean number of orders",
    "share_active": "share of customers whose last purchase is at most {p} days before as_of",
    "retention_proxy": "share of customers who bought in the last {p} days and in the {p} days before those",
    "clv_mean": "mean predicted customer value over the next 365 days (clv_365d, BG/NBD and Gamma-Gamma)",
    "clv_total": "predicted customer value of the segment over the next 365 days (sum of clv_365d)",
    "share_clv": "clv_total / total predicted customer value",
    "p_alive_median": "median probability that a customer is still active (p_alive, BG/NBD)",
    "expected_purchases_90d_mean": "mean expected purchases in the next 90 days (BG/NBD)",
    "expected_purchases_365d_mean": "mean expected purchases in the next 365 days (BG/NBD)",
}

#: Value measures: key, column of the value family, statistic.
_VALUE_MEASURES = (
    ("clv_mean", "clv_365d", "mean"),
    ("clv_total", "clv_365d", "sum"),
    ("p_alive_median", "p_alive", "median"),
    ("expected_purchases_90d_mean", "expected_purchases_90d", "mean"),
    ("expected_purchases_365d_mean", "expected_purchases_365d", "mean"),
)
_STATISTICS = {"mean": np.nanmean, "sum": np.nansum, "median": np.nanmedian}


def retention_flags(transactions, as_of: date, period_days: int = ECONOMICS_PERIOD_DAYS) -> pd.Series:
    """Whether each customer bought in both of the last two periods before ``as_of``.

    The one measure of `segment_economics` that needs the order lines: the flow
    computes it right after the features, so that the log can be released before
    the segments are fitted.

    Parameters
    ----------
    transactions : Transactions
        The cleaned log, still in its engine.
    as_of : date
        Observation date of the features.
    period_days : int
        Length of each period.

    Returns
    -------
    Series of bool
        Indexed by customer id as text; customers without an order in the two
        periods are absent (not retained).
    """
    start = datetime.combine(as_of, datetime.min.time())
    recent_from = start - timedelta(days=period_days)
    previous_from = start - timedelta(days=2 * period_days)
    frame = transactions.engine.fetch_df(
        f"SELECT CAST(customer_id AS STRING) AS customer_id, "
        f"bool_or(ts >= ?) AND bool_or(ts < ?) AS retained "
        f"FROM {transactions.engine.quote(transactions.table_name)} WHERE NOT is_return AND ts >= ? AND ts < ? GROUP BY 1",
        [recent_from, recent_from, previous_from, start],
    )
    return frame.set_index("customer_id")["retained"].astype(bool)


def _column(frame: pd.DataFrame, name: str | None) -> np.ndarray | None:
    if name is None or name not in frame.columns:
        return None
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _value_measures(mask: np.ndarray, value: Mapping[str, np.ndarray | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, column, statistic in _VALUE_MEASURES:
        values = value.get(column)
        if values is None or not mask.any() or np.isnan(values[mask]).all():
            out[key] = None
        else:
            out[key] = float(_STATISTICS[statistic](values[mask]))
    return out


def _measures(mask: np.ndarray, spend, orders, recency, retained, period_days: int) -> dict[str, Any]:
    n = int(mask.sum())
    out: dict[str, Any] = {"customers": n}
    revenue = float(np.nansum(spend[mask])) if spend is not None else None
    out["revenue"] = revenue
    if orders is not None and n:
        n_orders = float(np.nansum(orders[mask]))
        out["orders_per_customer"] = n_orders / n
        out["average_order_value"] = revenue / n_orders if revenue is not None and n_orders > 0 else None
    else:
        out["orders_per_customer"] = out["average_order_value"] = None
    out["share_active"] = float(np.mean(recency[mask] <= period_days)) if recency is not None and n else None
    out["retention_proxy"] = float(np.mean(retained[mask])) if retained is not None and n else None
    return out


def segment_economics(
    frame: pd.DataFrame,
    segment_ids: np.ndarray,
    names: Mapping[int, str],
    *,
    transactions=None,
    retained: pd.Series | None = None,
    as_of: date | None = None,
    period_days: int = ECONOMICS_PERIOD_DAYS,
    currency_column: str | None = "monetary_total",
    orders_column: str = "n_orders",
    recency_column: str = "recency_days",
) -> dict[str, Any]:
    """Economics of every segment (shape and definitions in the module docstring).

    Parameters
    ----------
    frame : DataFrame
        Customer features indexed by customer id, rows in the order of ``segment_ids``.
    segment_ids : array of int
    names : dict of int to str
    transactions : Transactions, optional
        The cleaned log; the retention proxy is computed from it when ``retained``
        is not given.
    retained : Series of bool, optional
        `retention_flags` computed earlier (for example before the log was released);
        customers it does not list count as not retained.
    as_of : date, optional
        Observation date of the features.
    period_days : int
        Length of the activity and retention periods.
    """
    segment_ids = np.asarray(segment_ids)
    spend = _column(frame, currency_column)
    orders = _column(frame, orders_column)
    recency = _column(frame, recency_column)
    if retained is None and transactions is not None and as_of is not None:
        retained = retention_flags(transactions, as_of, period_days)
    retained_rows = None
    if retained is not None:
        retained_rows = retained.reindex(frame.index.astype(str)).fillna(False).to_numpy(dtype=bool)
    value = {column: _column(frame, column) for _, column, _ in _VALUE_MEASURES}
    everyone = np.ones(len(segment_ids), dtype=bool)
    total = _measures(everyone, spend, orders, recency, retained_rows, period_days)
    total.update(_value_measures(everyone, value))
    rows = []
    for seg in sorted(int(s) for s in names):
        mask = segment_ids == seg
        row = {"segment_id": seg, "segment_name": names[seg]}
        row.update(_measures(mask, spend, orders, recency, retained_rows, period_days))
        row.update(_value_measures(mask, value))
        rows.append(row)
    for row in rows + [total]:
        row["share_customers"] = row["customers"] / max(total["customers"], 1)
        row["share_revenue"] = (
            row["revenue"] / total["revenue"] if row["revenue"] is not None and total["revenue"] else None
        )
        row["share_clv"] = (
            row["clv_total"] / total["clv_total"] if row["clv_total"] is not None and total["clv_total"] else None
        )
    definitions = {k: v.format(p=period_days) for k, v in _DEFINITIONS.items()}
    return {
        "as_of": str(as_of) if as_of else None,
        "period_days": period_days,
        "currency_column": currency_column if spend is not None else None,
        "segments": rows,
        "total": total,
        "definitions": definitions,
    }


def actionability(
    profiles,
    defining_columns: list[str],
    *,
    min_share: float = MIN_SEGMENT_SHARE,
    min_difference: float = MIN_DIFFERENCE,
) -> dict[str, Any]:
    """Flag segments too small or too similar to act on (rule in the module docstring).

    Parameters
    ----------
    profiles : Profiles
        The segments' profiles (their z-scores are against the whole population).
    defining_columns : list of str
        Columns the segments were defined on; only their numeric ones are compared.
    """
    segments = list(profiles)
    numeric = [c for c in defining_columns if c in profiles.population_means]
    z = np.array([[np.nan_to_num(s.zscores.get(c, 0.0)) for c in numeric] for s in segments]) if numeric else None
    flags: list[dict[str, Any]] = []
    n_segments = len(segments)

    def nearest(i: int) -> int | None:
        if z is None or n_segments < 2:
            return None
        gaps = np.abs(z - z[i]).max(axis=1)
        gaps[i] = np.inf
        return int(np.argmin(gaps))

    for i, seg in enumerate(segments):
        if seg.share_customers < min_share:
            j = nearest(i)
            target = f" into {segments[j].name} (segment {segments[j].segment_id}), the most similar," if j is not None else ""
            flags.append({
                "kind": "too_small",
                "segment_ids": [seg.segment_id],
                "segment_names": [seg.name],
                "detail": f"{seg.name} holds {seg.share_customers:.2%} of customers ({seg.n_customers:,}), below {min_share:.0%}",
                "suggestion": (
                    f"merge it{target} or keep it only if a dedicated action pays for so few customers"
                ),
            })
    if z is not None:
        for i in range(n_segments):
            for j in range(i + 1, n_segments):
                largest = float(np.abs(z[i] - z[j]).max())
                if largest < min_difference:
                    a, b = segments[i], segments[j]
                    flags.append({
                        "kind": "too_similar",
                        "segment_ids": [a.segment_id, b.segment_id],
                        "segment_names": [a.name, b.name],
                        "detail": (
                            f"{a.name} and {b.name} differ by at most {largest:.2f} standard deviations on every "
                            f"feature that defines the segments (threshold {min_difference})"
                        ),
                        "suggestion": f"merge them, or segment again with fewer segments (--segments {n_segments - 1})",
                    })
    return {
        "min_share": min_share,
        "min_difference": min_difference,
        "actionable": not flags,
        "flags": flags,
        "rule": (
            f"too small: below {min_share:.0%} of customers; too similar: no defining feature's segment means "
            f"differ by {min_difference} population standard deviations or more"
        ),
    }
