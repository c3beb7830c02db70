"""The segmentation is what the model assigns, for every method.

For every method and several seeded populations, the segments (and confidences) a
run writes are compared with what its saved model assigns to the same customers:

- in Python: `segwise.load_model` + ``assign_features`` and ``assign_rows``;
- through ``segwise assign`` (the console script, recomputing the features from the log);
- through ``segwise serve`` over HTTP (one server; each model is put in place and reloaded).

Every training customer must get the same segment: 100%, not "nearly".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.model import load_model

from ..serve.server import Server
from . import datasets
from .conftest import Jobs, assert_ok

N_CUSTOMERS = 300
SEEDS = (3, 11, 29)

#: Method -> parameters keeping the fit small (the rule under test does not depend on them).
METHODS = {
    "kmeans": {},
    "hierarchical": {},
    "dbscan": {},
    "hdbscan": {},
    "gmm": {},
    "som": {"num_iteration": 2000},
    "kprototypes": {},
    "two_stage": {"second_method": "hierarchical"},
    "multiview": {},
    "autoencoder": {"epochs": 5},
    "auto": {"n_bootstrap": 2},
}

CASES = [(method, seed) for seed in SEEDS for method in METHODS]


def _case_id(method: str, seed: int) -> str:
    return f"{method}-{seed}"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reassignment")


@pytest.fixture(scope="module")
def logs(root) -> dict[int, tuple[Path, Path]]:
    """Per seed: an order log and a customer table (so k-prototypes has categorical columns)."""
    out = {}
    for seed in SEEDS:
        population = datasets.population(N_CUSTOMERS, seed)
        orders = datasets.write_order_log(root / f"orders-{seed}.parquet", population.orders)
        customers = root / f"customers-{seed}.parquet"
        population.customers.to_pandas().to_parquet(customers)
        out[seed] = (orders, customers)
    return out


@pytest.fixture(scope="module")
def runs(root, logs) -> dict[str, Path]:
    """Every (method, seed) segmented as ``segwise run`` does and saved to its own directory."""
    out = {}
    for method, seed in CASES:
        orders, customers = logs[seed]
        result = segwise.segment(str(orders), customers=str(customers), method=method, k_range=(2, 6),
                                 method_params=METHODS[method], random_state=seed)
        directory = root / _case_id(method, seed)
        result.save(directory, store=False, report=False)
        out[_case_id(method, seed)] = directory
    return out


@pytest.fixture(scope="module")
def cli_jobs(root, logs, runs) -> Jobs:
    """``segwise assign`` of every run's model on its own log (started together)."""
    return Jobs({
        case: (["assign", directory / "model.segwise", logs[int(case.rsplit("-", 1)[1])][0], "--customers",
                logs[int(case.rsplit("-", 1)[1])][1], "--out", root / f"{case}-assigned.parquet"], root)
        for case, directory in runs.items()
    })


def _written(directory: Path) -> pd.DataFrame:
    frame = pd.read_parquet(directory / "assignments.parquet")
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame.set_index("customer_id").sort_index()


def _features(directory: Path) -> pd.DataFrame:
    features = pd.read_parquet(directory / "features.parquet")
    features["customer_id"] = features["customer_id"].astype(str)
    return features.set_index("customer_id")


def _assert_same(written: pd.DataFrame, again: pd.DataFrame, how: str) -> None:
    again = again.copy()
    again.index = again.index.astype(str)
    assert set(again.index) == set(written.index), how
    again = again.loc[written.index]
    moved = int((again["segment_id"].to_numpy() != written["segment_id"].to_numpy()).sum())
    assert moved == 0, f"{how}: {moved} of {len(written)} customers assigned another segment than the run wrote"
    if "segment_name" in again:
        assert (again["segment_name"].to_numpy() == written["segment_name"].to_numpy()).all(), how
    np.testing.assert_allclose(again["confidence"].to_numpy(), written["confidence"].to_numpy(), rtol=0, atol=1e-9,
                               err_msg=how)


@pytest.mark.parametrize("method, seed", CASES, ids=[_case_id(*c) for c in CASES])
def test_the_saved_model_assigns_the_written_segments(runs, method, seed):
    directory = runs[_case_id(method, seed)]
    written = _written(directory)
    model = load_model(directory / "model.segwise")
    features = _features(directory)
    _assert_same(written, model.assign_features(features).set_index("customer_id"), "load_model + assign_features")
    # The row path the service uses (numpy on the learned arrays).
    columns = list(model.input_columns)
    rows = features[columns].astype(object).where(features[columns].notna(), None).to_dict("records")
    fast = model.assign_rows(rows)
    _assert_same(written, pd.DataFrame({"segment_id": fast.segment_id, "confidence": fast.confidence},
                                       index=features.index), "load_model + assign_rows")
    outliers = model.segmenter.outlier_segment_
    if outliers is not None:
        assert (written["segment_name"][written["segment_id"] == outliers] == "Outliers").all()


@pytest.mark.parametrize("method, seed", CASES, ids=[_case_id(*c) for c in CASES])
def test_segwise_assign_gives_the_written_segments(cli_jobs, root, runs, method, seed):
    case = _case_id(method, seed)
    assert_ok(cli_jobs[case])
    again = pd.read_parquet(root / f"{case}-assigned.parquet").set_index("customer_id")
    _assert_same(_written(runs[case]), again, "segwise assign")


@pytest.fixture(scope="module")
def server(root, runs):
    served = root / "served" / "model.segwise"
    served.parent.mkdir()
    shutil.copyfile(next(iter(runs.values())) / "model.segwise", served)
    running = Server([served], root / "server.log").wait_ready()
    yield running, served
    running.stop()


def test_segwise_serve_gives_the_written_segments(server, runs):
    running, served = server
    with running.client() as http:
        for case, directory in runs.items():
            staging = served.with_name("next.segwise")
            shutil.copyfile(directory / "model.segwise", staging)
            os.replace(staging, served)
            reloaded = http.post("/v1/admin/reload")
            assert reloaded.status_code == 200, (case, reloaded.text)
            model = load_model(directory / "model.segwise")
            features = _features(directory)
            columns = list(model.input_columns)
            items = [{"customer_id": cid, "features": {c: (None if pd.isna(v) else (v if isinstance(v, str)
                                                                                    else float(v)))
                                                       for c, v in row.items()}}
                     for cid, row in zip(features.index, features[columns].to_dict("records"))]
            response = http.post("/v1/assign/batch", json={"customers": items})
            assert response.status_code == 200, (case, response.text[:500])
            answered = pd.DataFrame(response.json()["assignments"]).set_index("customer_id")
            _assert_same(_written(directory), answered, f"segwise serve ({case})")
