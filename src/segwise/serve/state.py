"""The model being served, and swapping it for a new one without downtime.

A `ServedModel` is immutable once built: the loaded `SegmentationModel` plus
everything precomputed to answer quickly (request schemas, segment names, the
``/v1/segments`` and ``/v1/model`` bodies). `ModelHolder.current` points at one;
every request reads that reference once and works on that object to the end, so a
reload that swaps the reference lets in-flight requests finish on the old model.
A new file is loaded and tried (one assignment) before the swap; if anything
fails, the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic_core import to_json

from segwise.errors import ModelError, SegwiseError
from segwise.features.base import FeatureColumn, FeatureSpec
from segwise.features.value import VALUE_COLUMNS
from segwise.model import SegmentationModel, load_model
from segwise.playbook import Playbook
from segwise.serve.compiled import CompiledAssigner
from segwise.serve.fastparse import FeatureRequests
from segwise.serve.schemas import RequestSchemas, value_bounds
from segwise.serve.settings import Settings

__all__ = ["ServedModel", "ModelHolder", "ReloadFailed"]

log = logging.getLogger("segwise.serve")


class ReloadFailed(SegwiseError):
    """A new model file could not be loaded; the previous model keeps serving."""


@dataclass(frozen=True)
class ServedModel:
    """One loaded model file and what is precomputed to serve it (see the module docstring)."""

    model: SegmentationModel
    version: str
    schemas: RequestSchemas
    names: tuple[str, ...]
    has_probabilities: bool
    playbook: Playbook | None
    transactions_problem: str | None
    segments_body: bytes
    info: dict[str, Any]
    info_body: bytes
    examples: dict[str, dict[str, Any]]
    #: The model's preparation and assignment compiled for the request path.
    compiled: CompiledAssigner
    #: Reads well-formed batches straight into arrays (others go to ``schemas``).
    requests: FeatureRequests
    #: What the transactions form computes: the columns assignment needs, plus the value
    #: family when the model has fitted parameters for it (scored with them, never refitted).
    transactions_spec: FeatureSpec | None = None
    #: The value columns /v1/assign returns with a transactions-form assignment (empty: none).
    value_columns: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path, settings: Settings) -> "ServedModel":
        """Load a model file, prepare it for serving and try one assignment.

        Raises
        ------
        ModelError
            The file cannot be loaded or the model cannot assign.
        """
        model = load_model(path)
        try:
            return cls.from_model(model, settings)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means: do not serve this file
            raise ModelError(f"{path}: the model cannot be served ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_model(cls, model: SegmentationModel, settings: Settings) -> "ServedModel":
        """Prepare a loaded model for serving."""
        segmenter = model.segmenter
        n_segments = int(segmenter.n_segments_)
        names = tuple(model.names[i] for i in range(n_segments))
        input_columns = model.input_columns
        docs = model.feature_columns
        known: dict[str, FeatureColumn | None] = {c: docs.get(c) for c in segmenter.profile_columns_}
        for column in input_columns:
            known.setdefault(column, docs.get(column))
        spec = model.required_spec
        schemas = RequestSchemas.for_model(
            input_columns, known, uses_category=spec.has_category, uses_channel=bool(spec.channel_levels),
            uses_discount=spec.has_discount,
            max_batch_size=settings.max_batch_size, max_transactions=settings.max_transactions,
        )
        playbook = model.playbook
        if not spec.has_transactions:
            transactions_problem = (
                "this model was trained on customer attributes without transactions: send features"
            )
        elif spec.attributes:
            transactions_problem = (
                f"this model's segments use customer attributes ({', '.join(spec.attributes)}), which "
                "transactions do not carry: send features"
            )
        else:
            transactions_problem = None
        value_columns: tuple[str, ...] = ()
        transactions_spec = None
        if transactions_problem is None:
            transactions_spec = spec
            if "value" in model.spec.families and "value" in model.spec.models:
                value_columns = VALUE_COLUMNS
                if "value" not in spec.families:
                    transactions_spec = FeatureSpec(**{**spec.to_dict(), "families": [*spec.families, "value"]})
        # Try the model once, on the training medians, before it serves anyone.
        medians = segmenter.profiles_.population_medians
        probe = {c: (_finite(medians.get(c)) if kind == "numeric" else None) for c, kind in input_columns.items()}
        tried = model.assign_rows([probe])
        if not (0 <= int(tried.segment_id[0]) < n_segments and np.isfinite(tried.confidence).all()):
            raise ModelError("the model assigns outside its own segments")
        compiled = CompiledAssigner.from_model(model)
        again = compiled.assign_rows([probe])
        if again.segment_id[0] != tried.segment_id[0] or not np.allclose(again.confidence, tried.confidence):
            raise ModelError("the compiled assignment differs from the model's own on the training medians")
        requests = FeatureRequests(compiled.inputs, [value_bounds(known.get(c)) for c in compiled.inputs],
                                   compiled.categorical_columns, settings.max_batch_size)
        version = model.file_sha256 or ""
        profiles = segmenter.profiles_.to_dict()
        segments_body = to_json({
            "segments": profiles["segments"], "value_column": profiles.get("value_column"), "model_version": version,
        })
        meta = model.metadata
        features = []
        for name, doc in known.items():
            kind = input_columns.get(name, doc.kind if doc is not None else "numeric")
            low, high = value_bounds(doc) if kind == "numeric" else (None, None)
            features.append({
                "name": name, "family": doc.family if doc else None, "unit": doc.unit if doc else None,
                "description": doc.description if doc else None, "kind": kind, "required": name in input_columns,
                "minimum": low, "maximum": high,
            })
        info = {
            "model_version": version, "file_sha256": version, "model_id": meta.get("model_id"),
            "method": str(meta.get("method") or segmenter.clusterer_.method_name), "n_segments": n_segments,
            "as_of": meta.get("as_of"), "created_at": meta.get("created_at"),
            "segwise_version": meta.get("segwise_version"), "training_customers": meta.get("n_customers"),
            "features": features, "has_probabilities": tried.probabilities is not None,
            "has_playbook": playbook is not None, "transactions_form": transactions_problem is None,
            "value_columns": list(value_columns),
            "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(
            model=model, version=version, schemas=schemas, names=names,
            has_probabilities=tried.probabilities is not None, playbook=playbook,
            transactions_problem=transactions_problem, segments_body=segments_body, info=info,
            info_body=to_json(info), examples=_examples(model, probe, known, schemas, transactions_problem),
            compiled=compiled, requests=requests,
            transactions_spec=transactions_spec, value_columns=value_columns,
        )

    def actions(self, segment_id: int, features: dict[str, Any]) -> list[str] | None:
        """The playbook's recommended actions for one customer (None without a playbook)."""
        return None if self.playbook is None else self.playbook.actions_for(segment_id, features)


