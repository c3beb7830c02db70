"""``segwise run --stability/--align-to``, ``segwise track``, ``segwise compare``, ``segwise update``."""

from __future__ import annotations

import json
import shutil

import duckdb
import pandas as pd
import pytest

from .conftest import Jobs, assert_bad_input, assert_ok, run_segwise

AS_OF = ["2024-06-30", "2024-09-30", "2025-01-01"]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, trained):
    root = tmp_path_factory.mktemp("track")
    shutil.copy(trained.data, root / "orders.parquet")
    model = trained.out / "model.segwise"
    as_of = [arg for d in AS_OF for arg in ("--as-of", d)]
    argv = {
        "stability": ["run", "orders.parquet", "--out", "stable", "--stability", "3", "--seed", "1", "--segments", "5"],
        "aligned": ["run", "orders.parquet", "--out", "aligned", "--seed", "5", "--align-to", model],
        "track": ["track", "orders.parquet", "--model", model, *as_of, "--out", "tracked"],
        "bad_stability": ["run", "orders.parquet", "--stability", "1"],
        "bad_align_to": ["run", "orders.parquet", "--align-to", "nothing.segwise"],
        "bad_track": ["track", "orders.parquet", "--model", model, "--as-of", "2024-06-30"],
        "bad_compare": ["compare", trained.out, "."],
    }
    return Jobs({name: (args, root) for name, args in argv.items()})


def test_run_with_stability_records_it(jobs):
    result = assert_ok(jobs["stability"])
    run = json.loads((result.cwd / "stable" / "run.json").read_text())
    stability = run["stability"]
    assert stability["B"] == 3
    assert set(stability["per_segment"]) == {str(s["segment_id"]) for s in run["segments"]}
    low, high = stability["ari_ci"]
    assert low <= stability["ari_mean"] <= high
    assert f"stability over 3 bootstrap refits: ARI {stability['ari_mean']:.3f}" in result.out
    for key in ("validation", "economics", "actionability"):
        assert run[key], key
    assert run["validation"]["silhouette_ci"][0] <= run["validation"]["silhouette"]


def test_run_aligned_to_the_previous_model_keeps_ids_and_names(jobs, trained):
    result = assert_ok(jobs["aligned"])
    run = json.loads((result.cwd / "aligned" / "run.json").read_text())
    previous = json.loads((trained.out / "run.json").read_text())
    alignment = run["alignment"]
    assert alignment["previous_model_id"] == previous["model_id"]
    kept = [m for m in alignment["matches"] if m["status"] == "kept"]
    assert kept and all(m["segment_id"] == m["previous_segment_id"] for m in kept)
    previous_names = {s["segment_id"]: s["segment_name"] for s in previous["segments"]}
    for segment in run["segments"]:
        if segment["segment_id"] in previous_names:
            assert segment["segment_name"] == previous_names[segment["segment_id"]]
    assert f"aligned to the previous model: {len(kept)} segments kept their ids" in result.out

    compared = assert_ok(run_segwise("compare", trained.out, "aligned", "--out", "compare.csv", cwd=result.cwd))
    a = pd.read_parquet(trained.out / "assignments.parquet")
    b = pd.read_parquet(result.cwd / "aligned" / "assignments.parquet")
    merged = a.merge(b, on="customer_id")
    same_id = (merged["segment_id_x"] == merged["segment_id_y"]).mean()
    assert f"{len(merged):,} customers in both runs" in compared.out
    assert f"same segment id {same_id:.1%}" in compared.out
    crosstab = pd.read_csv(result.cwd / "compare.csv")
    assert list(crosstab.columns) == ["segment_a", "segment_name_a", "segment_b", "segment_name_b", "customers"]
    assert crosstab["customers"].sum() == len(merged)


def test_track_writes_transitions_shares_and_summary(jobs, trained):
    result = assert_ok(jobs["track"])
    out = result.cwd / "tracked"
    transitions = pd.read_parquet(out / "transitions.parquet")
    shares = pd.read_parquet(out / "shares.parquet")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["as_of"] == AS_OF and len(summary["periods"]) == 2
    n_segments = len(summary["segments"])
    assert len(transitions) == 2 * ((n_segments + 1) ** 2 - 1)
    for period in summary["periods"]:
        cells = transitions[transitions["period_start"].astype(str) == period["start"]]
        assert cells["customers"].sum() == period["customers_in_both"] + period["new"] + period["gone"]
        assert cells.loc[cells["from_segment"] == "new", "customers"].sum() == period["new"]
        rows = cells.groupby("from_segment")["row_share"].sum()
        assert ((rows - 1.0).abs() < 1e-9).all()
    last = shares[shares["as_of"].astype(str) == AS_OF[-1]]
    assigned = pd.read_parquet(trained.out / "assignments.parquet")
    # The last date is the training as_of: the shares are the training run's.
    counts = assigned["segment_id"].value_counts()
    assert last.set_index("segment_id")["customers"].to_dict() == {int(k): int(v) for k, v in counts.items()}
    assert "temporal ARI" in result.out and "outputs written to tracked/" in result.out


def test_update_records_history_and_is_idempotent(trained, tmp_path):
    model = trained.out / "model.segwise"
    store = tmp_path / "history" / "segwise.duckdb"
    store.parent.mkdir()
    first = assert_ok(run_segwise("update", model, trained.data, "--store", store, "--as-of", "2024-09-30",
                                  cwd=tmp_path))
    assert "new, 0 moved, 0 gone" in first.out
    second = assert_ok(run_segwise("update", model, trained.data, "--store", store, cwd=tmp_path))
    summary = json.loads((store.parent / "update.json").read_text())
    migrations = pd.read_parquet(store.parent / "migrations.parquet")
    assert f"{summary['n_moved']:,} moved" in second.out
    assert summary["previous_as_of"] == "2024-09-30"
    assert len(migrations) == summary["n_new"] + summary["n_moved"] + summary["n_gone"]
    # Updating on the training data at the training date: no drift.
    assert summary["drift"]["segment_share_psi"] < 1e-9 and not summary["retrain_recommended"]
    assert "no retrain needed" in second.out

    def history():
        with duckdb.connect(str(store), read_only=True) as con:
            return con.execute("SELECT * FROM segment_history ORDER BY ALL").fetchall()

    before = history()
    again = assert_ok(run_segwise("update", model, trained.data, "--store", store, cwd=tmp_path))
    assert "is already recorded" in again.out and "nothing changed" in again.out
    assert history() == before
    earlier = run_segwise("update", model, trained.data, "--store", store, "--as-of", "2024-06-30", cwd=tmp_path)
    assert_bad_input(earlier, "updates go forward in time", "give a later --as-of")
    assert history() == before


@pytest.mark.parametrize("name, message", [
    ("bad_stability", "--stability takes the number of bootstrap refits, at least 2 (e.g. 20); got 1"),
    ("bad_align_to", "--align-to nothing.segwise: no such model file; give the model.segwise of the previous run"),
    ("bad_track", "tracking needs at least two --as-of dates"),
    ("bad_compare", "not a segwise run directory (no run.json); run `segwise run` first"),
])
def test_bad_input_of_the_tracking_commands(jobs, name, message):
    result = assert_bad_input(jobs[name], message)
    assert not (result.cwd / "segwise-out").exists() and not (result.cwd / "segwise-track").exists()
