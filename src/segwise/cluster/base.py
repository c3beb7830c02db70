"""The clustering contract shared by every segmentation method, and the registry.

A method is a scikit-learn clusterer (`ClusterMixin`, `BaseEstimator`):

- ``__init__`` stores its keyword arguments unchanged; ``fit(X)`` returns ``self``;
- learned state ends in ``_``: ``labels_`` (cluster of each training row, 0..k-1),
  ``n_segments_`` and, where the method has them, ``cluster_centers_``;
- ``predict(X)`` assigns new rows; ``confidence(X)`` returns how sure that
  assignment is, in [0, 1]; soft methods add ``predict_proba(X)``;
- ``selection_`` holds the scores of every candidate number of segments when the
  number was chosen automatically (None otherwise);
- ``details_`` (optional) is a JSON-able dict of method-specific results for the
  report (dendrogram, micro-segments, U-matrix, loss curve ...). A dict in it with
  a ``"cluster"`` key (or a ``"clusters"`` list) refers to cluster numbers, which
  `segwise.Segmenter` translates to segment ids and names;
- ``outlier_cluster_`` (optional) is the cluster number of the customers the method
  calls noise (density methods); `segwise.Segmenter` names it "Outliers" and gives
  it the last segment id;
- ``name_parts_`` (optional, composite methods) says how each cluster is made of the
  segments of simpler segmentations, so names can be composed ("At Risk / Deal
  Hunters"): a list of ``{"part": name, "labels": training labels, "within": None
  or the name of the part it subdivides, "columns": positions of the columns it was
  segmented on}`` and ``cluster_parts_`` (clusters x parts, -1 where a part does
  not apply);
- ``to_state()`` / ``from_state()`` turn the fitted method into JSON-able data plus
  numpy arrays and back, which is how the model file stores it (no pickle).

A method also declares what others need to know about it, so that nothing outside
``cluster/`` branches on its name:

- ``param_docs``: the type and meaning of each ``__init__`` parameter (the defaults
  come from the signature); `method_parameters` lists them as `MethodParam`, and
  ``cli_options`` names the parameters with a command-line option of their own
  (``--levels``). The CLI's ``--method-param`` and ``--levels`` read these;
- ``assignment_rule``: how a new customer is assigned, in one sentence;
- ``report_sections``: the sections of the HTML report its ``details_`` feed
  (`segwise.report` renders them, whatever the method), and ``summary_lines(details)``:
  the line or two ``segwise run`` prints about them;
- ``assign_prepared(X)``: labels and confidences of rows already prepared and
  checked, the fast path of single-customer assignment (the model's and the service's).

Class attributes tell `segwise.Segmenter` what input a method needs:
``categorical_encoding`` ("onehot", or "codes" for methods that handle categories
themselves) and ``column_params`` (parameters that name feature columns or
families, resolved by the Segmenter to prepared-column indices).

Cluster numbers here are arbitrary; `segwise.Segmenter` orders them by value
before anything is named.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from segwise.errors import InputError

__all__ = [
    "SegmentClusterer", "METHODS", "MODEL_CLASSES", "ENGINE_METHODS", "register_method", "register_engine_method",
    "get_method", "get_model_class", "param_error",
    "check_int_param", "resolve_seed", "state_params", "params_from_state", "fit_input",
    "MethodParam", "method_parameters", "methods_with_option", "COMMON_PARAM_DOCS",
]

#: Methods this process can fit: ``Segmenter(method=name)``, ``segwise run --method name``.
METHODS: dict[str, type["SegmentClusterer"]] = {}

#: Methods that fit where an engine holds the customers, by engine name and method
#: name (``ENGINE_METHODS["spark"]["gmm"]``, `segwise.cluster.mllib`); an engine
#: with an entry here fits only these.
ENGINE_METHODS: dict[str, dict[str, type["SegmentClusterer"]]] = {}
_ENGINE_ALIASES: dict[str, dict[str, str]] = {}

#: Every class a model file may name: the methods, plus models fitted elsewhere (the
#: Spark engine) that load and assign here but are not fitted by their own ``fit``.
MODEL_CLASSES: dict[str, type["SegmentClusterer"]] = {}


@dataclass(frozen=True)
class MethodParam:
    """One parameter of a method, as the CLI and the documentation show it.

    ``type`` is one of ``int``, ``float``, ``str``, ``auto|int``, ``auto|float``,
    ``auto|str``, ``counts`` (whole numbers of at least 1), ``range`` (two whole
    numbers), ``names`` (feature columns or families), ``groups`` (name to names),
    ``method``, ``methods``, ``params`` (a method's parameters), ``seed``;
    ``option`` is the command-line option of its own, if any (``--levels``).
    """

    name: str
    type: str
    default: Any
    help: str
    option: str | None = None


#: Parameters many methods share: name -> (type, help). A method's ``param_docs`` override them.
COMMON_PARAM_DOCS: dict[str, tuple[str, str]] = {
    "n_segments": ("auto|int", "number of segments, or 'auto' to choose it over k_range"),
    "k_range": ("range", "smallest and largest number of segments tried by 'auto'"),
    "random_state": ("seed", "seed of every random step"),
    "selection_sample": ("int", "customers on which candidate numbers of segments are scored"),
    "fit_sample": ("int", "customers the method is fitted on (the rest are assigned)"),
    "n_init": ("int", "restarts from different seeds; the best is kept"),
    "max_iter": ("int", "most iterations of one fit"),
}


class SegmentClusterer(ClusterMixin, BaseEstimator):
    """Base class of segwise clustering methods (see the module docstring)."""

    #: ``__init__`` parameter -> (type, help); see `MethodParam` for the types.
    param_docs: ClassVar[dict[str, tuple[str, str]]] = {}
    #: Parameter -> its own command-line option (e.g. ``{"levels": "--levels"}``).
    cli_options: ClassVar[dict[str, str]] = {}
    #: How a new customer is assigned, in one sentence.
    assignment_rule: ClassVar[str] = ""
    #: Sections of the HTML report this method's ``details_`` feed (see `segwise.report.method_data`).
    report_sections: ClassVar[tuple[str, ...]] = ()

    method_name: ClassVar[str] = ""
    #: How `segwise.Segmenter` encodes categorical features for this method.
    categorical_encoding: ClassVar[str] = "onehot"
    #: Parameter name -> "list" (column/family names) or "groups" (name -> names).
    column_params: ClassVar[dict[str, str]] = {}
    #: Where models of a class registered with ``fitted_by`` are fitted (None: by ``fit``).
    fitted_by: ClassVar[str | None] = None

    def confidence(self, X) -> np.ndarray:  # pragma: no cover - every method overrides
        """How sure each assignment is, in [0, 1]."""
        raise NotImplementedError

    def predict_with_confidence(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(X), confidence(X))``; a method that gets both from one pass overrides it."""
        return np.asarray(self.predict(X)), np.asarray(self.confidence(X), dtype=np.float64)

    @classmethod
    def summary_lines(cls, details: dict[str, Any]) -> list[str]:
        """A line or two of what only this method reports, from its ``details_`` (the CLI prints them)."""
        return []

    def assign_prepared(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster and confidence of rows already prepared and checked (float64, ``n_features_in_`` wide).

        The fast path of assigning a few customers at a time; a method whose input
        validation costs more than its arithmetic for one row overrides it.
        """
        return self.predict(X), np.asarray(self.confidence(X), dtype=np.float64)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # pragma: no cover
        """Fitted state as (JSON-able dict, arrays)."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SegmentClusterer":  # pragma: no cover
        """Rebuild a fitted estimator from `to_state` output."""
        raise NotImplementedError

    def exported(self) -> "SegmentClusterer":
        """The clusterer the model file stores: this one, except for a method fitted where
        the data live (`ENGINE_METHODS`), which returns the numpy model it exported."""
        return self

    def metric_space(self, X) -> np.ndarray:
        """The rows of ``X`` in the space whose Euclidean distances the method uses.

        Internal validity metrics (silhouette, Davies-Bouldin) are computed there;
        it is ``X`` itself except for methods with their own distance (k-prototypes).
        """
        return np.asarray(X, dtype=np.float64)

    def _check_X(self, X, attribute: str = "n_segments_") -> np.ndarray:
        """``X`` as float64 with the number of features seen in `fit` (after the fitted check)."""
        check_is_fitted(self, attribute)
        X = check_array(X, dtype=[np.float64, np.float32])
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X.astype(np.float64, copy=False)


def method_parameters(method: type[SegmentClusterer]) -> list[MethodParam]:
    """The parameters ``method`` declares, in the order of its ``__init__``, with their defaults."""
    params = []
    for name, parameter in inspect.signature(method.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        type_, help_ = method.param_docs.get(name) or COMMON_PARAM_DOCS[name]
        default = parameter.default
        params.append(MethodParam(name, type_, list(default) if isinstance(default, tuple) else default, help_,
                                  method.cli_options.get(name)))
    return params


def methods_with_option(option: str) -> list[str]:
    """Names of the methods that have the command-line option ``option`` (e.g. ``--levels``)."""
    return sorted(name for name, cls in METHODS.items() if option in cls.cli_options.values())


def fit_input(X) -> np.ndarray:
    """Training rows as a float64 array, with scikit-learn's input errors (at least 2 rows)."""
    return check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=2).astype(np.float64, copy=False)


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


def register_engine_method(engine: str, name: str, *aliases: str):
    """Class decorator registering a method that fits where ``engine`` holds the data.

    ``aliases`` are other names accepted for it (e.g. the name its models are stored
    under); they are not listed in messages.
    """

    def decorator(cls):
        ENGINE_METHODS.setdefault(engine, {})[name] = cls
        _ENGINE_ALIASES.setdefault(engine, {}).update({alias: name for alias in aliases})
        return cls

    return decorator


def get_method(name: str, engine: str | None = None) -> type[SegmentClusterer]:
    """The estimator class of the method ``name``, for fitting (where ``engine`` holds the data)."""
    if engine is not None and engine in ENGINE_METHODS:
        methods = ENGINE_METHODS[engine]
        name = _ENGINE_ALIASES[engine].get(name, name)
        if name in methods:
            return methods[name]
        raise InputError(
            f"unknown method {name!r} on the {engine.capitalize()} engine; methods are: {', '.join(methods)}"
        )
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


def param_error(owner: str, name: str, expected: str, got: Any) -> InputError:
    """The scikit-learn wording of a bad parameter."""
    return InputError(f"The {name!r} parameter of {owner} must be {expected}. Got {got!r} instead.")


def check_int_param(owner: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high], or the scikit-learn parameter error."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low or (
            high is not None and value > high):
        rng = f"[{low}, {'inf' if high is None else high}{')' if high is None else ']'}"
        raise param_error(owner, name, f"an int in the range {rng}", value)
    return int(value)


def resolve_seed(random_state) -> int:
    """A concrete integer seed from ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def state_params(estimator: BaseEstimator) -> dict[str, Any]:
    """``get_params(deep=False)`` as JSON-able data (tuples as lists, no RandomState)."""
    out = {}
    for key, value in estimator.get_params(deep=False).items():
        if hasattr(value, "randint"):
            continue
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def params_from_state(params: dict[str, Any], tuples: tuple[str, ...] = ("k_range",)) -> dict[str, Any]:
    """Undo `state_params` for the parameters that are tuples."""
    params = dict(params)
    for key in tuples:
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    return params
