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

The rule (`CHOICE_RULE`) is stated with the result, with its uncertainty: the
``supported`` range holds every k whose silhouette is within `SUPPORT_TOLERANCE`
of the best ("4 to 6 segments are supported; 5 chosen").

Is there cluster structure at all?
----------------------------------
Any data can be cut into k groups, and a silhouette alone cannot say whether the
groups are real: a single round cloud cut in two has a silhouette near 0.3. So
the chosen k is also fitted on reference data without clusters: Gaussian draws
with the same mean and covariance as the customers (`REFERENCE_DRAWS` draws of
up to `REFERENCE_SIZE` rows). The *structure margin* is the customers'
silhouette minus the reference's. The verdict (`STRUCTURE_RULE`) is ``clear``,
``moderate`` or ``weak``; with ``weak`` the segments are a partition of a
continuum: still usable as bands of customers, but not natural groups, and the
reason says so. The thresholds were set on the development half of
``bench.quality`` (see docs/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from segwise.errors import InputError
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segwise.validate import sample_indices, silhouette_many

__all__ = ["KSelection", "select_n_segments", "knee_point", "supported_range", "structure_strength",
           "CHOICE_RULE", "STRUCTURE_RULE"]

#: How k is chosen from the candidates' scores.
CHOICE_RULE = (
    "the k with the highest silhouette (on a fixed seeded sample); candidates within "
    "0.005 of the best count as tied and the smallest tied k wins"
)

#: Silhouette differences below this are treated as ties.
SILHOUETTE_TIE = 0.005

#: Candidates whose silhouette is within this of the best are "supported".
SUPPORT_TOLERANCE = 0.02

#: Reference data without clusters: draws and rows per draw.
REFERENCE_DRAWS = 3
REFERENCE_SIZE = 2_000

#: Structure margins (silhouette minus the reference's) separating the verdicts.
CLEAR_MARGIN = 0.15
WEAK_MARGIN = 0.07

#: How the structure verdict is reached.
STRUCTURE_RULE = (
    f"silhouette at the chosen k minus that of Gaussian reference data with the customers' mean and covariance "
    f"({REFERENCE_DRAWS} draws): clear from {CLEAR_MARGIN}, weak below {WEAK_MARGIN}, moderate between"
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
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KSelection":
        return cls(candidates=data["candidates"], chosen=data["chosen"], knee=data.get("knee"),
                   rule=data["rule"], reason=data["reason"], supported=data.get("supported"),
                   structure=data.get("structure"))


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
) -> KSelection:
    """Fit every k in ``k_range`` with ``fit_k(X_fit, k)`` and choose one by `CHOICE_RULE`.

    Above ``fit_sample_size`` customers the candidates are fitted and scored on a
    seeded random sample of that size (recorded as ``fit_sample_size`` in each
    candidate); the caller refits the chosen k on everyone. The silhouette of every
    candidate is computed in one pass over the same ``sample_size`` customers.
    ``fit_k`` returns a fitted estimator with ``labels_`` and ``inertia_``.
    """
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 2 or hi < lo:
        raise InputError(
            f"the range of numbers of segments must satisfy 2 <= low <= high (--k-min/--k-max, "
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
    knee = knee_point([c["k"] for c in candidates], [c["inertia"] for c in candidates])
    chosen, reason = _choose(candidates, knee)
    supported = supported_range(candidates, chosen)
    observed = next(c["silhouette"] for c in candidates if c["k"] == chosen)
    structure = structure_strength(X_fit, chosen, observed, fit_k, random_state=random_state)
    lo_k, hi_k = supported
    span = (f"{lo_k} to {hi_k} segments are supported" if hi_k > lo_k else f"only {lo_k} segments are supported")
    reason = (f"{reason}; {span} (silhouette within {SUPPORT_TOLERANCE} of the best), {chosen} chosen. "
              f"{structure['sentence']}")
    return KSelection(candidates=candidates, chosen=chosen, knee=knee, rule=CHOICE_RULE, reason=reason, models=models,
                      supported=list(supported), structure=structure)


def supported_range(candidates: list[dict[str, Any]], chosen: int) -> tuple[int, int]:
    """The contiguous run of k around ``chosen`` whose silhouette is within `SUPPORT_TOLERANCE` of the best."""
    scores = {c["k"]: np.nan_to_num(c["silhouette"], nan=-1.0) for c in candidates}
    floor = max(scores.values()) - SUPPORT_TOLERANCE
    lo = hi = chosen
    while lo - 1 in scores and scores[lo - 1] >= floor:
        lo -= 1
    while hi + 1 in scores and scores[hi + 1] >= floor:
        hi += 1
    return lo, hi


def structure_strength(
    X: np.ndarray,
    k: int,
    observed_silhouette: float,
    fit_k: Callable[[np.ndarray, int], Any],
    *,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Compare the silhouette at ``k`` with that of reference data without clusters (`STRUCTURE_RULE`).

    Returns a dict with ``verdict`` (clear / moderate / weak), ``margin``,
    ``silhouette``, ``reference_silhouette``, ``rule`` and a ``sentence`` for people.
    """
    rng = np.random.default_rng(random_state)
    rows = X[sample_indices(X.shape[0], REFERENCE_SIZE, random_state)].astype(np.float64)
    mean = rows.mean(axis=0)
    cov = np.atleast_2d(np.cov(rows, rowvar=False))
    reference = []
    for _ in range(REFERENCE_DRAWS):
        null = rng.multivariate_normal(mean, cov, size=len(rows), method="eigh")
        model = fit_k(null, k)
        labels = np.asarray(model.labels_)
        if len(np.unique(labels)) >= 2:
            reference.append(silhouette_many(null, [labels])[0])
    ref = float(np.mean(reference)) if reference else float("nan")
    margin = float(observed_silhouette - ref) if reference else float("nan")
    if not np.isfinite(margin) or margin < WEAK_MARGIN:
        verdict = "weak"
        sentence = ("Weak cluster structure: the customers form a continuum rather than distinct groups "
                    f"(silhouette {observed_silhouette:.2f} against {ref:.2f} for data without clusters); the "
                    "segments are bands of that continuum, usable but not natural groups.")
    elif margin < CLEAR_MARGIN:
        verdict = "moderate"
        sentence = (f"Moderate cluster structure: the groups overlap (silhouette {observed_silhouette:.2f} against "
                    f"{ref:.2f} for data without clusters).")
    else:
        verdict = "clear"
        sentence = (f"Clear cluster structure (silhouette {observed_silhouette:.2f} against {ref:.2f} for data "
                    "without clusters).")
    return {"verdict": verdict, "margin": round(margin, 4) if np.isfinite(margin) else None,
            "silhouette": round(float(observed_silhouette), 4),
            "reference_silhouette": round(ref, 4) if np.isfinite(ref) else None,
            "rule": STRUCTURE_RULE, "sentence": sentence}


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