def _examples(model: SegmentationModel, probe: dict[str, Any], known: dict[str, FeatureColumn | None],
              schemas: RequestSchemas, transactions_problem: str | None) -> dict[str, dict[str, Any]]:
    """OpenAPI request examples for this model: a typical customer (the training medians)."""
    modes = model.segmenter.preprocessor_.categorical_modes_
    features: dict[str, Any] = {}
    for column, value in probe.items():
        if schemas.input_columns[column] == "categorical":
            features[column] = modes.get(column)
        elif value is not None:
            low, high = value_bounds(known.get(column))
            features[column] = round(min(max(value, low), high), 4)
        else:
            features[column] = None
    single = {"features": {"summary": "A customer's features (the model's feature columns)",
                           "value": {"customer_id": "C-1042", "features": features}}}
    if transactions_problem is None:
        as_of = date.fromisoformat(model.metadata["as_of"]) if model.metadata.get("as_of") else date(2025, 1, 1)
        fields = schemas.transaction_fields
        channels = model.required_spec.channel_levels
        lines = []
        for days, amount, order in ((200, 54.9, "A-1001"), (90, 23.5, "A-1002"), (12, 71.0, "A-1003")):
            line: dict[str, Any] = {"order_id": order, "ts": f"{as_of - timedelta(days=days)}T14:30:00",
                                    "amount": amount}
            if fields["category"]:
                line["category"] = "books"
            if fields["channel"]:
                line["channel"] = channels[0] if channels else None
            if fields["discount"]:
                line["discount"] = days == 90
            lines.append(line)
        single["transactions"] = {
            "summary": "A customer's recent transactions; features computed as of as_of",
            "value": {"customer_id": "C-1042", "transactions": lines, "as_of": str(as_of)},
        }
    batch = {"features": {"summary": "Two customers", "value": {"customers": [
        {"customer_id": "C-1042", "features": features}, {"customer_id": "C-2077", "features": features},
    ]}}}
    return {"single": single, "batch": batch}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


class ModelHolder:
    """The current `ServedModel`, and reloads of the model file given at start.

    Parameters
    ----------
    path : Path
        The model file; the only one this server ever reads.
    settings : Settings
    """

    def __init__(self, path: str | Path, settings: Settings) -> None:
        self.path = Path(path)
        self.settings = settings
        self.current: ServedModel | None = None
        self._lock: asyncio.Lock | None = None

    def load(self) -> ServedModel:
        """Load the model at start (raises `ModelError`)."""
        self.current = ServedModel.load(self.path, self.settings)
        log.info("serving %s (model %s, %d segments)", self.path, self.current.version[:12],
                 len(self.current.names))
        return self.current

    async def reload(self) -> tuple[ServedModel, ServedModel]:
        """Load the file again and swap it in; returns (previous, new).

        Raises
        ------
        ReloadFailed
            The file cannot be served; the previous model stays current.
        """
        import anyio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            previous = self.current
            try:
                new = await anyio.to_thread.run_sync(ServedModel.load, self.path, self.settings)
            except Exception as exc:  # noqa: BLE001 - whatever broke, the old model keeps serving
                message = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
                log.error("reload of %s rejected, the previous model keeps serving: %s", self.path, message)
                raise ReloadFailed(message) from None
            self.current = new
            log.info("reloaded %s: model %s replaces %s", self.path, new.version[:12],
                     previous.version[:12] if previous else "none")
            assert previous is not None
            return previous, new
