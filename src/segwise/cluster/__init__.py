"""Segmentation methods behind one contract (see `segwise.cluster.base`).

==============  ==========================================================
name            estimator
==============  ==========================================================
kmeans          `KMeansSegmenter`
hierarchical    `HierarchicalSegmenter` (Ward / average / complete, levels)
dbscan          `DBSCANSegmenter` (eps from the k-distance knee, Outliers)
hdbscan         `HDBSCANSegmenter` (approximate membership, Outliers)
gmm             `GaussianMixtureSegmenter` (BIC, soft membership)
som             `SOMSegmenter` (minisom, codebook clustered)
kprototypes     `KPrototypesSegmenter` (mixed numeric + categorical)
two_stage       `TwoStageSegmenter` (a method within each segment of another)
multiview       `MultiViewSegmenter` (feature groups segmented and crossed)
autoencoder     `AutoencoderSegmenter` (PyTorch embedding + k-means; ``deep`` extra)
auto            `AutoSegmenter` (compares methods, keeps the best)
==============  ==========================================================
"""

from segwise.cluster.base import (
    METHODS, MODEL_CLASSES, SegmentClusterer, get_method, get_model_class, register_method,
)
from segwise.cluster.kmeans import KMeansSegmenter
from segwise.cluster.hierarchical import HierarchicalSegmenter
from segwise.cluster.density import DBSCANSegmenter, HDBSCANSegmenter
from segwise.cluster.mixture import GaussianMixtureSegmenter
from segwise.cluster.som import SOMSegmenter
from segwise.cluster.kprototypes import KPrototypesSegmenter
from segwise.cluster.composite import MultiViewSegmenter, TwoStageSegmenter
from segwise.cluster.autoencoder import AutoencoderSegmenter
from segwise.cluster.auto import AutoSegmenter

# The MLlib methods of the Spark engine; their models load and assign with numpy only
# (registers the spark_* model classes; PySpark is imported only when one fits).
from segwise.cluster import mllib as _mllib  # noqa: E402,F401,I001

__all__ = [
    "METHODS", "MODEL_CLASSES", "SegmentClusterer", "get_method", "get_model_class", "register_method",
    "KMeansSegmenter", "HierarchicalSegmenter", "DBSCANSegmenter", "HDBSCANSegmenter", "GaussianMixtureSegmenter",
    "SOMSegmenter", "KPrototypesSegmenter", "TwoStageSegmenter", "MultiViewSegmenter", "AutoencoderSegmenter",
    "AutoSegmenter",
]
