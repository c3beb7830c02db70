"""Segmentations made of segmentations: two-stage (nested) and multi-view (crossed).

**two_stage**: a first method on some features (e.g. k-means on RFM: life stage),
then, within each first-stage segment, a second method on other features (e.g.
hierarchical or DBSCAN on behaviour). Within a parent, every number of
sub-segments in ``sub_k_range`` is fitted and the one with the highest silhouette
wins (ties to fewer); a split is kept only if every sub-segment has at least
``min_segment_size`` customers, and a parent with fewer than twice that many is
not split. Segments are numbered over all (parent, child) pairs and named
"Parent / Child" ("At Risk / Deal Hunters").

**multiview**: several feature groups ("views": value = RFM, behaviour = what and
when customers buy, channel = channel shares), each segmented by its own method and
number of segments, then crossed: a customer's segment is the cell of the crosstab
of its view segments. Cells under ``min_cell_share`` of the customers are merged
into the kept cell that agrees with them on most views (ties to the larger cell),
so the combined segmentation stays readable; new customers follow the same rule.
Names are "Value view name / Behaviour view name / ...".

Both keep their parts' fitted estimators (any registered method) and store them
nested in the model file.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from segwise.cluster.base import (
    SegmentClusterer, fit_input, get_method, param_error, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.errors import InputError
from segwise.cluster.silhouette import sample_indices, silhouette_many

__all__ = ["TwoStageSegmenter", "MultiViewSegmenter", "DEFAULT_VIEWS"]

#: Default views of `MultiViewSegmenter` (family names, column names or patterns).
DEFAULT_VIEWS = {
    "value": ["rfm"],
    "behaviour": ["affinity", "share_weekend_orders", "share_orders_*"],
    "channel": ["share_channel_*"],
}


def _columns(X: np.ndarray, columns, owner: str, name: str) -> np.ndarray:
    if columns is None:
        return np.arange(X.shape[1])
    index = np.asarray(list(columns), dtype=np.int64)
    if index.size == 0 or (index < 0).any() or (index >= X.shape[1]).any():
        raise param_error(owner, name, f"None or column positions in the range [0, {X.shape[1] - 1}]", columns)
    return index


def _build(method: str, params: dict[str, Any] | None, seed: int, **fixed) -> SegmentClusterer:
    cls = get_method(method)
    accepted = cls().get_params()
    kwargs = {k: v for k, v in fixed.items() if k in accepted}
    kwargs.update(dict(params or {}))
    if "random_state" in accepted:
        kwargs.setdefault("random_state", seed)
    return cls(**kwargs)


def _nested_state(model: SegmentClusterer, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    meta, part = model.to_state()
    arrays.update({f"{prefix}/{k}": v for k, v in part.items()})
    return {"method": model.method_name, "state": meta}


def _nested_restore(entry: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> SegmentClusterer:
    part = {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
    return get_method(entry["method"]).from_state(entry["state"], part)


def _min_size(value, n: int, owner: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < 1:
        return int(np.ceil(value * n))
    raise param_error(owner, "min_segment_size", "an int >= 1 (customers) or a float in (0, 1) (share)", value)


@register_method("two_stage")
class TwoStageSegmenter(SegmentClusterer):
    """A method on some features, then a method within each of its segments on others.

    Parameters
    ----------
    n_segments : int or "auto"
        Number of first-stage segments (passed to the first method).
    k_range : tuple of two ints
        First-stage range for ``"auto"``.
    first_method, second_method : str
        Registered method names.
    first_features, second_features : list of int, optional
        Column positions of each stage (`segwise.Segmenter` resolves family and
        column names; by default RFM, then affinity). None: every column.
    first_params, second_params : dict, optional
        Extra parameters of each stage's estimator.
    sub_k_range : tuple of two ints
        Sub-segments tried within each parent (methods that take a number).
    min_segment_size : int or float
        Smallest sub-segment, in customers or as a share of all customers.
    selection_sample : int
        Customers of a parent used for the silhouette.
    random_state : int, RandomState or None

    Attributes
    ----------
    labels_, n_segments_, details_, first_, subs_ (parent -> fitted second-stage estimator)
    cluster_parts_ : ndarray (n_segments, 2)
        Parent and child of each segment (child -1 where the parent was not split).
    """

    column_params = {"first_features": "list", "second_features": "list"}
    default_column_params = {"first_features": ["rfm"], "second_features": ["affinity"]}

    param_docs = {
        "first_method": ("method", "method of the first stage"),
        "first_features": ("names", "columns or families of the first stage"),
        "first_params": ("params", "parameters of the first stage's method"),
        "second_method": ("method", "method within each first-stage segment"),
        "second_features": ("names", "columns or families of the second stage"),
        "second_params": ("params", "parameters of the second stage's method"),
        "sub_k_range": ("range", "sub-segments tried within each parent"),
        "min_segment_size": ("auto|float", "smallest sub-segment, in customers or as a share"),
    }
    assignment_rule = "the first stage's segment, then the second stage's segment within it"

    def __init__(self, n_segments="auto", *, k_range=(2, 12), first_method="kmeans", first_features=None,
                 first_params=None, second_method="kmeans", second_features=None, second_params=None,
                 sub_k_range=(2, 4), min_segment_size=0.02, selection_sample=5_000, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.first_method = first_method
        self.first_features = first_features
        self.first_params = first_params
        self.second_method = second_method
        self.second_features = second_features
        self.second_params = second_params
        self.sub_k_range = sub_k_range
        self.min_segment_size = min_segment_size
        self.selection_sample = selection_sample
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the first stage, then split each of its segments (see the class docstring)."""
        X = fit_input(X)
        owner = type(self).__name__
        n = X.shape[0]
        self.n_features_in_ = X.shape[1]
        seed = resolve_seed(self.random_state)
        self.first_index_ = _columns(X, self.first_features, owner, "first_features")
        self.second_index_ = _columns(X, self.second_features, owner, "second_features")
        min_size = _min_size(self.min_segment_size, n, owner)
        if self.first_method in ("two_stage", "multiview", "auto") or self.second_method in ("two_stage", "multiview", "auto"):
            raise InputError("two_stage combines simple methods: first_method and second_method cannot be "
                             "two_stage, multiview or auto")
        self.first_ = _build(self.first_method, self.first_params, seed, n_segments=self.n_segments,
                             k_range=self.k_range).fit(X[:, self.first_index_])
        parents = np.asarray(self.first_.labels_, dtype=np.int64)
        children = np.full(n, -1, dtype=np.int64)
        self.subs_: dict[int, SegmentClusterer] = {}
        report = []
        for p in range(int(self.first_.n_segments_)):
            rows = np.flatnonzero(parents == p)
            entry: dict[str, Any] = {"cluster_parent": p, "customers": int(len(rows))}
            if len(rows) < 2 * min_size:
                entry["split"] = False
                entry["reason"] = f"fewer than 2 x {min_size} customers"
                report.append(entry)
                continue
            model, candidates, reason = self._split(X[np.ix_(rows, self.second_index_)], min_size, seed + p + 1)
            entry["candidates"] = candidates
            entry["reason"] = reason
            entry["split"] = model is not None
            if model is not None:
                self.subs_[p] = model
                children[rows] = np.asarray(model.labels_, dtype=np.int64)
                entry["sub_segments"] = int(model.n_segments_)
            report.append(entry)
        self.cluster_parts_ = self._parts(parents, children)
        self.labels_ = self._flat(parents, children)
        self.n_segments_ = int(len(self.cluster_parts_))
        self.name_parts_ = [
            {"part": "first", "labels": parents, "within": None, "columns": self.first_index_.tolist()},
            {"part": "second", "labels": children, "within": "first", "columns": self.second_index_.tolist()},
        ]
        self.selection_ = getattr(self.first_, "selection_", None)
        self.details_ = {
            "first_method": self.first_method, "second_method": self.second_method,
            "first_columns": [int(i) for i in self.first_index_], "second_columns": [int(i) for i in self.second_index_],
            "min_segment_size": min_size, "sub_k_range": list(self.sub_k_range),
            "parents": report,
            "segments": [{"cluster": int(c), "parent": int(p), "child": int(ch)}
                         for c, (p, ch) in enumerate(self.cluster_parts_)],
            # Share of customers the assignment rule puts back in their segment: below 1 when a stage's
            # rule for new customers is not its training rule (hierarchical, HDBSCAN).
            "assignment_agreement": float(np.mean(self.predict(X) == self.labels_)),
        }
        return self

    def _split(self, X_sub: np.ndarray, min_size: int, seed: int):
        cls = get_method(self.second_method)
        takes_k = "n_segments" in cls().get_params()
        lo, hi = (int(self.sub_k_range[0]), int(self.sub_k_range[1])) if takes_k else (None, None)
        tries = [dict(n_segments=k) for k in range(lo, min(hi, len(X_sub) - 1) + 1)] if takes_k else [{}]
        rows = sample_indices(len(X_sub), self.selection_sample, seed)
        fitted, candidates = [], []
        for fixed in tries:
            try:
                model = _build(self.second_method, self.second_params, seed, **fixed).fit(X_sub)
            except InputError as exc:
                candidates.append({**fixed, "valid": False, "reason": str(exc)})
                continue
            sizes = np.bincount(model.labels_, minlength=model.n_segments_)
            k = int(model.n_segments_)
            silhouette = silhouette_many(X_sub[rows], [np.asarray(model.labels_)[rows]])[0] if k >= 2 else float("nan")
            valid = k >= 2 and sizes.min() >= min_size
            candidates.append({"k": k, "silhouette": float(silhouette), "smallest": int(sizes.min()), "valid": bool(valid)})
            if valid:
                fitted.append((silhouette, k, model))
        if not fitted:
            return None, candidates, f"no split leaves every sub-segment with at least {min_size} customers"
        best = max(s for s, _, _ in fitted)
        silhouette, k, model = min((f for f in fitted if f[0] >= best - 0.005), key=lambda f: f[1])
        return model, candidates, f"{k} sub-segments have the highest silhouette ({silhouette:.3f})"

    @staticmethod
    def _parts(parents: np.ndarray, children: np.ndarray) -> np.ndarray:
        pairs = np.unique(np.column_stack([parents, children]), axis=0)
        return pairs.astype(np.int64)

    def _flat(self, parents: np.ndarray, children: np.ndarray) -> np.ndarray:
        lookup = {(int(p), int(c)): i for i, (p, c) in enumerate(self.cluster_parts_)}
        pairs = np.column_stack([parents, children])
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        ids = np.array([lookup[(int(p), int(c))] for p, c in uniq], dtype=np.int64)
        return ids[inverse.ravel()]

    def _stages(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = self._check_X(X)
        parents = np.asarray(self.first_.predict(X[:, self.first_index_]), dtype=np.int64)
        conf = np.asarray(self.first_.confidence(X[:, self.first_index_]), dtype=np.float64)
        children = np.full(len(X), -1, dtype=np.int64)
        for p, model in self.subs_.items():
            rows = np.flatnonzero(parents == p)
            if len(rows):
                sub = X[np.ix_(rows, self.second_index_)]
                children[rows] = model.predict(sub)
                conf[rows] *= model.confidence(sub)
        return parents, children, conf

    def predict(self, X):
        """First-stage segment, then the sub-segment within it."""
        parents, children, _ = self._stages(X)
        return self._flat(parents, children)

    def confidence(self, X):
        """First-stage confidence times the second stage's (both must hold)."""
        return np.clip(self._stages(X)[2], 0.0, 1.0)

    def to_state(self):
        arrays: dict[str, np.ndarray] = {"cluster_parts": self.cluster_parts_, "first_index": self.first_index_,
                                         "second_index": self.second_index_}
        meta = {
            "params": state_params(self), "n_features_in": self.n_features_in_, "n_segments": self.n_segments_,
            "first": _nested_state(self.first_, "first", arrays),
            "subs": {str(p): _nested_state(m, f"sub{p}", arrays) for p, m in self.subs_.items()},
            "details": self.details_,
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ("k_range", "sub_k_range")))
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.cluster_parts_ = arrays["cluster_parts"].astype(np.int64)
        self.first_index_ = arrays["first_index"].astype(np.int64)
        self.second_index_ = arrays["second_index"].astype(np.int64)
        self.first_ = _nested_restore(meta["first"], "first", arrays)
        self.subs_ = {int(p): _nested_restore(e, f"sub{p}", arrays) for p, e in meta["subs"].items()}
        self.selection_ = getattr(self.first_, "selection_", None)
        self.details_ = meta.get("details") or {}
        return self


