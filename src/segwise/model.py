"""`SegmentationModel`: a fitted segmentation plus what it needs to assign new customers."""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from segwise._version import __version__
from segwise.data import CustomerTable, Transactions
from segwise.errors import InputError, ModelError
from segwise.features import FeatureSpec, FeatureTable, build_features
from segwise.features.base import FAMILIES, FeatureColumn
from segwise.persist import read_model_file, write_model_file
from segwise.playbook import Playbook
from segwise.profile import Profiles
from segwise.segmenter import Segmenter

__all__ = ["SegmentationModel", "RowAssignments", "load_model", "ASSIGNMENT_COLUMNS"]

#: Columns of every assignment table, in order.
ASSIGNMENT_COLUMNS = ["customer_id", "segment_id", "segment_name", "confidence"]


@dataclass(frozen=True)
class RowAssignments:
    """What `SegmentationModel.assign_rows` returns: arrays in the order of the rows.

    Attributes
    ----------
    segment_id : ndarray of int64
    confidence : ndarray of float64
        In [0, 1], as defined by the method.
    probabilities : ndarray of shape (n_rows, n_segments) or None
        Membership probability of every segment (column i is segment id i) when the
        method has them (``predict_proba``), else None.
    """

    segment_id: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None


@dataclass
class SegmentationModel:
    """A fitted `Segmenter`, the feature definitions it was trained on, and metadata.

    Attributes
    ----------
    segmenter : Segmenter
    spec : FeatureSpec
        How to compute the model's features from new data.
    metadata : dict
        ``model_id``, ``created_at``, ``segwise_version``, ``as_of``, training
        ``source``, ``n_customers``, ``method``, ``n_segments``.
    file_sha256 : str or None
        SHA-256 of the model file it was loaded from or saved to.
    playbook : Playbook or None
        What to do with each segment (`segwise.playbook`), bound to this model;
        stored in the model document under ``"playbook"``.
    training_snapshot : dict or None
        Distributions of the defining features and segment shares at training,
        the reference of drift (see `segwise.drift.training_snapshot`).
    """

    segmenter: Segmenter
    spec: FeatureSpec
    metadata: dict[str, Any] = field(default_factory=dict)
    file_sha256: str | None = None
    playbook: Playbook | None = None
    training_snapshot: dict[str, Any] | None = None

    @classmethod
    def from_fit(cls, segmenter: Segmenter, spec: FeatureSpec, *, as_of: date | None, source: str,
                 n_customers: int) -> "SegmentationModel":
        metadata = {
            "model_id": uuid.uuid4().hex,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "segwise_version": __version__,
            "as_of": str(as_of) if as_of else None,
            "source": source,
            "n_customers": int(n_customers),
            "method": segmenter.clusterer_.method_name,
            "n_segments": int(segmenter.n_segments_),
        }
        return cls(segmenter=segmenter, spec=spec, metadata=metadata)

    @property
    def profiles(self) -> Profiles:
        return self.segmenter.profiles_

    @property
    def names(self) -> dict[int, str]:
        return dict(self.segmenter.segment_names_)

    @property
    def feature_columns(self) -> dict[str, FeatureColumn]:
        return {c: FeatureColumn(**d) for c, d in self.segmenter.feature_docs_.items()}

    def assign_features(self, features: FeatureTable | pd.DataFrame) -> pd.DataFrame:
        """Assign customers given their feature rows (as produced by ``segwise features``)."""
        frame = features.frame if isinstance(features, FeatureTable) else features
        if len(frame) == 0:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
                ASSIGNMENT_COLUMNS, ["object", "int64", "object", "float64"])})
        assigned = self.segmenter.assign(frame)
        out = assigned.reset_index()
        out = out.rename(columns={out.columns[0]: "customer_id"})
        out["customer_id"] = out["customer_id"].astype(str)
        return out[ASSIGNMENT_COLUMNS]

    @property
    def input_columns(self) -> dict[str, str]:
        """The raw feature columns assignment reads: name to ``"numeric"`` or ``"categorical"``."""
        pre = self.segmenter.preprocessor_
        # A derived column (the overdue ratio) is read as the columns it comes from.
        columns = {c: "numeric" for c in self.segmenter.input_numeric()}
        columns.update({c: "categorical" for c in pre.categorical_levels_})
        return columns

    def assign_rows(self, rows: Sequence[Mapping[str, Any]]) -> RowAssignments:
        """Assign customers given as mappings of raw feature values, without pandas.

        The fast path for a few customers at a time (the API serves single customers
        with it): the same segments and confidences as `assign_features`, computed with
        numpy on the model's learned arrays. Each row needs every column of
        `input_columns` (other keys are ignored); None or NaN is a missing value,
        imputed as in training.
        """
        segmenter = self.segmenter
        pre = segmenter.preprocessor_
        numeric = segmenter.input_numeric()
        n_segments = int(segmenter.n_segments_)
        if len(rows) == 0:
            return RowAssignments(np.zeros(0, np.int64), np.zeros(0), None)
        try:
            if len(numeric) > 1:
                values = np.array(list(map(operator.itemgetter(*numeric), rows)), dtype=np.float64)
            else:
                values = np.array([[row[c] for c in numeric] for row in rows], dtype=np.float64)
            categories = {c: np.array([row[c] for row in rows], dtype=object) for c in pre.categorical_levels_}
        except KeyError as exc:
            raise InputError(f"the features lack the column {exc.args[0]!r}, which the model needs") from None
        except (TypeError, ValueError):
            bad = sorted({c for row in rows for c in numeric if not _is_number_or_missing(row[c])})
            raise InputError(
                f"feature column(s) {', '.join(map(repr, bad))} must hold numbers (or null when missing)"
            ) from None
        values = segmenter.numeric_from_inputs(values.reshape(len(rows), len(numeric)))
        if getattr(segmenter, "shrinkage_", None) is not None:  # shares shrunk as in training
            values = segmenter.shrinkage_.transform_array(values, list(pre.numeric_in_))
        prepared = pre.transform_arrays(values, categories)
        clusterer = segmenter.clusterer_
        label_map = segmenter.label_map_
        cluster, confidence = clusterer.assign_prepared(prepared)
        segment = label_map[cluster].astype(np.int64)
        probabilities = None
        if hasattr(clusterer, "predict_proba"):
            by_cluster = np.asarray(clusterer.predict_proba(prepared), dtype=np.float64)
            probabilities = np.zeros((len(rows), n_segments))
            probabilities[:, label_map] = by_cluster
        return RowAssignments(segment, confidence, probabilities)

    @property
    def required_spec(self) -> FeatureSpec:
        """The part of the feature spec that assignment needs.

        Only the columns that define the segments are needed: a model whose profiles
        describe customer attributes, but whose segments are defined by transaction
        features, assigns from a transaction log alone.
        """
        needed = set(self.segmenter.feature_columns_)
        docs = self.segmenter.feature_docs_
        families = [f for f in self.spec.families if f == "rfm" or any(
            docs.get(c, {}).get("family") == f for c in needed)]
        attributes = {
            name: kind for name, kind in self.spec.attributes.items()
            if name in needed or f"days_since_{name}" in needed
        }
        spec = {**self.spec.to_dict(), "families": families, "attributes": attributes}
        # Channels feed only engagement, categories and discounts only affinity: a log
        # without those columns can be assigned when the segments do not use them.
        if "engagement" not in families:
            spec["channel_levels"] = []
        if "affinity" not in families:
            # ... unless a needed column of another family exists only with categories
            # (journey's first_purchase_category, which mixed-data methods cluster on).
            without = FeatureSpec(**{**spec, "has_category": False, "has_discount": False})
            plain = {c.name for f in families for c in FAMILIES[f].columns(without)}
            keep_category = spec["has_category"] and any(
                docs.get(c, {}).get("family") in families and c not in plain for c in needed)
            spec["has_category"], spec["has_discount"] = keep_category, False
        return FeatureSpec(**spec)

    def features_for(self, transactions: Transactions | None = None, *, customers: CustomerTable | None = None,
                     as_of: str | date | None = None) -> FeatureTable:
        """Compute the features this model needs on new data."""
        return build_features(transactions, customers=customers, as_of=as_of, spec=self.required_spec)

    def assign(self, transactions: Transactions | None = None, *, customers: CustomerTable | None = None,
               as_of: str | date | None = None) -> pd.DataFrame:
        """Compute features on new data with the model's definitions and assign every customer."""
        return self.assign_features(self.features_for(transactions, customers=customers, as_of=as_of))

    # ------------------------------------------------------------------ files

    def to_document(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self.segmenter.to_state()
        document = {
            "kind": "segmentation",
            "metadata": self.metadata,
            "feature_spec": self.spec.to_dict(),
            "segmenter": meta,
        }
        if self.playbook is not None:
            document["playbook"] = self.playbook.to_dict()
        if self.training_snapshot is not None:
            document["training_snapshot"] = self.training_snapshot
        return document, arrays

    def save(self, path: str | Path) -> str:
        """Write the model file atomically; returns its SHA-256."""
        document, arrays = self.to_document()
        self.file_sha256 = write_model_file(
            path, document, arrays, segwise_version=__version__, created_at=self.metadata.get("created_at", ""),
        )
        return self.file_sha256

    @classmethod
    def load(cls, path: str | Path) -> "SegmentationModel":
        """Load and verify a model file (see `segwise.persist`)."""
        document, arrays, manifest = read_model_file(path)
        if document.get("kind") != "segmentation":
            raise ModelError(f"{path}: not a segmentation model (kind {document.get('kind')!r})")
        try:
            segmenter = Segmenter.from_state(document["segmenter"], arrays)
            spec = FeatureSpec.from_dict(document["feature_spec"])
            playbook = Playbook.from_dict(document["playbook"]) if document.get("playbook") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: the model file is incomplete or inconsistent ({exc})") from None
        except InputError as exc:
            raise ModelError(f"{path}: {exc}") from None
        return cls(segmenter=segmenter, spec=spec, metadata=dict(document.get("metadata", {})),
                   file_sha256=manifest["file_sha256"], playbook=playbook,
                   training_snapshot=document.get("training_snapshot"))


def _is_number_or_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bytes))


def load_model(path: str | Path) -> SegmentationModel:
    """Load a ``model.segwise`` file."""
    return SegmentationModel.load(path)
