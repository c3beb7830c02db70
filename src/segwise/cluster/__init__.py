"""Segmentation methods behind one contract (see `segwise.cluster.base`)."""

from segwise.cluster.base import METHODS, SegmentClusterer, get_method, register_method
from segwise.cluster.kmeans import KMeansSegmenter

__all__ = ["METHODS", "SegmentClusterer", "get_method", "register_method", "KMeansSegmenter"]
