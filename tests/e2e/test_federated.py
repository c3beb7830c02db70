"""Federated segmentation with silos as real processes on 127.0.0.1.

``segwise federated simulate`` and `segwise.federated.simulate.simulate` start one
``segwise federated silo`` process per silo and coordinate them over HTTP; these
tests check what the issue asks: the federated model is centralised k-means from the
same initial centroids, non-IID silos still agree with a central fit, the wire log
holds only aggregates, a silo dropping out is survived and recorded, and differential
privacy keeps the segments at its configured, fully accounted budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segwise.data import load_transactions
from segwise.features import build_features
from segwise.federated import read_wire_log
from segwise.federated.simulate import simulate, start_silo
from segwise.model import load_model

from ..federated.populations import ID_PREFIX, population
from .conftest import assert_bad_input, assert_ok, run_segwise


def _write(table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _pooled_prepared(out: Path, model, silos: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Every silo's features (as the silo computes them) and the prepared matrix."""
    frames = []
    for name in silos:
        tx = load_transactions(str(out / "silos" / name / "orders.parquet"))
        frames.append(build_features(tx, as_of=model.metadata["as_of"], spec=model.required_spec).frame)
    frame = pd.concat(frames)
    segmenter = model.segmenter
    return frame, segmenter.preprocessor_.transform(frame[segmenter.feature_columns_])


def _strings(value, out: list) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def _arrays(value, path: str, out: dict) -> None:
    """Every encoded array (``{"dtype", "shape", "data"}``) and list, by where it is."""
    if isinstance(value, dict):
        if set(value) == {"dtype", "shape", "data"}:
            out.setdefault(path, []).append(tuple(value["shape"]))
            return
        for k, v in value.items():
            _arrays(v, f"{path}/{k}", out)
    elif isinstance(value, list) and value and not isinstance(value[0], (dict, list)):
        out.setdefault(path, []).append((len(value),))


# --------------------------------------------------------------------------- the CLI simulation


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("federated")
    pop = population(2400, 21)
    data = _write(pop.orders, root / "orders.parquet")
    result = run_segwise("federated", "simulate", data.name, "--silos", "4", "--split", "random", "--k-max", "8",
                         "--seed", "3", "--out", "fed", cwd=root)
    assert_ok(result)
    return root, result, pop


@pytest.mark.slow
def test_simulate_writes_assignments_model_and_wire_log(simulated):
    root, result, pop = simulated
    out = root / "fed"
    for name in ("assignments.parquet", "model.segwise", "wire_log.jsonl", "federated.json"):
        assert (out / name).is_file(), name
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert list(assignments.columns)[:2] == ["customer_id", "segment_id"] and "silo" in assignments.columns
    assert assignments["customer_id"].is_unique
    assert set(assignments["silo"]) == {"silo-1", "silo-2", "silo-3", "silo-4"}
    record = json.loads((out / "federated.json").read_text())
    assert sum(record["silo_sizes"].values()) == len(assignments)
    assert record["dropouts"] == []
    assert "knee" in result.out or "Calinski-Harabasz" in result.out
    # The model file is an ordinary one: `segwise assign` on the pooled log agrees with the silos.
    again = run_segwise("assign", "fed/model.segwise", "orders.parquet", "--out", "again.parquet", cwd=root)
    assert_ok(again)
    reassigned = pd.read_parquet(root / "again.parquet").set_index("customer_id")["segment_id"]
    assert (reassigned.reindex(assignments["customer_id"]).to_numpy() == assignments["segment_id"].to_numpy()).all()


