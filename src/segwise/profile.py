"""Segment profiles, human names and plain-language descriptions.

A profile describes one segment with every raw feature (not only the ones it was
clustered on): size, share of customers and of revenue, mean and median of each
feature, the z-score of the segment mean against the population, and the features
that set it apart most, phrased for people ("buys 3.2x more often than average").

Names come from archetypes of customer marketing (Champions, Loyal Regulars, Big
Spenders, New Customers, At Risk, Hibernating, Deal Hunters, Category Specialists,
Seasonal Shoppers, ...). Each archetype is a documented score over standardised segment means (see
`ARCHETYPES`); segments and archetypes are matched one-to-one by the Hungarian
algorithm on those scores, so names are unique within a model. A segment whose
best archetype scores below `MIN_ARCHETYPE_SCORE` (or data without RFM columns,
such as a customer attribute table) is named from its two strongest traits, e.g.
"High Annual Income & Low Spending Score". Users can override any name.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from segwise.profile_stats import SegmentStats, naming_zscores as _naming_zscores, segment_stats

__all__ = [
    "SegmentProfile", "Profiles", "SegmentStats", "segment_stats", "compute_profiles", "profiles_from_stats",
    "name_segments", "ARCHETYPES", "MIN_ARCHETYPE_SCORE",
]

#: Below this archetype score a segment is named from its traits instead.
MIN_ARCHETYPE_SCORE = 0.35

_LABELS = {
    "recency_days": "days since last purchase",
    "n_orders": "orders",
    "monetary_total": "total spend",
    "monetary_avg": "average order value",
    "tenure_days": "days as a customer",
    "n_categories": "categories bought",
    "top_category_share": "share of orders in the top category",
    "category_entropy": "category spread (bits)",
    "discount_share": "share of discounted orders",
    "share_weekend_orders": "share of weekend orders",
    "interpurchase_days_mean": "days between orders",
    "interpurchase_days_std": "irregularity of orders",
    "purchase_rate_change": "purchase-rate change",
    "spend_trend": "spend trend",
}


def feature_label(name: str) -> str:
    """A readable label for a feature column."""
    if name in _LABELS:
        return _LABELS[name]
    match = re.fullmatch(r"share_channel_(.+)", name)
    if match:
        return f"share of orders via {match.group(1).replace('_', ' ')}"
    match = re.fullmatch(r"share_orders_(.+)", name)
    if match:
        return f"share of orders in the {match.group(1)}"
    return name.replace("_", " ")


def _title(text: str) -> str:
    return " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in text.split())


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
        skewed amounts (see `_naming_zscores`), so one extreme segment does not
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


# --------------------------------------------------------------------------- names


def _g(z: Mapping[str, float], name: str) -> float:
    value = z.get(name, 0.0)
    return 0.0 if value is None or not np.isfinite(value) else float(value)


def _pos(x: float) -> float:
    return max(x, 0.0)


#: Archetype name -> score over the naming z-scores of a segment (standardised
#: means of log-transformed RFM columns; higher fits better). Each needs the listed
#: columns; archetypes whose columns are missing are not considered.
ARCHETYPES: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, float]], float]]] = {
    # Recent, very frequent and very valuable: clearly above the merely loyal.
    "Champions": (
        ("recency_days", "n_orders", "monetary_total"),
        # The bonus lets a segment that clears every bar outrank "Loyal Regulars".
        lambda z: min(-_g(z, "recency_days"), _g(z, "n_orders") - 0.8, _g(z, "monetary_total") - 0.8) + 0.5,
    ),
    # Recent and frequent, not driven by discounts.
    "Loyal Regulars": (
        ("recency_days", "n_orders"),
        lambda z: min(-_g(z, "recency_days"), _g(z, "n_orders")) - 0.5 * _pos(_g(z, "discount_share") - 0.8),
    ),
    # Large baskets, not frequent.
    "Big Spenders": (
        ("monetary_avg",),
        lambda z: _g(z, "monetary_avg") - 0.5 * _pos(_g(z, "n_orders")) - 0.2,
    ),
    # Short tenure and recent first orders.
    "New Customers": (
        ("tenure_days", "recency_days"),
        lambda z: min(-_g(z, "tenure_days"), -_g(z, "recency_days")) - 0.3 * _pos(_g(z, "n_orders"))
        - 0.3 * _pos(_g(z, "discount_share") - 1.0),
    ),
    # Used to buy repeatedly, not recently.
    "At Risk": (
        ("recency_days", "n_orders"),
        lambda z: min(_g(z, "recency_days") + 0.6, _g(z, "n_orders") + 0.2, _g(z, "tenure_days") + 0.5)
        - 0.5 * _pos(_g(z, "recency_days") - 1.0),
    ),
    # Long gone, bought little.
    "Lost": (
        ("recency_days", "n_orders"),
        lambda z: min(_g(z, "recency_days") - 0.5, -_g(z, "n_orders")),
    ),
    # Not recent, bought little.
    "Hibernating": (
        ("recency_days", "n_orders"),
        lambda z: min(_g(z, "recency_days"), -_g(z, "n_orders")) - 0.1,
    ),
    # Active, repeat buyers who mostly buy on discount.
    "Deal Hunters": (
        ("discount_share", "n_orders"),
        lambda z: min(_g(z, "discount_share") - 0.3, _g(z, "n_orders") + 0.5),
    ),
    # One or two orders, bought on a discount: acquired by a promotion.
    "Promo One-Timers": (
        ("discount_share", "n_orders"),
        lambda z: min(_g(z, "discount_share") - 0.3, -_g(z, "n_orders") - 0.3),
    ),
    # Repeat buyers who stay within one category.
    "Category Specialists": (
        ("top_category_share", "n_orders"),
        lambda z: min(_g(z, "top_category_share"), 0.8 + _g(z, "n_orders"))
        - 0.3 * _pos(_g(z, "recency_days")) - 0.1,
    ),
    # Buy across many categories without being very frequent.
    "Broad Explorers": (
        ("n_categories",),
        lambda z: _g(z, "n_categories") - 0.6 * _pos(_g(z, "n_orders")) - 0.6,
    ),
    # Recent, a few orders: could become loyal.
    "Promising": (
        ("recency_days", "n_orders"),
        lambda z: min(-_g(z, "recency_days"), 0.5 - abs(_g(z, "n_orders"))) - 0.3,
    ),
    # Valuable customers drifting away.
    "Can't Lose Them": (
        ("recency_days", "monetary_total"),
        lambda z: min(_g(z, "recency_days") + 0.3, _g(z, "monetary_total") - 0.5),
    ),
    # Repeat buyers whose orders bunch in one season of the year (seasonality family).
    "Seasonal Shoppers": (
        ("share_orders_top_season", "season_concentration", "n_orders"),
        lambda z: min(_g(z, "share_orders_top_season"), _g(z, "season_concentration")) - 1.0
        - 0.3 * _pos(-_g(z, "n_orders")),
    ),
    "Occasional Buyers": (
        ("n_orders",),
        lambda z: min(-_g(z, "n_orders"), 1.0 - abs(_g(z, "recency_days"))) - 0.4,
    ),
}

#: Adjectives for trait-based names: feature -> (when high, when low).
_ADJECTIVES = {
    "recency_days": ("Lapsed", "Recent"),
    "n_orders": ("Frequent", "Infrequent"),
    "monetary_total": ("High-Value", "Low-Value"),
    "monetary_avg": ("Big-Basket", "Small-Basket"),
    "tenure_days": ("Long-Standing", "Newer"),
    "discount_share": ("Discount-Driven", "Full-Price"),
    "top_category_share": ("Focused", "Varied"),
    "n_categories": ("Broad", "Narrow"),
    "category_entropy": ("Broad", "Narrow"),
    "share_weekend_orders": ("Weekend", "Weekday"),
    "interpurchase_days_mean": ("Slow-Cycle", "Fast-Cycle"),
}


def _trait_name(profile: SegmentProfile, used: set[str]) -> str:
    """A name from the two strongest distinct traits.

    With adjectives for both ("Lapsed, Narrow Customers"), else "High X & Low Y".
    Features that say the same thing (breadth and entropy) are not used twice.
    """
    traits, seen_words = [], set()
    for t in profile.traits:
        if abs(t["zscore"]) < 0.3:
            continue
        words = _ADJECTIVES.get(t["feature"])
        word = words[0 if t["direction"] == "high" else 1] if words else None
        if word is not None and word in seen_words:
            continue
        if word is not None:
            seen_words.add(word)
        traits.append((t, word))
        if len(traits) == 2:
            break
    # Name the traits in feature order, so the same traits always read the same way.
    position = {name: i for i, name in enumerate(profile.means)}
    traits.sort(key=lambda item: position.get(item[0]["feature"], len(position)))
    if not traits:
        base = "Typical Customers"
    elif all(word for _, word in traits):
        base = ", ".join(word for _, word in traits) + " Customers"
    else:
        base = " & ".join(
            f"{'High' if t['direction'] == 'high' else 'Low'} {_title(feature_label(t['feature']))}" for t, _ in traits
        )
    name = base
    i = 2
    while name in used:
        name = f"{base} ({i})"
        i += 1
    return name


def name_segments(
    profiles: Profiles,
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    log_columns: set[str] | None = None,
    overrides: Mapping[Any, str] | None = None,
    naming_zscores: Mapping[int, Mapping[str, float]] | None = None,
) -> Profiles:
    """Give every segment a unique human name and a description (in place; returned).

    Parameters
    ----------
    profiles : Profiles
    features, labels
        The raw features and segment ids the profiles were computed from. With
        ``naming_zscores``, ``features`` may be just the column names and
        ``labels`` None.
    log_columns : set of str, optional
        Columns compared on a log scale when scoring archetypes.
    overrides : mapping, optional
        Segment id (or generated name) to the name the user wants.
    naming_zscores : mapping, optional
        `SegmentStats.naming_zscores` already computed (e.g. on Spark).
    """
    log_columns = set(log_columns or ())
    zs = naming_zscores if naming_zscores is not None else _naming_zscores(features, labels, log_columns)
    available = set(getattr(features, "columns", features))
    archetypes = [(name, fn) for name, (needs, fn) in ARCHETYPES.items() if set(needs) <= available]
    ids = [p.segment_id for p in profiles]
    names: dict[int, str] = {}
    archetype_of: dict[int, str | None] = {i: None for i in ids}
    if archetypes:
        score = np.array([[fn(zs[i]) for _, fn in archetypes] for i in ids])
        rows, cols = linear_sum_assignment(-score)
        for r, c in zip(rows, cols):
            if score[r, c] >= MIN_ARCHETYPE_SCORE:
                names[ids[r]] = archetypes[c][0]
                archetype_of[ids[r]] = archetypes[c][0]
    used = set(names.values())
    for profile in profiles:
        if profile.segment_id not in names:
            names[profile.segment_id] = _trait_name(profile, used)
            used.add(names[profile.segment_id])
    overrides = dict(overrides or {})
    for profile in profiles:
        generated = names[profile.segment_id]
        custom = overrides.get(profile.segment_id, overrides.get(str(profile.segment_id), overrides.get(generated)))
        profile.archetype = archetype_of[profile.segment_id]
        if custom:
            profile.name = str(custom)
            profile.name_overridden = True
        else:
            profile.name = generated
        profile.description = describe(profile, profiles)
    final = [p.name for p in profiles]
    duplicates = sorted({n for n in final if final.count(n) > 1})
    if duplicates:
        from segwise.errors import InputError

        raise InputError(f"segment names must be unique within a model; repeated: {', '.join(duplicates)}")
    return profiles


def _money(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def describe(profile: SegmentProfile, profiles: Profiles) -> str:
    """One paragraph in plain language about a segment."""
    parts = [f"{profile.n_customers:,} customers ({profile.share_customers:.1%} of all)"]
    if profile.share_revenue is not None:
        parts[0] += f" bringing {profile.share_revenue:.1%} of revenue"
    sentence = parts[0] + "."
    traits = [t["text"] for t in profile.traits[:3]]
    if traits:
        sentence += " Compared with everyone: " + "; ".join(traits) + "."
    med = profile.medians
    typical = []
    if "recency_days" in med and np.isfinite(med["recency_days"]):
        typical.append(f"last bought {med['recency_days']:,.0f} days ago")
    if "n_orders" in med and np.isfinite(med["n_orders"]):
        typical.append(f"has placed {med['n_orders']:,.0f} order{'s' if med['n_orders'] != 1 else ''}")
    if "monetary_total" in med and np.isfinite(med["monetary_total"]):
        spend = f"spent {_money(med['monetary_total'])} in total"
        if "monetary_avg" in med and np.isfinite(med["monetary_avg"]):
            spend += f" ({_money(med['monetary_avg'])} per order)"
        typical.append(spend)
    if "tenure_days" in med and np.isfinite(med["tenure_days"]):
        typical.append(f"has been a customer for {med['tenure_days']:,.0f} days")
    if typical:
        sentence += " The typical customer here " + ", ".join(typical) + "."
    return sentence
