"""Segment profiles: what each segment is like, from per-segment statistics.

A profile describes one segment with every raw feature (not only the ones it was
clustered on): size, share of customers and of revenue, mean and median of each
feature, the z-score of the segment mean against the population, and the features
that set it apart most, phrased for people ("buys 3.2x more often than average").

Profiles are made by one function, `profiles_from_stats`, from `SegmentStats`
whatever computed them: `segment_stats` with numpy from a feature frame, the Spark
engine with Spark aggregates, the federated coordinator from the silos' sketches.
Segments are ordered by value by one function too (`order_by_value`). Names and
descriptions are `segwise.naming`.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from segwise.engines.statistics import SegmentStats
from segwise.schema import name_tokens

__all__ = [
    "SegmentProfile", "Profiles", "SegmentStats", "segment_stats", "naming_zscores", "compute_profiles",
    "profiles_from_stats", "order_by_value", "cluster_value_means", "feature_label",
]

_LABELS = {
    "recency_days": "days since last purchase",
    "n_orders": "orders",
    "monetary_total": "total spend",
    "monetary_avg": "average order value",
    "tenure_days": "days as a customer",
    "active_days": "days from first to last purchase",
    "n_categories": "categories bought",
    "top_category_share": "share of orders in the top category",
    "category_entropy": "category spread (bits)",
    "discount_share": "share of discounted orders",
    "share_weekend_orders": "share of weekend orders",
    "interpurchase_days_mean": "days between orders",
    "interpurchase_days_std": "irregularity of orders",
    "purchase_rate_change": "purchase-rate change",
    "spend_trend": "spend trend",
    "spend_share_top3_categories": "share of spend in the top 3 categories",
    "share_returned_orders": "share of orders returned",
    "expected_purchases_90d": "expected purchases in 90 days",
    "expected_purchases_365d": "expected purchases in 365 days",
    "p_alive": "chance of being active",
    "clv_365d": "predicted 365-day value",
}


#: Abbreviations common in the column names of customer tables, in words. General
#: English shorthand, not one data set's names: ``MntWines`` reads "amount of wines",
#: ``NumWebPurchases`` "number of web purchases", ``AcceptedCmp1`` "accepted campaign 1".
_ABBREVIATIONS = {
    "mnt": "amount", "amt": "amount", "n": "number", "num": "number", "nbr": "number", "qty": "quantity",
    "cnt": "count", "avg": "average", "pct": "percent", "perc": "percent", "dt": "date", "cmp": "campaign",
    "cust": "customer", "txn": "transaction", "trx": "transaction", "yr": "year", "yrs": "years", "mth": "month",
    "mths": "months", "prod": "product", "prods": "products", "acct": "account", "freq": "frequency", "tot": "total",
}
#: Words that read "<word> of <the rest>" when a column's name starts with them.
_MEASURE_WORDS = {"amount", "number", "count", "quantity", "year"}
#: Short words that stay in lower case inside a title ("High Amount of Wines").
_SMALL_WORDS = {"of", "on", "in", "at", "the", "via", "per", "since", "to", "a", "an", "and", "or", "with", "from"}


def _column_words(name: str) -> str:
    """A column identifier in words: split at case changes and digits, shorthand spelled out.

    A word glued to "home" without a case change (``Kidhome``, ``Teenhome``) is read
    "kid at home", "teen at home".
    """
    words = []
    for token in name_tokens(name):
        glued = re.fullmatch(r"([a-z]{3,}?)(?:at)?home", token)
        words.append(f"{glued.group(1)} at home" if glued else _ABBREVIATIONS.get(token, token))
    if len(words) > 1 and words[0] in _MEASURE_WORDS and words[1] != "of":
        words.insert(1, "of")
    return " ".join(words) or name


def feature_label(name: str) -> str:
    """A readable label for a feature column.

    segwise's own columns have written labels or patterns; any other column (a customer
    table's) is read as words: ``MntWines`` -> "amount of wines", ``total_mnt`` -> "total
    amount", ``Year_Birth`` -> "year of birth", so no raw identifier reaches a segment's name.
    """
    if name in _LABELS:
        return _LABELS[name]
    match = re.fullmatch(r"share_channel_(.+)", name)
    if match:
        return f"share of orders via {match.group(1).replace('_', ' ')}"
    match = re.fullmatch(r"share_orders_(.+)", name)
    if match:
        return f"share of orders in the {match.group(1)}"
    match = re.fullmatch(r"share_category_(.+)", name)
    if match:
        return f"share of orders with {match.group(1).replace('_', ' ')}"
    if name != name.lower() or _ABBREVIATIONS.keys() & set(name_tokens(name)):
        return _column_words(name)
    return name.replace("_", " ")


def feature_title(text: str) -> str:
    """A feature label in title case (acronyms and short joining words kept), for names made of traits."""
    return " ".join(w if w.isupper() or (i and w in _SMALL_WORDS) else w[:1].upper() + w[1:]
                    for i, w in enumerate(text.split()))


@dataclass
class SegmentProfile:
    """Everything known about one segment."""

    segment_id: int
    name: str
    description: str
    n_customers: int
    share_customers: float
    share_revenue: float | None
    means: dict[str, float]
    medians: dict[str, float]
    zscores: dict[str, float]
    traits: list[dict[str, Any]]
    categories: dict[str, dict[str, float]] = field(default_factory=dict)
    archetype: str | None = None
    name_overridden: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _clean_json(asdict(self))


@dataclass
class Profiles:
    """Profiles of every segment of a model, ordered by segment id."""

    segments: list[SegmentProfile]
    population_means: dict[str, float]
    population_medians: dict[str, float]
    value_column: str | None
    units: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self):
        return iter(self.segments)

    def __getitem__(self, segment_id: int) -> SegmentProfile:
        for seg in self.segments:
            if seg.segment_id == segment_id:
                return seg
        raise KeyError(segment_id)

    @property
    def names(self) -> dict[int, str]:
        return {s.segment_id: s.name for s in self.segments}

    def table(self) -> pd.DataFrame:
        """One row per segment: name, size, shares and top traits."""
        return pd.DataFrame(
            [
                {
                    "segment_id": s.segment_id,
                    "segment_name": s.name,
                    "customers": s.n_customers,
                    "share_customers": s.share_customers,
                    "share_revenue": s.share_revenue,
                    "key_traits": "; ".join(t["text"] for t in s.traits[:3]),
                }
                for s in self.segments
            ]
        ).set_index("segment_id")

    def means_frame(self) -> pd.DataFrame:
        """Segments x features: mean of each raw feature."""
        return pd.DataFrame({s.segment_id: s.means for s in self.segments}).T.rename_axis("segment_id")

    def zscores_frame(self) -> pd.DataFrame:
        """Segments x features: z-score of each segment mean against the population."""
        return pd.DataFrame({s.segment_id: s.zscores for s in self.segments}).T.rename_axis("segment_id")

    def to_dict(self) -> dict[str, Any]:
        return _clean_json({
            "value_column": self.value_column,
            "population_means": self.population_means,
            "population_medians": self.population_medians,
            "units": self.units,
            "segments": [s.to_dict() for s in self.segments],
        })

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Profiles":
        segments = [SegmentProfile(**{k: _unclean(v) for k, v in s.items()}) for s in data["segments"]]
        return cls(
            segments=segments,
            population_means=_unclean(data["population_means"]),
            population_medians=_unclean(data["population_medians"]),
            value_column=data.get("value_column"),
            units=dict(data.get("units", {})),
        )


def _clean_json(value: Any) -> Any:
    """Replace NaN/inf by None recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _unclean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (float("nan") if v is None and not isinstance(v, dict) else _unclean(v)) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- profiles


