"""Shared fixtures of the service tests: two trained model files and their features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import segwise
from segwise.model import SegmentationModel, load_model
from segwise.runs import segment


@dataclass
class TrainedModel:
    """A model file and the training customers' features and assignments."""

    path: Path
    model: SegmentationModel
    features: pd.DataFrame
    assignments: pd.DataFrame
    orders: object

    def feature_rows(self, n: int, start: int = 0) -> list[dict]:
        """``n`` training customers as API items: customer_id and the model's input features."""
        columns = list(self.model.input_columns)
        frame = self.features.iloc[start:start + n][columns]
        rows = []
        for customer_id, values in zip(frame.index, frame.to_dict("records")):
            rows.append({"customer_id": str(customer_id),
                         "features": {c: (None if pd.isna(v) else float(v)) for c, v in values.items()}})
        return rows


def train_on(root: Path, orders, **options) -> TrainedModel:
    """Segment ``orders``, save the run in ``root`` and return its model file with the training data."""
    result = segment(orders, random_state=0, **options)
    result.save(root)
    path = root / "model.segwise"
    return TrainedModel(path=path, model=load_model(path), features=result.features.frame,
                        assignments=result.assignments.set_index("customer_id"), orders=orders)


def _train(root: Path, n_customers: int, seed: int, **options) -> TrainedModel:
    return train_on(root, segwise.generate_population(n_customers, seed=seed).orders, **options)


@pytest.fixture(scope="session")
def model_a(tmp_path_factory) -> TrainedModel:
    """The main model: 600 customers, number of segments chosen in 2..6."""
    return _train(tmp_path_factory.mktemp("model_a"), 600, 11, k_range=(2, 6))


@pytest.fixture(scope="session")
def model_b(tmp_path_factory) -> TrainedModel:
    """Another model (3 segments, other customers): what a reload swaps in."""
    return _train(tmp_path_factory.mktemp("model_b"), 400, 5, n_segments=3)
