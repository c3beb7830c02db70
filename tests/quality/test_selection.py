"""The reliability gate of order shares (segwise.features.selection)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segwise.features.base import FeatureColumn
from segwise.features.selection import gate_shares


def _doc(name: str, family: str, unit: str) -> FeatureColumn:
    return FeatureColumn(name=name, family=family, unit=unit, description=name)


def test_gate_keeps_shares_that_differ_between_customers_and_leaves_sampling_noise_out():
    rng = np.random.default_rng(0)
    n = 3_000
    orders = rng.integers(1, 12, n)
    habit = rng.choice([0.1, 0.9], n)  # two real habits
    frame = pd.DataFrame({
        "n_orders": orders,
        "share_habit": rng.binomial(orders, habit) / orders,
        "share_noise": rng.binomial(orders, 0.3) / orders,  # everyone alike: only sampling differs
        "share_orders_q1": rng.binomial(orders, np.where(habit > 0.5, 0.7, 0.05)) / orders,
        "trend": rng.uniform(-1, 1, n),
    })
    docs = {"n_orders": _doc("n_orders", "rfm", "orders"),
            "share_habit": _doc("share_habit", "engagement", "share 0-1"),
            "share_noise": _doc("share_noise", "engagement", "share 0-1"),
            "share_orders_q1": _doc("share_orders_q1", "seasonality", "share 0-1"),
            "trend": _doc("trend", "journey", "ratio -1..1")}
    gate = gate_shares(frame, docs, used=["n_orders"])
    assert gate.kept == ["share_habit", "share_orders_q1"]
    assert gate.left_out == ["share_noise"]  # trends are not candidates
    assert gate.reliability["share_habit"] > 0.8 and gate.reliability["share_noise"] < 0.1
    notes = gate.notes()
    assert "share_habit" in notes[0] and "share_noise" in notes[1]
    assert gate.to_dict()["kept"] == ["share_habit", "share_orders_q1"]
    # Without order counts there is nothing to weigh a share by: nothing joins.
    assert gate_shares(frame.drop(columns="n_orders"), docs).kept == []


def test_subsample_stability_is_high_for_real_groups_and_lower_for_cuts_of_a_cloud():
    from sklearn.cluster import KMeans

    from segwise.cluster.select import subsample_stability

    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 0.3, (400, 2)) for c in ((0, 0), (5, 0), (0, 5))])
    cloud = rng.uniform(0, 1, (1_200, 2))

    def fit(X, k):
        return KMeans(k, n_init=3, random_state=0).fit(X)

    groups = subsample_stability(blobs, [3], fit, random_state=0)
    cuts = subsample_stability(cloud, [7], fit, random_state=0)
    assert groups[3] > 0.95 and cuts[7] < groups[3] - 0.1


def test_a_widened_definition_is_kept_only_when_it_lifts_weak_structure():
    from segwise.cluster.select import prefer_widened

    weak, weaker = {"verdict": "weak", "margin": 0.05}, {"verdict": "weak", "margin": 0.03}
    moderate, clear = {"verdict": "moderate", "margin": 0.12}, {"verdict": "clear", "margin": 0.2}
    assert prefer_widened(weak, clear) and prefer_widened(weak, moderate)
    assert not prefer_widened(weak, weaker) and not prefer_widened(weaker, weak)  # weak both ways: default kept
    assert not prefer_widened(moderate, clear)   # only weak structure is widened
    assert not prefer_widened(weak, None) and not prefer_widened(None, clear)
    assert not prefer_widened(weak, {"verdict": "moderate", "margin": None})


def test_widening_candidates_are_the_reliable_category_shares_outside_the_definition():
    from segwise.features.selection import WIDENING_FAMILIES, widening_candidates

    rng = np.random.default_rng(1)
    n = 3_000
    orders = rng.integers(2, 12, n)
    likes = rng.random(n) < 0.3
    frame = pd.DataFrame({
        "n_orders": orders,
        "share_category_toys": rng.binomial(orders, np.where(likes, 0.8, 0.1)) / orders,
        "share_category_books": rng.binomial(orders, 0.2) / orders,  # sampling noise only
        "share_weekend_orders": rng.binomial(orders, np.where(likes, 0.9, 0.1)) / orders,  # reliable, not a category
    })
    docs = {"n_orders": _doc("n_orders", "rfm", "orders"),
            "share_category_toys": _doc("share_category_toys", "category_mix", "share 0-1"),
            "share_category_books": _doc("share_category_books", "category_mix", "share 0-1"),
            "share_weekend_orders": _doc("share_weekend_orders", "engagement", "share 0-1")}
    assert WIDENING_FAMILIES == ("category_mix",)
    found = widening_candidates(frame, docs, used=["n_orders"])
    assert list(found) == ["share_category_toys"] and found["share_category_toys"] > 0.8
    assert widening_candidates(frame, docs, used=["n_orders", "share_category_toys"]) == {}


def test_a_widening_attempt_is_recorded_and_told_kept_or_not():
    from segwise.cluster.select import widening_note, widening_record

    tried = {"share_category_toys": 0.81, "share_category_books": 0.6}
    kept = widening_record(tried, {"verdict": "weak", "margin": 0.05}, {"verdict": "clear", "margin": 0.2}, 5, 7)
    assert kept["kept"] and kept["default"] == {"k": 5, "margin": 0.05, "verdict": "weak"}
    assert kept["widened"] == {"k": 7, "margin": 0.2, "verdict": "clear"} and kept["tried"] == tried
    assert widening_note(kept) == (
        "the rfm and affinity columns alone found weak structure (margin 0.05, 5 segments); 2 reliable category "
        "share(s) join the definition (share_category_toys (0.81), share_category_books (0.60)): with them the "
        "structure is clear (margin 0.2, 7 segments)")
    left = widening_record(tried, {"verdict": "weak", "margin": 0.05}, {"verdict": "weak", "margin": 0.08}, 5, 9)
    assert not left["kept"]
    assert widening_note(left) == (
        "the structure is weak; the 2 reliable category share(s) (share_category_toys (0.81), share_category_books "
        "(0.60)) were tried and left out: with them it is weak too (margin 0.08 against 0.05)")


def test_the_structure_reference_keeps_point_masses_and_draws_the_rest_per_group():
    from segwise.cluster.select import draw_keeping_point_masses, point_masses

    rng = np.random.default_rng(0)
    n = 2_000
    # A third of the customers bought once: their order count and active span sit on one
    # value each; the others spread continuously, with a larger spend.
    once = rng.random(n) < 1 / 3
    orders = np.where(once, 0.0, rng.normal(1.5, 0.5, n))
    span = np.where(once, -1.0, rng.normal(0.8, 0.4, n))
    spend = np.where(once, rng.normal(-1.0, 0.3, n), rng.normal(1.0, 0.6, n))
    rows = np.column_stack([orders, span, spend])
    masses = point_masses(rows)
    assert masses == {0: 0.0, 1: -1.0}   # spend has no value shared by a tenth of the rows
    draw = draw_keeping_point_masses(rows, masses, np.random.default_rng(1))
    on_both = (draw[:, 0] == 0.0) & (draw[:, 1] == -1.0)
    assert on_both.sum() == once.sum() and (on_both == once).all()   # the same rows keep the same masses
    # The rest of each group is its own Gaussian: spend of one-order rows around -1, others around 1.
    assert abs(draw[once, 2].mean() + 1.0) < 0.05 and abs(draw[~once, 2].mean() - 1.0) < 0.1
    assert abs(draw[once, 2].std() - 0.3) < 0.05
    # No point mass: one Gaussian with the rows' mean and covariance.
    plain = draw_keeping_point_masses(rows[~once], {}, np.random.default_rng(1))
    assert len(np.unique(plain[:, 0])) == len(plain)
    assert np.allclose(plain.mean(axis=0), rows[~once].mean(axis=0), atol=0.1)


def test_the_structure_reference_keeps_flat_columns_and_counts_with_one_peak():
    from segwise.cluster.select import draw_keeping_point_masses, flat_columns, spread_ties

    rng = np.random.default_rng(3)
    n = 2_000
    uniform = rng.uniform(-1.7, 1.7, n)                       # flat, one mode: kept
    gaussian = rng.normal(0, 1, n)                            # the reference's own shape: either way
    skewed = rng.lognormal(0, 0.8, n)                         # heavy right tail: stays Gaussian
    two_blocks = np.where(rng.random(n) < 0.5, rng.uniform(-3, -1, n), rng.uniform(1, 3, n))  # two modes
    whole_days = np.floor(rng.uniform(0, 365, n))             # flat in whole days: ties are not modes
    counts = rng.poisson(1.5, n).astype(float)                # a count with one peak: kept
    two_peaks = np.where(rng.random(n) < 0.5, 0.0, 4.0) + rng.integers(0, 2, n)  # 0-1 and 4-5: two peaks
    rows = np.column_stack([uniform, gaussian, skewed, two_blocks, whole_days, counts, two_peaks])
    kept = flat_columns(rows, list(range(rows.shape[1])))
    assert {0, 4, 5} <= set(kept) and not {2, 3, 6} & set(kept)
    # Without spreading its ties, the dip would call every lattice of days many-moded.
    spread = spread_ties(whole_days, np.random.default_rng(0))
    assert len(np.unique(spread)) == n and (spread >= whole_days).all() and (spread < whole_days + 1).all()

    draw = draw_keeping_point_masses(rows, {}, np.random.default_rng(1), keep_shapes=True)
    # The kept columns keep their range and shape; the count draws its own values.
    assert uniform.min() <= draw[:, 0].min() and draw[:, 0].max() <= uniform.max()
    assert abs(np.histogram(draw[:, 0], bins=4)[0] / n - 0.25).max() < 0.04
    assert set(np.unique(draw[:, 5])) <= set(np.unique(counts))
    assert abs(draw[:, 5].mean() - counts.mean()) < 0.1
    # The others are Gaussian as before: the two blocks' gap is filled in the reference.
    assert ((draw[:, 3] > -0.5) & (draw[:, 3] < 0.5)).mean() > 0.1
    assert len(np.unique(draw[:, 6])) == n
    # The columns keep their correlation (a Gaussian copula).
    tied = np.column_stack([uniform, uniform + rng.uniform(-0.3, 0.3, n)])
    copula = draw_keeping_point_masses(tied, {}, np.random.default_rng(2), keep_shapes=True)
    assert np.corrcoef(copula, rowvar=False)[0, 1] > 0.95


def test_affinity_columns_leave_the_default_definition_when_their_shares_are_sampling_noise():
    from segwise.features.selection import MIN_DEFINING_RELIABILITY, check_sampling

    rng = np.random.default_rng(2)
    n = 3_000
    orders = rng.integers(1, 8, n)
    loyal = rng.random(n) < 0.4  # loyal customers buy one category far more often

    def frame_with(p_books):
        books = rng.binomial(orders, p_books) / orders
        return pd.DataFrame({
            "n_orders": orders,
            "n_categories": np.minimum(orders, rng.integers(1, 4, n)).astype(float),
            "share_category_books": books,
            "share_category_toys": rng.binomial(orders, 0.3) / orders,
            "discount_share": rng.binomial(orders, 0.15) / orders,  # promotions drawn alike for all
        })

    docs = {"n_orders": _doc("n_orders", "rfm", "orders"),
            "n_categories": FeatureColumn("n_categories", "affinity", "categories", "breadth",
                                          reliability_from="category_mix"),
            "share_category_books": _doc("share_category_books", "category_mix", "share 0-1"),
            "share_category_toys": _doc("share_category_toys", "category_mix", "share 0-1"),
            "discount_share": FeatureColumn("discount_share", "affinity", "share 0-1", "deals",
                                            reliability_from="discount_share")}
    chosen = ["n_orders", "n_categories", "discount_share"]
    alike = check_sampling(frame_with(0.3), docs, chosen)
    assert alike.left_out == {"n_categories": "category_mix", "discount_share": "discount_share"}
    assert alike.evidence["category_mix"] < MIN_DEFINING_RELIABILITY
    notes = alike.notes()
    assert len(notes) == 2 and "n_categories left out" in notes[0] and "category_mix shares" in notes[0]
    assert "discount_share left out" in notes[1] and "customers vary in it" in notes[1]
    # One category whose share really differs between customers keeps the category columns.
    differ = check_sampling(frame_with(np.where(loyal, 0.9, 0.1)), docs, chosen)
    assert differ.left_out == {"discount_share": "discount_share"}
    assert differ.evidence["category_mix"] > 0.5
    # Without the evidence (no category shares, no order counts) the columns stay.
    no_mix = frame_with(0.3).drop(columns=["share_category_books", "share_category_toys"])
    assert "n_categories" not in check_sampling(no_mix, docs, chosen).left_out
    assert check_sampling(frame_with(0.3).drop(columns="n_orders"), docs, chosen).left_out == {}
