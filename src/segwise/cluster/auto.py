"""``auto``: fit several methods, each choosing its own number of segments, and pick one.

Candidates (default): k-means, Gaussian mixture, hierarchical (Ward) and HDBSCAN
(which can find micro-segments the others merge away). Each is scored on the
prepared features:

- **silhouette** on one fixed seeded sample of customers (the same for all);
- **Davies-Bouldin** on every customer (lower is better);
- **bootstrap stability** (`bootstrap_stability`): the method is refitted, with its
  chosen settings, on a few bootstrap samples of a customer sample, and each refit
  is compared (adjusted Rand index) with the full fit on the customers it saw.

The rule (`CHOICE_RULE`): methods whose stability is below ``min_stability`` are
set aside (unless all are); the rest are ranked on each of the three scores and
the lowest mean rank wins; ties go to the more stable method, then to the order of
``candidates`` (simplest first). Every candidate's scores are kept in
``details_["comparison"]`` (written to run.json).

`bootstrap_stability` is deliberately compact; it is meant to be replaced by the
bootstrap functions of `segwise.validate` when those exist, with the same meaning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score

from segwise.cluster.base import (
    SegmentClusterer, fit_input, check_int_param, get_method, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.cluster.composite import _build, _nested_restore, _nested_state
from segwise.errors import InputError
from segwise.cluster.silhouette import sample_indices, silhouette_many

__all__ = ["AutoSegmenter", "bootstrap_stability", "CHOICE_RULE", "DEFAULT_CANDIDATES"]

DEFAULT_CANDIDATES = ("kmeans", "gmm", "hierarchical", "hdbscan")

CHOICE_RULE = (
    "methods with bootstrap stability below min_stability are set aside unless all are; the rest are ranked "
    "on silhouette (higher better), Davies-Bouldin (lower better) and stability (higher better) and the lowest "
    "mean rank wins; ties go to the higher stability, then to the earlier candidate"
)


def bootstrap_stability(estimator: SegmentClusterer, X: np.ndarray, reference: np.ndarray, *, n_bootstrap: int = 5,
                        random_state: int = 0) -> dict[str, Any]:
    """Mean adjusted Rand index between refits on bootstrap samples and a reference labelling.

    Each round draws ``len(X)`` rows of ``X`` with replacement, fits a clone of
    ``estimator`` on them, assigns the distinct customers drawn with the clone's
    ``predict`` and compares that with ``reference`` on those customers.
    """
    rng = np.random.default_rng(random_state)
    scores = []
    for _ in range(n_bootstrap):
        rows = rng.integers(0, len(X), len(X))
        present = np.unique(rows)
        try:
            model = clone(estimator).fit(X[rows])
        except InputError:
            scores.append(0.0)
            continue
        scores.append(float(adjusted_rand_score(reference[present], model.predict(X[present]))))
    return {"mean": float(np.mean(scores)), "scores": scores, "n_bootstrap": int(n_bootstrap),
            "sample_size": int(len(X))}


def _fixed_settings(model: SegmentClusterer) -> SegmentClusterer:
    """An unfitted copy of ``model`` with the number of segments (and covariance type) it chose."""
    params = model.get_params()
    fixed: dict[str, Any] = {}
    if "n_segments" in params:
        fixed["n_segments"] = int(model.n_segments_)
    if getattr(model, "covariance_type_", None) is not None and "covariance_type" in params:
        fixed["covariance_type"] = model.covariance_type_
    return clone(model).set_params(**fixed)


@register_method("auto")
class AutoSegmenter(SegmentClusterer):
    """Fit several methods and keep the best by `CHOICE_RULE`.

    Parameters
    ----------
    n_segments : int or "auto"
        Passed to the candidates that take a number of segments.
    k_range : tuple of two ints
    candidates : sequence of str
        Registered methods to compare.
    n_bootstrap : int
        Bootstrap refits per candidate for the stability score.
    stability_sample : int
        Customers the bootstrap samples are drawn from.
    score_sample : int
        Customers of the silhouette sample.
    min_stability : float
        Stability below which a candidate is set aside.
    random_state : int, RandomState or None

    Attributes
    ----------
    chosen_ : SegmentClusterer
        The winning fitted method; ``labels_``, ``predict`` ... are its own.
    comparison_ : list of dict
        Scores of every candidate.
    """

    param_docs = {
        "candidates": ("methods", "registered methods to compare"),
        "n_bootstrap": ("int", "bootstrap refits measuring each candidate's stability"),
        "stability_sample": ("int", "customers the bootstrap samples are drawn from"),
        "score_sample": ("int", "customers of the silhouette sample"),
        "min_stability": ("float", "stability below which a candidate is set aside"),
    }
    assignment_rule = "the rule of the method it chose"

    @classmethod
    def summary_lines(cls, details: dict[str, Any]) -> list[str]:
        return [f"method: {details.get('reason', '')}"]

    def __init__(self, n_segments="auto", *, k_range=(2, 12), candidates=DEFAULT_CANDIDATES, n_bootstrap=5,
                 stability_sample=3_000, score_sample=10_000, min_stability=0.5, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.candidates = candidates
        self.n_bootstrap = n_bootstrap
        self.stability_sample = stability_sample
        self.score_sample = score_sample
        self.min_stability = min_stability
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit every candidate, score it, keep the best."""
        X = fit_input(X)
        owner = type(self).__name__
        check_int_param(owner, "n_bootstrap", self.n_bootstrap, 1)
        names = list(self.candidates)
        for name in names:
            get_method(name)
            if name in ("auto", "two_stage", "multiview"):
                raise InputError(f"auto compares simple methods; {name!r} cannot be a candidate")
        if not names:
            raise InputError("auto needs at least one candidate method")
        self.n_features_in_ = X.shape[1]
        seed = resolve_seed(self.random_state)
        n = X.shape[0]
        score_rows = sample_indices(n, self.score_sample, seed + 1)
        stability_rows = sample_indices(n, self.stability_sample, seed + 2)
        fitted: dict[str, SegmentClusterer] = {}
        rows: list[dict[str, Any]] = []
        for i, name in enumerate(names):
            entry: dict[str, Any] = {"method": name}
            try:
                model = _build(name, None, seed, n_segments=self.n_segments, k_range=self.k_range).fit(X)
            except InputError as exc:
                entry.update(fitted=False, reason=str(exc))
                rows.append(entry)
                continue
            labels = np.asarray(model.labels_)
            space = model.metric_space(X)
            several = len(np.unique(labels)) >= 2
            stability = bootstrap_stability(_fixed_settings(model), X[stability_rows], labels[stability_rows],
                                            n_bootstrap=int(self.n_bootstrap), random_state=seed + 10 + i)
            entry.update(
                fitted=True, n_segments=int(model.n_segments_),
                silhouette=float(silhouette_many(space[score_rows], [labels[score_rows]])[0]) if several else float("nan"),
                davies_bouldin=float(davies_bouldin_score(space, labels)) if several else float("nan"),
                stability=stability["mean"], stability_scores=stability["scores"],
                outliers=bool(getattr(model, "outlier_cluster_", None) is not None),
                selection=model.selection_.reason if getattr(model, "selection_", None) is not None else None,
            )
            fitted[name] = model
            rows.append(entry)
        if not fitted:
            raise InputError("auto: no candidate method could segment these customers: "
                             + "; ".join(f"{r['method']}: {r['reason']}" for r in rows))
        chosen, reason = self._choose([r for r in rows if r.get("fitted")], names)
        self.comparison_ = rows
        self.chosen_ = fitted[chosen]
        self._adopt()
        self.details_ = {
            "chosen": chosen, "rule": CHOICE_RULE, "reason": reason, "comparison": rows,
            "min_stability": float(self.min_stability), "silhouette_sample_size": int(len(score_rows)),
            "stability_sample_size": int(len(stability_rows)),
            "stability_note": "compact bootstrap (segwise.cluster.auto.bootstrap_stability)",
            "chosen_details": getattr(self.chosen_, "details_", None),
        }
        return self

    def _choose(self, rows: list[dict[str, Any]], names: list[str]) -> tuple[str, str]:
        stable = [r for r in rows if r["stability"] >= self.min_stability]
        pool = stable or rows
        setaside = [r["method"] for r in rows if r not in pool]

        def ranks(key: str, better_high: bool) -> dict[str, float]:
            values = np.array([np.nan_to_num(r[key], nan=-np.inf if better_high else np.inf) for r in pool])
            order = (-values if better_high else values)
            from scipy.stats import rankdata

            return dict(zip((r["method"] for r in pool), rankdata(order, method="average")))

        r_sil, r_db, r_stab = ranks("silhouette", True), ranks("davies_bouldin", False), ranks("stability", True)
        for r in rows:
            r["mean_rank"] = float((r_sil[r["method"]] + r_db[r["method"]] + r_stab[r["method"]]) / 3) \
                if r in pool else None
        best = min(pool, key=lambda r: (r["mean_rank"], -r["stability"], names.index(r["method"])))
        reason = (f"{best['method']} has the best mean rank ({best['mean_rank']:.2f}) over silhouette "
                  f"({best['silhouette']:.3f}), Davies-Bouldin ({best['davies_bouldin']:.3f}) and stability "
                  f"({best['stability']:.3f})")
        if setaside:
            reason += f"; set aside as unstable (< {self.min_stability}): {', '.join(setaside)}"
        return best["method"], reason

    def _adopt(self) -> None:
        chosen = self.chosen_
        self.labels_ = getattr(chosen, "labels_", np.zeros(0, dtype=np.int64))
        self.n_segments_ = int(chosen.n_segments_)
        self.selection_ = getattr(chosen, "selection_", None)
        self.outlier_cluster_ = getattr(chosen, "outlier_cluster_", None)
        for attribute in ("name_parts_", "cluster_parts_"):
            if hasattr(chosen, attribute):
                setattr(self, attribute, getattr(chosen, attribute))

    def predict(self, X):
        """The chosen method's assignment."""
        X = self._check_X(X, "chosen_")
        return self.chosen_.predict(X)

    def confidence(self, X):
        """The chosen method's confidence."""
        X = self._check_X(X, "chosen_")
        return self.chosen_.confidence(X)

    def metric_space(self, X):
        X = self._check_X(X, "chosen_")
        return self.chosen_.metric_space(X)

    def to_state(self):
        arrays: dict[str, np.ndarray] = {}
        meta = {"params": state_params(self), "n_features_in": self.n_features_in_,
                "chosen": _nested_state(self.chosen_, "chosen", arrays), "comparison": self.comparison_,
                "details": self.details_}
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ("k_range", "candidates")))
        self.n_features_in_ = int(meta["n_features_in"])
        self.chosen_ = _nested_restore(meta["chosen"], "chosen", arrays)
        self.comparison_ = meta["comparison"]
        self.details_ = meta.get("details") or {}
        self._adopt()
        return self