@pytest.mark.slow
def test_the_wire_log_holds_only_aggregates(simulated):
    root, _, pop = simulated
    out = root / "fed"
    entries = read_wire_log(out / "wire_log.jsonl")
    record = json.loads((out / "federated.json").read_text())
    sizes = record["silo_sizes"]
    assert len(set(sizes.values())) == len(sizes), "silo sizes must differ for the shape check to mean anything"
    # 1. No customer id, anywhere (keys and values, both directions).
    strings: list = []
    for entry in entries:
        _strings(entry["body"], strings)
    assert not [s for s in strings if ID_PREFIX in s]
    # 2. No array has a row per customer: what a silo sends has the same shapes at every
    #    silo, whatever its number of customers, and no dimension equals a silo's size.
    responses = [e for e in entries if e["direction"] == "response" and e["path"].startswith("/rounds/")]
    assert {e["path"] for e in responses} >= {"/rounds/prepare", "/rounds/transformed", "/rounds/candidates",
                                               "/rounds/lloyd", "/rounds/profile"}
    for path in ("/rounds/prepare", "/rounds/transformed", "/rounds/lloyd", "/rounds/profile"):
        per_silo = [e for e in responses if e["path"] == path]
        first_shapes = {}
        for entry in per_silo:
            shapes: dict = {}
            _arrays(entry["body"], "", shapes)
            first_shapes.setdefault(entry["silo"], shapes)
        assert len({json.dumps(s, sort_keys=True) for s in first_shapes.values()}) == 1, path
    for entry in responses:
        shapes: dict = {}
        _arrays(entry["body"], "", shapes)
        for shape_list in shapes.values():
            for shape in shape_list:
                assert not set(shape) & set(sizes.values()), (entry["path"], shape)
    # 3. No customer's row left a silo: no row of any array a silo sent (sums and
    #    means over groups, in prepared or raw units) is a customer's feature row.
    model = load_model(out / "model.segwise")
    frame, prepared = _pooled_prepared(out, model, list(sizes))
    d = prepared.shape[1]
    rows = {tuple(r) for r in np.round(prepared, 9).tolist()}
    rows |= {tuple(r) for r in np.round(frame[model.segmenter.feature_columns_].to_numpy(np.float64), 9).tolist()}
    checked = 0
    for entry in responses:
        for array in _encoded_arrays(entry["body"]):
            data = np.asarray(array["data"], dtype=np.float64)
            for width in {d, len(model.segmenter.feature_columns_)}:
                if data.size and data.size % width == 0:
                    sent = {tuple(r) for r in np.round(data.reshape(-1, width), 9).tolist()}
                    assert not sent & rows, entry["path"]
                    checked += 1
    assert checked > 10


def _encoded_arrays(value):
    if isinstance(value, dict):
        if set(value) == {"dtype", "shape", "data"}:
            yield value
            return
        for v in value.values():
            yield from _encoded_arrays(v)
    elif isinstance(value, list):
        for v in value:
            yield from _encoded_arrays(v)


# --------------------------------------------------------------------------- exactness and non-IID silos


@pytest.mark.slow
def test_federated_equals_centralised_kmeans_from_the_same_initial_centroids(tmp_path):
    pop = population(2000, 31)
    data = _write(pop.orders, tmp_path / "orders.parquet")
    sim = simulate(str(data), out_dir=tmp_path / "fed", n_silos=3, split="random", seed=5, k_range=(3, 7), tol=0.0)
    result = sim.result
    _, X = _pooled_prepared(tmp_path / "fed", result.model, result.record["silos_used"])
    k = result.centroids.shape[0]
    central = KMeans(n_clusters=k, init=result.initial_centroids[k], n_init=1, tol=0.0, max_iter=300,
                     algorithm="lloyd").fit(X)
    assert np.abs(result.centroids - central.cluster_centers_).max() < 1e-6
    assert adjusted_rand_score(central.labels_, result.model.segmenter.clusterer_.predict(X)) == 1.0


@pytest.mark.slow
def test_non_iid_silos_agree_with_a_central_fit(tmp_path):
    pop = population(3000, 41)
    data = _write(pop.orders, tmp_path / "orders.parquet")
    sim = simulate(str(data), out_dir=tmp_path / "fed", n_silos=5, split="skewed", seed=2, n_segments=8)
    record = sim.result.record
    # Each silo is dominated by a different behaviour: the planted types are unevenly shared.
    truth = pop.truth.set_index("customer_id")["behaviour_type"]
    mix = pd.crosstab(sim.assignments["silo"], truth.reindex(sim.assignments["customer_id"]).to_numpy(),
                      normalize="index")
    assert (mix.max(axis=0) - mix.min(axis=0)).max() > 0.3
    frame, X = _pooled_prepared(tmp_path / "fed", sim.result.model, record["silos_used"])
    central = KMeans(n_clusters=8, n_init=10, random_state=0).fit(X)
    federated = sim.result.model.segmenter.clusterer_.predict(X)
    assert adjusted_rand_score(central.labels_, federated) >= 0.95


# --------------------------------------------------------------------------- a silo drops out


