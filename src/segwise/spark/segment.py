"""Fitting a `segwise.segmenter.Segmenter` whose statistics and clustering run on Spark.

`fit_segmenter` does what ``Segmenter.fit`` does, with the heavy parts on Spark:
the preparation statistics (`segwise.spark.prepare`) and the clustering with
the choice of k (`segwise.spark.cluster`). Column choice and ordering segments by
value reuse the Segmenter's own code on the customer table, which is one row per
customer (the order log, orders of magnitude larger, never leaves Spark); the
profiles are aggregated by Spark (`segwise.spark.profile`) and named by the
Segmenter's naming code. The result is an ordinary fitted Segmenter: the model file is the
same as the local engine's.

`write_assignments` writes assignments as Parquet partitioned by segment, through
Spark, to a local path or any Hadoop-compatible URI.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.functions import array_to_vector
from pyspark.sql import functions as F

from segwise.errors import InputError
from segwise.features import FeatureTable
from segwise.method_bridge import order_clusters
from segwise.segmenter import Segmenter
from segwise.select import resolve_n_segments
from segwise.spark.cluster import fit_spark_method
from segwise.spark.prepare import fit_preprocessor, prepared_columns
from segwise.spark.profile import spark_profiles
from segwise.validate import internal_metrics

__all__ = ["fit_segmenter", "prepared_vectors", "write_assignments"]


def prepared_vectors(engine, frame: pd.DataFrame, preprocessor) -> Any:
    """A Spark DataFrame ``customer_id, features`` of the prepared customers."""
    sdf = engine.to_spark(frame.reset_index())
    columns = prepared_columns(preprocessor)
    return sdf.select("customer_id", array_to_vector(F.array(*columns)).alias("features"))


def fit_segmenter(engine, features: FeatureTable, segmenter: Segmenter) -> Segmenter:
    """Fit ``segmenter`` (unfitted, its parameters as given) with Spark doing the heavy parts.

    ``segmenter.method`` is a Spark method (see `segwise.spark.cluster.SPARK_METHODS`);
    ``segmenter.method_params`` go to `segwise.spark.cluster.fit_spark_method`
    (``max_iter``, ``tol``, ``init_centers``, ``selection_sample``, ``fit_sample``).
    Returns the same object, fitted: an ordinary Segmenter.
    """
    random_state = segmenter.random_state
    preprocessing = segmenter.preprocessing
    frame, docs = features.frame, dict(features.columns)
    if len(frame) < 2:
        raise ValueError(f"n_samples={len(frame)} should be >= 2: at least 2 customers are needed")
    columns, notes = segmenter._select_columns(frame, docs)
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in columns if c not in numeric]
    sdf = engine.to_spark(frame.reset_index()).cache()
    try:
        preprocessor = fit_preprocessor(
            sdf, numeric, categorical, weights=segmenter.weights,
            families={name: col.family for name, col in docs.items()},
            log_columns=[c for c in numeric if c in docs and docs[c].log_scale],
            random_state=random_state, **dict(preprocessing or {}),
        )
    finally:
        sdf.unpersist()
    preprocessor.feature_names_in_ = np.asarray(list(frame.columns), dtype=object)
    preprocessor.n_features_in_ = frame.shape[1]
    vectors = prepared_vectors(engine, frame, preprocessor).cache()
    try:
        # A range of segments ("4..8") is auto within it, as on the local engine.
        n_segments, k_range = resolve_n_segments(segmenter.n_segments, tuple(segmenter.k_range))
        clusterer = fit_spark_method(
            vectors, method=segmenter.method, n_segments=n_segments, k_range=k_range,
            random_state=random_state, **dict(segmenter.method_params or {}),
        )
    finally:
        vectors.unpersist()
    # Training customers are assigned by the exported model itself, so the saved
    # assignments are exactly what `segwise assign` gives for them.
    prepared = preprocessor.transform(frame)
    if not np.isfinite(prepared).all():
        raise InputError("preparation produced non-finite values; check the features for extreme numbers")
    raw_labels = clusterer.predict(prepared)
    clusterer.labels_ = raw_labels
    present = np.unique(raw_labels)
    if len(present) < clusterer.n_segments_:
        notes.append(f"{clusterer.n_segments_ - len(present)} fitted segment(s) received no customer")
    segmenter.preprocessor_ = preprocessor
    segmenter.clusterer_ = clusterer
    value_col = segmenter._value_column(frame)
    segmenter.label_map_ = _label_map(frame, raw_labels, value_col, clusterer.n_segments_)
    segmenter.labels_ = segmenter.label_map_[raw_labels]
    segmenter.outlier_segment_ = None  # the MLlib methods put every customer in a segment
    segmenter.n_segments_ = int(clusterer.n_segments_)
    segmenter.feature_columns_ = columns
    segmenter.profile_columns_ = list(frame.columns)
    segmenter.value_col_ = value_col
    segmenter.log_columns_ = sorted(c for c, d in docs.items() if d.log_scale)
    segmenter.units_ = {c: d.unit for c, d in docs.items()}
    segmenter.feature_docs_ = {c: d.to_dict() for c, d in docs.items()}
    segmenter.notes_ = notes
    segmenter.n_features_in_ = frame.shape[1]
    segmenter.feature_names_in_ = np.asarray(list(frame.columns), dtype=object)
    # Profiles are aggregated by Spark; only one row per segment comes back.
    segmenter.profiles_ = spark_profiles(engine, frame, segmenter.labels_, units=segmenter.units_,
                                         value_column=value_col, log_columns=set(segmenter.log_columns_),
                                         names=segmenter.names)
    segmenter.segment_names_ = segmenter.profiles_.names
    segmenter.metrics_ = internal_metrics(prepared, segmenter.labels_, random_state=0)
    segmenter.selection_ = clusterer.selection_
    segmenter.method_details_ = {
        "method": clusterer.method_name,
        "segment_of_cluster": [int(v) for v in segmenter.label_map_],
        "prepared_columns": [str(c) for c in preprocessor.get_feature_names_out()],
        "outlier_segment": None,
    }
    return segmenter


def _label_map(frame: pd.DataFrame, raw_labels: np.ndarray, value_col: str | None, n_clusters: int) -> np.ndarray:
    # order_clusters sizes the map by the largest label; a fitted centre that no
    # customer is nearest to still needs an id.
    padded = np.concatenate([raw_labels, np.arange(n_clusters)])
    values = frame[[value_col]] if value_col else frame.iloc[:, :0]
    extra = pd.DataFrame(np.nan, index=range(n_clusters), columns=values.columns)
    return order_clusters(pd.concat([values.reset_index(drop=True), extra], ignore_index=True), padded, value_col,
                          None)


def write_assignments(engine, assignments: pd.DataFrame, uri: str | os.PathLike) -> str:
    """Write assignments as Parquet partitioned by ``segment_id``; returns where.

    A local directory is written beside its final name and renamed into place (the
    previous one is replaced only once the new one is complete); on other URIs
    Spark's output committer makes the write all-or-nothing (``_SUCCESS``).
    """
    frame = engine.to_spark(assignments)
    uri = str(uri)
    if "://" in uri and not uri.startswith("file://"):
        frame.write.mode("overwrite").partitionBy("segment_id").parquet(uri)
        return uri
    target = Path(uri[len("file://"):] if uri.startswith("file://") else uri).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    frame.write.partitionBy("segment_id").parquet(str(staging))
    previous = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    if target.exists():
        os.replace(target, previous)
    os.replace(staging, target)
    shutil.rmtree(previous, ignore_errors=True)
    return str(target)