def _trait_text(feature: str, unit: str, seg_mean: float, pop_mean: float, seg_median: float,
                pop_median: float) -> str:
    label = feature_label(feature)
    if feature == "n_orders" and pop_mean > 0:
        ratio = seg_mean / pop_mean
        if ratio >= 1:
            return f"buys {ratio:.1f}x more often than average"
        return f"buys {1 - ratio:.0%} less often than average"
    if unit.startswith("share"):
        return f"{label}: {seg_mean:.0%} vs {pop_mean:.0%} overall"
    if unit == "days":
        return f"{label}: {seg_median:,.0f} (median) vs {pop_median:,.0f} overall"
    if pop_mean > 0 and seg_mean >= 0 and unit not in ("ratio -1..1", "bits"):
        ratio = seg_mean / pop_mean
        if ratio >= 1:
            return f"{label} {ratio:.1f}x the average"
        return f"{label} {1 - ratio:.0%} below average"
    return f"{label}: {seg_mean:,.3g} vs {pop_mean:,.3g} overall"


def compute_profiles(
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    units: Mapping[str, str] | None = None,
    value_column: str | None = "monetary_total",
    n_traits: int = 5,
    log_columns: set[str] | None = None,
) -> Profiles:
    """Profile every segment of ``labels`` with every column of ``features``.

    Parameters
    ----------
    features : DataFrame
        Raw feature table (one row per customer, in the order of ``labels``).
    labels : array of int
        Segment id of each customer.
    units : mapping, optional
        Column to unit (from the feature documentation), used to phrase traits.
    value_column : str, optional
        Column whose sum is revenue (``monetary_total``); revenue shares are None
        without it.
    n_traits : int
        How many distinguishing traits to keep per segment. Traits are ranked by
        the standardised segment mean on a log scale for durations, counts and
        skewed amounts (see `naming_zscores`), so one extreme segment does not
        hide every other segment's differences.
    log_columns : set of str, optional
        Columns compared on a log scale when ranking traits.

    Returns
    -------
    Profiles
        Unnamed (names are empty until `name_segments`).
    """
    stats_ = segment_stats(features, labels, value_column=value_column, log_columns=log_columns)
    return profiles_from_stats(stats_, units=units, value_column=value_column, n_traits=n_traits)


