"""``segwise run`` options: --as-of, --segments, --features, --exclude, --seed, --timings."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from . import datasets
from .conftest import TRAIN_CUSTOMERS, TRAIN_SEED, Jobs, assert_ok

AS_OF = "2024-07-01"

RUNS = {
    "as_of": ["--as-of", AS_OF],
    "segments_4": ["--segments", "4"],
    "segments_range": ["--segments", "5..6"],
    "features": ["--features", "n_orders,monetary_total"],
    "exclude": ["--exclude", "affinity,monetary_avg"],
    "seed_a": ["--seed", "11"],
    "seed_b": ["--seed", "11"],
    "timings": ["--segments", "4", "--timings"],
}


@pytest.fixture(scope="module")
def population():
    return datasets.population(TRAIN_CUSTOMERS, TRAIN_SEED)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, population):
    """Every run of this module (outputs into DIR/<name>): name -> Result."""
    root = tmp_path_factory.mktemp("options")
    datasets.write_order_log(root / "orders.parquet", population.orders)
    return Jobs({name: (["run", "orders.parquet", *flags, "--out", name], root) for name, flags in RUNS.items()})


def load(out):
    run = json.loads((out / "run.json").read_text())
    return run, pd.read_parquet(out / "assignments.parquet"), pd.read_parquet(out / "features.parquet")


def test_as_of_observes_the_log_at_that_date(runs, population):
    result = runs["as_of"]
    out = result.cwd / "as_of"
    assert_ok(result)
    run, assignments, features = load(out)
    assert run["as_of"] == AS_OF

    # what the features should see: clean lines (id, no double export) dated before as_of
    lines = population.orders.to_pandas()
    lines = lines[lines["customer_id"].notna()].drop_duplicates()
    lines["customer_id"] = lines["customer_id"].astype("int64").astype(str)
    cutoff = pd.Timestamp(AS_OF)
    assert run["cleaning"]["after_as_of"] == int((lines["ordered_at"] >= cutoff).sum())
    purchases = lines[(lines["ordered_at"] < cutoff) & ~lines["order_id"].str.startswith("C")]
    last = purchases.groupby("customer_id")["ordered_at"].max().dt.normalize()
    expected_recency = (cutoff - last).dt.days.astype(float).rename("recency_days")

    assert run["n_customers"] == len(expected_recency) < TRAIN_CUSTOMERS
    assert set(assignments["customer_id"]) == set(expected_recency.index)
    got = features.set_index("customer_id")["recency_days"]
    pd.testing.assert_series_equal(got.sort_index(), expected_recency.sort_index(), check_names=False,
                                   check_index_type=False)


def test_segments_4_makes_exactly_4_segments(runs):
    result = runs["segments_4"]
    out = result.cwd / "segments_4"
    assert_ok(result)
    run, assignments, _ = load(out)
    assert run["n_segments"] == 4
    assert run["parameters"]["n_segments"] == 4
    assert sorted(assignments["segment_id"].unique()) == [0, 1, 2, 3]
    assert assignments["segment_name"].nunique() == 4
    profiles = json.loads((out / "profiles.json").read_text())
    assert len(profiles["segments"]) == 4
    assert f"4 segments of {run['n_customers']:,} customers" in result.out


def test_segments_range_chooses_within_it(runs):
    result = runs["segments_range"]
    assert_ok(result)
    run, assignments, _ = load(result.cwd / "segments_range")
    assert run["parameters"]["n_segments"] == [5, 6]
    assert [c["k"] for c in run["selection"]["candidates"]] == [5, 6]
    assert run["n_segments"] in (5, 6) and assignments["segment_id"].nunique() == run["n_segments"]


def test_features_flag_chooses_the_columns_clustered_on(runs):
    result = runs["features"]
    out = result.cwd / "features"
    assert_ok(result)
    run, _, features = load(out)
    assert run["features"]["clustered_on"] == ["n_orders", "monetary_total"]
    # the other columns still describe the segments
    assert "recency_days" in run["features"]["described_by"]
    assert "recency_days" in features.columns


def test_exclude_flag_leaves_columns_and_families_out(runs):
    result = runs["exclude"]
    out = result.cwd / "exclude"
    assert_ok(result)
    run, _, _ = load(out)
    # tenure_days describes the segments but does not define them by default (it is
    # recency_days + active_days).
    assert run["features"]["clustered_on"] == ["recency_days", "n_orders", "monetary_total", "active_days"]


def test_same_seed_gives_identical_assignments(runs):
    result_a, result_b = runs["seed_a"], runs["seed_b"]
    out_a, out_b = result_a.cwd / "seed_a", result_b.cwd / "seed_b"
    assert_ok(result_a)
    assert_ok(result_b)
    run_a, assignments_a, features_a = load(out_a)
    run_b, assignments_b, features_b = load(out_b)
    assert run_a["parameters"]["random_state"] == run_b["parameters"]["random_state"] == 11

    # the same customers in the same segments under the same names
    pd.testing.assert_frame_equal(assignments_a.drop(columns="confidence"), assignments_b.drop(columns="confidence"))
    # numbers equal up to float summation order (DuckDB sums in parallel): not bit-for-bit
    pd.testing.assert_series_equal(assignments_a["confidence"], assignments_b["confidence"], rtol=1e-9)
    pd.testing.assert_frame_equal(features_a, features_b, rtol=1e-9)
    segments_a = json.loads((out_a / "profiles.json").read_text())["segments"]
    segments_b = json.loads((out_b / "profiles.json").read_text())["segments"]
    assert [(s["segment_id"], s["name"], s["n_customers"]) for s in segments_a] == [
        (s["segment_id"], s["name"], s["n_customers"]) for s in segments_b
    ]
    assert run_a["selection"]["chosen"] == run_b["selection"]["chosen"]
    assert run_a["selection"]["reason"] == run_b["selection"]["reason"]


def test_timings_flag_prints_the_stage_table_of_run_json(runs):
    result = runs["timings"]
    assert_ok(result)
    run = json.loads((result.cwd / "timings" / "run.json").read_text())
    timings, cpu_timings = run["timings"], run["cpu_timings"]
    # every stage that ran, in order, the report included (it is timed after run.json is first staged)
    assert list(timings) == ["load", "features", "segment", "assign", "validate", "outputs", "report"]
    assert list(cpu_timings) == list(timings)
    assert all(isinstance(v, (int, float)) and v >= 0 for v in [*timings.values(), *cpu_timings.values()])
    # Fitting k-means for eleven k cannot take no CPU at all.
    assert cpu_timings["segment"] > 0
    total = sum(timings.values())
    assert f"stage timings ({total:.1f} s in all)" in result.out
    rows = result.stdout[result.stdout.index("stage timings"):].splitlines()
    header = None
    printed, printed_cpu = {}, {}
    for line in rows:
        cells = [c.strip() for c in line.strip("│┃ ").replace("┃", "│").split("│")]
        if cells[:4] == ["stage", "seconds", "share", "CPU s"]:
            header = cells
        if len(cells) == 4 and cells[0] in set(timings) | {"total"}:
            printed[cells[0]] = float(cells[1])
            printed_cpu[cells[0]] = float(cells[3])
    assert header == ["stage", "seconds", "share", "CPU s"]
    assert printed == {**{k: round(v, 2) for k, v in timings.items()}, "total": round(total, 2)}
    assert printed_cpu == {**{k: round(v, 2) for k, v in cpu_timings.items()},
                           "total": round(sum(cpu_timings.values()), 2)}


def test_no_timings_table_without_the_flag(runs):
    result = runs["segments_4"]
    assert_ok(result)
    assert "stage timings" not in result.out
    assert "report" in json.loads((result.cwd / "segments_4" / "run.json").read_text())["timings"]
