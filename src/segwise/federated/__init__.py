"""Privacy-preserving segmentation: federated k-means across data silos, optionally
with secure aggregation and differential privacy.

Silos (`Silo`, served over HTTP by `serve_silo`) keep their customers; a coordinator
(`FederatedKMeans`) agrees a global preparation and k-means model with them from
aggregates only, and each silo assigns its own customers. `simulate` runs the whole
thing on one machine with silo processes on 127.0.0.1. See the README section
"Privacy-preserving segmentation" for what each mode protects and what it does not.
"""

from segwise.federated.coordinator import FederatedKMeans, FederatedResult
from segwise.federated.rounds import FederationError
from segwise.federated.privacy import PrivacyPlan
from segwise.federated.silo import Silo
from segwise.federated.transport import HttpSilo, LocalSilo, WireLog, read_wire_log

__all__ = [
    "FederatedKMeans", "FederatedResult", "FederationError", "PrivacyPlan", "Silo", "HttpSilo", "LocalSilo",
    "WireLog", "read_wire_log",
]