def profiles_from_stats(stats_: SegmentStats, *, units: Mapping[str, str] | None = None,
                        value_column: str | None = "monetary_total", n_traits: int = 5) -> Profiles:
    """Unnamed `Profiles` from `SegmentStats` (see `compute_profiles` for the parameters)."""
    units = dict(units or {})
    numeric = stats_.numeric
    pop_mean, pop_std, pop_median = stats_.pop_mean, stats_.pop_std, stats_.pop_median
    has_value = stats_.revenue is not None
    total_revenue = float(np.nansum(stats_.revenue)) if has_value else None
    n_total = int(stats_.n_customers.sum())
    segments = []
    for i, seg in enumerate(stats_.segment_ids):
        mean, median = stats_.means[i], stats_.medians[i]
        with np.errstate(all="ignore"):
            z = np.where(pop_std > 0, (mean - pop_mean) / np.where(pop_std > 0, pop_std, 1), 0.0)
        rank_z = np.array([stats_.naming_zscores[int(seg)].get(c, 0.0) for c in numeric])
        # A feature most of the segment has no value for (e.g. days between orders of
        # one-time buyers) says nothing about the segment.
        rank_z = np.where(stats_.observed[i] >= 0.5, rank_z, 0.0)
        order = np.argsort(-np.nan_to_num(np.abs(rank_z), nan=0.0), kind="stable")
        traits = []
        for j in order[:n_traits]:
            if not np.isfinite(z[j]) or abs(rank_z[j]) < 0.2 or np.sign(z[j]) != np.sign(rank_z[j]):
                continue
            feature = numeric[j]
            traits.append({
                "feature": feature,
                "zscore": float(z[j]),
                "direction": "high" if z[j] > 0 else "low",
                "text": _trait_text(feature, units.get(feature, ""), float(mean[j]), float(pop_mean[j]),
                                    float(median[j]), float(pop_median[j])),
            })
        n_seg = int(stats_.n_customers[i])
        revenue = float(stats_.revenue[i]) if has_value else None
        segments.append(SegmentProfile(
            segment_id=int(seg),
            name="",
            description="",
            n_customers=n_seg,
            share_customers=float(n_seg / n_total),
            share_revenue=(revenue / total_revenue if total_revenue else None) if has_value else None,
            means=dict(zip(numeric, map(float, mean))),
            medians=dict(zip(numeric, map(float, median))),
            zscores=dict(zip(numeric, map(float, z))),
            traits=traits,
            categories=stats_.categories[int(seg)],
        ))
    return Profiles(
        segments=segments,
        population_means=dict(zip(numeric, map(float, pop_mean))),
        population_medians=dict(zip(numeric, map(float, pop_median))),
        value_column=value_column if has_value else None,
        units={c: units.get(c, "") for c in numeric},
    )

