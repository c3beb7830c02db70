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

__all__ = ["SegmentClusterer", "METHODS", "MODEL_CLASSES", "register_method", "get_method", "get_model_class"]

#: Methods this process can fit: ``Segmenter(method=name)``, ``segwise run --method name``.
METHODS: dict[str, type["SegmentClusterer"]] = {}

#: Every class a model file may name: the methods, plus models fitted elsewhere (the
#: Spark engine) that load and assign here but are not fitted by their own ``fit``.
MODEL_CLASSES: dict[str, type["SegmentClusterer"]] = {}


class SegmentClusterer(ClusterMixin, BaseEstimator):
    """Base class of segwise clustering methods (see the module docstring)."""

    method_name: ClassVar[str] = ""
    #: Where models of a class registered with ``fitted_by`` are fitted (None: by ``fit``).
    fitted_by: ClassVar[str | None] = None

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


def register_method(name: str, *, fitted_by: str | None = None):
    """Class decorator registering a clusterer under ``name``.

    Parameters
    ----------
    name : str
        The name used by ``--method`` and stored in model files.
    fitted_by : str, optional
        For a class that only stores and applies a model fitted elsewhere: how to
        fit one (e.g. ``"the Spark engine (--engine spark --method gmm)"``). Such a
        class goes to `MODEL_CLASSES` only, not to `METHODS`.
    """

    def decorator(cls):
        cls.method_name = name
        cls.fitted_by = fitted_by
        MODEL_CLASSES[name] = cls
        if fitted_by is None:
            METHODS[name] = cls
        return cls

    return decorator


def get_method(name: str) -> type[SegmentClusterer]:
    """The estimator class of the method ``name``, for fitting."""
    if name in METHODS:
        return METHODS[name]
    if name in MODEL_CLASSES:
        raise InputError(
            f"the method {name!r} is not fitted by this engine: its models are fitted by "
            f"{MODEL_CLASSES[name].fitted_by}"
        )
    raise InputError(f"unknown segmentation method {name!r}; methods are: {', '.join(sorted(METHODS))}")


def get_model_class(name: str) -> type[SegmentClusterer]:
    """The class that loads and applies a stored model of the method ``name``."""
    try:
        return MODEL_CLASSES[name]
    except KeyError:
        raise InputError(
            f"the model names an unknown segmentation method {name!r} (known: {', '.join(sorted(MODEL_CLASSES))}); "
            "it was probably made by a newer segwise: upgrade segwise to load it"
        ) from None
