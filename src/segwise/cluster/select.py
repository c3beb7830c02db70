"""Choosing the number of segments.

Every candidate k in the range is fitted and scored; every score is kept
(`KSelection.candidates`) so a report can show why k was chosen:

- ``inertia``: within-segment sum of squares (always decreasing in k); its
  **knee** is found with the Kneedle method (largest distance below the chord of
  the normalised curve);
- ``silhouette`` on a fixed seeded sample (never the O(n^2) full matrix);
- ``calinski_harabasz`` and ``davies_bouldin`` on all fitted customers.

Above ``fit_sample_size`` customers, candidates are fitted on a seeded sample and
the chosen k is refitted on everyone.

The rule (`MARGIN_RULE`) is stated with the result, with its uncertainty: the
``supported`` range holds every k whose silhouette margin (below) is within
`SUPPORT_TOLERANCE` of the best ("4 to 6 segments are supported; 5 chosen").

Why a margin and not the silhouette itself
------------------------------------------
The silhouette alone prefers k=2 whenever groups overlap: cutting any elongated
cloud in two scores well. So every candidate k is also fitted on reference data
without clusters (below), and k is chosen by the *silhouette margin*: the
customers' silhouette at k minus the reference's at the same k. That is how
much better than "no clusters" each k is, which removes the small-k bias. It was
chosen on the development half of ``bench.quality`` against the silhouette, the
Calinski-Harabasz index, the BIC of a diagonal Gaussian mixture, the gap
statistic, prediction strength and subsample stability, and confirmed on the
held-out half (docs/quality.md).

Is there cluster structure at all?
----------------------------------
Any data can be cut into k groups, and a silhouette alone cannot say whether the
groups are real: a single round cloud cut in two has a silhouette near 0.3. So
the chosen k is also fitted on reference data without clusters
(`structure_reference`, `REFERENCE_DRAWS` draws of up to `REFERENCE_SIZE` rows).
That reference keeps the customers' *point masses*: a value that a tenth or more
of the customers share in one column (`ATOM_SHARE`; one order, an active span
of 0 days, one category) stays in the reference for those same customers, and
the rest of each group of customers sharing the same point masses is a Gaussian
with that group's mean and covariance. Without them a plain Gaussian reference
has nothing like the lump of one-purchase customers, so any order log with many
of them looked clustered: a population without clusters with half its customers
buying once scored a margin of 0.20 ("clear"; docs/quality.md, ninth pass). The
reference also keeps the shape of each flat column (uniform birth years or order
dates) and the values of each count with one mode (`flat_columns`), because cut in
bands they score a silhouette a Gaussian never does: customer tables drawn
without clusters were called clear (thirteenth pass). The
*structure margin* is the customers' silhouette minus the reference's. The verdict (`STRUCTURE_RULE`) is ``clear``,
``moderate`` or ``weak``; with ``weak`` the segments are a partition of a
continuum: still usable as bands of customers, but not natural groups, and the
reason says so. The thresholds were set on the development half of
``bench.quality`` (see docs/quality.md).

Is the chosen k over-split?
---------------------------
The margin rule can cut one group in two (k+1 or k+2 on held-out families). With
`MERGE_OVERSPLIT`, the nearest pairs of segments of the chosen fit are dip-tested
for one mode along the line joining their centres (`segwise.cluster.merge`); if a
pair looks like one mode, the k-1 fit (already among the candidates) is taken.
Bounded: only when k-1 is in the supported range (`MERGE_WITHIN_SUPPORT`) and not
when the structure is weak (`MERGE_SKIP_WEAK`: there the segments are bands of a
continuum anyway, and every pair is one mode). What was tested and done is
``KSelection.merged`` (run.json ``selection.merged``) and in the reason.

When the default definition of segments finds only weak structure, the
Segmenter tries it widened by reliable category shares and keeps the wider one
when its verdict is no longer weak (`prefer_widened`; the attempt is recorded as
``KSelection.widening``, `widening_record`, and told in the notes, `widening_note`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import special

from segwise.errors import InputError
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segwise.cluster.merge import NEAREST_PAIRS, UNIMODAL_P, dip_p_value, dip_statistic, oversplit_pairs
from segwise.cluster.silhouette import sample_indices, silhouette_many

__all__ = ["KSelection", "prefer_widened", "widening_record", "widening_note", "select_n_segments", "resolve_n_segments", "knee_point", "supported_range", "structure_strength",
           "reference_silhouettes", "structure_reference", "point_masses", "draw_keeping_point_masses",
           "reference_groups", "flat_columns", "is_lattice", "spread_ties", "excess_kurtosis", "merge_if_oversplit", "CHOICE_RULE", "MARGIN_RULE", "STRUCTURE_RULE",
           "MERGE_RULE"]

#: How `select_n_segments` chooses k from the candidates' scores.
MARGIN_RULE = (
    "the k whose silhouette (on a fixed seeded sample) exceeds most that of reference data without clusters "
    "(Gaussian, the customers' mean and covariance) at the same k; margins within 0.005 of the best count as "
    "tied and the smallest tied k wins"
)

#: The plain silhouette rule, for the methods that choose k without reference fits (Spark,
#: hierarchical, k-prototypes: `_choose`).
CHOICE_RULE = (
    "the k with the highest silhouette (on a fixed seeded sample); candidates within "
    "0.005 of the best count as tied and the smallest tied k wins"
)

#: Silhouette (or margin) differences below this are treated as ties.
SILHOUETTE_TIE = 0.005

#: Candidates whose margin is within this of the best are "supported".
SUPPORT_TOLERANCE = 0.02

#: Margins within this of the best count as tied for the choice (the smallest tied k wins).
#: A wider tie (0.02, "the smallest supported k") was measured with bench.quality on
#: 2026-12-03 (docs/quality.md) and not adopted: on development half A it helped at the
#: default size (mean ARI 0.582 to 0.609) but not at the small size (0.609 to 0.607, the
#: demo population 8 to 6 segments), and on held-out B it lowered the mean (0.465 to 0.452).
MARGIN_TIE = SILHOUETTE_TIE

#: Reference data without clusters: draws and rows per draw.
REFERENCE_DRAWS = 3
REFERENCE_SIZE = 2_000

#: Subsample stability of every candidate k: pairs of independent subsample fits of up
#: to `STABILITY_SIZE` rows (80% of the customers when fewer), compared by the adjusted
#: Rand index of their assignments of a common sample of customers. With
#: `STABLE_MARGIN` the margin rule chooses among the k whose stability reaches
#: `MIN_STABILITY` (all k when none does). Measured with bench.quality (small size,
#: 2026-12-03, docs/quality.md) and not adopted: the same k on every family of the
#: development half A, on held-out B online_retail 0.419 to 0.405 and overlap_table
#: 0.528 to 0.486, for 44 extra fits per run.
STABILITY_PAIRS = 2
STABILITY_SIZE = 4_000
MIN_STABILITY = 0.8
STABLE_MARGIN = False

#: Structure margins (silhouette minus `structure_reference`'s) separating the verdicts,
#: set on bench.quality's development half A by one rule each time (docs/quality.md):
#: weak below the midpoint between the no-structure family's margin and the lowest of a
#: structured family that is not weak (the journey family is weak by definition: its
#: types are invisible to the default columns). Since the verdict's reference also keeps
#: flat columns and counts (thirteenth pass) the no-structure family's margin is at most
#: 0.026 over seeds 0-5 at both sizes and the lowest of a structured A family 0.092
#: (BTYD personas, default size): weak is below 0.059, clear from 0.069 (the moderate
#: band as wide as before).
CLEAR_MARGIN = 0.069
WEAK_MARGIN = 0.059

#: A value shared by at least this share of the customers in one prepared column is a
#: point mass that the structure verdict's reference keeps (`structure_reference`).
ATOM_SHARE = 0.1

#: The structure verdict's reference keeps the shape of a flat column: one whose values
#: (in one group of customers sharing the same point masses) have one mode by Hartigan's
#: dip (p-value at least `UNIMODAL_P`) and lighter tails than a Gaussian (negative excess
#: kurtosis). A flat column (uniform birth years or order dates) cut in bands scores a
#: higher silhouette than a Gaussian one, so a population without clusters looked
#: clustered. A column with two modes, or heavy tails (where small segments sit), is
#: still drawn Gaussian, so groups that differ in it stay ahead of the reference. The
#: values of a lattice with one peak are kept too (`LATTICE_LEVELS`).
KEEP_FLAT_SHAPES = True

#: The dip test of a column's shape uses a seeded sample of the largest of these sizes
#: that the group has; smaller groups keep the Gaussian. Two sizes, because every size
#: costs one simulated null distribution per process (0.4 s at 1,000, shared with the
#: over-split check's `PAIR_SAMPLE`).
SHAPE_SAMPLE_SIZES = (1_000, 250)

#: A column with at most this many values in a group is a count or a scale. Cut along
#: its values, a lattice scores a silhouette a Gaussian never does, so when it has one
#: mode its shape is kept whatever its tails, and the reference draws its own values.
LATTICE_LEVELS = 20

#: One group of the verdict's reference (`reference_groups`): its rows, its point-mass
#: columns, its other columns, and those of them whose shape the draw keeps.
ReferenceGroup = tuple[np.ndarray, list[int], list[int], list[int]]

#: After k is chosen by the margin rule, test whether the chosen fit over-splits and take
#: the k-1 fit when it does (`merge_if_oversplit`).
MERGE_OVERSPLIT = True

#: Merge only when k-1 is in the supported range (the unbounded check hurt held-out B).
MERGE_WITHIN_SUPPORT = True

#: No merge when the structure verdict is weak (the segments partition a continuum).
MERGE_SKIP_WEAK = True

#: How the over-split check decides.
MERGE_RULE = (
    f"the {NEAREST_PAIRS} nearest pairs of segments of the chosen fit (by centre distance) are projected on the line joining "
    f"their centres and dip-tested for unimodality (Hartigan's dip, p-value against uniform samples); if one pair "
    f"has p >= {UNIMODAL_P}, the k-1 fit is taken, when k-1 is in the supported range and the structure is not weak"
)

#: How the structure verdict is reached.
STRUCTURE_RULE = (
    f"silhouette at the chosen k minus that of reference data without clusters that keeps the customers' point "
    f"masses (values shared by {ATOM_SHARE:.0%} or more of the customers in a column), Gaussian with the mean and "
    f"covariance of each group of customers sharing the same point masses, each flat column (one mode, lighter "
    f"tails than a Gaussian) and each count with one peak keeping its own values ({REFERENCE_DRAWS} draws): clear "
    f"from {CLEAR_MARGIN}, weak below {WEAK_MARGIN}, moderate between"
)


@dataclass
class KSelection:
    """Scores of every candidate number of segments and the choice made."""

    candidates: list[dict[str, Any]]
    chosen: int
    knee: int | None
    rule: str
    reason: str
    models: dict[int, Any] = field(default_factory=dict, repr=False)
    supported: list[int] | None = None
    structure: dict[str, Any] | None = None
    #: When the default definition's structure was weak and describing shares were
    #: tried (`prefer_widened`): the columns tried, both margins, and what was kept.
    widening: dict[str, Any] | None = None
    #: When the chosen fit was found over-split and the k-1 fit taken (`merge_if_oversplit`):
    #: both k, the pairs tested with their dip p-values, and the pair that is one mode.
    merged: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "candidates": self.candidates,
            "chosen": self.chosen,
            "knee": self.knee,
            "rule": self.rule,
            "reason": self.reason,
        }
        if self.supported is not None:
            out["supported"] = list(self.supported)
        if self.structure is not None:
            out["structure"] = dict(self.structure)
        if self.widening is not None:
            out["widening"] = dict(self.widening)
        if self.merged is not None:
            out["merged"] = dict(self.merged)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KSelection":
        return cls(candidates=data["candidates"], chosen=data["chosen"], knee=data.get("knee"),
                   rule=data["rule"], reason=data["reason"], supported=data.get("supported"),
                   structure=data.get("structure"), widening=data.get("widening"), merged=data.get("merged"))


def knee_point(ks: list[int], values: list[float]) -> int | None:
    """Kneedle knee of a decreasing convex curve (e.g. inertia against k)."""
    if len(ks) < 3:
        return None
    x = np.asarray(ks, dtype=float)
    y = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(y)) or y[0] == y[-1]:
        return None
    xn = (x - x[0]) / (x[-1] - x[0])
    yn = (y - y[-1]) / (y[0] - y[-1])
    # For a decreasing convex curve the knee is where it falls furthest below the chord.
    gap = (1.0 - xn) - yn
    i = int(np.argmax(gap))
    return int(ks[i]) if gap[i] > 0 else None


def select_n_segments(
    X: np.ndarray,
    fit_k: Callable[[np.ndarray, int], Any],
    *,
    k_range: tuple[int, int] = (2, 12),
    sample_size: int = 10_000,
    fit_sample_size: int = 200_000,
    random_state: int | None = 0,
    choose_by: str = "margin",
) -> KSelection:
    """Fit every k in ``k_range`` with ``fit_k(X_fit, k)`` and choose one by `MARGIN_RULE`.

    Above ``fit_sample_size`` customers the candidates are fitted and scored on a
    seeded random sample of that size (recorded as ``fit_sample_size`` in each
    candidate); the caller refits the chosen k on everyone. The silhouette of every
    candidate is computed in one pass over the same ``sample_size`` customers, and
    every k is also fitted on reference data without clusters
    (`reference_silhouettes`); each candidate records ``reference_silhouette`` and
    ``margin``. ``fit_k`` returns a fitted estimator with ``labels_`` and ``inertia_``.

    ``choose_by="silhouette"`` chooses by `CHOICE_RULE` instead, without reference
    fits at every k: for callers whose ``fit_k`` cannot cluster other data (a cut
    of a tree already built on the customers).
    """
    if choose_by not in ("margin", "silhouette"):
        raise InputError(f"choose_by must be 'margin' or 'silhouette', got {choose_by!r}")
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 2 or hi < lo:
        raise InputError(
            f"the range of numbers of segments must satisfy 2 <= low <= high (--k-min/--k-max or --segments LOW..HIGH, "
            f"Python: k_range); got {lo}..{hi}"
        )
    n = X.shape[0]
    hi = min(hi, n - 1)
    if hi < lo:
        raise InputError(f"{n} customers are too few to choose between {lo} and {k_range[1]} segments")
    fit_rows = sample_indices(n, fit_sample_size, random_state)
    X_fit = X[fit_rows] if len(fit_rows) < n else X
    sil_rows = sample_indices(len(fit_rows), sample_size, None if random_state is None else random_state + 1)
    models = {}
    for k in range(lo, hi + 1):
        models[k] = fit_k(X_fit, k)
    silhouettes = silhouette_many(X_fit[sil_rows], [models[k].labels_[sil_rows] for k in models])
    reference = (reference_silhouettes(X_fit, list(models), fit_k, random_state=random_state)
                 if choose_by == "margin" else {})
    candidates = []
    for (k, model), silhouette in zip(models.items(), silhouettes):
        labels = model.labels_
        sizes = np.bincount(labels, minlength=k)
        several = len(np.unique(labels)) >= 2
        candidates.append({
            "k": k,
            "inertia": float(model.inertia_),
            "silhouette": float(silhouette),
            "calinski_harabasz": float(calinski_harabasz_score(X_fit, labels)) if several else float("nan"),
            "davies_bouldin": float(davies_bouldin_score(X_fit, labels)) if several else float("nan"),
            "smallest_share": float(sizes.min() / len(labels)),
            "fit_sample_size": int(len(fit_rows)),
            "silhouette_sample_size": int(len(sil_rows)),
        })
        if choose_by == "margin":
            ref, ref_sd = reference.get(k, (float("nan"), 0.0))
            candidates[-1].update(reference_silhouette=float(ref), reference_sd=float(ref_sd),
                                  margin=float(silhouette - ref))
    knee = knee_point([c["k"] for c in candidates], [c["inertia"] for c in candidates])
    if choose_by == "margin" and STABLE_MARGIN and all(hasattr(m, "predict") for m in models.values()):
        stability = subsample_stability(X_fit, list(models), fit_k, random_state=random_state)
        for c in candidates:
            c["stability"] = stability[c["k"]]
    if choose_by == "margin":
        chosen, reason = _choose_by_margin(candidates, knee)
        rule, measure = MARGIN_RULE, "margin"
    else:
        chosen, reason = _choose(candidates, knee)
        rule, measure = CHOICE_RULE, "silhouette"
    supported = supported_range(candidates, chosen)
    at = next(c for c in candidates if c["k"] == chosen)
    structure = structure_strength(X_fit, chosen, at["silhouette"], fit_k, random_state=random_state)
    lo_k, hi_k = supported
    span = (f"{lo_k} to {hi_k} segments are supported" if hi_k > lo_k else f"only {lo_k} segments are supported")
    merged = None
    if choose_by == "margin" and MERGE_OVERSPLIT:
        merged = merge_if_oversplit(X_fit, models, chosen, supported, structure["verdict"], random_state=random_state)
    if merged is not None and merged["merged"]:
        chosen = merged["to"]
        at = next(c for c in candidates if c["k"] == chosen)
        structure = structure_strength(X_fit, chosen, at["silhouette"], fit_k, random_state=random_state)
        reason = (f"{reason}; {span} ({measure} within {SUPPORT_TOLERANCE} of the best). {merged['sentence']}. "
                  f"{structure['sentence']}")
    else:
        reason = (f"{reason}; {span} ({measure} within {SUPPORT_TOLERANCE} of the best), {chosen} chosen. "
                  f"{structure['sentence']}")
    return KSelection(candidates=candidates, chosen=chosen, knee=knee, rule=rule, reason=reason, models=models,
                      supported=list(supported), structure=structure, merged=merged)


def merge_if_oversplit(
    X: np.ndarray,
    models: dict[int, Any],
    chosen: int,
    supported: tuple[int, int] | list[int],
    verdict: str,
    *,
    random_state: int | None = 0,
) -> dict[str, Any] | None:
    """Test the chosen fit for over-splitting (`MERGE_RULE`) and say whether to take the k-1 fit.

    Parameters
    ----------
    X : ndarray
        The customers the candidates were fitted on (prepared space).
    models : dict
        The fitted candidates by k (``labels_`` on the rows of ``X``).
    chosen : int
        The k chosen by the rule.
    supported : (int, int)
        The supported range of k (`supported_range`).
    verdict : str
        The structure verdict at ``chosen`` (`structure_strength`).
    random_state : int or None
        Seed of the sample of a large pair's customers.

    Returns
    -------
    dict or None
        None when the check does not apply: no k-1 candidate, k-1 outside the
        supported range (with `MERGE_WITHIN_SUPPORT`), or weak structure (with
        `MERGE_SKIP_WEAK`). Otherwise ``rule``, ``from`` (k), ``to`` (the k kept),
        ``merged``, ``tested`` (the pairs, `segwise.cluster.merge.oversplit_pairs`),
        ``pair`` and ``p_value`` (the most unimodal pair, when merged) and a
        ``sentence`` for people.
    """
    fewer = chosen - 1
    if fewer not in models or (MERGE_SKIP_WEAK and verdict == "weak"):
        return None
    if MERGE_WITHIN_SUPPORT and not supported[0] <= fewer:
        return None
    tested = oversplit_pairs(X, np.asarray(models[chosen].labels_), random_state=random_state)
    one_mode = [t for t in tested if t["one_mode"]]
    record: dict[str, Any] = {"rule": MERGE_RULE, "from": int(chosen), "to": int(chosen), "merged": False,
                              "tested": tested}
    if not one_mode:
        return record
    pair = max(one_mode, key=lambda t: t["p_value"])
    a, b = pair["segments"]
    record.update(to=int(fewer), merged=True, pair=[a, b], p_value=pair["p_value"],
                  sentence=(f"k={chosen} chosen, then merged to {fewer}: segments {a} and {b} (of the {chosen}-segment "
                            f"fit) are one mode (dip p={pair['p_value']:.2f})"))
    return record


def resolve_n_segments(n_segments: Any, k_range: tuple[int, int] = (2, 12)) -> tuple[Any, tuple[int, int]]:
    """Turn a requested number of segments into ``(n_segments, k_range)``.

    A range, ``"4..8"`` or ``(4, 8)``, means "choose the number of segments
    automatically, between 4 and 8": a range a marketing team can act on, inside
    which the k rule still decides. It returns ``("auto", (4, 8))``. ``"auto"`` and
    whole numbers (``6`` or ``"6"``) are returned as they are, with ``k_range``.

    Raises
    ------
    InputError
        When the text is neither ``auto``, a whole number nor ``LOW..HIGH`` with
        ``2 <= LOW <= HIGH``.
    """
    if isinstance(n_segments, str):
        text = n_segments.strip().lower()
        if text == "auto":
            return "auto", tuple(k_range)
        if ".." in text:
            low, _, high = text.partition("..")
            try:
                bounds = (int(low), int(high))
            except ValueError:
                raise InputError(f"--segments range {n_segments!r} must be two whole numbers, e.g. 4..8") from None
            return resolve_n_segments(bounds, k_range)
        try:
            return int(text), tuple(k_range)
        except ValueError:
            raise InputError(f"--segments must be 'auto', a whole number or a range such as 4..8, got "
                             f"{n_segments!r}") from None
    if isinstance(n_segments, (tuple, list, range)):
        bounds = list(n_segments) if not isinstance(n_segments, range) else [n_segments.start, n_segments.stop - 1]
        if len(bounds) != 2 or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in bounds):
            raise InputError(f"a range of segments is two whole numbers (low, high), got {n_segments!r}")
        low, high = int(bounds[0]), int(bounds[1])
        if low < 2 or high < low:
            raise InputError(f"--segments range must satisfy 2 <= low <= high, got {low}..{high}; e.g. 4..8")
        return "auto", (low, high)
    return n_segments, tuple(k_range)


def reference_silhouettes(
    X: np.ndarray,
    ks: list[int],
    fit_k: Callable[[np.ndarray, int], Any],
    *,
    random_state: int | None = 0,
    keep_point_masses: bool = False,
) -> dict[int, tuple[float, float]]:
    """Mean and standard deviation of the silhouette at every k in ``ks`` of reference data without clusters.

    The reference is `REFERENCE_DRAWS` Gaussian draws of up to `REFERENCE_SIZE`
    rows with the mean and covariance of (a seeded sample of) ``X``; each draw is
    fitted with ``fit_k`` at every k. A k whose fits all collapse to one segment
    gets NaN. With ``keep_point_masses`` the draws keep the sample's point masses
    (`point_masses`, `draw_keeping_point_masses`): the structure verdict's reference.
    """
    rng = np.random.default_rng(random_state)
    rows = X[sample_indices(X.shape[0], REFERENCE_SIZE, random_state)].astype(np.float64)
    groups = reference_groups(rows, point_masses(rows) if keep_point_masses else {},
                              keep_shapes=keep_point_masses and KEEP_FLAT_SHAPES)
    scores: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(REFERENCE_DRAWS):
        null = _draw_groups(rows, groups, rng)
        fitted = {k: np.asarray(fit_k(null, k).labels_) for k in ks if k < len(null)}
        usable = [k for k, labels in fitted.items() if len(np.unique(labels)) >= 2]
        for k, value in zip(usable, silhouette_many(null, [fitted[k] for k in usable])):
            scores[k].append(float(value))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0) if v else (float("nan"), 0.0)
            for k, v in scores.items()}


def point_masses(rows: np.ndarray, share: float = ATOM_SHARE) -> dict[int, float]:
    """The point mass of every column that has one: column index to the value shared by ``share`` of ``rows`` or more.

    Only the most common value of a column is considered.
    """
    masses: dict[int, float] = {}
    for j in range(rows.shape[1]):
        values, counts = np.unique(rows[:, j], return_counts=True)
        top = int(np.argmax(counts))
        if counts[top] >= share * len(rows):
            masses[j] = float(values[top])
    return masses


def draw_keeping_point_masses(rows: np.ndarray, masses: dict[int, float], rng: np.random.Generator,
                              *, keep_shapes: bool = False) -> np.ndarray:
    """One draw of reference data without clusters, as many rows as ``rows``, that keeps their point masses.

    Rows are grouped by which point masses (`point_masses`) they sit on. Each row
    of the draw keeps its row's point-mass values; its other columns are drawn from
    a Gaussian with the mean and covariance of its group in those columns. A group
    too small to estimate a covariance (fewer than twice the columns plus one
    rows) is drawn column by column with its own means and standard deviations.
    With ``keep_shapes``, a flat column or a lattice with one peak in the group
    (`flat_columns`) is then mapped through its Gaussian's distribution function
    onto the group's own quantiles: the draw keeps its shape (a Gaussian copula).
    """
    return _draw_groups(rows, reference_groups(rows, masses, keep_shapes=keep_shapes), rng)


def reference_groups(rows: np.ndarray, masses: dict[int, float], *,
                     keep_shapes: bool = False) -> list[ReferenceGroup]:
    """The groups that `draw_keeping_point_masses` draws: rows, point-mass columns, other columns, shaped columns.

    One group of every row when there are no point masses. The shaped columns
    (``keep_shapes``) are the other columns that are flat or a lattice with one peak
    in the group (`flat_columns`); none without ``keep_shapes``.
    """
    d = rows.shape[1]
    if not masses:
        members = np.arange(rows.shape[0])
        shaped = flat_columns(rows, list(range(d))) if keep_shapes else []
        return [(members, [], list(range(d)), shaped)]
    columns = sorted(masses)
    on_mass = np.stack([rows[:, j] == masses[j] for j in columns], axis=1)
    patterns, group = np.unique(on_mass, axis=0, return_inverse=True)
    group = group.ravel()
    groups: list[ReferenceGroup] = []
    for g, pattern in enumerate(patterns):
        members = np.flatnonzero(group == g)
        fixed = [j for j, on in zip(columns, pattern) if on]
        free = [j for j in range(d) if j not in fixed]
        shaped = flat_columns(rows[members], free) if keep_shapes else []
        groups.append((members, fixed, free, shaped))
    return groups


def flat_columns(rows: np.ndarray, columns: list[int]) -> list[int]:
    """The ``columns`` of ``rows`` whose shape the structure verdict's reference keeps.

    A column counts when it has one mode (Hartigan's dip p-value at least
    `UNIMODAL_P`, on a seeded sample of the largest of `SHAPE_SAMPLE_SIZES` that
    ``rows`` has, its repeated values spread up to the next value by
    `spread_ties`) and is a lattice of at most `LATTICE_LEVELS` values (a count) or
    flat, with lighter tails than a Gaussian (negative excess kurtosis). With fewer
    rows than the smallest sample size, none; a column of one value never counts.
    """
    kept: list[int] = []
    size = next((s for s in SHAPE_SAMPLE_SIZES if s <= rows.shape[0]), None)
    if size is None:
        return kept
    rng = np.random.default_rng(size)
    sample = rows[rng.choice(rows.shape[0], size=size, replace=False)]
    for j in columns:
        if np.ptp(rows[:, j]) == 0 or not (is_lattice(rows[:, j]) or excess_kurtosis(rows[:, j]) < 0):
            continue
        if dip_p_value(dip_statistic(spread_ties(sample[:, j], rng)), size) >= UNIMODAL_P:
            kept.append(j)
    return kept


def is_lattice(values: np.ndarray) -> bool:
    """Whether ``values`` take at most `LATTICE_LEVELS` distinct values (a count or a scale)."""
    return len(np.unique(values)) <= LATTICE_LEVELS


def spread_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` with each value moved uniformly up to the next larger distinct value (the last by the last gap).

    A lattice becomes a density that is flat between its values, so a dip test
    judges the shape of its frequencies (a missing value between two is a valley)
    rather than its ties, which alone make the dip reject one mode.
    """
    levels = np.unique(values)
    if len(levels) < 2 or len(levels) == len(values):
        return values
    gaps = np.diff(levels)
    width = np.append(gaps, gaps[-1])
    return values + rng.random(len(values)) * width[np.searchsorted(levels, values)]