# --------------------------------------------------------------------------- order


def order_by_value(sizes: np.ndarray, value_means: np.ndarray | None, last: int | None = None) -> np.ndarray:
    """``label_map[cluster] = segment id``: descending value, then size, then cluster number.

    ``value_means`` (NaN where a cluster has no value) orders the clusters; without
    it, size does. The cluster ``last`` (the Outliers of a density method) gets the
    last id whatever its value. Every engine and the federated coordinator order
    segments with this function.
    """
    k = len(sizes)
    means = np.zeros(k) if value_means is None else np.nan_to_num(np.asarray(value_means, dtype=np.float64),
                                                                   nan=-np.inf)
    at_end = np.zeros(k)
    if last is not None:
        at_end[last] = 1.0
    order = np.lexsort((np.arange(k), -np.asarray(sizes, dtype=np.float64), -means, at_end))
    label_map = np.empty(k, dtype=np.int64)
    label_map[order] = np.arange(k)
    return label_map


def cluster_value_means(frame: pd.DataFrame, raw_labels: np.ndarray, value_col: str | None,
                        n_clusters: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Sizes and mean ``value_col`` of each cluster of ``raw_labels`` (NaN: no value), for `order_by_value`."""
    sizes = np.bincount(raw_labels, minlength=n_clusters).astype(float)
    if value_col is None:
        return sizes, None
    values = frame[value_col].to_numpy(dtype=np.float64, na_value=np.nan)
    sums = np.bincount(raw_labels, weights=np.nan_to_num(values), minlength=n_clusters)
    counts = np.bincount(raw_labels, weights=~np.isnan(values), minlength=n_clusters)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sizes, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# --------------------------------------------------------------------------- statistics


def segment_stats(features: pd.DataFrame, labels: np.ndarray, *, value_column: str | None = None,
                  log_columns: set[str] | None = None) -> SegmentStats:
    """`SegmentStats` of ``features`` grouped by ``labels`` (numpy, on this machine)."""
    labels = np.asarray(labels)
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    groups = _Groups(labels)
    k, p = len(groups.ids), len(numeric)
    means, medians, observed = np.full((k, p), np.nan), np.full((k, p), np.nan), np.zeros((k, p))
    pop_mean = np.full(p, np.nan) if len(labels) else np.zeros(p)
    pop_std, pop_median = np.full(p, np.nan), np.full(p, np.nan)
    revenue = None
    # Column by column: a copy of the whole numeric block, sorted by segment, would
    # double the frame's memory at a million customers.
    bounds = groups.bounds()
    for j, column in enumerate(numeric):
        values = features[column].to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(values)
        # Most columns have a value for every customer: then the masks, and the copies
        # they make, are skipped (the results are the same numbers).
        complete = bool(present.all())
        means[:, j], counts = groups.nanmeans(values, present, complete=complete)
        observed[:, j] = counts / np.maximum(groups.sizes, 1)
        # The sorted copy is this loop's own: each segment's median partitions its block in place.
        grouped = groups.sort(values)
        grouped_present = None if complete else groups.sort(present)
        for i, (lo, hi) in enumerate(bounds):
            block = grouped[lo:hi] if grouped_present is None else grouped[lo:hi][grouped_present[lo:hi]]
            if block.size:
                medians[i, j] = np.median(block, overwrite_input=True)
        finite = values if complete else values[present]
        if finite.size:
            pop_mean[j], pop_std[j] = finite.mean(), finite.std()
            # In place only on a copy made here (values may share the frame's memory).
            pop_median[j] = np.median(finite, overwrite_input=not complete)
        if column == value_column:
            revenue = groups.sums(np.where(present, values, 0.0))
    categories: dict[int, dict[str, dict[str, float]]] = {int(seg): {} for seg in groups.ids}
    for column in categorical:
        grouped = groups.sort(features[column].to_numpy(dtype=object))
        for seg, (lo, hi) in zip(groups.ids, groups.bounds()):
            categories[int(seg)][column] = _top_levels(pd.Series(grouped[lo:hi], dtype=object))
    return SegmentStats(
        numeric=numeric, categorical=categorical, segment_ids=groups.ids.astype(np.int64),
        n_customers=groups.sizes.astype(np.int64), means=means, medians=medians, observed=observed,
        pop_mean=pop_mean, pop_std=pop_std, pop_median=pop_median,
        naming_zscores=naming_zscores(features, labels, set(log_columns or ()), groups=groups),
        categories=categories, revenue=revenue,
    )


class _Groups:
    """The customers of each segment as one contiguous block of a stable sort by label.

    One sort serves every column; per-segment boolean masks cost a pass over all
    customers for each segment and column.
    """

    def __init__(self, labels: np.ndarray) -> None:
        self.ids, codes = np.unique(labels, return_inverse=True)
        self.codes = codes.reshape(-1)
        self.sizes = np.bincount(self.codes, minlength=len(self.ids))
        self.order = np.argsort(self.codes, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])

    def bounds(self) -> list[tuple[int, int]]:
        """``(start, end)`` of each segment's block in `sort`'s order."""
        return list(zip(self.starts[:-1].tolist(), self.starts[1:].tolist()))

    def sort(self, values: np.ndarray) -> np.ndarray:
        """``values`` in segment order."""
        return values[self.order]

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` per segment."""
        return np.bincount(self.codes, weights=values, minlength=len(self.ids))

    def nanmeans(self, values: np.ndarray, present: np.ndarray, *,
                 complete: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean of the present ``values`` per segment (NaN where none is) and how many are present.

        ``complete`` (every value present), when the caller knows it, skips the masking.
        """
        if complete is None:
            complete = bool(present.all())
        if complete:
            counts = self.sizes.astype(np.float64)
            totals = self.sums(values)
        else:
            counts = np.bincount(self.codes, weights=present, minlength=len(self.ids))
            totals = self.sums(np.where(present, values, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, totals / counts, np.nan), counts


def _top_levels(values: pd.Series, n: int = 5) -> dict[str, float]:
    """Shares of the ``n`` most frequent levels among the present values; ties in order of the
    level's text, so every engine lists the same levels (`segwise.engines.spark_stats`)."""
    counts = values.dropna().astype(str).value_counts()
    total = float(counts.sum())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
    return {level: count / total for level, count in ordered}


def _skewness(values: np.ndarray) -> float:
    """``scipy.stats.skew(values)`` (biased), with NaN as 0, for a 1-D float array without NaN.

    The same operations in the same order as scipy 1.17's `skew`, so the same number,
    without its input checks and the catastrophic-cancellation check that computes the
    deviations twice more: about half the time on a column of a million customers.
    """
    mean = values.mean()
    deviations = values - mean
    squares = deviations**2
    m2 = squares.mean()
    m3 = (squares * deviations).mean()
    with np.errstate(all="ignore"):
        zero = m2 <= (np.finfo(np.float64).eps * mean) ** 2
        skew = np.nan if zero else m3 / m2**1.5
    return float(np.nan_to_num(skew))


def naming_zscores(features: pd.DataFrame, labels: np.ndarray, log_columns: set[str], *,
                   groups: "_Groups | None" = None) -> dict[int, dict[str, float]]:
    """Standardised segment means, with durations, counts and skewed amounts on a log scale.

    On the raw scale one extreme segment dominates the standard deviation of a
    skewed column; on the log scale every segment's position is readable.
    """
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    groups = groups if groups is not None else _Groups(np.asarray(labels))
    z = np.zeros((len(groups.ids), len(numeric)))
    for j, column in enumerate(numeric):
        col = features[column].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = col[np.isfinite(col)]
        if finite.size and finite.min() >= 0:
            # A declared log-scale column needs no skewness (the costliest part of this loop).
            skewed = column in log_columns
            if not skewed:
                # (A constant column has no skewness.)
                skewed = finite.size > 2 and finite.max() > finite.min() and _skewness(finite) > 1.0
            if skewed:
                col = np.log1p(col)
        present = ~np.isnan(col)
        if not present.any():
            continue
        complete = bool(present.all())
        observed = col if complete else col[present]
        mean, std = observed.mean(), observed.std()
        seg_mean, _ = groups.nanmeans(col, present, complete=complete)
        if std > 0:
            z[:, j] = (seg_mean - mean) / std
    return {int(seg): {c: float(v) for c, v in zip(numeric, row)} for seg, row in zip(groups.ids, z)}