"""A soft segmentation method for the tests: k-means with softmax memberships.

Soft methods (Gaussian mixtures...) add ``predict_proba``; the service returns those
probabilities. This one is a small real subclass of the k-means method. It is not
registered on import, so the test session's method registry stays as segwise ships
it; run as a script, it registers itself and runs the ``segwise`` command line, so
``segwise serve`` can load a model file made with it.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from segwise.cluster.kmeans import KMeansSegmenter
from segwise.model import SegmentationModel

METHOD = "softmax-kmeans"


class SoftmaxKMeans(KMeansSegmenter):
    """k-means whose membership probabilities are a softmax of minus the squared distances."""

    method_name = METHOD

    def predict_proba(self, X):
        squared = self._distances(X)
        weights = np.exp(-(squared - squared.min(axis=1, keepdims=True)))
        return weights / weights.sum(axis=1, keepdims=True)


def soft_copy(model: SegmentationModel) -> SegmentationModel:
    """The same fitted model with the soft method (same centroids, same segments)."""
    meta, arrays = model.segmenter.clusterer_.to_state()
    segmenter = model.segmenter
    soft = type(segmenter)(**segmenter.get_params())
    soft.__dict__.update({k: v for k, v in segmenter.__dict__.items() if k.endswith("_")})
    soft.clusterer_ = SoftmaxKMeans.from_state(meta, arrays)
    return dataclasses.replace(model, segmenter=soft, metadata={**model.metadata, "method": METHOD})


if __name__ == "__main__":
    from segwise.cluster import register_method

    register_method(METHOD)(SoftmaxKMeans)
    from segwise.cli import main

    sys.exit(main())
