"""What every population family shares: the Population record and observed summaries.

A family's generator returns a `Population`: the data as a user would hand it to
segwise (an order log or a customer table, in the family's own layout), the
ground-truth type of every customer, and the *canonical* order lines (fixed
column names) from which the oracle's defining features are computed.

The oracle's features are observed per-customer summaries (`order_summaries`),
never the generator's hidden parameters: the oracle shows what is recoverable
from the data when one knows which behaviour defines the types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["Population", "Family", "order_summaries", "lines_frame", "START", "END", "WINDOW_DAYS"]

#: Every generated log covers these two years.
START = pd.Timestamp("2023-01-01")
END = pd.Timestamp("2024-12-31 23:59")
WINDOW_DAYS = 731


@dataclass
class Population:
    """One generated population.

    Attributes
    ----------
    kind : "log" or "table"
        An order log (given to ``segwise.segment(data)``) or a customer table
        (given to ``segwise.segment(customers=...)``).
    data : DataFrame
        What the user hands to segwise, in the family's own layout.
    truth : Series
        Type of every customer, indexed by customer id as text.
    oracle : DataFrame
        The family's defining features, one row per customer (same index).
    lines : DataFrame or None
        Canonical order lines (for the baseline's RFM).
    """

    kind: str
    data: pd.DataFrame
    truth: pd.Series
    oracle: pd.DataFrame
    lines: pd.DataFrame | None = None


@dataclass(frozen=True)
class Family:
    """A population family: a generator written from one set of assumptions."""

    name: str
    half: str
    structure: str  # "clear", "overlap" or "none"
    defines: str
    generate: Callable[[int, int], Population] = field(repr=False)
    sizes: dict = field(default_factory=dict)

    @property
    def true_k(self) -> int | None:
        return None if self.structure == "none" else self.sizes.get("k")


def lines_frame(cust: np.ndarray, order: np.ndarray, ts: np.ndarray, amount: np.ndarray, *,
                category=None, channel=None, discount=None, cancelled=None) -> pd.DataFrame:
    """Canonical order lines: cust (int), order (int), ts (datetime64), amount, optional columns."""
    out = pd.DataFrame({"cust": np.asarray(cust, dtype=np.int64), "order": np.asarray(order, dtype=np.int64),
                        "ts": pd.to_datetime(ts), "amount": np.round(np.asarray(amount, dtype=float), 2)})
    for name, values in (("category", category), ("channel", channel), ("discount", discount),
                         ("cancelled", cancelled)):
        if values is not None:
            out[name] = np.asarray(values)
    return out


def days_to_ts(days: np.ndarray, hours: np.ndarray | None = None, rng: np.random.Generator | None = None
               ) -> np.ndarray:
    """Timestamps from fractional days since `START`; ``hours`` fixes the hour of day."""
    days = np.clip(np.asarray(days, dtype=float), 0, WINDOW_DAYS - 1e-6)
    if hours is not None:
        minutes = (rng.integers(0, 60, len(days)) if rng is not None else 0)
        days = np.floor(days) + (np.asarray(hours) + minutes / 60.0) / 24.0
    return (START + pd.to_timedelta(days * 86400.0, unit="s")).to_numpy()


def order_summaries(lines: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Observed per-customer summaries of canonical order lines (index: customer id as text).

    Columns: ``log_orders``, ``log_order_value``, ``recency_days``, ``tenure_days``,
    ``discount_share``, ``cancel_share``, ``cat_<c>`` (spend shares), ``cat_top``
    (largest spend share), ``cat_breadth`` (categories bought), ``chan_<c>``
    (order shares), ``weekend_share``, ``hour_<part>`` (order shares by part of
    day), ``rate_change`` (second-year orders minus first-year, over their sum),
    ``quarter_<q>`` (order shares by calendar quarter). Columns a log cannot have
    are absent.
    """
    as_of = as_of or (lines["ts"].max().normalize() + pd.Timedelta(days=1))
    kept = lines[~lines["cancelled"]] if "cancelled" in lines else lines
    orders = kept.groupby(["cust", "order"], sort=False).agg(
        ts=("ts", "first"), amount=("amount", "sum"),
        **({"channel": ("channel", "first")} if "channel" in kept else {}),
        **({"discount": ("discount", "max")} if "discount" in kept else {}),
    ).reset_index()
    g = orders.groupby("cust")
    out = pd.DataFrame({
        "log_orders": np.log1p(g.size()),
        "log_order_value": np.log1p(g["amount"].mean().clip(lower=0)),
        "recency_days": (as_of - g["ts"].max()).dt.days,
        "tenure_days": (as_of - g["ts"].min()).dt.days,
    })
    if "discount" in orders:
        out["discount_share"] = g["discount"].mean().astype(float)
    if "cancelled" in lines:
        per_order = lines.groupby(["cust", "order"])["cancelled"].max().groupby("cust").mean()
        out["cancel_share"] = per_order.reindex(out.index).fillna(0.0)
    if "category" in kept:
        spend = kept.pivot_table(index="cust", columns="category", values="amount", aggfunc="sum", fill_value=0.0)
        spend = spend.div(spend.sum(axis=1).replace(0, 1), axis=0)
        for c in spend.columns:
            out[f"cat_{c}"] = spend[c].reindex(out.index).fillna(0.0)
        out["cat_top"] = spend.max(axis=1).reindex(out.index).fillna(1.0)
        out["cat_breadth"] = (spend > 0).sum(axis=1).reindex(out.index).fillna(1).astype(float)
    if "channel" in orders:
        chan = pd.crosstab(orders["cust"], orders["channel"], normalize="index")
        for c in chan.columns:
            out[f"chan_{c}"] = chan[c].reindex(out.index).fillna(0.0)
    weekday = orders["ts"].dt.day_of_week
    out["weekend_share"] = (weekday >= 5).groupby(orders["cust"]).mean()
    part = pd.cut(orders["ts"].dt.hour, [-1, 5, 11, 17, 23], labels=["night", "morning", "afternoon", "evening"])
    hours = pd.crosstab(orders["cust"], part, normalize="index")
    for c in hours.columns:
        out[f"hour_{c}"] = hours[c].reindex(out.index).fillna(0.0)
    second = (orders["ts"] >= START + pd.Timedelta(days=WINDOW_DAYS // 2)).groupby(orders["cust"]).mean()
    out["rate_change"] = 2 * second - 1
    quarter = pd.crosstab(orders["cust"], orders["ts"].dt.quarter, normalize="index")
    for q in quarter.columns:
        out[f"quarter_{q}"] = quarter[q].reindex(out.index).fillna(0.0)
    out.index = out.index.astype(str)
    return out.fillna(0.0)


def pick(summaries: pd.DataFrame, prefixes: tuple[str, ...]) -> pd.DataFrame:
    """The summary columns whose names start with one of ``prefixes``."""
    return summaries[[c for c in summaries.columns if c.startswith(prefixes)]]


def shares_counts(n: int, shares: list[float]) -> np.ndarray:
    """Customers per type for ``shares`` (every type gets at least one customer)."""
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    counts = np.maximum(1, np.floor(shares * n).astype(int))
    counts[np.argmax(counts)] += n - counts.sum()
    return counts


def assign_types(n: int, shares: list[float], rng: np.random.Generator) -> np.ndarray:
    """A shuffled type index per customer with the given shares."""
    types = np.repeat(np.arange(len(shares)), shares_counts(n, shares))
    rng.shuffle(types)
    return types
