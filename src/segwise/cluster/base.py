"""The clustering contract shared by every segmentation method, and the registry.

A method is a scikit-learn clusterer (`ClusterMixin`, `BaseEstimator`):

- ``__init__`` stores its keyword arguments unchanged; ``fit(X)`` returns ``self``;
- learned state ends in ``_``: ``labels_`` (cluster of each training row, 0..k-1),
  ``n_segments_`` and, where the method has them, ``cluster_centers_``;
- ``predict(X)`` assigns new rows; ``confidence(X)`` returns how sure that
  assignment is, in [0, 1]; soft methods add ``predict_proba(X)``;
- ``selection_`` holds the scores of every candidate number of segments when the
  number was chosen automatically (None otherwise);
- ``to_state()`` / ``from_state()`` turn the fitted method into JSON-able data plus
  numpy arrays and back, which is how the model file stores it (no pickle).

Cluster numbers here are arbitrary; `segwise.Segmenter` orders them by value
before anything is named.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from segwise.errors import InputError

__all__ = ["SegmentClusterer", "METHODS", "register_method", "get_method"]

METHODS: dict[str, type["SegmentClusterer"]] = {}


class SegmentClusterer(ClusterMixin, BaseEstimator):
    """Base class of segwise clustering methods (see the module docstring)."""

    method_name: ClassVar[str] = ""

    def confidence(self, X) -> np.ndarray:  # pragma: no cover - every method overrides
        """How sure each assignment is, in [0, 1]."""
        raise NotImplementedError

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # pragma: no cover
        """Fitted state as (JSON-able dict, arrays)."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SegmentClusterer":  # pragma: no cover
        """Rebuild a fitted estimator from `to_state` output."""
        raise NotImplementedError


def register_method(name: str):
    """Class decorator adding a method to `METHODS` under ``name``."""

    def decorator(cls):
        cls.method_name = name
        METHODS[name] = cls
        return cls

    return decorator


def get_method(name: str) -> type[SegmentClusterer]:
    """The estimator class registered as ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown segmentation method {name!r}; methods are: {', '.join(sorted(METHODS))}") from None
