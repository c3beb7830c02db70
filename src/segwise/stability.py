"""Bootstrap stability of a segmentation: would the same segments come back?

`bootstrap_stability` follows Hennig's clusterboot (Hennig 2007, "Cluster-wise
assessment of cluster stability"), applied to the whole pipeline:

1. draw ``B`` bootstrap samples of the customers (n draws with replacement; above
   ``max_sample`` customers, `MAX_BOOTSTRAP_SAMPLE` by default, ``max_sample`` draws
   with replacement: the m-out-of-n bootstrap, so that the time and memory of a refit
   stop growing with n; every original customer is still assigned, see 4.);
2. refit a clone of the fitted `segwise.Segmenter` on each, with its parameters
   unchanged (same columns, same preparation, same method and the same way of
   choosing the number of segments) and a seed of its own, so both the sampling
   and the method's randomness are measured. Only the generic estimator contract is
   used (``get_params``, ``fit``, ``labels_``, ``predict``), so every registered
   method works;
3. compare each refit with the reference segmentation on the customers present in
   its bootstrap sample (each once; their label is the refit's own label, so
   methods without a true ``predict`` are scored the same way):

   - **ARI**: adjusted Rand index between reference and refit labels; reported as
     the mean and the percentile interval over the ``B`` refits;
   - **Jaccard per segment**: for every reference segment, the largest Jaccard
     similarity ``|C & D| / |C | D|`` with any segment D of the refit, averaged over
     the refits. Hennig's reading: below 0.5 a segment is dissolved, 0.6-0.75 it is a
     pattern but doubtful, above 0.85 it is highly stable. Segments below
     ``threshold`` (0.6) are flagged **unstable**;

4. each refit also assigns every original customer with ``predict``; the ARI over
   all customers (``ari_all_mean``) shows how well a refit generalises to the
   customers it did not see (None for a method that cannot assign new customers).

`stability_by_k` repeats this with the number of segments fixed to each candidate,
so the number can be chosen by stability (rule in `STABILITY_K_RULE`).

What a run records under ``"stability"`` in run.json (`StabilityResult.to_dict`):
``B``, ``sample_size`` (draws per bootstrap sample), ``ari_mean``, ``ari_ci`` [low, high], ``ari_all_mean``, ``per_segment``
(segment id as text to mean Jaccard), ``per_segment_ci``, ``unstable`` (segment ids
below the threshold), ``threshold``, ``confidence``, ``n_segments`` (reference and
each refit's), ``n_customers``, ``random_state``, ``seconds``, ``method``, ``rule``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.validation import check_is_fitted

from segwise.errors import InputError

__all__ = ["StabilityResult", "bootstrap_stability", "stability_by_k", "jaccard_best_match", "UNSTABLE_BELOW",
           "STABILITY_K_RULE", "MAX_BOOTSTRAP_SAMPLE"]

#: Draws per bootstrap sample above which samples are capped (m-out-of-n bootstrap):
#: 20 refits of the whole pipeline on 1M customers then take minutes, not an hour.
MAX_BOOTSTRAP_SAMPLE = 50_000

#: Mean best-match Jaccard below which a segment is flagged unstable (Hennig).
UNSTABLE_BELOW = 0.6

#: How `stability_by_k` picks a number of segments.
STABILITY_K_RULE = (
    "the k with the highest mean bootstrap ARI; candidates within 0.01 of the best count as tied and the "
    "largest tied k wins (equal stability, more detail)"
)
_K_TIE = 0.01


def jaccard_best_match(reference: np.ndarray, other: np.ndarray, segment_ids: Sequence[int]) -> np.ndarray:
    """For each id in ``segment_ids``, its largest Jaccard similarity with a segment of ``other``.

    Both labelings cover the same customers. A segment absent from ``reference``
    gets NaN (nothing to compare).
    """
    reference = np.asarray(reference)
    other = np.asarray(other)
    ref_codes, ref_idx = np.unique(reference, return_inverse=True)
    oth_codes, oth_idx = np.unique(other, return_inverse=True)
    kr, ko = len(ref_codes), len(oth_codes)
    joint = np.bincount(ref_idx * ko + oth_idx, minlength=kr * ko).reshape(kr, ko).astype(np.float64)
    ref_sizes = joint.sum(axis=1)
    oth_sizes = joint.sum(axis=0)
    jaccard = joint / (ref_sizes[:, None] + oth_sizes[None, :] - joint)
    best = dict(zip(ref_codes.tolist(), jaccard.max(axis=1)))
    return np.array([best.get(int(s), np.nan) for s in segment_ids], dtype=np.float64)


@dataclass
class StabilityResult:
    """Stability of one reference segmentation over ``B`` bootstrap refits.

    Attributes
    ----------
    segment_ids : list of int
        Reference segment ids (the columns of ``jaccard``).
    ari : ndarray of shape (B,)
        ARI with the reference over the customers present in each bootstrap sample.
    ari_all : ndarray of shape (B,) or None
        ARI over all customers, each assigned by the refit's ``predict``.
    jaccard : ndarray of shape (B, n_segments)
        Best-match Jaccard of each reference segment in each refit (NaN when no
        customer of the segment was drawn).
    n_segments : list of int
        Number of segments each refit found.
    reference_n_segments, n_customers : int
    threshold, confidence : float
    random_state : int or None
    seconds : float
    sample_size : int or None
        Draws per bootstrap sample (``n_customers`` unless capped).
    """

    segment_ids: list[int]
    ari: np.ndarray
    ari_all: np.ndarray | None
    jaccard: np.ndarray
    n_segments: list[int]
    reference_n_segments: int
    n_customers: int
    threshold: float = UNSTABLE_BELOW
    confidence: float = 0.95
    random_state: int | None = 0
    seconds: float = 0.0
    sample_size: int | None = None

    @property
    def B(self) -> int:  # noqa: N802 - the conventional name of the number of resamples
        return len(self.ari)

    def _interval(self, values: np.ndarray) -> list[float] | None:
        values = values[np.isfinite(values)]
        if len(values) == 0:
            return None
        tail = (1.0 - self.confidence) / 2.0
        return [float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))]

    @property
    def ari_mean(self) -> float:
        return float(np.mean(self.ari))

    @property
    def per_segment(self) -> dict[int, float | None]:
        """Mean best-match Jaccard of each reference segment."""
        out: dict[int, float | None] = {}
        for j, seg in enumerate(self.segment_ids):
            column = self.jaccard[:, j]
            column = column[np.isfinite(column)]
            out[seg] = float(column.mean()) if len(column) else None
        return out

    @property
    def unstable(self) -> list[int]:
        """Segments whose mean Jaccard is below the threshold (or never drawn)."""
        return [seg for seg, value in self.per_segment.items() if value is None or value < self.threshold]

    def to_dict(self) -> dict[str, Any]:
        """The run.json shape (see the module docstring)."""
        return {
            "B": self.B,
            "sample_size": self.sample_size if self.sample_size is not None else self.n_customers,
            "ari_mean": self.ari_mean,
            "ari_ci": self._interval(self.ari),
            "ari_all_mean": float(np.mean(self.ari_all)) if self.ari_all is not None else None,
            "per_segment": {str(k): v for k, v in self.per_segment.items()},
            "per_segment_ci": {str(seg): self._interval(self.jaccard[:, j]) for j, seg in enumerate(self.segment_ids)},
            "unstable": self.unstable,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "n_segments": {"reference": self.reference_n_segments, "bootstrap": list(self.n_segments)},
            "n_customers": self.n_customers,
            "random_state": self.random_state,
            "seconds": round(self.seconds, 3),
            "method": "bootstrap refits of the whole pipeline (preparation + method), Hennig's clusterboot"
                      + ("" if self.sample_size is None or self.sample_size >= self.n_customers else
                         f"; each sample is {self.sample_size:,} draws with replacement (m-out-of-n bootstrap) "
                         f"of the {self.n_customers:,} customers"),
            "rule": (
                f"a segment is unstable when its mean best-match Jaccard over the refits is below {self.threshold}; "
                "ARI and Jaccard are computed over the customers present in each bootstrap sample"
            ),
        }


def _frame_of(X) -> tuple[pd.DataFrame, Any]:
    from segwise.features.build import FeatureTable

    if isinstance(X, FeatureTable):
        return X.frame, X
    if isinstance(X, pd.DataFrame):
        return X, None
    from segwise.prepare import as_feature_frame

    return as_feature_frame(X), None


def _resampled(frame: pd.DataFrame, table: Any, rows: np.ndarray):
    boot = frame.iloc[rows].reset_index(drop=True)
    return replace(table, frame=boot) if table is not None else boot


def _one_refit(segmenter, frame, table, reference, segment_ids, seed_seq, params,
               draws) -> tuple[float, float | None, np.ndarray, int]:
    rng = np.random.default_rng(seed_seq)
    rows = rng.integers(0, len(frame), draws)
    seed = int(rng.integers(0, np.iinfo(np.int32).max))
    refit = clone(segmenter).set_params(random_state=seed, **params).fit(_resampled(frame, table, rows))
    refit_labels = np.asarray(refit.labels_)
    present, first = np.unique(rows, return_index=True)
    boot_labels = refit_labels[first]
    ref_present = reference[present]
    ari = float(adjusted_rand_score(ref_present, boot_labels))
    jaccard = jaccard_best_match(ref_present, boot_labels, segment_ids)
    try:
        predicted = np.asarray(refit.predict(frame))
    except (NotImplementedError, AttributeError):
        ari_all = None
    else:
        ari_all = float(adjusted_rand_score(reference, predicted))
    return ari, ari_all, jaccard, int(refit.n_segments_)


def _resolve_jobs(n_jobs: int | None, n_tasks: int) -> int:
    if n_jobs is None:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = cores if n_jobs < 0 else int(n_jobs)
    return max(1, min(jobs, n_tasks))


def bootstrap_stability(
    segmenter,
    X,
    *,
    n_bootstrap: int = 20,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    threshold: float = UNSTABLE_BELOW,
    confidence: float = 0.95,
    n_segments: int | None = None,
    max_sample: int | None = MAX_BOOTSTRAP_SAMPLE,
) -> StabilityResult:
    """Bootstrap stability of a fitted `Segmenter` (procedure in the module docstring).

    Parameters
    ----------
    segmenter : Segmenter
        Fitted on ``X``; its ``labels_`` are the reference.
    X : FeatureTable, DataFrame or array
        The table the segmenter was fitted on.
    n_bootstrap : int
        Number of bootstrap refits ``B``.
    random_state : int or None
        Seed of the samples and of the refits' seeds.
    n_jobs : int or None
        Refits run at once in worker processes (-1: one per core; None or 1: in
        this process). Each worker limits its math libraries to its share of cores.
    threshold : float
        Mean Jaccard below which a segment is flagged unstable.
    confidence : float
        Coverage of the reported intervals.
    n_segments : int, optional
        Refit with this number of segments instead of the segmenter's own setting.
    max_sample : int or None
        Most draws per bootstrap sample (m-out-of-n bootstrap above it); None: always
        n draws (the classic bootstrap, whatever n).

    Returns
    -------
    StabilityResult
    """
    check_is_fitted(segmenter, "labels_")
    owner = "bootstrap_stability"
    if not isinstance(n_bootstrap, (int, np.integer)) or isinstance(n_bootstrap, bool) or n_bootstrap < 2:
        raise InputError(f"The 'n_bootstrap' parameter of {owner} must be an int in the range [2, inf). "
                         f"Got {n_bootstrap!r} instead.")
    if not 0 < threshold <= 1:
        raise InputError(f"The 'threshold' parameter of {owner} must be a float in the range (0, 1]. "
                         f"Got {threshold!r} instead.")
    if not 0 < confidence < 1:
        raise InputError(f"The 'confidence' parameter of {owner} must be a float in the range (0, 1). "
                         f"Got {confidence!r} instead.")
    if max_sample is not None and (not isinstance(max_sample, (int, np.integer)) or isinstance(max_sample, bool)
                                   or max_sample < 2):
        raise InputError(f"The 'max_sample' parameter of {owner} must be an int in the range [2, inf) or None. "
                         f"Got {max_sample!r} instead.")
    frame, table = _frame_of(X)
    reference = np.asarray(segmenter.labels_)
    if len(reference) != len(frame):
        raise InputError(
            f"bootstrap stability needs the table the segmenter was fitted on: it was fitted on "
            f"{len(reference)} customers, the table has {len(frame)}"
        )
    segment_ids = [int(s) for s in np.unique(reference)]
    params: dict[str, Any] = {"names": None}
    if n_segments is not None:
        params["n_segments"] = int(n_segments)
    started = time.perf_counter()
    seeds = np.random.SeedSequence(random_state).spawn(n_bootstrap)
    jobs = _resolve_jobs(n_jobs, n_bootstrap)
    draws = len(frame) if max_sample is None else min(len(frame), int(max_sample))
    tasks = (delayed(_one_refit)(segmenter, frame, table, reference, segment_ids, s, params, draws) for s in seeds)
    results = Parallel(n_jobs=jobs)(tasks) if jobs > 1 else [task[0](*task[1], **task[2]) for task in tasks]
    ari_all = [r[1] for r in results]
    return StabilityResult(
        segment_ids=segment_ids,
        ari=np.array([r[0] for r in results]),
        ari_all=None if any(a is None for a in ari_all) else np.array(ari_all, dtype=np.float64),
        jaccard=np.vstack([r[2] for r in results]),
        n_segments=[r[3] for r in results],
        reference_n_segments=len(segment_ids),
        n_customers=len(frame),
        threshold=threshold,
        confidence=confidence,
        random_state=random_state,
        seconds=time.perf_counter() - started,
        sample_size=draws,
    )


def stability_by_k(
    segmenter,
    X,
    ks: Sequence[int],
    *,
    n_bootstrap: int = 20,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    threshold: float = UNSTABLE_BELOW,
    max_sample: int | None = MAX_BOOTSTRAP_SAMPLE,
) -> dict[str, Any]:
    """Bootstrap stability for every number of segments in ``ks``.

    For each k a clone of ``segmenter`` (fitted or not: only its parameters are
    used) is fitted on ``X`` with ``n_segments=k`` as the reference and then
    bootstrapped with k fixed (``max_sample`` as in `bootstrap_stability`).

    Returns
    -------
    dict
        ``candidates`` (one dict per k: ``k``, ``ari_mean``, ``ari_ci``,
        ``mean_jaccard``, ``min_jaccard``, ``unstable``), ``chosen`` and ``rule``
        (`STABILITY_K_RULE`).
    """
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 2:
        raise InputError(f"stability by number of segments needs candidates of at least 2 segments; got {ks}")
    candidates = []
    for k in ks:
        reference = clone(segmenter).set_params(n_segments=k, names=None, random_state=random_state).fit(X)
        result = bootstrap_stability(reference, X, n_bootstrap=n_bootstrap, random_state=random_state,
                                     n_jobs=n_jobs, threshold=threshold, n_segments=k, max_sample=max_sample)
        jaccards = [v for v in result.per_segment.values() if v is not None]
        candidates.append({
            "k": k, "ari_mean": result.ari_mean, "ari_ci": result._interval(result.ari),
            "mean_jaccard": float(np.mean(jaccards)) if jaccards else None,
            "min_jaccard": float(np.min(jaccards)) if jaccards else None,
            "unstable": result.unstable,
        })
    best = max(c["ari_mean"] for c in candidates)
    chosen = max((c for c in candidates if c["ari_mean"] >= best - _K_TIE), key=lambda c: c["k"])["k"]
    return {"candidates": candidates, "chosen": chosen, "rule": STABILITY_K_RULE, "B": n_bootstrap}