@pytest.mark.slow
@pytest.mark.parametrize("secure", [False, True])
def test_a_silo_dropping_out_mid_run_is_retried_then_left_behind(tmp_path, secure):
    pop = population(1600, 51)
    data = _write(pop.orders, tmp_path / "orders.parquet")
    started = {}

    def kill_at(round_name: str) -> None:
        if round_name == "lloyd-2":
            process = started["silo-3"].process
            process.kill()
            process.wait(timeout=30)

    sim = simulate(str(data), out_dir=tmp_path / "fed", n_silos=4, split="random", seed=1, n_segments=4,
                   secure_aggregation=secure, on_round=kill_at, retry_wait=0.1,
                   on_started=lambda processes: started.update({p.name: p for p in processes}))
    record = json.loads((tmp_path / "fed" / "federated.json").read_text())
    assert [(d["silo"], d["round"], d["tries"]) for d in record["dropouts"]] == [("silo-3", "lloyd-2", 3)]
    assert "unreachable" in record["dropouts"][0]["error"]
    assert record["silos_used"] == ["silo-1", "silo-2", "silo-4"]
    lloyd_2 = [r for r in record["rounds"] if r["round"] == "lloyd-2"]
    if secure:  # the masks of the dropped silo would not cancel: the round is repeated
        assert [r["attempt"] for r in lloyd_2] == [0, 1]
    assert lloyd_2[-1]["silos"] == ["silo-1", "silo-2", "silo-4"]
    assert set(sim.assignments["silo"]) == {"silo-1", "silo-2", "silo-4"}
    assert load_model(tmp_path / "fed" / "model.segwise").metadata["federated"]["dropped"] == ["silo-3"]


# --------------------------------------------------------------------------- coordinator and silo commands


@pytest.mark.slow
def test_coordinator_command_with_silo_processes(tmp_path):
    pop = population(1200, 61)
    ids = sorted({i for i in pop.orders["customer_id"].to_pylist() if i is not None})
    half = set(ids[: len(ids) // 2])
    import pyarrow as pa

    mask = pa.array([i in half for i in pop.orders["customer_id"].to_pylist()])
    paths = [_write(pop.orders.filter(mask), tmp_path / "a" / "orders.parquet"),
             _write(pop.orders.filter(pa.compute.invert(mask)), tmp_path / "b" / "orders.parquet")]
    silos = [start_silo(path, name=path.parent.name, out_dir=path.parent / "out") for path in paths]
    try:
        result = run_segwise("federated", "coordinator", "--silo", silos[0].url, "--silo", silos[1].url,
                             "--segments", "4", "--secure-aggregation", "--out", "coord", cwd=tmp_path)
    finally:
        for silo in silos:
            silo.stop()
    assert_ok(result)
    assert "4 segments" in result.out
    for name in ("model.segwise", "wire_log.jsonl", "federated.json"):
        assert (tmp_path / "coord" / name).is_file()
    counts = [len(pd.read_parquet(tmp_path / name / "out" / "assignments.parquet")) for name in ("a", "b")]
    assert sum(counts) == len(ids)


@pytest.mark.slow
def test_bad_federated_options_exit_2_before_starting_silos(tmp_path):
    data = _write(population(300, 71).orders, tmp_path / "orders.parquet")
    assert_bad_input(
        run_segwise("federated", "simulate", data.name, "--dp-epsilon", "1", "--out", "o", cwd=tmp_path),
        "with differential privacy give the number of segments (--segments N)",
    )
    assert_bad_input(
        run_segwise("federated", "simulate", data.name, "--split", "region", "--out", "o", cwd=tmp_path),
        "--split region needs the customer table with a region column (--customers FILE)",
    )
    assert_bad_input(
        run_segwise("federated", "coordinator", "--silo", "localhost:1", "--out", "o", cwd=tmp_path),
        "--silo takes a URL like http://127.0.0.1:8765, got 'localhost:1'",
    )
    assert_bad_input(
        run_segwise("federated", "coordinator", "--silo", "http://127.0.0.1:9", "--out", "o", cwd=tmp_path),
        "silo http://127.0.0.1:9 unreachable on /info", "is `segwise federated silo` running there?",
    )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# --------------------------------------------------------------------------- differential privacy at scale


@pytest.mark.slow
def test_differential_privacy_at_epsilon_1_on_100k_customers(tmp_path):
    pop = population(100_000, 81)
    data = _write(pop.orders, tmp_path / "orders.parquet")
    common = dict(n_silos=4, split="random", seed=4, n_segments=7, as_of="2025-01-01")
    plain = simulate(str(data), out_dir=tmp_path / "plain", **common)
    private = simulate(str(data), out_dir=tmp_path / "private", dp_epsilon=1.0, **common)
    privacy = json.loads((tmp_path / "private" / "federated.json").read_text())["privacy"]
    assert math.isclose(privacy["epsilon_spent"], 1.0, rel_tol=1e-9)
    assert privacy["epsilon"] == 1.0
    for silo_privacy in private.result.record["silo_privacy"].values():
        assert math.isclose(silo_privacy["epsilon_spent"], 1.0, rel_tol=1e-9)
    a = plain.assignments.set_index("customer_id")["segment_id"]
    b = private.assignments.set_index("customer_id")["segment_id"].reindex(a.index)
    assert adjusted_rand_score(a.to_numpy(), b.to_numpy()) >= 0.8
    assert load_model(tmp_path / "private" / "model.segwise").metadata["privacy"]["epsilon_spent"] == \
        pytest.approx(1.0, rel=1e-9)
