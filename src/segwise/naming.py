"""Human names and plain-language descriptions of segments.

Names come from archetypes of customer marketing (Champions, Loyal Regulars, Big
Spenders, New Customers, At Risk, Hibernating, Deal Hunters, Category Specialists,
Seasonal Shoppers, ...). Each archetype is a documented score over standardised segment means (see
`ARCHETYPES`); segments and archetypes are matched one-to-one by the Hungarian
algorithm on those scores, so names are unique within a model. A segment whose
best archetype scores below `MIN_ARCHETYPE_SCORE` (or data without RFM columns,
such as a customer attribute table) is named from its two strongest traits, e.g.
"High Annual Income & Low Spending Score". Users can override any name.

`name_profiles` names the segments of a whole segmentation: the Outliers group of a
density method, and segments made of the segments of other segmentations (two
stages, several views), named by joining their parts' names.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from segwise.engines.statistics import SegmentStats
from segwise.errors import InputError
from segwise.features.customers import concept_words
from segwise.profile import (
    Profiles, SegmentProfile, compute_profiles, feature_label, feature_title, naming_zscores as _naming_zscores,
    profiles_from_stats,
)

__all__ = ["named_profiles", "name_segments", "name_profiles", "describe", "ARCHETYPES", "MIN_ARCHETYPE_SCORE", "OUTLIERS_NAME"]

#: Below this archetype score a segment is named from its traits instead.
MIN_ARCHETYPE_SCORE = 0.35

#: Name of the group of customers a density method calls noise.
OUTLIERS_NAME = "Outliers"


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
    "active_days": ("Long-Active", "Short-Lived"),
    "discount_share": ("Discount-Driven", "Full-Price"),
    "top_category_share": ("Focused", "Varied"),
    "n_categories": ("Broad", "Narrow"),
    "category_entropy": ("Broad", "Narrow"),
    "share_weekend_orders": ("Weekend", "Weekday"),
    "season_concentration": ("Seasonal", "Year-Round"),
    "interpurchase_days_mean": ("Slow-Cycle", "Fast-Cycle"),
}


#: Families of per-level share columns (a level's share of the customer's orders): name
#: pattern, and the adjective of a high share, from the level ("Web-First", "Evening").
_LEVEL_SHARES = (
    (re.compile(r"share_channel_(.+)"), "{}-First"),
    (re.compile(r"share_orders_(morning|afternoon|evening|night)"), "{}"),
    (re.compile(r"share_orders_(q[1-4])"), "{}"),
)


def _adjective(feature: str, direction: str) -> tuple[str | None, str | None]:
    """The adjective of a trait (or None) and the group of features that say the same thing.

    A high share of one channel (or part of day, or quarter) is named by its level. A low
    one names nothing (None as the group: the trait is skipped): it says only that the
    orders went to the other levels, and once one of them is named the others say the
    same thing from the other side (more web is less store).
    """
    words = _ADJECTIVES.get(feature)
    if words:
        return words[0 if direction == "high" else 1], feature
    for pattern, form in _LEVEL_SHARES:
        match = pattern.fullmatch(feature)
        if match:
            level = feature_title(match.group(1).replace("_", " ")).replace(" ", "-")
            return (form.format(level), pattern.pattern) if direction == "high" else (None, None)
    return None, feature


#: Words of column names that do not make two columns measure the same thing.
_GENERIC_NAME_WORDS = {"share", "of", "total", "num", "number", "count", "the", "in", "on", "at", "via", "per",
                       "days", "rate", "mean", "avg", "std", "customer", "customers"}


def _subject_words(feature: str) -> set[str]:
    """The words of a column's name that say what it measures (``MntWines``: mnt, wines;
    ``Year_Birth`` and ``age``: age; ``Teenhome`` and ``children_at_home``: children).

    A level's share of the orders (``share_category_books``) or a column's share of its
    group's total (``seafood_share_of_spend``) measures that level or column alone: two
    categories' shares are two subjects.
    """
    if feature.startswith(("share_category_", "share_channel_", "share_orders_")):
        return {feature}
    if "_share_of_" in feature:
        feature = feature.split("_share_of_")[0]
    return {w for w in concept_words(feature) if len(w) > 1 and not w.isdigit() and w not in _GENERIC_NAME_WORDS}


def _trait_name(profile: SegmentProfile, used: set[str]) -> str:
    """A name from the two strongest distinct traits.

    With adjectives for both ("Lapsed, Narrow Customers", "Web-First, Evening
    Customers"), else "High X & Low Y". Features that say the same thing (breadth and
    entropy; two channels' shares) are not used twice, nor two columns without
    adjectives whose names share a word of what they measure (a table's ``total_mnt``
    and ``MntWines``, ``kids_home`` and ``teens_home``): the second trait then says
    something else.
    """
    traits, seen_words, seen_groups, seen_subjects = [], set(), set(), set()
    for t in profile.traits:
        if abs(t["zscore"]) < 0.3:
            continue
        word, group = _adjective(t["feature"], t["direction"])
        if group is None or (word is not None and word in seen_words) or group in seen_groups:
            continue
        if word is None:
            subjects = _subject_words(t["feature"])
            if subjects & seen_subjects:
                continue
            seen_subjects |= subjects
        else:
            seen_words.add(word)
        seen_groups.add(group)
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
            f"{'High' if t['direction'] == 'high' else 'Low'} {feature_title(feature_label(t['feature']))}" for t, _ in traits
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


# --------------------------------------------------------------------------- whole segmentations


def named_profiles(stats_: SegmentStats, *, units: Mapping[str, str] | None = None, value_column: str | None = None,
                   log_columns: set[str] | None = None, overrides: Mapping[Any, str] | None = None) -> Profiles:
    """Profiles and names of segments from their `SegmentStats`, whatever computed them.

    The statistics come from numpy (`segwise.profile.segment_stats`), an engine that
    holds the customers (Spark) or the federated coordinator's sketches; only they
    are needed (one row per segment), names included (``naming_zscores``).
    """
    profiles = profiles_from_stats(stats_, units=units, value_column=value_column)
    return name_segments(profiles, list(stats_.numeric) + list(stats_.categorical), None, log_columns=log_columns,
                         overrides=overrides, naming_zscores=stats_.naming_zscores)



def _subset(profiles: Profiles, keep: set[int]) -> Profiles:
    return Profiles(segments=[s for s in profiles if s.segment_id in keep], population_means=profiles.population_means,
                    population_medians=profiles.population_medians, value_column=profiles.value_column,
                    units=profiles.units)


def _part_names(frame: pd.DataFrame, labels: np.ndarray, columns: Sequence[str] | None,
                profile_kw: dict[str, Any]) -> dict[int, str]:
    """Names of the segments of one part, from the columns that part was segmented on.

    Naming on the part's own columns keeps a channel view from being called
    "Loyal Regulars" because its segments happen to differ in value too.
    """
    mask = labels >= 0
    sub_frame = frame.loc[mask, list(columns)] if columns else frame[mask]
    sub_labels = labels[mask]
    kw = dict(profile_kw)
    if kw.get("value_column") not in sub_frame.columns:
        kw["value_column"] = None
    profiles = compute_profiles(sub_frame, sub_labels, **kw)
    name_segments(profiles, sub_frame, sub_labels, log_columns=kw.get("log_columns"))
    return profiles.names


def name_profiles(profiles: Profiles, frame: pd.DataFrame, labels: np.ndarray, *, log_columns: set[str],
                  overrides: Mapping[Any, str] | None, outlier_segment: int | None,
                  parts: list[dict[str, Any]] | None, segment_parts: dict[int, list[int]] | None,
                  profile_kw: dict[str, Any], part_columns: Mapping[str, Sequence[str]] | None = None,
                  naming_zscores: Mapping[int, Mapping[str, float]] | None = None,
                  ) -> tuple[Profiles, dict[str, Any]]:
    """Name every segment (in place) and return the parts' profiles, if any.

    Outliers are left out when the other segments are named (they would otherwise
    take an archetype) and named `OUTLIERS_NAME`. Composite segments are named
    "A / B" from the names their parts get over all customers (or, for a part
    ``within`` another, within each segment of that part), each named on its own
    ``part_columns``. User ``overrides`` (by segment id or generated name) win.
    ``naming_zscores`` are `SegmentStats.naming_zscores` already computed (e.g. on Spark).
    """
    part_columns = dict(part_columns or {})
    overrides = dict(overrides or {})
    real = {s.segment_id for s in profiles if s.segment_id != outlier_segment}
    mask = labels != outlier_segment if outlier_segment is not None else np.ones(len(labels), dtype=bool)
    if real:
        # Statistics computed where the data live already hold the naming z-scores;
        # with Outliers they are recomputed without them.
        zs = naming_zscores if outlier_segment is None else None
        name_segments(_subset(profiles, real), frame[mask], labels[mask], log_columns=log_columns, naming_zscores=zs)
    part_profiles: dict[str, Any] = {}
    if parts and segment_parts:
        names_by_part: list[dict[Any, str]] = []
        index = {p["part"]: i for i, p in enumerate(parts)}
        for part in parts:
            part_labels = np.asarray(part["labels"], dtype=np.int64)
            columns = part_columns.get(part["part"])
            if part["within"] is None:
                names_by_part.append(_part_names(frame, part_labels, columns, profile_kw))
                part_profile = compute_profiles(frame[part_labels >= 0], part_labels[part_labels >= 0], **profile_kw)
                for seg in part_profile:
                    seg.name = names_by_part[-1][seg.segment_id]
                part_profiles[part["part"]] = part_profile.to_dict()
            else:
                parent_labels = np.asarray(parts[index[part["within"]]]["labels"], dtype=np.int64)
                names = {}
                for parent in np.unique(parent_labels):
                    inside = (parent_labels == parent) & (part_labels >= 0)
                    if inside.any():
                        child_names = _part_names(frame[inside], part_labels[inside], columns, profile_kw)
                        names.update({(int(parent), c): n for c, n in child_names.items()})
                names_by_part.append(names)
        for segment_id, values in segment_parts.items():
            pieces = []
            for i, value in enumerate(values):
                if value < 0:
                    continue
                within = parts[i]["within"]
                key = (int(values[index[within]]), int(value)) if within is not None else int(value)
                pieces.append(names_by_part[i].get(key, f"{parts[i]['part']} {value}"))
            profile = profiles[segment_id]
            profile.name = " / ".join(pieces)
            profile.archetype = None
    if outlier_segment is not None:
        profiles[outlier_segment].name = OUTLIERS_NAME
        profiles[outlier_segment].archetype = None
    for profile in profiles:
        custom = overrides.get(profile.segment_id, overrides.get(str(profile.segment_id), overrides.get(profile.name)))
        if custom:
            profile.name = str(custom)
            profile.name_overridden = True
    for profile in profiles:
        profile.description = describe(profile, profiles)
    final = [p.name for p in profiles]
    repeated = sorted({n for n in final if final.count(n) > 1})
    if repeated:
        raise InputError(f"segment names must be unique within a model; repeated: {', '.join(repeated)}")
    return profiles, part_profiles
