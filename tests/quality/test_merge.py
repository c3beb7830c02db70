"""The over-split check on the chosen k: Hartigan's dip test (segwise.cluster.merge) and the merge (select)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

import segwise.cluster.select as select
from segwise.cluster.merge import dip_p_value, dip_statistic, oversplit_pairs
from segwise.cluster.select import KSelection, merge_if_oversplit, select_n_segments
from segwise.errors import InputError


def _fit(X, k):
    return KMeans(k, n_init=3, random_state=0).fit(X)


def _two_blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal((0, 0), 1.0, (n, 2)), rng.normal((8, 0), 1.0, (n, 2))])


# The dip statistic ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 10, 37])
def test_evenly_spaced_values_have_the_smallest_dip_one_over_2n(n):
    # The distribution function is a staircase on a straight line: the uniform on the
    # range misses each step by half a step, 1 / (2n), and no unimodal fit does better.
    assert dip_statistic(np.arange(n, dtype=float) * 3.0 + 1.0) == pytest.approx(1 / (2 * n))


def test_two_equal_point_masses_have_the_largest_dip_a_quarter():
    # Half the mass at 0, half at 1: any unimodal distribution misses one of the two jumps by 1/2.
    assert dip_statistic([0.0, 0.0, 0.0, 1.0, 1.0, 1.0]) == pytest.approx(0.25)
    assert dip_statistic([5.0] * 7) == 0.0  # one point mass is unimodal


def test_dip_matches_the_reference_algorithm_on_known_samples():
    # Values of AS 217 (Hartigan 1985; the diptest package's port) on these seeded samples,
    # checked when this test was written: a uniform sample and two separated normals.
    rng = np.random.default_rng(7)
    uniform = rng.random(40)
    bimodal = np.r_[rng.normal(0, 1, 30), rng.normal(5, 1, 30)]
    assert dip_statistic(uniform) == pytest.approx(0.058262008320473, abs=1e-12)
    assert dip_statistic(bimodal) == pytest.approx(0.10089120902082849, abs=1e-12)
    # Two far groups of five evenly spaced values (same reference).
    assert dip_statistic(np.r_[np.arange(5.0), 100 + np.arange(5.0)]) == pytest.approx(0.24)


def test_dip_does_not_depend_on_order_location_or_scale():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1, 200), rng.normal(3, 1, 100)]
    assert dip_statistic(x[::-1]) == pytest.approx(dip_statistic(x))
    assert dip_statistic(5 - 2.5 * x) == pytest.approx(dip_statistic(x))


@pytest.mark.parametrize("bad", [[], [1.0, np.nan, 2.0], [0.0, np.inf]])
def test_dip_rejects_empty_and_non_finite_samples(bad):
    with pytest.raises(InputError):
        dip_statistic(bad)


def test_p_values_are_deterministic_and_separate_one_mode_from_two():
    rng = np.random.default_rng(5)
    one = rng.normal(0, 1, 500)
    two = np.r_[rng.normal(0, 1, 250), rng.normal(4, 1, 250)]
    p_one, p_two = (dip_p_value(dip_statistic(x), 500) for x in (one, two))
    assert p_one >= 0.05 and p_two < 0.01
    from segwise.cluster import merge

    merge._uniform_dips.cache_clear()  # simulated afresh: the same seed gives the same p-value
    assert dip_p_value(dip_statistic(one), 500) == p_one
    assert dip_p_value(1.0, 500) == pytest.approx(1 / 201)  # no uniform sample dips that far
    with pytest.raises(InputError):
        dip_p_value(0.1, 1)


# The merge ------------------------------------------------------------------------------------------------------


def test_two_gaussians_split_into_three_are_merged_back_to_two():
    X = _two_blobs()
    models = {2: _fit(X, 2), 3: _fit(X, 3)}
    record = merge_if_oversplit(X, models, 3, (2, 3), "clear", random_state=0)
    assert record["merged"] and (record["from"], record["to"]) == (3, 2)
    split = models[3].labels_
    a, b = record["pair"]
    # The pair found to be one mode lies within one of the two blobs.
    assert len({int(X[split == a, 0].mean() > 4), int(X[split == b, 0].mean() > 4)}) == 1
    assert record["p_value"] >= 0.05
    assert record["sentence"].startswith(f"k=3 chosen, then merged to 2: segments {a} and {b}")


def test_well_separated_groups_are_not_merged():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.5, (400, 2)) for c in ((0, 0), (6, 0), (0, 6))])
    models = {2: _fit(X, 2), 3: _fit(X, 3)}
    record = merge_if_oversplit(X, models, 3, (2, 3), "clear", random_state=0)
    assert not record["merged"] and record["to"] == 3
    assert len(record["tested"]) == 3 and all(t["p_value"] < 0.05 for t in record["tested"])


def test_no_merge_when_structure_is_weak_or_k_minus_1_is_not_supported(monkeypatch):
    X = _two_blobs()
    models = {2: _fit(X, 2), 3: _fit(X, 3)}
    assert merge_if_oversplit(X, models, 3, (2, 3), "weak") is None
    assert merge_if_oversplit(X, models, 3, (3, 3), "clear") is None
    assert merge_if_oversplit(X, {3: models[3]}, 3, (2, 3), "clear") is None  # no k-1 fit
    monkeypatch.setattr(select, "MERGE_WITHIN_SUPPORT", False)
    assert merge_if_oversplit(X, models, 3, (3, 3), "clear")["merged"]  # the unbounded variant
    monkeypatch.setattr(select, "MERGE_SKIP_WEAK", False)
    assert merge_if_oversplit(X, models, 3, (2, 3), "weak")["merged"]


def test_oversplit_pairs_tests_the_nearest_pairs_first():
    X = _two_blobs()
    labels = _fit(X, 4).labels_
    tested = oversplit_pairs(X, labels, random_state=0, pairs=6)
    assert [t["distance"] for t in tested] == sorted(t["distance"] for t in tested)
    assert all(t["size"] <= 1_000 for t in tested)
    assert tested == oversplit_pairs(X, labels, random_state=0, pairs=6)
    with pytest.raises(InputError):
        oversplit_pairs(X, labels[:-1])


def test_select_takes_the_k_minus_1_fit_when_the_rule_over_splits(monkeypatch):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 1.0, (500, 2)) for c in ((0, 0), (10, 0), (5, 9))])
    real_choose = select._choose_by_margin

    def over_split(candidates, knee):  # the margin rule, forced to one k too many
        _, reason = real_choose(candidates, knee)
        return 4, reason

    monkeypatch.setattr(select, "_choose_by_margin", over_split)
    monkeypatch.setattr(select, "supported_range", lambda candidates, chosen: (3, 4))
    selection = select_n_segments(X, _fit, k_range=(2, 5), random_state=0)
    assert selection.chosen == 3 and selection.merged["merged"]
    assert "k=4 chosen, then merged to 3" in selection.reason
    # The structure verdict is that of the k kept.
    assert selection.structure["silhouette"] == pytest.approx(selection.candidates[1]["silhouette"], abs=1e-4)
    monkeypatch.setattr(select, "MERGE_OVERSPLIT", False)
    assert select_n_segments(X, _fit, k_range=(2, 5), random_state=0).chosen == 4


def test_merged_round_trips_through_to_dict_and_from_dict():
    X = _two_blobs()
    selection = select_n_segments(X, _fit, k_range=(2, 4), random_state=0)
    selection.merged = merge_if_oversplit(X, {2: _fit(X, 2), 3: _fit(X, 3)}, 3, (2, 3), "clear")
    data = selection.to_dict()
    assert data["merged"]["merged"] and data["merged"]["to"] == 2
    again = KSelection.from_dict(data)
    assert again.merged == selection.merged and again.to_dict() == data
    # Older run files have no "merged".
    del data["merged"]
    assert KSelection.from_dict(data).merged is None


def test_a_merge_is_told_in_the_run_notes(monkeypatch):
    import segwise

    rng = np.random.default_rng(0)
    n = 600
    table = pd.DataFrame({
        "customer_id": np.arange(2 * n),
        "spend": np.r_[rng.normal(100, 10, n), rng.normal(300, 10, n)],
        "visits": np.r_[rng.normal(5, 1, n), rng.normal(20, 1, n)],
    })
    real_choose = select._choose_by_margin
    monkeypatch.setattr(select, "_choose_by_margin", lambda c, knee: (3, real_choose(c, knee)[1]))
    monkeypatch.setattr(select, "supported_range", lambda candidates, chosen: (2, 3))
    result = segwise.segment(customers=table, random_state=0)
    assert result.n_segments == 2
    merged = result.run["selection"]["merged"]
    assert merged["merged"] and (merged["from"], merged["to"]) == (3, 2)
    notes = result.run["features"]["notes"]
    assert any(note.startswith("k=3 chosen, then merged to 2: segments") for note in notes)