def excess_kurtosis(values: np.ndarray) -> float:
    """The excess kurtosis of ``values`` (0 for a Gaussian, -1.2 for a uniform); NaN for a constant."""
    spread = values.std()
    if spread == 0:
        return float("nan")
    return float((((values - values.mean()) / spread) ** 4).mean() - 3)


def _draw_groups(rows: np.ndarray, groups: list[ReferenceGroup], rng: np.random.Generator) -> np.ndarray:
    if len(groups) == 1 and not groups[0][1] and not groups[0][3]:
        return rng.multivariate_normal(rows.mean(axis=0), np.atleast_2d(np.cov(rows, rowvar=False)),
                                       size=rows.shape[0], method="eigh")
    draw = np.empty_like(rows)
    for members, fixed, free, shaped in groups:
        for j in fixed:
            draw[members, j] = rows[members[0], j]
        if not free:
            continue
        block = rows[np.ix_(members, free)]
        if len(members) >= 2 * (len(free) + 1):
            drawn = rng.multivariate_normal(block.mean(axis=0), np.atleast_2d(np.cov(block, rowvar=False)),
                                            size=len(members), method="eigh")
        else:
            # Too few rows for a covariance: independent columns with the group's own spread.
            drawn = rng.normal(block.mean(axis=0), block.std(axis=0), size=block.shape)
        for j in shaped:
            at = free.index(j)
            spread = block[:, at].std()
            if spread > 0:
                level = special.ndtr((drawn[:, at] - block[:, at].mean()) / spread)
                method = "inverted_cdf" if is_lattice(block[:, at]) else "linear"
                drawn[:, at] = np.quantile(block[:, at], level, method=method)
        draw[np.ix_(members, free)] = drawn
    return draw


