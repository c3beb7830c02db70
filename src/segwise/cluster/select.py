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

The rule (`CHOICE_RULE`) is stated with the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from segwise.errors import InputError
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segwise.cluster.silhouette import sample_indices, silhouette_many

__all__ = ["KSelection", "select_n_segments", "knee_point", "CHOICE_RULE"]

#: How k is chosen from the candidates' scores.
CHOICE_RULE = (
    "the k with the highest silhouette (on a fixed seeded sample); candidates within "
    "0.005 of the best count as tied and the smallest tied k wins"
)

#: Silhouette differences below this are treated as ties.
SILHOUETTE_TIE = 0.005


@dataclass
class KSelection:
    """Scores of every candidate number of segments and the choice made."""

    candidates: list[dict[str, Any]]
    chosen: int
    knee: int | None
    rule: str
    reason: str
    models: dict[int, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "chosen": self.chosen,
            "knee": self.knee,
            "rule": self.rule,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KSelection":
        return cls(candidates=data["candidates"], chosen=data["chosen"], knee=data.get("knee"),
                   rule=data["rule"], reason=data["reason"])


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
    return KSelection(candidates=candidates, chosen=chosen, knee=knee, rule=CHOICE_RULE, reason=reason, models=models)


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
