"""Gaussian mixture segmentation with soft membership (scikit-learn's GaussianMixture).

The number of components and the covariance type are chosen together by the
Bayesian information criterion: every pair (k, covariance type) of ``k_range`` x
``covariance_types`` is fitted and kept in ``selection_.candidates``; the lowest
BIC wins (`BIC_RULE`). Above ``fit_sample`` customers the candidates are fitted on
a seeded sample and the winner is refitted on everyone, started from the sample's
solution.

Each customer has a probability of belonging to every segment (`predict_proba`);
the segment is the most probable one and the confidence that probability.
Customers with probability >= ``multi_threshold`` (0.3) in more than one segment
are "multi-segment customers": ``details_["multi_segment"]`` gives their count,
share and which pairs of segments overlap.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from segwise.cluster.base import (
    SegmentClusterer, fit_input, check_int_param, param_error, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.cluster.kmeans import _check_n_segments
from segwise.errors import InputError
from segwise.cluster.select import KSelection
from segwise.cluster.silhouette import sample_indices

__all__ = ["GaussianMixtureSegmenter", "BIC_RULE", "COVARIANCE_TYPES", "multi_segment_summary"]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

#: How the number of components and the covariance type are chosen.
BIC_RULE = "the (number of components, covariance type) with the lowest BIC over every candidate fitted"


def n_parameters(k: int, d: int, covariance_type: str) -> int:
    """Free parameters of a k-component mixture in d dimensions (what BIC penalises)."""
    covariance = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
    return int(covariance[covariance_type] + k * d + k - 1)


def multi_segment_summary(proba: np.ndarray, threshold: float) -> dict[str, Any]:
    """Customers with probability >= ``threshold`` in more than one segment, and the pairs that overlap."""
    member = proba >= threshold
    multi = member.sum(axis=1) > 1
    pairs = []
    k = proba.shape[1]
    if multi.any():
        m = member[multi].astype(np.int64)
        co = m.T @ m
        for a in range(k):
            for b in range(a + 1, k):
                if co[a, b]:
                    pairs.append({"clusters": [a, b], "customers": int(co[a, b])})
        pairs.sort(key=lambda p: -p["customers"])
    return {"threshold": float(threshold), "customers": int(multi.sum()),
            "share": float(multi.mean()) if len(multi) else 0.0, "pairs": pairs}


@register_method("gmm")
class GaussianMixtureSegmenter(SegmentClusterer):
    """Gaussian mixture with components and covariance type chosen by BIC.

    Parameters
    ----------
    n_segments : int or "auto"
        Number of components; ``"auto"`` searches ``k_range``.
    k_range : tuple of two ints
    covariance_type : {"auto", "full", "tied", "diag", "spherical"}
        ``"auto"`` tries every type in ``covariance_types``.
    covariance_types : sequence of str
        Types tried by ``"auto"``.
    n_init : int
        EM restarts per candidate (the best likelihood is kept).
    max_iter : int
    reg_covar : float
        Added to covariance diagonals; prepared features are standardised, so
        1e-3 keeps components off degenerate directions (one-hot and integer-valued
        columns) without blurring them.
    multi_threshold : float
        Membership probability that counts a customer in a segment for the
        multi-segment report.
    fit_sample : int
        Above this many customers, candidates are fitted on a seeded sample.
    random_state : int, RandomState or None

    Attributes
    ----------
    labels_, n_segments_, selection_, details_
    weights_, means_, covariances_, precisions_cholesky_, covariance_type_
        The fitted mixture (as in scikit-learn).
    """

    param_docs = {
        "covariance_type": ("auto|str", "full, tied, diag or spherical ('auto': the lowest BIC)"),
        "covariance_types": ("names", "types tried by 'auto'"),
        "reg_covar": ("float", "added to the covariances' diagonal for stability"),
        "multi_threshold": ("float", "membership probability that counts a customer in a segment"),
    }
    assignment_rule = "the most probable component; predict_proba gives every membership"
    report_sections = ("mixture",)

    @classmethod
    def summary_lines(cls, details: dict[str, Any]) -> list[str]:
        multi = details.get("multi_segment")
        if not multi:
            return []
        return [f"multi-segment customers (p >= {multi['threshold']} in several): {multi['customers']:,} "
                f"({multi['share']:.1%})"]

    def __init__(self, n_segments="auto", *, k_range=(2, 12), covariance_type="auto",
                 covariance_types=COVARIANCE_TYPES, n_init=1, max_iter=200, reg_covar=1e-3, multi_threshold=0.3,
                 fit_sample=10_000, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.covariance_type = covariance_type
        self.covariance_types = covariance_types
        self.n_init = n_init
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.multi_threshold = multi_threshold
        self.fit_sample = fit_sample
        self.random_state = random_state

    def _mixture(self, k: int, covariance_type: str, seed: int, **init) -> GaussianMixture:
        return GaussianMixture(n_components=k, covariance_type=covariance_type, n_init=self.n_init if not init else 1,
                               max_iter=self.max_iter, reg_covar=self.reg_covar, random_state=seed, **init)

    @staticmethod
    def _fit_quietly(gm: GaussianMixture, X: np.ndarray) -> tuple[GaussianMixture, bool]:
        """Fit; returns the mixture and whether EM converged within ``max_iter``."""
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            # Not converging is recorded with the candidate, not raised.
            warnings.simplefilter("always", ConvergenceWarning)
            gm.fit(X)
        warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return gm, bool(gm.converged_ and not warned)

    def fit(self, X, y=None):
        """Fit every candidate, keep the lowest BIC, and report soft memberships."""
        X = fit_input(X)
        owner = type(self).__name__
        n = X.shape[0]
        _check_n_segments(self.n_segments, owner, n)
        check_int_param(owner, "n_init", self.n_init, 1)
        check_int_param(owner, "fit_sample", self.fit_sample, 10)
        if not isinstance(self.multi_threshold, numbers.Real) or not 0 < self.multi_threshold < 1:
            raise param_error(owner, "multi_threshold", "a float in the range (0, 1)", self.multi_threshold)
        if self.covariance_type == "auto":
            types = list(self.covariance_types)
        else:
            types = [self.covariance_type]
        bad = [t for t in types if t not in COVARIANCE_TYPES]
        if bad or not types:
            raise param_error(owner, "covariance_type", "'auto' or a str among {'full', 'tied', 'diag', 'spherical'}",
                              self.covariance_type if self.covariance_type != "auto" else self.covariance_types)
        self.n_features_in_ = X.shape[1]
        seed = resolve_seed(self.random_state)
        if self.n_segments == "auto":
            lo, hi = int(self.k_range[0]), min(int(self.k_range[1]), n - 1)
            if lo < 1 or hi < lo:
                raise InputError(f"the range of numbers of segments must satisfy 1 <= low <= high; got "
                                 f"{self.k_range[0]}..{self.k_range[1]} for {n} customers")
            ks = list(range(lo, hi + 1))
        else:
            ks = [int(self.n_segments)]
        rows = sample_indices(n, self.fit_sample, seed)
        X_fit = X[rows] if len(rows) < n else X
        candidates, best = [], None
        # Candidates are fitted on at most fit_sample rows: small products whose BLAS and
        # OpenMP threads mostly wait for each other (one thread: a tenth of the CPU time
        # on 9k customers, measured on a shared 2-core machine; bench/results).
        with threadpool_limits(1):
            for cov in types:
                for k in ks:
                    gm, converged = self._fit_quietly(self._mixture(k, cov, seed), X_fit)
                    bic = float(gm.bic(X_fit))
                    candidates.append({
                        "k": k, "covariance_type": cov, "bic": bic, "aic": float(gm.aic(X_fit)),
                        "log_likelihood": float(gm.score(X_fit)), "converged": converged,
                        "n_parameters": n_parameters(k, X.shape[1], cov), "fit_sample_size": int(len(rows)),
                    })
                    if best is None or bic < best[0]:
                        best = (bic, k, cov, gm)
        _, k, cov, gm = best
        if len(rows) < n:
            gm, _ = self._fit_quietly(self._mixture(k, cov, seed, weights_init=gm.weights_, means_init=gm.means_,
                                                 precisions_init=gm.precisions_), X)
        self._set_mixture(gm, cov)
        self.n_iter_ = int(gm.n_iter_)
        proba = self.predict_proba(X)
        self.labels_ = proba.argmax(axis=1).astype(np.int64)
        used = np.unique(self.labels_)
        if len(used) < k:
            # A component no customer prefers is dropped: a segment must have customers.
            self._set_mixture(gm, cov, keep=used)
            proba = self.predict_proba(X)
            self.labels_ = proba.argmax(axis=1).astype(np.int64)
        self.n_segments_ = int(len(self.weights_))
        reason = f"k={k} with {cov} covariance has the lowest BIC ({best[0]:,.1f})"
        if self.n_segments == "auto" or len(types) > 1:
            self.selection_ = KSelection(candidates=candidates, chosen=self.n_segments_, knee=None, rule=BIC_RULE,
                                         reason=reason)
        else:
            self.selection_ = None
        self.details_ = {
            "covariance_type": cov,
            "bic": best[0],
            "candidates_fitted": len(candidates),
            "dropped_empty_components": int(k - self.n_segments_),
            "multi_segment": multi_segment_summary(proba, float(self.multi_threshold)),
            "mean_max_probability": float(proba.max(axis=1).mean()),
        }
        return self

    def _set_mixture(self, gm: GaussianMixture, cov: str, keep: np.ndarray | None = None) -> None:
        weights, means, prec_chol = gm.weights_, gm.means_, gm.precisions_cholesky_
        covariances = gm.covariances_
        if keep is not None:
            weights = weights[keep] / weights[keep].sum()
            means = means[keep]
            if cov != "tied":
                prec_chol = prec_chol[keep]
                covariances = covariances[keep]
        self.covariance_type_ = cov
        self.weights_ = np.asarray(weights, dtype=np.float64)
        self.means_ = np.asarray(means, dtype=np.float64)
        self.covariances_ = np.asarray(covariances, dtype=np.float64)
        self.precisions_cholesky_ = np.asarray(prec_chol, dtype=np.float64)

    def _mixture_view(self) -> GaussianMixture:
        gm = GaussianMixture(n_components=len(self.weights_), covariance_type=self.covariance_type_)
        gm.weights_ = self.weights_
        gm.means_ = self.means_
        gm.covariances_ = self.covariances_
        gm.precisions_cholesky_ = self.precisions_cholesky_
        gm.converged_ = True
        gm.n_features_in_ = self.n_features_in_
        return gm

    def predict_proba(self, X):
        """Probability of each segment for each row (rows sum to 1)."""
        X = self._check_X(X, "weights_")
        return self._mixture_view().predict_proba(X)

    def predict(self, X):
        """Most probable segment."""
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)

    def confidence(self, X):
        """The probability of the assigned segment (the largest posterior)."""
        return np.clip(self.predict_proba(X).max(axis=1), 0.0, 1.0)

    def to_state(self):
        meta = {
            "params": state_params(self),
            "n_features_in": self.n_features_in_,
            "n_segments": self.n_segments_,
            "covariance_type": self.covariance_type_,
            "selection": self.selection_.to_dict() if self.selection_ is not None else None,
            "details": self.details_,
        }
        return meta, {"weights": self.weights_, "means": self.means_, "covariances": self.covariances_,
                      "precisions_cholesky": self.precisions_cholesky_}

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ("k_range", "covariance_types")))
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.covariance_type_ = meta["covariance_type"]
        self.weights_ = arrays["weights"]
        self.means_ = arrays["means"]
        self.covariances_ = arrays["covariances"]
        self.precisions_cholesky_ = arrays["precisions_cholesky"]
        self.selection_ = KSelection.from_dict(meta["selection"]) if meta.get("selection") else None
        self.details_ = meta.get("details") or {}
        return self