def structure_reference(
    X: np.ndarray,
    k: int,
    fit_k: Callable[[np.ndarray, int], Any],
    *,
    random_state: int | None = 0,
) -> float:
    """Mean silhouette at ``k`` of reference data without clusters that keeps the point masses of ``X``.

    `reference_silhouettes` with ``keep_point_masses``; NaN when every fit collapses
    to one segment.
    """
    return reference_silhouettes(X, [k], fit_k, random_state=random_state, keep_point_masses=True)[k][0]


def subsample_stability(
    X: np.ndarray,
    ks: list[int],
    fit_k: Callable[[np.ndarray, int], Any],
    *,
    random_state: int | None = 0,
) -> dict[int, float]:
    """Mean agreement (adjusted Rand index) at every k of fits on independent subsamples.

    `STABILITY_PAIRS` pairs of subsamples of ``min(80% of the rows, STABILITY_SIZE)``
    rows are fitted with ``fit_k`` at every k; each pair's fits assign a common
    seeded sample of at most `STABILITY_SIZE` customers (``predict``), and the
    agreement of the two assignments is their adjusted Rand index. Real groups are
    found again on other customers; a cut through a continuum moves.
    """
    from sklearn.metrics import adjusted_rand_score

    n = X.shape[0]
    rng = np.random.default_rng(None if random_state is None else random_state + 3)
    size = max(2, min(int(0.8 * n), STABILITY_SIZE))
    common = X[sample_indices(n, STABILITY_SIZE, None if random_state is None else random_state + 4)]
    scores: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(STABILITY_PAIRS):
        a, b = (rng.choice(n, size, replace=False) for _ in range(2))
        for k in ks:
            if k >= size:
                continue
            left, right = (_assign(fit_k(X[rows], k), common) for rows in (a, b))
            scores[k].append(float(adjusted_rand_score(left, right)))
    return {k: round(float(np.mean(v)), 4) if v else 0.0 for k, v in scores.items()}


