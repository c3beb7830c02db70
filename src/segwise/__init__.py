"""segwise: customer segmentation from raw transaction logs.

The public API::

    import segwise

    tx = segwise.load_transactions("orders.csv")          # load, detect columns, clean
    features = segwise.build_features(tx)                 # one row per customer, as_of recorded
    seg = segwise.Segmenter().fit(features)               # prepare, cluster, order, profile, name
    seg.profiles_.table()

    result = segwise.segment("orders.csv")                # all of the above in one call
    result.save("out/")                                   # assignments, profiles, model, run.json
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from segwise._version import __version__

# The public names and the module each lives in. They are imported on first use (PEP 562), so that
# `import segwise.cli` or `segwise --version` does not pay for pandas, scikit-learn and Ibis.
_PUBLIC = {
    "CustomerTable": "segwise.data", "Transactions": "segwise.data",
    "load_customers": "segwise.data", "load_transactions": "segwise.data",
    "DataWarning": "segwise.errors", "InputError": "segwise.errors",
    "ModelError": "segwise.errors", "SegwiseError": "segwise.errors",
    "FeatureTable": "segwise.features", "build_features": "segwise.features",
    "SegmentationModel": "segwise.model", "load_model": "segwise.model",
    "SegmentationResult": "segwise.runs", "segment": "segwise.runs",
    "load_run": "segwise.runs",
    "Preprocessor": "segwise.prepare",
    "Segmenter": "segwise.segmenter",
    "generate_population": "segwise.synth",
}

if TYPE_CHECKING:  # the names as static analysis and IDEs see them
    from segwise.data import CustomerTable, Transactions, load_customers, load_transactions
    from segwise.errors import DataWarning, InputError, ModelError, SegwiseError
    from segwise.features import FeatureTable, build_features
    from segwise.model import SegmentationModel, load_model
    from segwise.runs import SegmentationResult, load_run, segment
    from segwise.prepare import Preprocessor
    from segwise.segmenter import Segmenter
    from segwise.synth import generate_population


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'segwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = [
    "__version__",
    "load_transactions",
    "load_customers",
    "build_features",
    "Segmenter",
    "Preprocessor",
    "segment",
    "load_run",
    "load_model",
    "generate_population",
    "Transactions",
    "CustomerTable",
    "FeatureTable",
    "SegmentationModel",
    "SegmentationResult",
    "SegwiseError",
    "InputError",
    "ModelError",
    "DataWarning",
]
