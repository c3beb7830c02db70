"""Segmentation methods behind one contract (see `segwise.cluster.base`)."""

from segwise.cluster.base import (
    METHODS, MODEL_CLASSES, SegmentClusterer, get_method, get_model_class, register_method,
)
from segwise.cluster.kmeans import KMeansSegmenter

# Models fitted on Spark load and assign with numpy only (registers spark_* methods).
from segwise.spark import models as _spark_models  # noqa: E402,F401,I001

__all__ = [
    "METHODS", "MODEL_CLASSES", "SegmentClusterer", "get_method", "get_model_class", "register_method",
    "KMeansSegmenter",
]
