"""The files ``segwise run --out DIR`` writes, checked against each other.

All tests read the shared training run (`trained` in conftest): the synthetic log
as Parquet, no flags besides ``--out``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import segwise

ASSIGNMENT_COLUMNS = ["customer_id", "segment_id", "segment_name", "confidence"]
RFM_COLUMNS = ["recency_days", "n_orders", "monetary_total", "monetary_avg", "tenure_days", "active_days"]
OUTPUT_FILES = {
    "assignments.parquet", "assignments.csv", "features.parquet", "profiles.json", "run.json", "model.segwise",
    "report.html", "segwise.duckdb",
}


@pytest.fixture(scope="module")
def out(trained):
    return trained.out


@pytest.fixture(scope="module")
def run(out):
    return json.loads((out / "run.json").read_text())


@pytest.fixture(scope="module")
def assignments(out):
    return pd.read_parquet(out / "assignments.parquet")


def test_every_output_file_is_written_and_nothing_else(out, trained):
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    assert "outputs written to out/" in trained.result.out


def test_assignments_have_one_row_per_customer(assignments, run):
    assert list(assignments.columns) == ASSIGNMENT_COLUMNS
    assert len(assignments) == run["n_customers"]
    assert assignments["customer_id"].is_unique
    assert assignments["customer_id"].notna().all()
    assert set(assignments["segment_id"]) == set(range(run["n_segments"]))
    assert assignments["confidence"].between(0.0, 1.0).all()
    # one name per segment, unique within the model
    names = assignments.groupby("segment_id")["segment_name"].unique()
    assert all(len(n) == 1 for n in names)
    assert len({n[0] for n in names}) == run["n_segments"]


def test_assignments_csv_matches_parquet(out, assignments):
    from_csv = pd.read_csv(out / "assignments.csv", dtype={"customer_id": str, "segment_name": str})
    assert list(from_csv.columns) == ASSIGNMENT_COLUMNS
    pd.testing.assert_frame_equal(
        from_csv.drop(columns="confidence"), assignments.drop(columns="confidence"), check_dtype=False
    )
    np.testing.assert_allclose(from_csv["confidence"], assignments["confidence"], rtol=1e-12)
    assert from_csv["confidence"].between(0.0, 1.0).all()


def test_features_have_one_row_per_assigned_customer(out, assignments, run):
    features = pd.read_parquet(out / "features.parquet")
    assert features.columns[0] == "customer_id"
    assert features["customer_id"].is_unique
    assert set(features["customer_id"]) == set(assignments["customer_id"])
    assert list(features.columns[1:]) == run["features"]["columns"]
    for column in RFM_COLUMNS:
        assert column in features.columns
        assert features[column].notna().all(), column
    assert (features["n_orders"] >= 1).all()
    assert (features["recency_days"] >= 1).all()  # as_of is the day after the last order
    assert (features["tenure_days"] >= features["recency_days"]).all()
    assert (features["tenure_days"] == features["recency_days"] + features["active_days"]).all()


def test_profiles_describe_every_segment(out, assignments, run):
    profiles = json.loads((out / "profiles.json").read_text())
    segments = sorted(profiles["segments"], key=lambda s: s["segment_id"])
    assert [s["segment_id"] for s in segments] == list(range(run["n_segments"]))
    sizes = assignments["segment_id"].value_counts()
    names = assignments.groupby("segment_id")["segment_name"].first()
    for segment in segments:
        assert segment["n_customers"] == sizes[segment["segment_id"]]
        assert segment["name"] == names[segment["segment_id"]]
        assert segment["name"] in run_table_names(run)
    assert sum(s["share_customers"] for s in segments) == pytest.approx(1.0)
    # segment 0 is the most valuable (ids ordered by value)
    assert profiles["value_column"] == "monetary_total"
    means = [s["means"]["monetary_total"] for s in segments]
    assert means == sorted(means, reverse=True)


def run_table_names(run: dict) -> set[str]:
    return {s["segment_name"] for s in run["segments"]}


def test_run_json_records_the_run(run, trained):
    for key in ("input", "as_of", "cleaning", "selection", "metrics", "timings", "versions"):
        assert key in run, key
    tx = run["input"]["transactions"]
    assert tx["source"] == "orders.parquet"
    last = pd.Timestamp(tx["last_timestamp"])
    assert run["as_of"] == str(last.date() + timedelta(days=1))
    assert set(run["cleaning"]) >= {
        "missing_customer_id", "missing_timestamp", "invalid_amount", "zero_amount", "duplicate_line",
        "cancellation", "after_as_of",
    }
    assert run["parameters"] == {"n_segments": "auto", "k_range": [2, 12], "random_state": 0, "method_params": {}}
    assert run["method"] == "kmeans"
    assert run["metrics"]["n_segments"] == run["n_segments"]
    assert -1.0 <= run["metrics"]["silhouette"] <= 1.0
    assert set(run["timings"]) >= {"load", "features", "segment", "assign", "outputs"}
    assert all(isinstance(v, (int, float)) and v >= 0 for v in run["timings"].values())
    assert run["versions"]["segwise"] == segwise.__version__
    assert {"python", "numpy", "pandas", "scikit-learn", "duckdb"} <= set(run["versions"])


def test_run_json_keeps_the_scores_of_every_candidate_k(run):
    selection = run["selection"]
    candidates = selection["candidates"]
    assert [c["k"] for c in candidates] == list(range(2, 13))
    for candidate in candidates:
        for score in ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "smallest_share"):
            assert np.isfinite(candidate[score]), (candidate["k"], score)
    inertia = [c["inertia"] for c in candidates]
    assert inertia == sorted(inertia, reverse=True)
    assert selection["chosen"] == run["n_segments"]
    assert selection["reason"].startswith(f"k={run['n_segments']} ")
    best = max(c["silhouette"] for c in candidates)
    chosen = next(c for c in candidates if c["k"] == selection["chosen"])
    assert chosen["silhouette"] >= best - 0.005


def test_model_file_is_a_verified_archive(out, run):
    model = out / "model.segwise"
    assert run["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    with zipfile.ZipFile(model) as archive:
        names = archive.namelist()
        assert "manifest.json" in names and "model.json" in names
        assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib"))]
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest  # a manifest lists and hashes the members
        document = json.loads(archive.read("model.json"))
    assert document["metadata"]["n_segments"] == run["n_segments"]
    assert document["metadata"]["as_of"] == run["as_of"]


def test_store_holds_the_run_and_its_assignments(out, run, assignments):
    with duckdb.connect(str(out / "segwise.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"runs", "assignments"} <= tables
        runs = con.execute(
            "SELECT run_id, CAST(as_of AS VARCHAR), method, n_segments, n_customers, model_sha256, run_json FROM runs"
        ).fetchall()
        stored = con.execute(
            "SELECT customer_id, segment_id, segment_name, confidence FROM assignments WHERE run_id = ? "
            "ORDER BY customer_id",
            [run["run_id"]],
        ).df()
    assert len(runs) == 1
    run_id, as_of, method, n_segments, n_customers, model_sha256, run_json = runs[0]
    assert (run_id, as_of, method) == (run["run_id"], run["as_of"], "kmeans")
    assert (n_segments, n_customers, model_sha256) == (run["n_segments"], run["n_customers"], run["model_sha256"])
    assert json.loads(run_json)["run_id"] == run["run_id"]
    expected = assignments.sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False)


def test_segment_table_is_printed(trained, run):
    stdout = trained.result.out
    assert f"{run['n_segments']} segments of {run['n_customers']:,} customers" in stdout
    for segment in run["segments"]:
        assert segment["segment_name"] in stdout
    assert f"number of segments: {run['selection']['reason']}" in stdout


def test_parquet_outputs_are_plain_tables(out):
    # readable by any Parquet reader, no pandas index column smuggled in
    for name in ("assignments.parquet", "features.parquet"):
        schema = pq.read_schema(out / name)
        assert schema.names[0] == "customer_id"
        assert not [n for n in schema.names if n.startswith("__index_level")]
