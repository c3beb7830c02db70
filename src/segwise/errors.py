"""The exceptions segwise raises.

::

    SegwiseError                          base of everything segwise raises on purpose
    ├── InputError (ValueError)           bad data, bad options or a bad file: the user can fix it
    │   ├── MissingExtraError (ImportError)   an optional extra is not installed   (cluster.autoencoder)
    │   ├── FederationError                   a federation that cannot go on       (federated.rounds)
    │   └── SiloRefused                       a silo answered 4xx                  (federated.transport)
    ├── ModelError                        a model file that cannot be used, or an estimator used
    │                                     before it was fitted
    ├── InvalidRequest                    a service request that fails validation (serve.schemas)
    ├── ReloadFailed                      a new model file the service cannot load (serve.state)
    ├── BadRequest                        a request a silo refuses, HTTP 400/422 (federated.routes)
    ├── SiloUnavailable (RuntimeError)    a silo that does not answer          (federated.transport)
    └── PrivacyBudgetExceeded (RuntimeError)  a release over the privacy budget (federated.privacy)

The classes under `InputError` and the last five live beside the code that raises them (they
carry that code's details: validation issues, HTTP status); they all derive from `SegwiseError`,
so ``except SegwiseError`` catches everything segwise raises on purpose. A test keeps this tree
true (tests/test_errors.py).

`InputError` also subclasses `ValueError`, so ``except ValueError`` keeps working for
callers that do not know segwise. The CLI prints an `InputError` without a traceback
and exits with status 2; any other exception is an internal failure (status 1).

`DataWarning` is the category of the warnings segwise emits about data it could still
use (for example a file decoded as Latin-1).
"""

from __future__ import annotations

__all__ = ["SegwiseError", "InputError", "ModelError", "DataWarning"]


class SegwiseError(Exception):
    """Base class of every error segwise raises on purpose."""


class InputError(SegwiseError, ValueError):
    """Bad input: the message names the source, the column, a few rows and the fix."""


class ModelError(SegwiseError):
    """A model file that cannot be loaded, or a model that is not fitted."""


class DataWarning(UserWarning):
    """Data that segwise could use, but not as given (the message says what was done)."""
