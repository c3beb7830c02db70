"""What travels between the coordinator and the silos: JSON messages and their schemas.

Arrays travel as ``{"dtype", "shape", "data"}`` with the data flattened (floats as
JSON numbers, which round-trip exactly). Aggregates a silo returns travel either in
the clear (``{"arrays": {...}}``) or, with secure aggregation, as one masked vector of
integers modulo 2^128 (``{"layout": {name: shape}, "masked": [...]}``) that only the
sum over the round's participants decodes (`segwise.federated.secagg`). Either way
every array's shape depends on the model (segments, feature columns, grid bins),
never on how many customers a silo holds.

The request bodies are pydantic models: the silo's FastAPI endpoints validate them,
and a malformed request gets a 422 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from segwise.federated import secagg

__all__ = [
    "PROTOCOL_VERSION", "encode_array", "decode_array", "encode_arrays", "decode_arrays", "MaskContext",
    "pack_aggregate", "combine_aggregates", "SessionConfig", "SessionRequest", "FeaturesRequest", "RoundRequest",
    "TransformedRequest", "CandidatesRequest", "LloydRequest", "ProfileRequest", "AssignRequest",
]

PROTOCOL_VERSION = 1

_DTYPES = {"float64": np.float64, "int64": np.int64, "bool": np.bool_}


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A numpy array as a JSON-able dict."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        dtype, data = "bool", array.ravel().astype(bool).tolist()
    elif np.issubdtype(array.dtype, np.integer):
        dtype, data = "int64", array.ravel().astype(np.int64).tolist()
    else:
        dtype, data = "float64", array.ravel().astype(np.float64).tolist()
    return {"dtype": dtype, "shape": list(array.shape), "data": data}


def decode_array(data: dict[str, Any]) -> np.ndarray:
    """Inverse of `encode_array`."""
    dtype = _DTYPES[data["dtype"]]
    return np.asarray(data["data"], dtype=dtype).reshape(tuple(data["shape"]))


def encode_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {name: encode_array(a) for name, a in arrays.items()}


def decode_arrays(data: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    return {name: decode_array(a) for name, a in data.items()}


@dataclass
class MaskContext:
    """Who takes part in one securely aggregated round, as a silo sees it."""

    me: str
    keys: secagg.KeyPair
    peers: dict[str, int]
    label: str


def pack_aggregate(arrays: dict[str, np.ndarray], mask: MaskContext | None) -> dict[str, Any]:
    """A silo's aggregate for the wire: in the clear, or masked for secure aggregation."""
    if mask is None:
        return {"arrays": encode_arrays(arrays)}
    layout = {name: list(np.shape(a)) for name, a in arrays.items()}
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays.values()]) if arrays else np.zeros(0)
    return {"layout": layout, "masked": secagg.mask_vector(flat, me=mask.me, keys=mask.keys, peers=mask.peers,
                                                          label=mask.label)}


def combine_aggregates(messages: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The sum over silos of their aggregates (unmasking when they are masked)."""
    if not messages:
        raise ValueError("no aggregates to combine")
    if "masked" in messages[0]:
        layout = messages[0]["layout"]
        if any(m.get("layout") != layout for m in messages):
            raise ValueError("the silos' masked aggregates have different layouts")
        total = secagg.unmask_sum([m["masked"] for m in messages])
        out, start = {}, 0
        for name, shape in layout.items():
            size = int(np.prod(shape)) if shape else 1
            out[name] = total[start:start + size].reshape(shape)
            start += size
        return out
    decoded = [decode_arrays(m["arrays"]) for m in messages]
    return {name: np.sum([d[name].astype(np.float64) for d in decoded], axis=0) for name in decoded[0]}


# --------------------------------------------------------------------------- request bodies


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionConfig(_Message):
    """Settings every silo of a run shares (sent once, at the start)."""

    families: list[str] = Field(default_factory=lambda: ["rfm", "affinity"])
    grid: dict[str, float] = Field(description="LogGrid of the preparation sketches")
    profile_grid: dict[str, float] = Field(description="LogGrid of the segment profile sketches")
    min_group_size: int = Field(5, ge=1)
    secure_aggregation: bool = False
    privacy: Optional[dict[str, Any]] = None
    protocol_version: int = PROTOCOL_VERSION


class SessionRequest(_Message):
    session: str = Field(min_length=1, max_length=64)
    config: SessionConfig


class FeaturesRequest(_Message):
    session: str
    spec: dict[str, Any]
    as_of: str
    columns: list[str]


class RoundRequest(_Message):
    session: str
    round: str = Field(min_length=1, max_length=200, description="the logical round, e.g. lloyd-3")
    attempt: int = Field(0, ge=0, description="repeats of the round after a silo dropped out")
    peers: dict[str, str] = Field(default_factory=dict, description="participants -> public key (hex)")


class TransformedRequest(RoundRequest):
    plan: dict[str, Any]


class CandidatesRequest(RoundRequest):
    preprocessor: dict[str, Any]
    n_candidates: int = Field(ge=1, le=1000)
    seed: int = 0


class LloydRequest(RoundRequest):
    centroids: dict[str, dict[str, Any]]
    with_scatter: bool = True


class ProfileRequest(RoundRequest):
    model: dict[str, Any]


class AssignRequest(_Message):
    session: str
    model: dict[str, Any]