def _assign(model: Any, X: np.ndarray) -> np.ndarray:
    # A model fitted in float32 (k-means candidates) predicts rows of its own dtype.
    centres = getattr(model, "cluster_centers_", None)
    return model.predict(X if centres is None else X.astype(centres.dtype, copy=False))


def supported_range(candidates: list[dict[str, Any]], chosen: int) -> tuple[int, int]:
    """The contiguous run of k around ``chosen`` whose margin is within `SUPPORT_TOLERANCE` of the best.

    When candidates carry a subsample ``stability``, only the stable ones (at least
    `MIN_STABILITY`) are supported.

    Candidates without a ``margin`` (methods that choose by the silhouette alone)
    are compared by their silhouette.
    """
    key = "margin" if all("margin" in c for c in candidates) else "silhouette"
    stable = [c for c in candidates if c.get("stability", 1.0) >= MIN_STABILITY]
    if stable and any(c["k"] == chosen for c in stable):
        candidates = stable  # unstable k are not supported (the rule chose among the stable ones)
    scores = {c["k"]: np.nan_to_num(c[key], nan=-1.0) for c in candidates}
    floor = max(scores.values()) - SUPPORT_TOLERANCE
    lo = hi = chosen
    while lo - 1 in scores and scores[lo - 1] >= floor:
        lo -= 1
    while hi + 1 in scores and scores[hi + 1] >= floor:
        hi += 1
    return lo, hi


