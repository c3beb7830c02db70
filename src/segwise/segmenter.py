"""`Segmenter`: the scikit-learn estimator from a customer feature table to named segments.

``Segmenter().fit(features)`` chooses the columns to cluster on, prepares them
(`segwise.prepare.Preprocessor`), clusters them with a registered method
(`segwise.cluster`), orders the segments by value (segment 0 has the highest mean
``monetary_total``, or of ``value_col``), profiles every segment on every feature
and names it (`segwise.profile`).

Which columns define the segments
---------------------------------
By default segments are defined by the ``rfm`` and ``affinity`` families (value,
frequency, lifecycle, and what and how customers buy); every other column
(engagement, journey, customer attributes) describes the segments in the profiles
and joins the definition only when named in ``features``. The reason is measured:
share and trend features of customers with one or two orders are mostly sampling
noise (one order makes a weekend share exactly 0 or 1). When engagement or
journey columns do join the definition, their shares are shrunk toward the
population by the number of orders they rest on and weighted by how reliable
they are (`segwise.features.shrink`; the profiles show the raw shares). Adding
engagement by default was measured with ``bench.quality`` (docs/quality.md): it
raises the mean ARI of both halves of the families but lowers the demo
population's (0.97 to 0.83, 8 to 5 segments), so it is not the default yet.
Without RFM columns (a customer attribute table) every column is used. Constant and identifier-like columns are always left out, with a note.
A method whose parameters name feature groups (two-stage, multi-view) is defined
by the columns those name; k-prototypes also takes every categorical column.

Outliers
--------
Density methods (dbscan, hdbscan) call some customers noise. They form a group
named "Outliers" that is profiled like a segment and always has the *last*
segment id, after the segments ordered by value: it is not a segment with a
common behaviour, so it does not take a place in the value order, and its id is
easy to find (``outlier_segment_``).
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from segwise.cluster import get_method, get_model_class
from segwise.errors import InputError
from segwise.features.base import FeatureColumn
from segwise.features.shrink import ShareShrinkage, fit_shrinkage, reliable_unused_shares
from segwise.method_bridge import (
    column_references, name_profiles, order_clusters, resolve_column_params, source_columns, translate_details,
)
from segwise.prepare import Preprocessor, as_feature_frame
from segwise.select import resolve_n_segments
from segwise.profile import Profiles, _clean_json, compute_profiles
from segwise.validate import internal_metrics

__all__ = ["Segmenter", "DEFAULT_FAMILIES", "VALUE_COLUMN_HINTS"]

#: Families that define segments by default (see the module docstring).
DEFAULT_FAMILIES = ("rfm", "affinity")

#: Starts of column names (normalised: lower case, letters and digits only) that
#: measure customer value, in order of preference, for ordering segments when there
#: is no ``monetary_total``.
VALUE_COLUMN_HINTS = (
    "monetarytotal", "totalspend", "spend", "spending", "revenue", "clv", "ltv", "value",
    "monetary", "annualincome", "income", "spendingscore",
)


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


class Segmenter(ClusterMixin, BaseEstimator):
    """Segment customers from their features: prepare, cluster, order, profile, name.

    Parameters
    ----------
    method : str
        A registered segmentation method (``"kmeans"``; see `segwise.cluster.METHODS`).
    n_segments : int, "auto" or a range
        Number of segments, or ``"auto"`` to choose it over ``k_range``, or a
        range (``"4..8"`` or ``(4, 8)``) to choose it automatically within that
        range (it then replaces ``k_range``).
    k_range : tuple of two ints
        Range searched by ``"auto"`` (default 2..12).
    features : list of str, optional
        Columns or family names that define the segments (default: see the
        module docstring).
    exclude : list of str, optional
        Columns or families to leave out of the definition.
    weights : dict, optional
        Column or family name to weight, e.g. ``{"recency_days": 2}``.
    preprocessing : dict, optional
        Extra `Preprocessor` parameters (``scaler``, ``winsorize``, ``pca`` ...).
    method_params : dict, optional
        Extra parameters of the method's estimator.
    value_col : str, optional
        Column that orders segments by value (default ``monetary_total``, else a
        column named like spend/revenue/income, else segment size).
    names : dict, optional
        Segment id or generated name to the name to use instead.
    random_state : int or None
        Seed; the same seed gives the same segments.

    Attributes
    ----------
    labels_ : ndarray of int
        Segment id of each training customer (0 = most valuable).
    n_segments_ : int
    profiles_ : Profiles
        Profiles, names and descriptions of the segments.
    segment_names_ : dict of int to str
    feature_columns_ : list of str
        Columns the segments were defined on.
    profile_columns_ : list of str
        Columns that describe the segments.
    preprocessor_ : Preprocessor
    clusterer_ : the fitted method estimator
    label_map_ : ndarray
        ``label_map_[cluster] = segment id``.
    metrics_ : dict
        Silhouette (sampled), Calinski-Harabasz and Davies-Bouldin of the result
        (in the method's own space: `segwise.cluster.SegmentClusterer.metric_space`).
    notes_ : list of str
        Columns left out and why.
    outlier_segment_ : int or None
        Segment id of the Outliers group (density methods), else None.
    method_details_ : dict
        The method's own results (``details_``) with cluster numbers translated to
        segment ids and names; written to run.json as ``method_details``.
    """

    def __init__(
        self,
        method="kmeans",
        n_segments="auto",
        *,
        k_range=(2, 12),
        features=None,
        exclude=None,
        weights=None,
        preprocessing=None,
        method_params=None,
        value_col=None,
        names=None,
        random_state=None,
    ):
        self.method = method
        self.n_segments = n_segments
        self.k_range = k_range
        self.features = features
        self.exclude = exclude
        self.weights = weights
        self.preprocessing = preprocessing
        self.method_params = method_params
        self.value_col = value_col
        self.names = names
        self.random_state = random_state

    # ------------------------------------------------------------------ input

    @staticmethod
    def _frame(X) -> tuple[pd.DataFrame, dict[str, FeatureColumn]]:
        from segwise.features.build import FeatureTable

        if isinstance(X, FeatureTable):
            return X.frame, dict(X.columns)
        return as_feature_frame(X), {}

    @staticmethod
    def _families(frame: pd.DataFrame, docs: dict[str, FeatureColumn]) -> dict[str, list[str]]:
        families: dict[str, list[str]] = {}
        for name, col in docs.items():
            if name in frame.columns:
                families.setdefault(col.family, []).append(name)
        return families

    def _select_columns(self, frame: pd.DataFrame, docs: dict[str, FeatureColumn],
                        method_columns: Sequence[str] = (), with_categorical: bool = False
                        ) -> tuple[list[str], list[str]]:
        families = self._families(frame, docs)
        columns = list(frame.columns)

        def expand(items: Sequence[str], what: str) -> list[str]:
            out: list[str] = []
            for item in items:
                if item in families:
                    out += families[item]
                elif item in columns:
                    out.append(item)
                else:
                    known = ", ".join(list(families) + columns)
                    raise InputError(f"{what}: {item!r} is neither a feature column nor a family; known: {known}")
            return list(dict.fromkeys(out))

        notes = []
        if self.features is not None:
            chosen = expand(_as_list(self.features), "features")
        elif method_columns:
            chosen = list(method_columns)
            described = [c for c in columns if c not in chosen]
            if described:
                notes.append(f"segments are defined by the columns the method's parameters name; "
                             f"{len(described)} other columns describe them")
        elif any(f in families for f in DEFAULT_FAMILIES) and "rfm" in families:
            chosen = [c for f in DEFAULT_FAMILIES for c in families.get(f, [])]
            described = [c for c in columns if c not in chosen]
            if described:
                notes.append(
                    "segments are defined by the rfm and affinity families; "
                    f"{len(described)} other columns describe them (add them with --features)"
                )
        else:
            chosen = columns
        if with_categorical and self.features is None:
            extra = [c for c in columns if c not in chosen and not pd.api.types.is_numeric_dtype(frame[c])]
            if extra:
                chosen += extra
                notes.append(f"categorical column(s) {', '.join(extra)} join the definition (mixed-data method)")
        if self.exclude is not None:
            dropped = set(expand(_as_list(self.exclude), "exclude"))
            chosen = [c for c in chosen if c not in dropped]
        usable = []
        n = len(frame)
        for column in chosen:
            series = frame[column]
            n_unique = series.nunique(dropna=True)
            if n_unique <= 1:
                notes.append(f"column {column!r} left out: constant")
                continue
            is_numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
            if not is_numeric and n >= 20 and n_unique >= 0.9 * series.notna().sum():
                notes.append(f"column {column!r} left out: looks like an identifier (one value per customer)")
                continue
            if is_numeric and n >= 20 and _normalise(column).endswith("id") and n_unique == series.notna().sum():
                notes.append(f"column {column!r} left out: looks like an identifier")
                continue
            usable.append(column)
        if not usable:
            raise InputError(
                "no columns are left to segment on"
                + (f" ({'; '.join(notes)})" if notes else "")
                + ": check --features / --exclude"
            )
        return usable, notes

    def _value_column(self, frame: pd.DataFrame) -> str | None:
        if self.value_col is not None:
            if self.value_col not in frame.columns:
                raise InputError(f"value_col {self.value_col!r} is not a feature column")
            return self.value_col
        numeric = {_normalise(c): c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])}
        for hint in VALUE_COLUMN_HINTS:
            # A hint matches the start of a name: "Annual Income (k$)" is annualincomek.
            for name, column in numeric.items():
                if name.startswith(hint):
                    return column
        return None

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Fit on a feature table (FeatureTable, DataFrame or array)."""
        frame, docs = self._frame(X)
        if frame.shape[0] < 2:
            raise ValueError(f"n_samples={frame.shape[0]} should be >= 2: at least 2 customers are needed")
        if frame.shape[1] == 0:
            raise ValueError("0 feature(s) (shape=(%d, 0)) while a minimum of 1 is required." % frame.shape[0])
        if isinstance(self.n_segments, numbers.Integral) and not isinstance(self.n_segments, bool):
            if self.n_segments > frame.shape[0]:
                raise InputError(
                    f"{self.n_segments} segments were asked for but there are only {frame.shape[0]} "
                    "customers; ask for fewer segments (or --segments auto)"
                )
        method_cls = get_method(self.method)
        method_params = dict(self.method_params or {})
        families_of = self._families(frame, docs)
        specs, method_columns, method_notes = column_references(method_cls, method_params, families_of,
                                                                list(frame.columns))
        codes = method_cls.categorical_encoding == "codes"
        columns, notes = self._select_columns(frame, docs, method_columns, with_categorical=codes)
        notes += method_notes
        hint = reliable_unused_shares(frame, docs, columns) if self.features is None else {}
        if hint:
            families_hinted = sorted({docs[c].family for c in hint})
            top = sorted(hint, key=hint.get, reverse=True)
            listed = ", ".join(f"{c} (reliability {hint[c]})" for c in top[:3]) + (
                f" and {len(top) - 3} more" if len(top) > 3 else "")
            notes.append(f"{listed} differ between customers "
                         "far more than chance explains and may define segments: add them with --features "
                         f"rfm,affinity,{','.join(families_hinted)}")
        numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
        categorical = [c for c in columns if c not in numeric]
        families = {name: col.family for name, col in docs.items()}
        log_columns = [c for c in numeric if c in docs and docs[c].log_scale]
        params = dict(self.preprocessing or {})
        if codes:
            params["categorical_encoding"] = "codes"
        self.shrinkage_ = fit_shrinkage(frame, docs, numeric)
        shrunk = frame if self.shrinkage_ is None else self.shrinkage_.transform(frame)
        weights = self.weights
        if self.shrinkage_ is not None and self.weights is None:
            weights = self.shrinkage_.weights()  # pure-noise shares must not be scaled back up
        self.preprocessor_ = Preprocessor(
            numeric_columns=numeric, categorical_columns=categorical, weights=weights,
            families=families, log_columns=log_columns, random_state=self.random_state, **params,
        ).fit(shrunk)
        prepared = self.preprocessor_.transform(shrunk)
        if not np.isfinite(prepared).all():
            raise InputError("preparation produced non-finite values; check the features for extreme numbers")
        distinct_rows = len(np.unique(np.round(prepared, 12), axis=0)) if len(prepared) <= 200_000 else len(prepared)
        # A range ("4..8" or (4, 8)) means auto within it (segwise.select.resolve_n_segments).
        n_segments, k_range = resolve_n_segments(self.n_segments, tuple(self.k_range))
        if n_segments == "auto" and distinct_rows < 3:
            raise InputError(
                f"the customers have only {distinct_rows} distinct feature profile(s): there is nothing "
                "to segment; give more varied data or a fixed --segments"
            )
        if n_segments == "auto":
            k_range = (k_range[0], min(k_range[1], distinct_rows - 1))
        elif isinstance(n_segments, numbers.Integral) and n_segments > distinct_rows:
            raise InputError(
                f"{n_segments} segments were asked for but the customers have only {distinct_rows} "
                "distinct feature profiles; ask for fewer segments"
            )
        estimator_params = method_cls().get_params()
        unknown = sorted(set(method_params) - set(estimator_params))
        if unknown:
            raise InputError(f"method {self.method!r} has no parameter(s) {', '.join(unknown)}; its parameters are: "
                             f"{', '.join(sorted(estimator_params))}")
        kwargs: dict[str, Any] = {"random_state": self.random_state, **method_params}
        kwargs.update(resolve_column_params(specs, self.preprocessor_.get_feature_names_out().tolist(),
                                            families_of, list(frame.columns)))
        if codes and kwargs.get("categorical") is None:
            kwargs["categorical"] = self.preprocessor_.categorical_indices_ or None
        if "n_segments" in estimator_params:
            kwargs["n_segments"] = n_segments
        elif n_segments != "auto":
            raise InputError(f"method {self.method!r} finds the number of segments itself; --segments "
                             f"(n_segments={n_segments!r}) cannot be set with it: leave it at 'auto'")
        if "k_range" in estimator_params:
            kwargs["k_range"] = k_range
        self.clusterer_ = method_cls(**kwargs).fit(prepared)
        raw_labels = np.asarray(self.clusterer_.labels_)
        value_col = self._value_column(frame)
        outlier_cluster = getattr(self.clusterer_, "outlier_cluster_", None)
        self.label_map_ = order_clusters(frame, raw_labels, value_col, outlier_cluster)
        self.outlier_segment_ = None if outlier_cluster is None else int(self.label_map_[outlier_cluster])
        self.labels_ = self.label_map_[raw_labels]
        self.n_segments_ = int(self.clusterer_.n_segments_)
        self.feature_columns_ = columns
        self.profile_columns_ = list(frame.columns)
        self.value_col_ = value_col
        self.log_columns_ = sorted(c for c, d in docs.items() if d.log_scale)
        self.units_ = {c: d.unit for c, d in docs.items()}
        self.feature_docs_ = {c: d.to_dict() for c, d in docs.items()}
        self.notes_ = notes
        self.n_features_in_ = frame.shape[1]
        if not isinstance(X, np.ndarray):
            self.feature_names_in_ = np.asarray(list(frame.columns), dtype=object)
        self.profiles_, part_profiles = self._profile(frame, self.labels_)
        self.segment_names_ = self.profiles_.names
        self.metrics_ = internal_metrics(self.clusterer_.metric_space(prepared), self.labels_, random_state=0)
        self.selection_ = getattr(self.clusterer_, "selection_", None)
        details = translate_details(getattr(self.clusterer_, "details_", None) or {}, self.label_map_, self.profiles_)
        self.method_details_ = _clean_json({
            "method": self.clusterer_.method_name,
            "segment_of_cluster": [int(v) for v in self.label_map_],
            "prepared_columns": [str(c) for c in self.preprocessor_.get_feature_names_out()],
            "outlier_segment": self.outlier_segment_,
            **details,
            **({"part_profiles": part_profiles} if part_profiles else {}),
        })
        return self

    def _profile(self, frame: pd.DataFrame, labels: np.ndarray) -> tuple[Profiles, dict[str, Any]]:
        profile_kw = {"units": self.units_, "value_column": self.value_col_, "log_columns": set(self.log_columns_)}
        profiles = compute_profiles(frame, labels, **profile_kw)
        parts = getattr(self.clusterer_, "name_parts_", None)
        segment_parts, part_columns = None, None
        if parts is not None:
            cluster_parts = np.asarray(self.clusterer_.cluster_parts_)
            segment_parts = {int(self.label_map_[c]): [int(v) for v in row] for c, row in enumerate(cluster_parts)}
            base = source_columns(self.preprocessor_.get_feature_names_out().tolist(), list(frame.columns))
            part_columns = {p["part"]: list(dict.fromkeys(base[i] for i in p["columns"]))
                            for p in parts if p.get("columns") is not None}
        return name_profiles(profiles, frame, labels, log_columns=set(self.log_columns_), overrides=self.names,
                             outlier_segment=self.outlier_segment_, parts=parts, segment_parts=segment_parts,
                             profile_kw=profile_kw, part_columns=part_columns)

    # ------------------------------------------------------------------ predict

    def _prepared(self, X) -> np.ndarray:
        check_is_fitted(self, "label_map_")
        frame, _ = self._frame(X)
        if isinstance(X, np.ndarray) and frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {frame.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if getattr(self, "shrinkage_", None) is not None:
            frame = self.shrinkage_.transform(frame)
        return self.preprocessor_.transform(frame)

    def predict(self, X):
        """Segment id of each customer in ``X`` (same columns as in `fit`)."""
        prepared = self._prepared(X)
        return self.label_map_[self.clusterer_.predict(prepared)]

    def predict_confidence(self, X):
        """How sure each assignment is, in [0, 1] (method-specific; documented there)."""
        return self.clusterer_.confidence(self._prepared(X))

    def fit_predict(self, X, y=None, **kwargs):
        """Fit and return the training segment ids (equal to ``fit(X).predict(X)``)."""
        return self.fit(X).labels_

    def assign(self, X) -> pd.DataFrame:
        """Segment id, name and confidence of each customer, indexed like ``X``."""
        frame, _ = self._frame(X)
        prepared = self._prepared(frame)
        clusters, confidence = self.clusterer_.predict_with_confidence(prepared)
        segment = self.label_map_[clusters]
        # Ids may have gaps after alignment to a previous model (see segwise.align).
        names = pd.Series(self.segment_names_, dtype=object).reindex(segment).to_numpy()
        return pd.DataFrame(
            {"segment_id": segment.astype(np.int64), "segment_name": names, "confidence": confidence},
            index=frame.index,
        )

    def rename(self, names: Mapping[Any, str]) -> "Segmenter":
        """Rename segments after fitting (by id or current name); names stay unique."""
        check_is_fitted(self, "label_map_")
        current = {s.segment_id: s.name for s in self.profiles_}
        by_name = {v: k for k, v in current.items()}
        for key, new in names.items():
            seg_id = by_name.get(key, key)
            try:
                seg_id = int(seg_id)
            except (TypeError, ValueError):
                raise InputError(f"no segment named {key!r}; segments are: {', '.join(current.values())}") from None
            if seg_id not in current:
                raise InputError(f"no segment {key!r}; segment ids are 0..{self.n_segments_ - 1}")
            current[seg_id] = str(new)
        values = list(current.values())
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise InputError(f"segment names must be unique within a model; repeated: {', '.join(repeated)}")
        for profile in self.profiles_:
            if profile.name != current[profile.segment_id]:
                profile.name = current[profile.segment_id]
                profile.name_overridden = True
        self.segment_names_ = self.profiles_.names
        return self

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted state as JSON-able data and arrays (what the model file stores)."""
        check_is_fitted(self, "label_map_")
        pre_meta, pre_arrays = self.preprocessor_.to_state()
        clu_meta, clu_arrays = self.clusterer_.to_state()
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()}
        if params.get("names"):
            params["names"] = {str(k): v for k, v in params["names"].items()}
        meta = {
            "params": params,
            "method": self.clusterer_.method_name,
            "n_segments": self.n_segments_,
            "feature_columns": self.feature_columns_,
            "profile_columns": self.profile_columns_,
            "value_col": self.value_col_,
            "log_columns": self.log_columns_,
            "units": self.units_,
            "feature_docs": self.feature_docs_,
            "notes": self.notes_,
            "metrics": self.metrics_,
            "n_features_in": self.n_features_in_,
            "feature_names_in": [str(c) for c in getattr(self, "feature_names_in_", [])],
            "profiles": self.profiles_.to_dict(),
            "outlier_segment": self.outlier_segment_,
            "method_details": self.method_details_,
            "preprocessor": pre_meta,
            "clusterer": clu_meta,
            "shrinkage": None if self.shrinkage_ is None else self.shrinkage_.to_dict(),
        }
        arrays = {"segmenter/label_map": self.label_map_}
        arrays.update({f"preprocessor/{k}": v for k, v in pre_arrays.items()})
        arrays.update({f"clusterer/{k}": v for k, v in clu_arrays.items()})
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Segmenter":
        """Rebuild a fitted Segmenter from `to_state` output (no code is executed)."""
        params = dict(meta["params"])
        if params.get("k_range") is not None:
            params["k_range"] = tuple(params["k_range"])
        self = cls(**params)

        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

        self.preprocessor_ = Preprocessor.from_state(meta["preprocessor"], part("preprocessor"))
        shrinkage = meta.get("shrinkage")
        self.shrinkage_ = None if shrinkage is None else ShareShrinkage.from_dict(shrinkage)
        self.clusterer_ = get_model_class(meta["method"]).from_state(meta["clusterer"], part("clusterer"))
        self.label_map_ = arrays["segmenter/label_map"].astype(np.int64)
        self.n_segments_ = int(meta["n_segments"])
        self.feature_columns_ = list(meta["feature_columns"])
        self.profile_columns_ = list(meta["profile_columns"])
        self.value_col_ = meta["value_col"]
        self.log_columns_ = list(meta["log_columns"])
        self.units_ = dict(meta["units"])
        self.feature_docs_ = dict(meta["feature_docs"])
        self.notes_ = list(meta["notes"])
        self.metrics_ = dict(meta["metrics"])
        self.n_features_in_ = int(meta["n_features_in"])
        if meta.get("feature_names_in"):
            self.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        self.profiles_ = Profiles.from_dict(meta["profiles"])
        self.segment_names_ = self.profiles_.names
        self.selection_ = getattr(self.clusterer_, "selection_", None)
        self.outlier_segment_ = meta.get("outlier_segment")
        self.method_details_ = meta.get("method_details") or {}
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)
