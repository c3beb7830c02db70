"""``segwise run --method NAME`` for every method, and ``segwise assign`` with its model file.

Each method segments the same synthetic population (order log + customer table, so
k-prototypes has categorical columns); the model file then assigns the same
customers again, which must give the run's segments exactly: every method's
segments are what its assignment rule gives (the hierarchical tree cut and
HDBSCAN's labels are followed by the rule; run.json counts the customers it moved).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from . import datasets
from .conftest import SEGWISE, TIMEOUT_SECONDS, Jobs, Result, _env, assert_bad_input, assert_ok, run_segwise

N_CUSTOMERS = 2000
SEED = 7

#: Method -> (extra flags, a key of run.json's method_details only that method writes).
METHODS = {
    "kmeans": ([], "segment_of_cluster"),
    "hierarchical": (["--levels", "3,8"], "dendrogram"),
    "dbscan": ([], "k_distance_curve"),
    "hdbscan": ([], "reassigned_by_rule"),
    "gmm": (["--k-max", "8"], "multi_segment"),
    "som": (["--method-param", "num_iteration=5000"], "u_matrix"),
    "kprototypes": (["--method-param", "fit_sample=800", "--method-param", "selection_sample=400", "--k-max", "8"],
                    "gamma"),
    "two_stage": (["--method-param", "second_method=hierarchical"], "parents"),
    "multiview": ([], "crosstab"),
    "autoencoder": (["--method-param", "epochs=10", "--k-max", "8"], "loss_curve"),
    "auto": (["--k-max", "8", "--method-param", "n_bootstrap=2"], "comparison"),
}

#: Methods whose tree or density labels are followed by their assignment rule: run.json counts the
#: customers the rule moved (two_stage through its hierarchical second stage).
REASSIGNED = ("hierarchical", "hdbscan")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    population = datasets.population(N_CUSTOMERS, SEED)
    datasets.write_order_log(root / "orders.parquet", population.orders)
    population.customers.to_pandas().to_parquet(root / "customers.parquet")
    return root


@pytest.fixture(scope="module")
def runs(root):
    return Jobs({
        name: (["run", "orders.parquet", "--customers", "customers.parquet", "--method", name, *flags,
                "--out", name, "--no-store"], root)
        for name, (flags, _) in METHODS.items()
    })


# Slow: every method runs end to end (the runs share the module's job pool; 25-45 s each on 2 busy cores).
@pytest.mark.slow
@pytest.mark.parametrize("name", list(METHODS))
def test_run_and_assign_with_every_method(runs, root, name):
    result = assert_ok(runs[name])
    out = root / name
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == name and run["method_details"]["method"] == name
    details = run["method_details"]
    key = METHODS[name][1]
    assert key in details or key in (details.get("chosen_details") or {}), sorted(details)
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert len(assignments) == run["n_customers"] > 0.99 * N_CUSTOMERS
    assert assignments["confidence"].between(0, 1).all()
    profiles = json.loads((out / "profiles.json").read_text())
    assert {s["segment_id"] for s in profiles["segments"]} == set(assignments["segment_id"])
    assert f"outputs written to {name}/" in result.out

    assert_ok(run_segwise("assign", f"{name}/model.segwise", "orders.parquet", "--customers", "customers.parquet",
                          "--out", f"{name}-again.csv", cwd=root))
    reassigned = pd.read_csv(root / f"{name}-again.csv", dtype={"customer_id": str}).set_index("customer_id")
    merged = assignments.set_index("customer_id").join(reassigned, suffixes=("", "_again"))
    assert (merged["segment_id"] == merged["segment_id_again"]).all()
    assert (merged["segment_name"] == merged["segment_name_again"]).all()
    assert (merged["confidence"] - merged["confidence_again"]).abs().max() < 1e-6
    if name in REASSIGNED:
        moved = details["reassigned_by_rule"]
        assert 0 <= moved["customers"] == round(moved["share"] * len(assignments)) < 0.05 * len(assignments)


def run_with_env(*args, cwd: Path, env: dict[str, str]) -> Result:
    """Like `run_segwise`, with a changed environment."""
    argv = [str(a) for a in args]
    proc = subprocess.run([str(SEGWISE), *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    return Result(argv, Path(cwd), proc.returncode, proc.stdout, proc.stderr)


def test_dbscan_reports_outliers_and_micro_segments(runs, root):
    result = assert_ok(runs["dbscan"])
    details = json.loads((root / "dbscan" / "run.json").read_text())["method_details"]
    outliers = details["outliers"]
    assert outliers["segment_name"] == "Outliers" and outliers["segment_id"] == details["outlier_segment"]
    assert details["micro_segments"]
    for micro in details["micro_segments"]:
        assert f"micro-segment {micro['segment_name']}: {micro['share_customers']:.2%} of customers" in result.out
    assert details["eps_source"] == "knee of the k-distance curve"


def test_hierarchical_levels_are_in_run_json(runs, root):
    assert_ok(runs["hierarchical"])
    details = json.loads((root / "hierarchical" / "run.json").read_text())["method_details"]
    level = details["levels"][0]
    assert level["n_segments"] == 3 and sorted(m["segment_id"] for m in level["mapping"]) == list(range(8))


@pytest.mark.parametrize("flags, fragments", [
    (["--method", "nope"], ["unknown segmentation method 'nope'; methods are: auto, autoencoder, dbscan"]),
    (["--method", "kmeans", "--levels", "3,6"], ["--levels cuts a hierarchical tree at several levels"]),
    (["--method", "hierarchical", "--levels", "3,x"], ["--levels takes whole numbers separated by commas"]),
    (["--method", "hdbscan", "--segments", "4"], ["method 'hdbscan' finds the number of segments itself"]),
    (["--method", "gmm", "--method-param", "covariance"], ["--method-param takes KEY=VALUE"]),
    (["--method", "gmm", "--method-param", "linkage=ward"], ["method 'gmm' has no parameter(s) linkage"]),
    (["--method", "hierarchical", "--method-param", "metric=cityblock"],
     ["Ward linkage needs Euclidean distances", "use linkage='average' or 'complete'"]),
])
def test_method_option_errors(root, tmp_path, flags, fragments):
    result = run_segwise("run", root / "orders.parquet", *flags, "--out", tmp_path / "out", cwd=tmp_path)
    assert_bad_input(result, *fragments)
    assert not (tmp_path / "out" / "run.json").exists()


def test_autoencoder_without_torch_names_the_extra(root, tmp_path):
    shadow = tmp_path / "no-torch"
    (shadow / "torch").mkdir(parents=True)
    # A package that fails to import, as when PyTorch is not installed.
    (shadow / "torch" / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    env = _env()
    env["PYTHONPATH"] = str(shadow) + os.pathsep + env.get("PYTHONPATH", "")
    result = run_with_env("run", root / "orders.parquet", "--method", "autoencoder", "--out", tmp_path / "out",
                          cwd=tmp_path, env=env)
    assert_bad_input(result, "the autoencoder method needs PyTorch", "pip install 'segwise[deep]'")