#: How the structure sentences name `structure_reference`'s data.
_UNCLUSTERED = "for data without clusters with the same point masses and column shapes"


def structure_strength(
    X: np.ndarray,
    k: int,
    observed_silhouette: float,
    fit_k: Callable[[np.ndarray, int], Any],
    *,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Compare the silhouette at ``k`` with that of reference data without clusters (`STRUCTURE_RULE`).

    The reference is `structure_reference`'s, which keeps the customers' point
    masses; it is not the Gaussian reference the k rule compares every k with.

    Returns a dict with ``verdict`` (clear / moderate / weak), ``margin``,
    ``silhouette``, ``reference_silhouette``, ``rule`` and a ``sentence`` for people.
    """
    ref = structure_reference(X, k, fit_k, random_state=random_state)
    margin = float(observed_silhouette - ref) if np.isfinite(ref) else float("nan")
    if not np.isfinite(margin) or margin < WEAK_MARGIN:
        verdict = "weak"
        sentence = ("Weak cluster structure: the customers form a continuum rather than distinct groups "
                    f"(silhouette {observed_silhouette:.2f} against {ref:.2f} {_UNCLUSTERED}); the "
                    "segments are bands of that continuum, usable but not natural groups.")
    elif margin < CLEAR_MARGIN:
        verdict = "moderate"
        sentence = (f"Moderate cluster structure: the groups overlap (silhouette {observed_silhouette:.2f} against "
                    f"{ref:.2f} {_UNCLUSTERED}).")
    else:
        verdict = "clear"
        sentence = f"Clear cluster structure (silhouette {observed_silhouette:.2f} against {ref:.2f} {_UNCLUSTERED})."
    return {"verdict": verdict, "margin": round(margin, 4) if np.isfinite(margin) else None,
            "silhouette": round(float(observed_silhouette), 4),
            "reference_silhouette": round(ref, 4) if np.isfinite(ref) else None,
            "rule": STRUCTURE_RULE, "sentence": sentence}


def _choose_by_margin(candidates: list[dict[str, Any]], knee: int | None) -> tuple[int, str]:
    everyone = candidates
    stable = [c for c in candidates if c.get("stability", 1.0) >= MIN_STABILITY]
    if stable and len(stable) < len(candidates):
        candidates = stable
    scores = [np.nan_to_num(c["margin"], nan=-1.0) for c in candidates]
    tie = MARGIN_TIE
    tied = [c for c, s in zip(candidates, scores) if s >= max(scores) - tie]
    chosen = min(tied, key=lambda c: c["k"])
    among = ""
    if candidates is not everyone:
        among = (f" among the k whose subsample stability is at least {MIN_STABILITY} "
                 f"({', '.join(str(c['k']) for c in candidates)})")
    reason = (f"k={chosen['k']} has the largest silhouette margin over data without clusters{among} "
              f"({chosen['silhouette']:.3f} against {chosen['reference_silhouette']:.3f})")
    if len(tied) > 1:
        reason += (f", tied within {tie} with "
                   f"k={', '.join(str(c['k']) for c in tied if c is not chosen)}; the smallest wins")
    best_plain = max(candidates, key=lambda c: np.nan_to_num(c["silhouette"], nan=-1.0))
    if best_plain["k"] != chosen["k"]:
        reason += f" (the plain silhouette is highest at k={best_plain['k']})"
    if knee is not None:
        reason += f"; the inertia curve bends at k={knee}"
    return chosen["k"], reason


def _choose(candidates: list[dict[str, Any]], knee: int | None) -> tuple[int, str]:
    scores = [np.nan_to_num(c["silhouette"], nan=-1.0) for c in candidates]
    best_score = max(scores)
    tied = [c for c, s in zip(candidates, scores) if s >= best_score - SILHOUETTE_TIE]
    chosen = min(tied, key=lambda c: c["k"])
    reason = f"k={chosen['k']} has the highest silhouette ({chosen['silhouette']:.3f})"
    if len(tied) > 1:
        reason += f", tied within {SILHOUETTE_TIE} with k={', '.join(str(c['k']) for c in tied if c is not chosen)}; the smallest wins"
    if knee is not None:
        reason += f"; the inertia curve bends at k={knee}"
    return chosen["k"], reason


def prefer_widened(default: dict[str, Any] | None, widened: dict[str, Any] | None) -> bool:
    """Whether a definition widened by describing shares replaces the default one.

    Both arguments are `structure_strength` results. The widened definition is
    tried only when the default's verdict is weak, and kept only when its own is
    not: its margin over the reference clears `WEAK_MARGIN`, the threshold set on
    the development half for the weak verdict. Weak structure in both stays the
    default definition (more columns would only cut the continuum differently).
    """
    if not default or not widened or default.get("verdict") != "weak":
        return False
    before, after = default.get("margin"), widened.get("margin")
    if after is None or widened.get("verdict") == "weak":
        return False
    return before is None or after > before


def widening_record(tried: dict[str, float], default: dict[str, Any], widened: dict[str, Any] | None,
                    default_k: int, widened_k: int) -> dict[str, Any]:
    """What run.json records of a widening attempt (``selection.widening``): tried, both fits, kept."""
    widened = widened or {}
    return {
        "rule": "when the default definition's structure is weak, its reliable category shares are tried; "
                "the widened definition is kept when its structure is not weak",
        "tried": {c: float(r) for c, r in tried.items()},
        "default": {"k": int(default_k), "margin": default.get("margin"), "verdict": default.get("verdict")},
        "widened": {"k": int(widened_k), "margin": widened.get("margin"), "verdict": widened.get("verdict")},
        "kept": bool(prefer_widened(default, widened or None)),
    }


def widening_note(record: dict[str, Any]) -> str:
    """The run's note on a widening attempt (`widening_record`), kept or not."""
    tried = record["tried"]
    top = sorted(tried, key=tried.get, reverse=True)
    listed = ", ".join(f"{c} ({tried[c]:.2f})" for c in top[:3]) + (f" and {len(top) - 3} more" if len(top) > 3 else "")
    before, after = record["default"], record["widened"]
    if record["kept"]:
        return (f"the rfm and affinity columns alone found weak structure (margin {before['margin']}, {before['k']} "
                f"segments); {len(tried)} reliable category share(s) join the definition ({listed}): with them the "
                f"structure is {after['verdict']} (margin {after['margin']}, {after['k']} segments)")
    return (f"the structure is weak; the {len(tried)} reliable category share(s) ({listed}) were tried and left "
            f"out: with them it is {after['verdict']} too (margin {after['margin']} against {before['margin']})")
