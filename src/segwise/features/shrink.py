"""Empirical-Bayes shrinkage of per-customer shares toward the population.

A share measured on few orders is mostly sampling noise: one order makes a
weekend share exactly 0 or 1. Clustering on raw shares therefore splits the
largest segments along that noise, and was the reason share families were left
out of segment definitions. Shrinking keeps the signal of customers with many
orders and pulls the others toward the population:

    shrunk = (n * share + m * mu) / (n + m)

with ``n`` the customer's number of orders, ``mu`` the order-weighted population
share and ``m`` the prior strength of a beta-binomial model, estimated by the
method of moments on order-weighted moments: the order-weighted variance of the
shares is the variance of the true shares plus the binomial sampling part
``(mu (1 - mu) - var) * customers / orders``, and ``m = mu (1 - mu) / var - 1``. A column whose shares vary no more than
sampling would explain gets a large ``m`` (everyone near ``mu``): it carries no
customer-level signal, and shrinkage says so.

Standardising a shrunk column would blow its remaining noise back up to unit
variance, so each column also gets a *reliability*, the share of its observed
variance that is between customers rather than sampling (0 for pure noise, near 1
for a share that truly differs); `ShareShrinkage.weights` turns it into a column
weight (its square root) for the distance.

Ratios in -1..1 (trends) are shrunk the same way after mapping them to 0..1.
The learned ``mu`` and ``m`` of every column are kept (`ShareShrinkage.params_`)
so new customers are shrunk with the training population's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["ShareShrinkage", "fit_shrinkage", "shrinkable_columns", "share_reliability", "SHARE_UNITS"]

#: Units (`FeatureColumn.unit`) of the columns that are shrunk, with their range.
SHARE_UNITS = {"share 0-1": (0.0, 1.0), "ratio -1..1": (-1.0, 1.0)}

#: Families whose shares are shrunk: the order shares that used to be left out of
#: segment definitions as noise. Affinity's shares keep their raw values: the
#: category concentration is a maximum over categories, not a binomial share, and
#: the default population's types are told apart by them as they are.
SHRUNK_FAMILIES = ("engagement", "journey", "seasonality", "category_mix", "returns")

#: Shares whose reliability is below this are sampling noise and get weight 0.
MIN_RELIABILITY = 0.25

#: Bounds of the prior strength (in orders): at least half an order, at most 1,000.
_M_MIN, _M_MAX = 0.5, 1_000.0


def shrinkable_columns(frame: pd.DataFrame, docs: Mapping[str, object]) -> list[str]:
    """Columns of ``frame`` documented with a share or -1..1 ratio unit."""
    return [c for c, d in docs.items() if c in frame.columns and getattr(d, "unit", None) in SHARE_UNITS]


@dataclass
class ShareShrinkage:
    """Beta-binomial shrinkage of share columns by the customer's number of orders.

    Parameters
    ----------
    columns : list of str
        Share columns (unit ``share 0-1``) or ratios (``ratio -1..1``).
    units : dict of str to str
        Unit of every column in ``columns``.
    count_column : str
        Column with each customer's number of orders (``n_orders``).
    """

    columns: list[str]
    units: dict[str, str]
    count_column: str = "n_orders"
    params_: dict[str, dict[str, float]] = field(default_factory=dict)

    def _unit_scale(self, column: str, values: np.ndarray) -> np.ndarray:
        lo, hi = SHARE_UNITS[self.units[column]]
        return (values - lo) / (hi - lo)

    def fit(self, frame: pd.DataFrame) -> "ShareShrinkage":
        """Estimate ``mu`` and ``m`` of every column on ``frame``."""
        n = frame[self.count_column].to_numpy(dtype=float)
        self.params_ = {}
        for column in self.columns:
            x = self._unit_scale(column, frame[column].to_numpy(dtype=float))
            ok = np.isfinite(x) & np.isfinite(n) & (n > 0)
            if ok.sum() < 2:
                continue
            xs, ns = x[ok], n[ok]
            total = float(np.sum(ns))
            mu = float(np.clip(np.sum(xs * ns) / total, 1e-6, 1 - 1e-6))
            # Order-weighted moments: customers with many orders say most about the
            # spread of true shares; E[var_w] = var + (mu (1 - mu) - var) * customers / orders.
            observed = float(np.sum(ns * (xs - mu) ** 2) / total)
            ratio = len(xs) / total
            between = (observed - mu * (1 - mu) * ratio) / (1 - ratio) if ratio < 1 else 0.0
            m = _M_MAX if between <= 0 else float(np.clip(mu * (1 - mu) / between - 1, _M_MIN, _M_MAX))
            reliability = 0.0 if observed <= 0 else float(np.clip(between / observed, 0.0, 1.0))
            self.params_[column] = {"mu": mu, "m": m, "reliability": reliability}
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with the share columns shrunk (missing values stay missing)."""
        out = frame.copy()
        n = frame[self.count_column].to_numpy(dtype=float)
        n = np.where(np.isfinite(n) & (n > 0), n, 0.0)
        for column, p in self.params_.items():
            lo, hi = SHARE_UNITS[self.units[column]]
            x = self._unit_scale(column, frame[column].to_numpy(dtype=float))
            shrunk = (n * x + p["m"] * p["mu"]) / (n + p["m"])
            out[column] = lo + shrunk * (hi - lo)
        return out

    def transform_array(self, values: np.ndarray, columns: list[str]) -> np.ndarray:
        """`transform` for a 2-D float array whose columns are named by ``columns`` (the fast path)."""
        out = np.array(values, dtype=np.float64, copy=True)
        position = {c: i for i, c in enumerate(columns)}
        n = out[:, position[self.count_column]]
        n = np.where(np.isfinite(n) & (n > 0), n, 0.0)
        for column, p in self.params_.items():
            lo, hi = SHARE_UNITS[self.units[column]]
            i = position[column]
            x = (out[:, i] - lo) / (hi - lo)
            out[:, i] = lo + (n * x + p["m"] * p["mu"]) / (n + p["m"]) * (hi - lo)
        return out

    def weights(self) -> dict[str, float]:
        """Column weights for the distance: reliability / `MIN_RELIABILITY`, at most 1 (0 for pure noise)."""
        return {c: float(min(1.0, p.get("reliability", 1.0) / MIN_RELIABILITY)) for c, p in self.params_.items()}

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.fit(frame).transform(frame)

    def to_dict(self) -> dict[str, object]:
        """What was learned, for run.json and the model file."""
        return {"count_column": self.count_column, "units": dict(self.units),
                "params": {c: dict(p) for c, p in self.params_.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "ShareShrinkage":
        self = cls(columns=list(data["params"]), units=dict(data["units"]), count_column=str(data["count_column"]))
        self.params_ = {c: dict(p) for c, p in data["params"].items()}
        return self


def fit_shrinkage(frame: pd.DataFrame, docs: Mapping[str, object], columns: list[str],
                  count_column: str = "n_orders") -> ShareShrinkage | None:
    """A fitted `ShareShrinkage` of the `SHRUNK_FAMILIES` share columns among ``columns``, or None.

    None when the table has no order counts (a customer table) or none of
    ``columns`` is a share.
    """
    if count_column not in frame.columns or count_column not in columns:
        # The counts must be a defining column, so that new customers bring them.
        return None
    shares = [c for c in shrinkable_columns(frame, docs) if c in columns
              and getattr(docs[c], "family", None) in SHRUNK_FAMILIES]
    if not shares:
        return None
    return ShareShrinkage(shares, {c: getattr(docs[c], "unit") for c in shares}, count_column).fit(frame)


def share_reliability(frame: pd.DataFrame, docs: Mapping[str, object], columns: list[str],
                      count_column: str = "n_orders") -> dict[str, float]:
    """Each share column's reliability (`ShareShrinkage`); 0 for a column with fewer than two usable customers."""
    fitted = ShareShrinkage(columns, {c: getattr(docs[c], "unit") for c in columns}, count_column).fit(frame)
    return {c: float(fitted.params_.get(c, {}).get("reliability", 0.0)) for c in columns}


#: Reliability from which an unused share is pointed out as a possible definer of segments.
HINT_RELIABILITY = 0.5


def reliable_unused_shares(frame: pd.DataFrame, docs: Mapping[str, object], used: list[str],
                           count_column: str = "n_orders") -> dict[str, float]:
    """Shares of `SHRUNK_FAMILIES` outside ``used`` whose reliability reaches `HINT_RELIABILITY`.

    They vary between customers far more than sampling explains, so they may
    define segments the default definition cannot see (a hint for the user).
    """
    if count_column not in frame.columns:
        return {}
    # Only shares of orders: a trend ratio rests on the recent orders, not on all of
    # them, so its binomial reliability would mostly measure recency.
    unused = [c for c in shrinkable_columns(frame, docs) if c not in used and getattr(docs[c], "unit") == "share 0-1"
              and getattr(docs[c], "family", None) in SHRUNK_FAMILIES]
    if not unused:
        return {}
    reliability = share_reliability(frame, docs, unused, count_column)
    return {c: round(value, 2) for c, value in reliability.items() if value >= HINT_RELIABILITY}


@dataclass(frozen=True)
class IntervalPrior:
    """Gamma prior on customers' buying rates, as a prior on their mean interval between orders.

    A customer's buying rate ``λ`` (orders per day) has a gamma prior; with ``k``
    observed intervals summing to ``S`` days, the posterior mean of the mean interval
    ``1 / λ`` is ``(S + strength * mean_interval) / (k + strength)``: a customer with
    one interval (two orders) is pulled toward the population's ``mean_interval``
    much more than one with twenty, and a one-order customer gets ``mean_interval``.
    ``strength`` is the prior's shape minus one, in intervals.
    """

    mean_interval: float
    strength: float

    def shrunk_interval(self, span_days, n_intervals) -> np.ndarray:
        """Posterior mean interval (days) from the days between first and last order and the number of intervals."""
        span = np.clip(np.asarray(span_days, dtype=float), 0.0, None)
        k = np.clip(np.asarray(n_intervals, dtype=float), 0.0, None)
        return (span + self.strength * self.mean_interval) / (k + self.strength)

    def to_dict(self) -> dict[str, float]:
        return {"mean_interval": self.mean_interval, "strength": self.strength}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> "IntervalPrior":
        return cls(float(data["mean_interval"]), float(data["strength"]))


def fit_interval_prior(span_days, n_intervals) -> IntervalPrior:
    """The gamma prior on buying rates fitted to the repeat buyers (``n_intervals >= 1``) by the method of moments.

    Intervals are taken as exponential given the customer's rate, so a customer's
    observed mean interval over ``k`` intervals has sampling variance ``θ² / k``
    around their true mean interval ``θ``. The interval-weighted variance of the
    observed means, less that sampling part, is the variance ``τ²`` of the true means
    between customers; under the gamma prior (shape ``a``) the true mean interval is
    inverse-gamma with variance ``mean² / (a - 2)``, hence ``strength = a - 1 =
    mean² / τ² + 1``. Clipped to the bounds of the share shrinkage (`_M_MIN`, `_M_MAX`):
    a population whose intervals differ no more than sampling explains gets the
    largest strength (everyone near the mean).

    Raises
    ------
    ValueError
        When no customer has an interval (no repeat buyer).
    """
    mean, variance, sampling = _interval_moments(span_days, n_intervals)
    between = variance - sampling
    strength = _M_MAX if between <= 0 else mean ** 2 / between + 1.0
    return IntervalPrior(mean_interval=mean, strength=float(np.clip(strength, _M_MIN, _M_MAX)))


def interval_reliability(span_days, n_intervals) -> float:
    """The share of the repeat buyers' observed mean intervals' variance that is between customers (0..1).

    The interval counterpart of a share's reliability (`ShareShrinkage`): 0 when the
    intervals differ no more than sampling explains, near 1 when customers' rhythms
    truly differ. See `fit_interval_prior` for the moments.
    """
    _, variance, sampling = _interval_moments(span_days, n_intervals)
    return float(np.clip(1.0 - sampling / variance, 0.0, 1.0)) if variance > 0 else 0.0


def _interval_moments(span_days, n_intervals) -> tuple[float, float, float]:
    """Interval-weighted mean and variance of the repeat buyers' observed mean intervals, and its sampling part."""
    span = np.clip(np.asarray(span_days, dtype=float), 0.0, None)
    k = np.asarray(n_intervals, dtype=float)
    repeat = np.isfinite(span) & np.isfinite(k) & (k >= 1)
    if not repeat.any():
        raise ValueError("no repeat buyer: the interval prior needs customers with at least two orders")
    span, k = span[repeat], k[repeat]
    observed = np.clip(span / k, 1.0, None)
    mean = float(np.average(observed, weights=k))
    variance = float(np.average((observed - mean) ** 2, weights=k))
    # E[observed²] = θ² (1 + 1/k) for exponential intervals, so θ² / k ≈ observed² / (k + 1).
    sampling = float(np.average(observed ** 2 / (k + 1.0), weights=k))
    return mean, variance, sampling


__all__ += ["IntervalPrior", "fit_interval_prior", "interval_reliability"]
