"""`Segmenter`: the scikit-learn estimator from a customer feature table to named segments.

``Segmenter().fit(features)`` chooses the columns to cluster on, prepares them
(`segwise.prepare.Preprocessor`), clusters them with a registered method
(`segwise.cluster`), orders the segments by value (segment 0 has the highest mean
``monetary_total``, or of ``value_col``), profiles every segment on every feature
and names it (`segwise.profile`).

Which columns define the segments
---------------------------------
By default segments are defined by the ``rfm`` and ``affinity`` families (value,
frequency, lifecycle, and what and how customers buy), plus the order shares
(channel, weekend, part of day, quarter: engagement and seasonality) in which
customers differ far more than sampling explains (reliability >= 0.5,
`segwise.features.selection`); every other column describes the segments in the
profiles and joins the definition only when named in ``features``. Shares of
customers with one or two orders are mostly sampling noise (one order makes a
weekend share exactly 0 or 1), so shares that define the segments are shrunk
toward the population by the number of orders they rest on and weighted by how
reliable they are (`segwise.features.shrink`; the profiles show the raw shares).
The gate was decided with ``bench.quality`` (docs/quality.md). When that
definition finds only weak structure (a continuum, `segwise.cluster.select`) and
the category shares are reliable, the definition widened by them is fitted too
and replaces it when its structure is no longer weak (`Segmenter._widen_if_weak`;
types that differ only in which categories they buy); the notes and run.json's
``selection.widening`` say what was tried and kept. Without RFM
columns (a customer attribute table) every column defines, except those a first
clustering on all of them does not separate (`segwise.cluster.screen`); they
still describe the segments. Constant and identifier-like columns are always
left out, with a note.
A method whose parameters name feature groups (two-stage, multi-view) is defined
by the columns those name; k-prototypes also takes the categorical columns of customer
attributes and of the defining families (`segwise.defining_columns.categorical_joining`).

One fitting seam for every engine
---------------------------------
``fit(features, engine=...)`` takes its statistics from the customers: from the
feature frame here (DuckDB, or no engine), or, on an engine that holds the customers
where they live (Spark), from that engine's `CustomerStatistics`: the Preprocessor
fits from its statistics, the method registered for that engine fits there
(`segwise.cluster.mllib`), and the profiles are made from its per-segment
statistics. Ordering (`segwise.profile.order_by_value`), profiles
(`segwise.profile.profiles_from_stats`) and names (`segwise.naming`) are the same
code for every engine, so is the fitted state and the model file.

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
from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.utils.validation import check_is_fitted

from segwise.cluster import get_method, get_model_class
from segwise.errors import InputError
from segwise.features.base import FeatureColumn
from segwise.features.selection import widening_candidates
from segwise.features.shrink import IntervalPrior, ShareShrinkage, fit_shrinkage, reliable_unused_shares
from segwise.defining_columns import (
    DEFAULT_FAMILIES, OVERDUE_COLUMN, VALUE_COLUMN_HINTS, asks_for_overdue, column_references, families_of, resolve_column_params,
    OVERDUE_SOURCES, overdue_ratio, overdue_ratio_values, select_columns, source_columns, value_column, with_overdue_ratio,
)
from segwise.naming import name_profiles
from segwise.prepare import Preprocessor, as_feature_frame
from segwise.cluster.select import resolve_n_segments, widening_note, widening_record
from segwise.cluster.screen import MIN_KEPT, SCREEN_SAMPLE, screen_columns
from segwise.profile import (
    Profiles, _clean_json, cluster_value_means, order_by_value, profiles_from_stats, segment_stats,
)
from segwise.validate import internal_metrics

__all__ = ["Segmenter", "DEFAULT_FAMILIES", "VALUE_COLUMN_HINTS"]


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
        module docstring). The family ``overdue`` (column ``overdue_ratio``: days
        since the last order over the customer's own typical interval, derived from
        the rfm columns; `segwise.defining_columns.overdue_ratio`) is computed only
        when named here, e.g. ``["rfm", "affinity", "overdue"]``; it is measured but
        not a default (docs/quality.md, seventh pass). Fitting on a FeatureTable
        then adds the column to that table.
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
    order_by : str, optional
        Column whose segment mean orders the segment ids (descending), e.g.
        ``"clv_365d"`` to number segments by predicted value; default ``value_col``
        (which still gives the revenue shares).
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
        order_by=None,
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
        self.order_by = order_by

    # ------------------------------------------------------------------ input

    @staticmethod
    def _frame(X) -> tuple[pd.DataFrame, dict[str, FeatureColumn]]:
        from segwise.features.build import FeatureTable

        if isinstance(X, FeatureTable):
            return X.frame, dict(X.columns)
        return as_feature_frame(X), {}

    def _order_column(self, frame: pd.DataFrame) -> str | None:
        """The column ordering segment ids: ``order_by``, else the value column."""
        if self.order_by is None:
            return value_column(frame, self.value_col)
        if self.order_by not in frame.columns:
            raise InputError(f"order_by {self.order_by!r} is not a feature column (for predicted value, the value "
                             "family's clv_365d is needed: it is left out when the model cannot be fitted)")
        return self.order_by

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, *, engine=None):
        """Fit on a feature table (FeatureTable, DataFrame or array).

        Parameters
        ----------
        X : FeatureTable, DataFrame or array
        y : ignored
        engine : Engine, optional
            The engine the features were built on. An engine that holds the
            customers where they live (Spark: ``engine.customer_statistics``)
            computes the preparation statistics, fits the method registered for it
            (`segwise.cluster.mllib`) and aggregates the profiles; the feature table
            (one row per customer) still chooses the columns and assigns the
            training customers, so the fitted Segmenter and its model file are those
            of every engine. Without one (or on DuckDB) everything is computed here.
        """
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
        # The overdue ratio is derived from the rfm columns of the feature table (no engine computes it).
        self.overdue_prior_ = None
        if asks_for_overdue(self.features, frame):
            frame, docs, self.overdue_prior_ = with_overdue_ratio(frame, docs)
            if hasattr(X, "columns") and hasattr(X, "spec"):
                # A FeatureTable gains the column, so assignments, profiles, the report and the
                # run's checks (which read the table) see it like any other feature.
                X.frame, X.columns = frame, docs
        # An engine without statistics of its own (DuckDB: the frame is already here) gives None.
        statistics = getattr(engine, "customer_statistics", None)
        source = statistics(frame) if statistics is not None else None
        try:
            self._fit(X, frame, docs, source)
            if source is None:
                self._widen_if_weak(X, frame, docs)
            return self
        finally:
            if source is not None:
                source.close()

    def _fit(self, X, frame: pd.DataFrame, docs: dict[str, FeatureColumn], source):
        """`fit` with the customers' statistics from ``source`` (an engine's), or from ``frame`` when None."""
        method_cls = get_method(self.method, engine=None if source is None else source.engine_name)
        method_params = dict(self.method_params or {})
        # Families a method's parameters name define by their defining columns, as in select_columns.
        family_columns = families_of(frame, docs, defining=True)
        specs, method_columns, method_notes = column_references(method_cls, method_params, family_columns,
                                                                list(frame.columns))
        codes = method_cls.categorical_encoding == "codes"
        columns, notes = select_columns(frame, docs, self.features, self.exclude, method_columns,
                                        with_categorical=codes)
        notes += method_notes
        hint = reliable_unused_shares(frame, docs, columns) if self.features is None else {}
        self.share_hint_ = hint
        if hint:
            notes.append(_hint_note(hint, docs))
        numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
        categorical = [c for c in columns if c not in numeric]
        families = {name: col.family for name, col in docs.items()}
        log_columns = [c for c in numeric if c in docs and docs[c].log_scale]
        params = dict(self.preprocessing or {})
        if codes:
            params["categorical_encoding"] = "codes"
        # On an engine's statistics (Spark) the preparation sees the raw shares, so they are not shrunk there.
        self.shrinkage_ = fit_shrinkage(frame, docs, numeric) if source is None else None
        shrunk = frame if self.shrinkage_ is None else self.shrinkage_.transform(frame)
        weights = self.weights
        if self.shrinkage_ is not None and self.weights is None:
            weights = self.shrinkage_.weights()  # pure-noise shares must not be scaled back up
        self.preprocessor_ = Preprocessor(
            numeric_columns=numeric, categorical_columns=categorical, weights=weights,
            families=families, log_columns=log_columns, random_state=self.random_state, **params,
        ).fit(shrunk if source is None else source)
        prepared = self.preprocessor_.transform(shrunk)
        if not np.isfinite(prepared).all():
            raise InputError("preparation produced non-finite values; check the features for extreme numbers")
        distinct_rows = len(np.unique(np.round(prepared, 12), axis=0)) if len(prepared) <= 200_000 else len(prepared)
        # A range ("4..8" or (4, 8)) means auto within it (segwise.cluster.select.resolve_n_segments).
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
                                            family_columns, list(frame.columns)))
        if codes and kwargs.get("categorical") is None:
            kwargs["categorical"] = self.preprocessor_.categorical_indices_ or None
        if "n_segments" in estimator_params:
            kwargs["n_segments"] = n_segments
        elif n_segments != "auto":
            raise InputError(f"method {self.method!r} finds the number of segments itself; --segments "
                             f"(n_segments={n_segments!r}) cannot be set with it: leave it at 'auto'")
        if "k_range" in estimator_params:
            kwargs["k_range"] = k_range
        if (self.features is None and not method_columns and not specs and not codes and source is None
                and "rfm" not in family_columns and len(columns) > MIN_KEPT):
            # A customer table's every column defines by default: leave out those a first
            # clustering does not separate (segwise.cluster.screen).
            sample = np.random.default_rng(0).permutation(len(prepared))[:SCREEN_SAMPLE]
            first = method_cls(**kwargs).fit(prepared[sample])
            sources = source_columns(self.preprocessor_.get_feature_names_out().tolist(), list(frame.columns))
            # Columns the preparation dropped (constant, or a near-copy of another) are not
            # in the first fit: the screen has nothing to say about them, and their reason
            # is the preparation's.
            prepared_dropped = dict(self.preprocessor_.report_.get("dropped", {}))
            screen = screen_columns(prepared[sample], np.asarray(first.labels_), sources,
                                    [c for c in columns if c in set(sources)],
                                    first_k=int(getattr(first, "n_segments_", 0)) or None)
            self.column_screen_ = screen.to_dict()
            notes += screen.notes()
            if screen.left_out:
                columns = screen.kept
                numeric = [c for c in columns if c in numeric]
                categorical = [c for c in columns if c in categorical]
                self.preprocessor_ = Preprocessor(
                    numeric_columns=numeric, categorical_columns=categorical, weights=weights, families=families,
                    log_columns=[c for c in log_columns if c in columns], random_state=self.random_state, **params,
                ).fit(shrunk)
                prepared = self.preprocessor_.transform(shrunk)
                self.preprocessor_.report_["dropped"] = {**prepared_dropped, **self.preprocessor_.report_["dropped"]}
        else:
            self.column_screen_ = None
        dropped = (getattr(self.preprocessor_, "report_", None) or {}).get("dropped", {})
        if getattr(self, "overdue_prior_", None) is not None and OVERDUE_COLUMN in dropped:
            # Asked for by name but left out by the preparation (docs/quality.md, seventh pass): say so.
            notes.append(f"{OVERDUE_COLUMN} was asked for but does not define the segments: "
                         f"{dropped[OVERDUE_COLUMN]} (the preparation keeps one of two such columns)")
        method = method_cls(**kwargs)
        self.clusterer_ = method.fit(prepared if source is None else source.prepared(self.preprocessor_)).exported()
        if source is None:
            raw_labels = np.asarray(self.clusterer_.labels_)
        else:
            # Training customers are assigned by the exported model itself, so the saved
            # assignments are exactly what `segwise assign` gives for them.
            raw_labels = np.asarray(self.clusterer_.predict(prepared))
            self.clusterer_.labels_ = raw_labels
            n_empty = self.clusterer_.n_segments_ - len(np.unique(raw_labels))
            if n_empty > 0:
                notes.append(f"{n_empty} fitted segment(s) received no customer")
        value_col = value_column(frame, self.value_col)
        outlier_cluster = getattr(self.clusterer_, "outlier_cluster_", None)
        n_clusters = int(raw_labels.max()) + 1
        if source is not None:
            # Every exported cluster gets an id, even one no training customer is nearest to.
            n_clusters = max(n_clusters, int(self.clusterer_.n_segments_))
        self.label_map_ = order_by_value(*cluster_value_means(frame, raw_labels, self._order_column(frame), n_clusters),
                                         last=outlier_cluster)
        self.outlier_segment_ = None if outlier_cluster is None else int(self.label_map_[outlier_cluster])
        self.labels_ = self.label_map_[raw_labels]
        self.n_segments_ = int(self.clusterer_.n_segments_)
        self._describe(columns, list(frame.columns), value_col, docs, notes)
        if not isinstance(X, np.ndarray):
            self.feature_names_in_ = np.asarray(list(frame.columns), dtype=object)
        self.profiles_, part_profiles = self._profile(frame, self.labels_, source)
        self.segment_names_ = self.profiles_.names
        self.metrics_ = internal_metrics(self.clusterer_.metric_space(prepared), self.labels_, random_state=0)
        self.selection_ = getattr(self.clusterer_, "selection_", None)
        merged = getattr(self.selection_, "merged", None)
        if merged and merged.get("merged"):
            # The k rule's choice was over-split (segwise.cluster.select.merge_if_oversplit): say so.
            self.notes_.append(merged["sentence"])
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

    def _widen_if_weak(self, X, frame: pd.DataFrame, docs: dict[str, FeatureColumn]) -> None:
        """When the default definition finds weak structure, try it widened by reliable describing shares.

        Only for the default definition of an order log with the number of segments
        chosen automatically. The candidates are the reliable shares of
        `segwise.features.selection.WIDENING_FAMILIES` (the category shares); the
        widened definition is fitted like the default one and replaces it when its
        structure is no longer weak (`segwise.cluster.select.prefer_widened`). The
        attempt, kept or not, is in the notes and in ``selection_.widening`` (run.json).
        """
        selection = self.selection_
        structure = getattr(selection, "structure", None)
        method_cls = get_method(self.method)
        if (self.features is not None or not structure or structure.get("verdict") != "weak"
                or method_cls.column_params or method_cls.categorical_encoding == "codes"
                or "rfm" not in families_of(frame, docs)):
            return
        candidates = widening_candidates(frame, docs, self.feature_columns_)
        if not candidates:
            return
        wide = clone(self).set_params(features=list(self.feature_columns_) + list(candidates))
        try:
            wide._fit(X, frame, docs, None)
        except InputError as exc:
            # The default definition stands; the attempt is reported, not raised.
            self.notes_.append(f"the structure is weak; the reliable category shares could not be tried: {exc}")
            return
        record = widening_record(candidates, structure, getattr(wide.selection_, "structure", None),
                                 int(self.n_segments_), int(wide.n_segments_))
        if record["kept"]:
            hint_note = _hint_note(self.share_hint_, docs) if self.share_hint_ else None
            before = [n for n in self.notes_ if n != hint_note]
            for name, value in vars(wide).items():
                if name.endswith("_") and not name.startswith("_"):
                    setattr(self, name, value)
            self.share_hint_ = reliable_unused_shares(frame, docs, self.feature_columns_)
            # The default definition's sentence (defining_columns.select_columns) now says what widened it.
            described = len(self.profile_columns_) - len(self.feature_columns_)
            before = [f"{n.split(';')[0]}, widened by {len(candidates)} reliable category share(s) (below); "
                      f"{described} other columns describe them (add them with --features)"
                      if n.startswith("segments are defined by") else n for n in before]
            self.notes_ = before + [n for n in wide.notes_ if n not in before] + [widening_note(record)] + (
                [_hint_note(self.share_hint_, docs)] if self.share_hint_ else [])
        else:
            self.notes_.append(widening_note(record))
        if self.selection_ is not None:
            self.selection_.widening = record

    def _describe(self, columns: list[str], profile_columns: list[str], value_col: str | None,
                  docs: Mapping[str, FeatureColumn], notes: list[str]) -> None:
        """Record what the segments are defined and described by (read by profiles, reports, the model file)."""
        self.feature_columns_ = columns
        self.profile_columns_ = profile_columns
        self.value_col_ = value_col
        self.log_columns_ = sorted(c for c, d in docs.items() if d.log_scale)
        self.units_ = {c: d.unit for c, d in docs.items()}
        self.feature_docs_ = {c: d.to_dict() for c, d in docs.items()}
        self.notes_ = notes
        self.n_features_in_ = len(profile_columns)

    @classmethod
    def from_parts(cls, params: Mapping[str, Any], *, preprocessor: Preprocessor, clusterer, label_map: np.ndarray,
                   columns: list[str], docs: Mapping[str, FeatureColumn], value_col: str | None, profiles: Profiles,
                   notes: list[str], metrics: Mapping[str, Any]) -> "Segmenter":
        """A fitted Segmenter from parts fitted where no rows are pooled (`segwise.federated`).

        ``preprocessor`` is fitted from statistics, ``clusterer`` holds the centres,
        ``label_map`` orders its clusters by value (`segwise.profile.order_by_value`) and
        ``profiles`` are made and named from per-segment statistics; the result is the
        Segmenter (and model file) of a central fit on ``columns``. There are no training
        rows, so no ``labels_``.
        """
        params = dict(params)
        if params.get("k_range") is not None:
            params["k_range"] = tuple(params["k_range"])
        self = cls(**params)
        self.preprocessor_ = preprocessor
        self.clusterer_ = clusterer
        self.shrinkage_ = None  # federated silos send raw aggregates: no share shrinkage
        self.label_map_ = np.asarray(label_map, dtype=np.int64)
        self.n_segments_ = int(clusterer.n_segments_)
        self._describe(list(columns), list(columns), value_col, docs, notes)
        self.feature_names_in_ = np.asarray(list(columns), dtype=object)
        self.metrics_ = dict(metrics)
        # As a loaded model holds them (JSON types), so the coordinator's model and the silos' agree.
        self.profiles_ = Profiles.from_dict(profiles.to_dict())
        self.segment_names_ = self.profiles_.names
        self.selection_ = getattr(clusterer, "selection_", None)
        self.outlier_segment_ = None
        self.method_details_ = {}
        return self

    def _profile(self, frame: pd.DataFrame, labels: np.ndarray, source=None) -> tuple[Profiles, dict[str, Any]]:
        profile_kw = {"units": self.units_, "value_column": self.value_col_, "log_columns": set(self.log_columns_)}
        if source is None:
            stats_ = segment_stats(frame, labels, value_column=self.value_col_, log_columns=set(self.log_columns_))
        else:
            # Aggregated where the data live: one row per segment comes back.
            stats_ = source.segment_stats(labels, value_column=self.value_col_, log_columns=set(self.log_columns_))
        profiles = profiles_from_stats(stats_, units=self.units_, value_column=self.value_col_)
        # The naming z-scores come with the statistics; naming does not compute them again.
        naming_zscores = stats_.naming_zscores
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
                             profile_kw=profile_kw, part_columns=part_columns, naming_zscores=naming_zscores)

    # ------------------------------------------------------------------ predict

    def input_numeric(self) -> list[str]:
        """The numeric columns assignment reads from a customer's features.

        The preparation's numeric inputs, except that the overdue ratio, which the
        Segmenter derives (`segwise.defining_columns.overdue_ratio`), is replaced by the
        rfm columns it is derived from (`OVERDUE_SOURCES`); `numeric_from_inputs` maps
        their values to the preparation's inputs.
        """
        check_is_fitted(self, "preprocessor_")
        numeric = list(self.preprocessor_.numeric_in_)
        if getattr(self, "overdue_prior_", None) is None or OVERDUE_COLUMN not in numeric:
            return numeric
        at = numeric.index(OVERDUE_COLUMN)
        return list(dict.fromkeys([*numeric[:at], *OVERDUE_SOURCES, *numeric[at + 1:]]))

    def numeric_from_inputs(self, values: np.ndarray) -> np.ndarray:
        """Rows of `input_numeric` values as rows of the preparation's numeric inputs (``numeric_in_``).

        The overdue ratio is derived from its rfm columns with the prior fitted in
        training, as `predict` does for a feature table; other columns are taken as
        they are. Without a derived column ``values`` is returned unchanged.
        """
        numeric = list(self.preprocessor_.numeric_in_)
        inputs = self.input_numeric()
        if inputs == numeric:
            return values
        position = {c: i for i, c in enumerate(inputs)}
        out = np.empty((values.shape[0], len(numeric)), dtype=np.float64)
        for j, column in enumerate(numeric):
            if column == OVERDUE_COLUMN:
                recency, tenure, orders = (values[:, position[c]] for c in OVERDUE_SOURCES)
                out[:, j] = overdue_ratio_values(recency, tenure, orders, self.overdue_prior_)
            else:
                out[:, j] = values[:, position[column]]
        return out

    def _prepared(self, X) -> np.ndarray:
        check_is_fitted(self, "label_map_")
        frame, _ = self._frame(X)
        if isinstance(X, np.ndarray) and frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {frame.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if getattr(self, "overdue_prior_", None) is not None:
            frame = frame.assign(**{OVERDUE_COLUMN: overdue_ratio(frame, self.overdue_prior_)[0]})
        shrinkage = getattr(self, "shrinkage_", None)
        if shrinkage is not None:
            # Shrink a frame of the columns the preparation and the shrinkage read, not a
            # copy of every feature (at 885,000 customers, 9 of 41 columns).
            needed = [*self.preprocessor_.numeric_in_, *self.preprocessor_.categorical_levels_,
                      shrinkage.count_column, *shrinkage.params_]
            frame = shrinkage.transform(frame[[c for c in dict.fromkeys(needed) if c in frame.columns]])
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
            "overdue_prior": None if getattr(self, "overdue_prior_", None) is None else self.overdue_prior_.to_dict(),
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
        overdue = meta.get("overdue_prior")
        self.overdue_prior_ = None if overdue is None else IntervalPrior.from_dict(overdue)
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


def translate_details(details: Any, label_map: np.ndarray, profiles: Profiles) -> Any:
    """``details`` with every ``"cluster"`` (and ``"clusters"``) given its segment id and name."""

    def segment(cluster: int) -> dict[str, Any]:
        seg = int(label_map[cluster])
        profile = profiles[seg]
        return {"segment_id": seg, "segment_name": profile.name, "share_revenue": profile.share_revenue}

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            out = {k: walk(v) for k, v in obj.items()}
            cluster = obj.get("cluster")
            if isinstance(cluster, numbers.Integral) and not isinstance(cluster, bool) and 0 <= cluster < len(label_map):
                for key, value in segment(int(cluster)).items():
                    out.setdefault(key, value)
            clusters = obj.get("clusters")
            if isinstance(clusters, list) and all(isinstance(c, numbers.Integral) for c in clusters):
                out.setdefault("segment_ids", [int(label_map[c]) for c in clusters])
                out.setdefault("segment_names", [profiles[int(label_map[c])].name for c in clusters])
            return out
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, tuple):
            return [walk(v) for v in obj]
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return obj

    return walk(details)


def _hint_note(hint: Mapping[str, float], docs: Mapping[str, FeatureColumn]) -> str:
    """The note pointing out reliable shares that do not define the segments (their reliabilities)."""
    families_hinted = sorted({docs[c].family for c in hint})
    top = sorted(hint, key=hint.get, reverse=True)
    listed = ", ".join(f"{c} (reliability {hint[c]})" for c in top[:3]) + (
        f" and {len(top) - 3} more" if len(top) > 3 else "")
    return (f"{listed} differ between customers far more than chance explains and may define segments: add them "
            f"with --features rfm,affinity,{','.join(families_hinted)}")