@register_method("multiview")
class MultiViewSegmenter(SegmentClusterer):
    """Each feature group ("view") segmented on its own, then crossed.

    Parameters
    ----------
    views : dict of str to list of int, optional
        View name -> column positions (`segwise.Segmenter` resolves family and
        column names and patterns; default `DEFAULT_VIEWS`). None: one view of
        every column.
    view_methods : dict of str to str, optional
        View -> registered method (default ``"kmeans"`` for every view).
    view_params : dict of str to dict, optional
        View -> extra parameters of its estimator.
    view_k_range : tuple of two ints
        Range of the automatic number of segments of each view (small, so the
        crossed cells stay few).
    min_cell_share : float
        Cells of the crosstab below this share of customers are merged (see the
        module docstring).
    random_state : int, RandomState or None

    Attributes
    ----------
    labels_, n_segments_, details_, views_ (view -> fitted estimator)
    cluster_parts_ : ndarray (n_segments, n_views)
        View segment of each combined segment.
    """

    column_params = {"views": "groups"}
    default_column_params = {"views": DEFAULT_VIEWS}

    param_docs = {
        "views": ("groups", "view name -> the columns or families segmented together"),
        "view_methods": ("params", "view -> method (default kmeans)"),
        "view_params": ("params", "view -> parameters of its method"),
        "view_k_range": ("range", "numbers of segments tried within each view"),
        "min_cell_share": ("float", "cells of the crosstab below this share are merged"),
    }
    assignment_rule = "the cell of the crosstab of each view's segment"
    report_sections = ("multiview",)

    def __init__(self, *, views=None, view_methods=None, view_params=None, view_k_range=(2, 6), min_cell_share=0.01,
                 random_state=None):
        self.views = views
        self.view_methods = view_methods
        self.view_params = view_params
        self.view_k_range = view_k_range
        self.min_cell_share = min_cell_share
        self.random_state = random_state

    def fit(self, X, y=None):
        """Segment every view, cross them, merge the small cells."""
        X = fit_input(X)
        owner = type(self).__name__
        n = X.shape[0]
        self.n_features_in_ = X.shape[1]
        if not isinstance(self.min_cell_share, numbers.Real) or not 0 <= self.min_cell_share < 1:
            raise param_error(owner, "min_cell_share", "a float in the range [0, 1)", self.min_cell_share)
        views = dict(self.views) if self.views else {"all": list(range(X.shape[1]))}
        methods = dict(self.view_methods or {})
        params = dict(self.view_params or {})
        unknown = sorted((set(methods) | set(params)) - set(views))
        if unknown:
            raise InputError(f"view_methods/view_params name unknown view(s) {', '.join(unknown)}; "
                             f"views are: {', '.join(views)}")
        seed = resolve_seed(self.random_state)
        self.view_names_ = list(views)
        self.view_index_ = {v: _columns(X, cols, owner, "views") for v, cols in views.items()}
        self.views_: dict[str, SegmentClusterer] = {}
        labels = []
        for i, (view, index) in enumerate(self.view_index_.items()):
            method = methods.get(view, "kmeans")
            if method in ("two_stage", "multiview", "auto"):
                raise InputError(f"view {view!r}: a view is segmented by a simple method, not {method!r}")
            model = _build(method, params.get(view), seed + i, n_segments="auto",
                           k_range=tuple(self.view_k_range)).fit(X[:, index])
            self.views_[view] = model
            labels.append(np.asarray(model.labels_, dtype=np.int64))
        view_labels = np.column_stack(labels)
        cells, inverse, counts = np.unique(view_labels, axis=0, return_inverse=True, return_counts=True)
        keep = counts >= self.min_cell_share * n
        if not keep.any():
            keep[np.argmax(counts)] = True
        order = np.lexsort((np.arange(len(cells)), -counts))
        kept = [i for i in order if keep[i]]
        self.cluster_parts_ = cells[kept].astype(np.int64)
        self.cell_sizes_ = counts[kept].astype(np.int64)
        self.labels_ = self._combine(view_labels)
        self.n_segments_ = int(len(self.cluster_parts_))
        self.name_parts_ = [{"part": v, "labels": labels[i], "within": None, "columns": self.view_index_[v].tolist()}
                            for i, v in enumerate(self.view_names_)]
        self.selection_ = None
        crosstab = []
        for i, (cell, count) in enumerate(zip(cells, counts)):
            target = int(self._combine(cell[None, :])[0])
            entry = {"view_segments": [int(v) for v in cell], "customers": int(count), "share": float(count / n),
                     "kept": bool(keep[i])}
            entry.update({"cluster": target} if keep[i] else {"merged_into": {"cluster": target}})
            crosstab.append(entry)
        self.details_ = {
            "views": {
                v: {"method": m.method_name, "columns": [int(c) for c in self.view_index_[v]],
                    "n_segments": int(m.n_segments_),
                    "selection": m.selection_.reason if getattr(m, "selection_", None) is not None else None}
                for v, m in self.views_.items()
            },
            "min_cell_share": float(self.min_cell_share),
            "n_cells": int(len(cells)),
            "n_kept": int(keep.sum()),
            "merged_customers": int(counts[~keep].sum()),
            "crosstab": crosstab,
            # As for two_stage: below 1 only when a view's method assigns by another rule than it trained.
            "assignment_agreement": float(np.mean(self.predict(X) == self.labels_)),
        }
        return self

    def _combine(self, view_labels: np.ndarray) -> np.ndarray:
        """Kept cell of each row of view labels (exact match, else most views in common)."""
        agree = (view_labels[:, None, :] == self.cluster_parts_[None, :, :]).sum(axis=2)
        # Ties go to the larger cell: kept cells are ordered by size, argmax takes the first.
        return agree.argmax(axis=1).astype(np.int64)

    def _view_labels(self, X) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X)
        labels, conf = [], []
        for view, model in self.views_.items():
            part = X[:, self.view_index_[view]]
            labels.append(np.asarray(model.predict(part), dtype=np.int64))
            conf.append(np.asarray(model.confidence(part), dtype=np.float64))
        return np.column_stack(labels), np.column_stack(conf)

    def predict(self, X):
        """Segment of each view, then the combined cell."""
        return self._combine(self._view_labels(X)[0])

    def confidence(self, X):
        """The least sure view's confidence, scaled by the share of views the cell agrees with."""
        view_labels, conf = self._view_labels(X)
        cells = self._combine(view_labels)
        agree = (view_labels == self.cluster_parts_[cells]).mean(axis=1)
        return np.clip(conf.min(axis=1) * agree, 0.0, 1.0)

    def to_state(self):
        arrays: dict[str, np.ndarray] = {"cluster_parts": self.cluster_parts_, "cell_sizes": self.cell_sizes_}
        for i, view in enumerate(self.view_names_):
            arrays[f"view_index_{i}"] = self.view_index_[view]
        meta = {
            "params": state_params(self), "n_features_in": self.n_features_in_, "n_segments": self.n_segments_,
            "view_names": self.view_names_,
            "views": [_nested_state(self.views_[v], f"view{i}", arrays) for i, v in enumerate(self.view_names_)],
            "details": self.details_,
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ("view_k_range",)))
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.cluster_parts_ = arrays["cluster_parts"].astype(np.int64)
        self.cell_sizes_ = arrays["cell_sizes"].astype(np.int64)
        self.view_names_ = list(meta["view_names"])
        self.view_index_ = {v: arrays[f"view_index_{i}"].astype(np.int64) for i, v in enumerate(self.view_names_)}
        self.views_ = {v: _nested_restore(e, f"view{i}", arrays)
                       for i, (v, e) in enumerate(zip(self.view_names_, meta["views"]))}
        self.selection_ = None
        self.details_ = meta.get("details") or {}
        return self
