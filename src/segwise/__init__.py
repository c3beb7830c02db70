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

__version__ = "0.1.0"

from segwise.data import CustomerTable, Transactions, load_customers, load_transactions  # noqa: E402
from segwise.errors import DataWarning, InputError, ModelError, SegwiseError  # noqa: E402
from segwise.features import FeatureTable, build_features  # noqa: E402
from segwise.model import SegmentationModel, load_model  # noqa: E402
from segwise.pipeline import SegmentationResult, load_run, segment  # noqa: E402
from segwise.prepare import Preprocessor  # noqa: E402
from segwise.segmenter import Segmenter  # noqa: E402
from segwise.synth import generate_population  # noqa: E402

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
