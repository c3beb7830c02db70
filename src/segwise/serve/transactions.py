"""The transactions form of ``/v1/assign``: one customer's recent lines to features.

The lines go through the same loader and cleaning rules as ``segwise assign``
(`segwise.load_transactions`, on a private in-memory DuckDB) and the features are
computed at ``as_of`` with the model's own feature definitions
(`SegmentationModel.required_spec`, plus the ``value`` family when the model has
it: its stored BG/NBD and Gamma-Gamma parameters score the customer, nothing is
refitted), so a customer gets the segment ``segwise assign`` would give them from
the same lines, and the predicted value the training run gave them.

Timestamps are wall-clock times, as everywhere in segwise: a timestamp with a UTC
offset is converted to UTC and its offset dropped.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from segwise.data import load_transactions
from segwise.engines.duckdb import DuckDBEngine
from segwise.errors import InputError
from segwise.features import build_features
from segwise.features.base import FeatureSpec
from segwise.model import SegmentationModel
from segwise.serve.schemas import InvalidRequest, issue

__all__ = ["features_from_transactions"]

_SCHEMA = {
    "customer_id": pa.string(), "order_id": pa.string(), "ts": pa.timestamp("us"), "amount": pa.float64(),
    "category": pa.string(), "channel": pa.string(), "discount": pa.bool_(),
}


def _wall_clock(ts: datetime) -> datetime:
    if ts.tzinfo is not None:
        return ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def features_from_transactions(model: SegmentationModel, lines: list[dict[str, Any]], as_of: date,
                               fields: dict[str, bool], temp_directory: str,
                               spec: FeatureSpec | None = None) -> dict[str, Any]:
    """One customer's features at ``as_of`` from their lines (validated request dicts).

    Parameters
    ----------
    spec : FeatureSpec, optional
        What to compute; the model's ``required_spec`` when not given (the served
        model passes it with the value family added when the model has one).
    fields : dict of str to bool
        The optional fields (category, channel, discount), True for those the
        model reads.
    temp_directory : str
        Where DuckDB may spill (it never needs to for one customer).

    Raises
    ------
    InvalidRequest
        The lines hold no purchase before ``as_of``.
    """
    stamps = [_wall_clock(line["ts"]) for line in lines]
    first = min(stamps).date()
    if as_of <= first:
        raise InvalidRequest([issue(("as_of",), f"as_of {as_of} is on or before the first transaction ({first}): "
                                    "no purchase counts before it; give a later as_of")])
    as_of_start = datetime(as_of.year, as_of.month, as_of.day)
    if not any(line["amount"] > 0 and ts < as_of_start for line, ts in zip(lines, stamps)):
        raise InvalidRequest([issue(("transactions",), "no purchase before as_of: every line is a return "
                                    "(negative amount), zero, or dated on or after as_of")])
    columns: dict[str, list[Any]] = {
        "customer_id": ["customer"] * len(lines), "ts": stamps, "amount": [line["amount"] for line in lines],
    }
    roles = {"customer_id_col": "customer_id", "timestamp_col": "ts", "amount_col": "amount"}
    if any(line.get("order_id") is not None for line in lines):
        columns["order_id"] = [line.get("order_id") for line in lines]
        roles["order_id_col"] = "order_id"
    for name, used in fields.items():
        # A field the model does not read still tells lines apart when duplicates are
        # judged (as it does in a full log): keep it when the client sent it.
        if used or any(line.get(name) is not None for line in lines):
            columns[name] = [line.get(name) for line in lines]
            roles[f"{name}_col"] = name
    table = pa.table({name: pa.array(values, type=_SCHEMA[name]) for name, values in columns.items()})
    engine = DuckDBEngine(threads=1, temp_directory=temp_directory)
    try:
        transactions = load_transactions(table, engine=engine, **roles)
        features = build_features(transactions, as_of=as_of, spec=spec if spec is not None else model.required_spec)
    except InputError as exc:
        message = str(exc).replace("pyarrow DataFrame", "transactions").replace("--as-of", "as_of")
        raise InvalidRequest([issue(("transactions",), message)]) from None
    finally:
        engine.close()
    row = features.frame.iloc[0].to_dict()
    return {name: (None if isinstance(value, float) and math.isnan(value) else value) for name, value in row.items()}
