"""A/B splits (reproducible, exact stratification), outcomes, analysis, SRM, and the store."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.errors import InputError
from segwise.experiment import (
    analyze_experiment, outcomes_from_transactions, read_outcomes, read_split, split_customers,
)
from segwise.experiment_stats import conversion_lift, holm
from segwise.store import RunStore


def population(sizes: dict[int, int]) -> pd.DataFrame:
    rows = [(f"c{segment}-{i:05d}", segment, f"Segment {segment}") for segment, n in sizes.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["customer_id", "segment_id", "segment_name"]).assign(confidence=0.5)


SIZES = {0: 1, 1: 2, 2: 3, 3: 7, 4: 101, 5: 1000}


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("share", [0.5, 0.3, 0.1, 0.77])
def test_stratification_is_exact_within_one_customer_per_segment(share):
    split = split_customers(population(SIZES), name="exp", treatment_share=share)
    counts = split.groupby("segment_id")["arm"].apply(lambda arms: int((arms == "treatment").sum()))
    for segment, n in SIZES.items():
        assert abs(counts[segment] - share * n) <= 0.5, (segment, counts[segment])
        assert abs(counts[segment] - share * n) <= 1
    assert len(split) == sum(SIZES.values())
    assert list(split.columns) == ["customer_id", "segment_id", "segment_name", "arm"]


def test_split_is_reproducible_and_independent_of_row_order():
    assignments = population(SIZES)
    first = split_customers(assignments, name="spring", seed=3)
    shuffled = assignments.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(first, split_customers(shuffled, name="spring", seed=3))
    other_name = split_customers(assignments, name="autumn", seed=3)
    other_seed = split_customers(assignments, name="spring", seed=4)
    for other in (other_name, other_seed):
        agreement = (first["arm"] == other["arm"]).mean()
        assert 0.4 < agreement < 0.6, agreement


def test_a_customer_keeps_its_arm_when_the_population_changes_a_little():
    assignments = population({0: 2000})
    before = split_customers(assignments, name="stable").set_index("customer_id")["arm"]
    fewer = assignments.sample(frac=0.95, random_state=0)
    after = split_customers(fewer, name="stable").set_index("customer_id")["arm"]
    same = (before.reindex(after.index) == after).mean()
    assert same > 0.95, same


def test_the_arms_do_not_follow_customer_id_order():
    split = split_customers(population({0: 4000}), name="x")
    first_half = split["arm"].iloc[:2000]
    assert 0.45 < (first_half == "treatment").mean() < 0.55


def test_split_of_chosen_segments_only():
    split = split_customers(population(SIZES), name="x", segments=[4, 5])
    assert set(split["segment_id"]) == {4, 5}


@pytest.mark.parametrize("kwargs, message", [
    (dict(name=""), "The 'name' parameter of split_customers must be a non-empty string"),
    (dict(name="x", treatment_share=1.0), "The 'treatment_share' parameter of split_customers must be a float in "
                                          "the range (0, 1). Got 1.0 instead."),
    (dict(name="x", treatment_share=0), "Got 0 instead"),
    (dict(name="x", segments=[9]), "no segment 9 in the assignments; segment ids are 0, 1, 2, 3, 4, 5"),
])
def test_split_rejects_bad_parameters(kwargs, message):
    with pytest.raises(InputError) as info:
        split_customers(population(SIZES), **kwargs)
    assert message in str(info.value)


def test_split_rejects_repeated_customers():
    twice = pd.concat([population({0: 3}), population({0: 1})])
    with pytest.raises(InputError, match="the assignments list 1 customers more than once"):
        split_customers(twice, name="x")


# --------------------------------------------------------------------------- analysis


def tiny_split() -> pd.DataFrame:
    rows = []
    for segment, (n_c, n_t) in {0: (10, 10), 1: (20, 20)}.items():
        rows += [(f"s{segment}c{i}", segment, "control") for i in range(n_c)]
        rows += [(f"s{segment}t{i}", segment, "treatment") for i in range(n_t)]
    return pd.DataFrame(rows, columns=["customer_id", "segment_id", "arm"])


def tiny_outcomes() -> pd.DataFrame:
    converted = {"s0c0", "s0c1", "s0t0", "s0t1", "s0t2", "s0t3", "s0t4", "s1c0", "s1t0", "s1t1", "s1t2"}
    split = tiny_split()
    # Every customer has a row except s1c19; one row is for a customer outside the split.
    ids = [c for c in split["customer_id"] if c != "s1c19"] + ["stranger"]
    return pd.DataFrame({"customer_id": ids, "converted": [c in converted for c in ids],
                         "revenue": [10.0 if c in converted else 0.0 for c in ids]})


def test_analysis_matches_the_statistics_per_segment_and_overall():
    result = analyze_experiment(tiny_split(), tiny_outcomes())
    first, second = result["segments"]
    assert (first["n_control"], first["n_treatment"]) == (10, 10)
    assert first["control"] == {"customers": 10, "conversions": 2, "conversion_rate": 0.2, "revenue": 20.0,
                                "revenue_per_customer": 2.0}
    assert first["treatment"]["conversion_rate"] == 0.5
    expected = conversion_lift(5, 10, 2, 10)
    assert first["absolute_lift"] == pytest.approx(0.3)
    assert first["absolute_ci"] == pytest.approx(expected["absolute_ci"])
    assert first["relative_ci"] == pytest.approx(expected["relative_ci"])
    assert first["p_value"] == pytest.approx(expected["p_value"])
    assert second["p_value"] == pytest.approx(conversion_lift(3, 20, 1, 20)["p_value"])
    assert [s["p_value_holm"] for s in result["segments"]] == pytest.approx(
        holm([first["p_value"], second["p_value"]]))
    overall = result["overall"]
    assert overall["p_value"] == pytest.approx(conversion_lift(8, 30, 3, 30)["p_value"])
    assert overall["mde"]["absolute"] > 0
    assert result["outcomes"]["customers_without_outcome_row"] == 1
    assert result["outcomes"]["outcome_rows_not_in_split"] == 1
    assert result["method"]["test"] == "two-proportion z-test (pooled standard error)"
    assert result["multiple_comparisons"] == "Holm step-down across 2 tested segments"
    assert not result["srm"]["mismatch"]


def test_revenue_analysis_names_its_method_and_handles_a_missing_flag():
    outcomes = tiny_outcomes().drop(columns="converted")
    result = analyze_experiment(tiny_split(), outcomes, metric="revenue", revenue_method="welch")
    assert result["method"]["test"] == "Welch's t-test"
    assert result["segments"][0]["absolute_lift"] == pytest.approx(5.0 - 2.0)
    # The conversion rate comes from revenue > 0 and says so.
    assert result["segments"][0]["treatment"]["conversion_rate"] == 0.5
    assert result["notes"] == ["converted means revenue > 0 (the outcomes have no conversion flag)"]
    with pytest.raises(InputError, match="--metric revenue needs a revenue column"):
        analyze_experiment(tiny_split(), tiny_outcomes().drop(columns="revenue"), metric="revenue")


def test_analysis_recovers_a_known_effect_on_a_large_split():
    rng = np.random.default_rng(0)
    split = split_customers(population({0: 3000, 1: 3000, 2: 3000}), name="big")
    uplift = {0: 0.0, 1: 0.0, 2: 0.06}
    base = np.where(split["arm"] == "treatment", split["segment_id"].map(uplift), 0.0) + 0.10
    outcomes = pd.DataFrame({"customer_id": split["customer_id"], "converted": rng.random(len(split)) < base})
    result = analyze_experiment(split, outcomes)
    by_segment = {s["segment_id"]: s for s in result["segments"]}
    assert by_segment[2]["significant"] and by_segment[2]["p_value_holm"] < 0.001
    assert by_segment[2]["absolute_ci"][0] <= 0.06 <= by_segment[2]["absolute_ci"][1]
    assert not by_segment[0]["significant"] and not by_segment[1]["significant"]
    # MDE at 1,500 per arm: h = (z_.975 + z_.8) * sqrt(2 / 1500) around the observed control rate.
    p_control = by_segment[2]["control"]["conversion_rate"]
    h = (1.959964 + 0.841621) * math.sqrt(2 / 1500)
    target = math.sin(math.asin(math.sqrt(p_control)) + h / 2) ** 2
    assert by_segment[2]["mde"]["absolute"] == pytest.approx(target - p_control, rel=1e-3)


def test_srm_check_detects_a_deliberately_broken_split():
    rng = np.random.default_rng(9)
    split = split_customers(population({0: 2000, 1: 2000}), name="srm")
    outcomes = pd.DataFrame({"customer_id": split["customer_id"], "converted": rng.random(len(split)) < 0.1})
    assert not analyze_experiment(split, outcomes)["srm"]["mismatch"]
    # Broken: 15% of segment 1's treatment group never made it into the experiment.
    treated = split.index[(split["segment_id"] == 1) & (split["arm"] == "treatment")]
    broken = split.drop(treated[: int(0.15 * len(treated))])
    result = analyze_experiment(broken, outcomes)
    assert result["srm"]["mismatch"]
    assert result["srm"]["segments_flagged"] == [1]
    assert result["segments"][1]["srm"]["p_value"] < 0.001
    assert not result["segments"][0]["srm"]["mismatch"]
    # A split planned 80/20 is healthy only against its planned share.
    planned = split_customers(population({0: 3000}), name="p", treatment_share=0.2)
    outcomes = pd.DataFrame({"customer_id": planned["customer_id"], "converted": False})
    assert not analyze_experiment(planned, outcomes, treatment_share=0.2)["srm"]["mismatch"]
    assert analyze_experiment(planned, outcomes, treatment_share=0.5)["srm"]["mismatch"]


def test_a_segment_with_an_empty_arm_is_reported_not_tested():
    split = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment_id": [0, 0, 1, 1],
                          "arm": ["control", "treatment", "control", "control"]})
    outcomes = pd.DataFrame({"customer_id": ["a", "b"], "converted": [True, False]})
    result = analyze_experiment(split, outcomes)
    assert result["segments"][1]["p_value"] is None and "not tested" in result["segments"][1]["note"]
    assert result["segments"][1]["p_value_holm"] is None
    assert result["multiple_comparisons"] == "Holm step-down across 1 tested segments"


# --------------------------------------------------------------------------- reading inputs


def test_read_outcomes_finds_columns_and_combines_rows(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text("CustomerID,Purchased,Revenue\n1,yes,10.5\n2,no,0\n1,no,4.5\n3,1,2\n")
    outcomes = read_outcomes(str(path))
    assert outcomes.to_dict("list") == {"customer_id": ["1", "2", "3"], "converted": [True, False, True],
                                        "revenue": [15.0, 0.0, 2.0]}


@pytest.mark.parametrize("text, kwargs, message", [
    ("customer_id,clicks\n1,3\n", {}, "no conversion or revenue column found among customer_id, clicks; name them "
                                      "with --converted-col / --revenue-col"),
    ("customer_id,converted\n1,maybe\n", {}, "column 'converted': 1 values are not yes/no flags"),
    ("customer_id,revenue\n1,12 EUR\n", {}, "column 'revenue': 1 values are not numbers"),
    ("customer_id,converted\n1,1\n", {"revenue_col": "sales"}, "no column 'sales' (--revenue-col)"),
    ("customer_id,converted\n,1\n", {}, "1 rows have no customer id"),
])
def test_read_outcomes_errors_name_the_file_and_the_column(tmp_path, text, kwargs, message):
    path = tmp_path / "outcomes.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_outcomes(str(path), **kwargs)
    assert message in str(info.value) and "outcomes.csv" in str(info.value)


def test_read_split_checks_arms(tmp_path):
    path = tmp_path / "split.csv"
    path.write_text("customer_id,segment_id,arm\n1,0,control\n2,0,Treatment\n")
    assert read_split(str(path))["arm"].tolist() == ["control", "treatment"]
    path.write_text("customer_id,segment_id,arm\n1,0,control\n2,0,B\n")
    with pytest.raises(InputError, match="column 'arm': 1 rows are neither control nor treatment"):
        read_split(str(path))
    path.write_text("customer_id,arm\n1,control\n")
    with pytest.raises(InputError, match="missing column\\(s\\) segment_id"):
        read_split(str(path))


def test_outcomes_from_a_transaction_log_after_a_start_date():
    log = pd.DataFrame({
        "order_id": ["o1", "o2", "o3", "o4", "C5"],
        "customer_id": ["a", "a", "b", "c", "c"],
        "ordered_at": pd.to_datetime(["2024-01-05", "2024-02-03", "2024-02-10", "2024-02-11", "2024-02-12"]),
        "amount": [50.0, 20.0, 30.0, 40.0, -40.0],
    })
    outcomes = outcomes_from_transactions(segwise.load_transactions(log), since="2024-02-01")
    assert outcomes["customer_id"].tolist() == ["a", "b", "c"]
    assert outcomes["converted"].tolist() == [True, True, True]
    assert outcomes["revenue"].tolist() == [20.0, 30.0, 0.0]
    window = outcomes_from_transactions(segwise.load_transactions(log), since="2024-02-01", until="2024-02-10")
    assert window["customer_id"].tolist() == ["a"]
    with pytest.raises(InputError, match="--until \\(2024-01-01\\) must be after --since"):
        outcomes_from_transactions(segwise.load_transactions(log), since="2024-02-01", until="2024-01-01")


# --------------------------------------------------------------------------- store


def test_experiments_are_stored_in_one_transaction(tmp_path):
    split = split_customers(population({0: 10, 1: 5}), name="x")
    meta = {"name": "x", "created_at": "2025-01-01T00:00:00+00:00", "run_id": "r1", "segments": [0, 1],
            "treatment_share": 0.5, "seed": 0}
    with RunStore(tmp_path / "segwise.duckdb") as store:
        assert store.experiment("x") is None
        store.append_experiment(meta, split)
        stored_meta, stored = store.experiment("x")
        assert stored_meta["segments"] == [0, 1] and stored_meta["n_customers"] == 15
        assert stored_meta["n_treatment"] == int((split["arm"] == "treatment").sum())
        assert stored.to_dict("list") == split[["customer_id", "segment_id", "arm"]].to_dict("list")
        # The same name again violates the key: nothing of the second attempt stays.
        with pytest.raises(Exception, match="(?i)constraint|duplicate"):
            store.append_experiment(meta, split_customers(population({2: 7}), name="x"))
        assert len(store.experiment("x")[1]) == 15
        assert store.experiments()["name"].tolist() == ["x"]
