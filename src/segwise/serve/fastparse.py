"""Reading batch assignment requests straight into numpy arrays.

Most batches are well-formed and carry exactly the model's input columns. For
them, validating with pydantic (`segwise.serve.schemas`) and then building arrays
from the validated dicts costs more than the assignment (about 3 us per customer
against 1.7 us this way, ``bench/serve.py --profile``). `FeatureRequests` checks
such bodies itself, after parsing them with orjson: the structure and keys, the JSON
type of every value (a number or null for numeric columns, never a boolean or a
string; a string or null for categorical ones), the lengths of ids and texts, and
the ranges (`value_bounds`), the last on the whole numeric array at once.

It only ever says "valid, here are the arrays" or "not sure": anything it does not
accept (bad JSON, an error, an optional feature column it does not handle) goes
to the pydantic schemas, which either accept it or answer the 422 naming the
field, exactly as before. So it never accepts what the schemas refuse: its checks
are a subset of theirs. Single assignments are validated by pydantic alone: for one
small body its validator is faster than these checks on numpy arrays.
"""

from __future__ import annotations

import operator
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import orjson

from segwise.serve.schemas import MAX_ID_LENGTH, MAX_TEXT_LENGTH

__all__ = ["FeatureRequests", "ParsedFeatures"]

_NUMBER_TYPES = frozenset({float, int, type(None)})
_TEXT_TYPES = frozenset({str, type(None)})
_CUSTOMER_KEYS = frozenset({"customer_id", "features"})


class ParsedFeatures(NamedTuple):
    """Customers read from a batch request, in order."""

    customer_ids: list[str]
    #: (n_customers, n_numeric) float64; NaN where the request sent null.
    values: np.ndarray
    #: Categorical column to its values (str or None), one per customer.
    categories: dict[str, list[Any]]
    #: The ``features`` objects as sent (numbers may be JSON integers).
    features: list[dict[str, Any]]


class FeatureRequests:
    """Fast reading of ``/v1/assign/batch`` bodies.

    Parameters
    ----------
    numeric : sequence of str
        The model's numeric input columns, in the order of the values array.
    bounds : sequence of (float, float)
        Smallest and largest accepted value of each numeric column.
    categorical : sequence of str
        The model's categorical input columns.
    max_batch_size : int
    """

    def __init__(self, numeric, bounds, categorical, max_batch_size: int) -> None:
        self.numeric = tuple(numeric)
        self.categorical = tuple(categorical)
        self.keys = frozenset(self.numeric) | frozenset(self.categorical)
        self.max_batch_size = max_batch_size
        bounds = np.asarray(bounds, dtype=np.float64).reshape(len(self.numeric), 2)
        self.low, self.high = bounds[:, 0], bounds[:, 1]
        if len(self.numeric) > 1:
            self._numbers = operator.itemgetter(*self.numeric)
        else:
            self._numbers = lambda features: tuple(features[c] for c in self.numeric)

    def batch(self, body: bytes) -> ParsedFeatures | None:
        """A ``/v1/assign/batch`` body, or None."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict or data.keys() != {"customers"}:
            return None
        customers = data["customers"]
        if type(customers) is not list or not 1 <= len(customers) <= self.max_batch_size:
            return None
        for customer in customers:
            if type(customer) is not dict or customer.keys() != _CUSTOMER_KEYS:
                return None
        return self._customers(customers)

    def _customers(self, customers: list[dict[str, Any]]) -> ParsedFeatures | None:
        ids = [c["customer_id"] for c in customers]
        if not {type(i) for i in ids} <= {str} or not all(0 < len(i) <= MAX_ID_LENGTH for i in ids):
            return None
        features = [c["features"] for c in customers]
        keys = self.keys
        for f in features:
            if type(f) is not dict or f.keys() != keys:
                return None
        rows = list(map(self._numbers, features))
        if not {type(v) for v in chain.from_iterable(rows)} <= _NUMBER_TYPES:
            return None
        try:
            values = np.array(rows, dtype=np.float64).reshape(len(rows), len(self.numeric))
        except (OverflowError, ValueError):
            return None
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):
            inside = (values >= self.low) & (values <= self.high)
        if not (inside | missing).all():
            return None
        categories = {}
        for column in self.categorical:
            texts = [f[column] for f in features]
            if not {type(t) for t in texts} <= _TEXT_TYPES or not all(
                    t is None or len(t) <= MAX_TEXT_LENGTH for t in texts):
                return None
            categories[column] = texts
        return ParsedFeatures(ids, values, categories, features)
