"""Recovery of planted types on bench.quality families other than the demo population.

Small seeded populations, segmented as a user would (`segwise.segment`). The
thresholds sit below the figures measured at these sizes (docs/quality.md), so a
change that makes segwise worse on a family fails here.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

import segwise
from bench.quality.families import family
from bench.quality.measure import baseline_labels, run_segwise


@pytest.fixture(autouse=True)
def one_thread():
    # k-means with a thread per core is many times slower on a busy shared machine.
    with threadpool_limits(1):
        yield


def _score(pop, labels: pd.Series) -> float:
    common = pop.truth.index.intersection(labels.index)
    assert len(common) >= 0.95 * len(pop.truth)
    return adjusted_rand_score(pop.truth.loc[common], labels.loc[common])


@pytest.mark.parametrize("name, n, min_ari", [
    ("latent_k10", 1_500, 0.6),      # ten separated types in a latent factor model
    ("noise_table", 500, 0.7),       # customer table: three types among eight noise columns
    # Six heavily overlapping types in a skewed table. At 800 customers the margin rule
    # (segwise.cluster.select.MARGIN_RULE) picks k=11 (ARI 0.24) where the seed notebook's k=2
    # scores 0.30: a measured regression of the new k rule at this size (docs/quality.md);
    # strict, so this fails as soon as the default recovers it.
    pytest.param("overlap_table", 800, 0.25, marks=pytest.mark.xfail(
        strict=True, reason="margin rule over-segments overlapping skewed tables at 800 customers")),
    ("overlap_table", 2_000, 0.4),    # at 2,000 customers (seed 1): ARI 0.44, above the notebook
])
def test_default_run_recovers_the_planted_types(name, n, min_ari):
    pop = family(name).generate(n, 1)
    result = run_segwise(pop, seed=0)
    ari = _score(pop, result["labels"])
    assert ari >= min_ari
    base, _ = baseline_labels(pop, seed=0)
    assert ari >= _score(pop, base) - 0.02  # never clearly worse than the seed notebook


def test_types_that_differ_only_in_engagement_are_recovered_with_no_flags():
    # One purchase process for all: only channel, part of day and weekend habit tell the
    # types apart. The rfm + affinity definition alone scored ARI 0.00 here; the
    # reliability gate (segwise.features.selection) lets the order shares in.
    pop = family("engagement_only").generate(1_500, 1)
    # The timestamp is a datetime column named order_ts: found by its type.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = segwise.segment(pop.data, random_state=0)
    labels = pd.Series(result.assignments["segment_id"].to_numpy(),
                       index=result.assignments["customer_id"].astype(str))
    assert _score(pop, labels) >= 0.75
    assert abs(result.n_segments - 5) <= 1
    defined_by = result.model.segmenter.feature_columns_
    assert "share_weekend_orders" in defined_by and "share_channel_app" in defined_by
    shrinkage = result.model.segmenter.shrinkage_
    assert shrinkage is not None and "share_weekend_orders" in shrinkage.params_


def test_invoice_lines_with_cancellations_are_segmented():
    pop = family("online_retail").generate(600, 1)
    result = run_segwise(pop, seed=0)
    assert _score(pop, result["labels"]) >= 0.25
    # One type buys in the fourth quarter: that share is reliable and joins (shrunk);
    # the other quarters and the engagement shares vary by sampling only and stay out.
    shares = [c for c in result["defined_by"] if c.startswith("share_")]
    assert shares[0] == "share_orders_q4" and set(shares) <= {"share_orders_q4", "share_returned_orders"}
    assert abs(result["k"] - 6) <= 1


def test_a_type_that_returns_much_of_what_it_buys_is_found():
    # The returners (5%) cancel 40% of their invoices, the others 2-3%: the share of
    # orders returned (segwise.features.returns) passes the gate and they get a segment.
    # Measured at 3,000 customers: 77% of them in one segment that is 76% returners
    # (without the share: 61% in a segment that is 13% returners).
    pop = family("online_retail").generate(3_000, 1)
    result, labels = _segment(pop)
    assert "share_returned_orders" in result.model.segmenter.feature_columns_
    returners = pop.truth.index[pop.truth == "returners"]
    found = labels.reindex(returners).value_counts(normalize=True)
    assert found.iloc[0] >= 0.65   # most returners share one segment ...
    segment = labels[labels == found.index[0]]
    assert pop.truth.reindex(segment.index).eq("returners").mean() >= 0.6   # ... which is mostly returners


def test_no_structure_is_reported_as_weak_and_clear_structure_as_clear():
    # Six seeds of the family without clusters: each a continuum, reported weak. Measured with
    # the structure reference that keeps point masses (docs/quality.md, ninth pass): margins
    # -0.025 to 0.032 against a weak threshold of 0.055 (since the thirteenth pass, which
    # also keeps flat columns and counts: -0.006 to 0.026 against 0.059). With a plain Gaussian reference
    # seed 1 was called clear (margin 0.161): its one-purchase customers against the repeat
    # buyers looked like groups.
    runs = [run_segwise(family("no_structure").generate(1_500, seed), seed=0) for seed in range(6)]
    assert [r["structure"] for r in runs] == ["weak"] * 6
    assert all("continuum" in r["structure_sentence"] for r in runs)
    clear = run_segwise(family("latent_k10").generate(1_500, 1), seed=0)
    assert clear["structure"] == "clear"
    lo, hi = clear["k_supported"]
    assert lo <= clear["k"] <= hi


def test_no_structure_is_weak_however_many_customers_buy_once():
    # The same continuum with half and two thirds of the customers buying once. A plain
    # Gaussian reference has nothing like their lump (one order, an active span of 0 days,
    # one category) and called these clear at margins 0.18-0.20 (docs/quality.md, ninth
    # pass); the reference that keeps point masses measured 0.00-0.04.
    from bench.quality.families import no_structure

    for daily_rate, seed in ((0.004, 0), (0.004, 1), (0.002, 0)):
        pop = no_structure(3_000, seed, daily_rate=daily_rate)
        once = (pop.data.groupby("customer_id").size() == 1).mean()
        assert once >= 0.45
        result = run_segwise(pop, seed=0)
        assert result["structure"] == "weak", (daily_rate, seed, result["structure_margin"])


def test_customer_tables_without_clusters_are_weak_with_flat_columns_and_counts():
    # Customer tables drawn without clusters (bench.quality.nulls), with the columns such
    # tables have: uniform birth years and scores, counts of children and visits, log-normal
    # spend, a rare flag. A Gaussian reference has neither flat columns nor the lattice of a
    # count, and cut in bands both score a silhouette a Gaussian never does: before the
    # reference kept their shapes (docs/quality.md, thirteenth pass) the mixed table's seed 0
    # was called clear (margin 0.069) and the uniform table clear on both seeds (0.095, 0.089).
    from bench.quality.nulls import mixed_table, uniform_table

    for seed, table in ((0, mixed_table), (1, mixed_table), (0, uniform_table), (1, uniform_table)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = segwise.segment(customers=table(2_000, seed), random_state=0)
        structure = result.run["selection"]["structure"]
        assert structure["verdict"] == "weak", (seed, table.__name__, structure["margin"])


def test_the_share_gate_is_recorded_and_keeps_noise_shares_out():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gated = segwise.segment(family("engagement_only").generate(1_000, 1).data, random_state=0)
        plain = segwise.segment(family("no_structure").generate(1_000, 1).data, random_state=0)
    joined = [n for n in gated.run["features"]["notes"] if "join the definition" in n]
    assert len(joined) == 1 and "share_orders_evening" in joined[0]
    # Shares that vary no more than sampling explains stay out, and the run says so.
    assert not [c for c in plain.model.segmenter.feature_columns_ if c.startswith("share_")]
    left_out = [n for n in plain.run["features"]["notes"] if "checked and left out" in n]
    assert len(left_out) == 1 and "reliability below 0.5" in left_out[0]


def _segment(pop, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = segwise.segment(pop.data, random_state=0, **params)
    labels = pd.Series(result.assignments["segment_id"].to_numpy(),
                       index=result.assignments["customer_id"].astype(str))
    return result, labels


def test_types_that_differ_only_in_categories_are_recovered_with_the_category_shares():
    # One purchase process and one line value for all: only which categories they buy
    # tells the six types apart. Breadth, concentration and entropy cannot (ARI 0.01 with
    # no flags); the category_mix family's shares of orders per category can.
    pop = family("affinity_only").generate(1_500, 1)
    result, labels = _segment(pop, features="rfm,affinity,category_mix")
    assert _score(pop, labels) >= 0.65   # measured 0.76 (k 7)
    assert abs(result.n_segments - 6) <= 1
    shrinkage = result.model.segmenter.shrinkage_
    assert shrinkage is not None and "share_category_kitchen" in shrinkage.params_


def test_with_no_flags_types_that_differ_only_in_categories_are_recovered():
    # rfm + affinity find only a continuum here (weak structure); the reliable category
    # shares are then tried, and kept because with them the structure is no longer weak
    # (segwise.cluster.select.prefer_widened). Before this rule: ARI 0.01 (strict xfail).
    pop = family("affinity_only").generate(1_500, 1)
    result, labels = _segment(pop)
    assert _score(pop, labels) >= 0.65
    assert abs(result.n_segments - 6) <= 1
    defined_by = result.model.segmenter.feature_columns_
    assert "share_category_kitchen" in defined_by and "recency_days" in defined_by
    widening = result.run["selection"]["widening"]
    assert widening["kept"] and widening["default"]["verdict"] == "weak"
    assert widening["widened"]["verdict"] != "weak" and "share_category_kitchen" in widening["tried"]
    assert result.run["selection"]["structure"]["verdict"] == widening["widened"]["verdict"]
    notes = result.run["features"]["notes"]
    assert any("alone found weak structure" in n and "join the definition" in n for n in notes)
    assert any(n.startswith("segments are defined by the rfm and affinity families, widened by 10 reliable "
                            "category share(s)") for n in notes)


def test_clear_structure_is_not_widened_by_reliable_category_shares():
    # The demo population's category shares are reliable (0.6 to 0.7) but mixed with its
    # RFM types; its structure is clear, so they are not tried and still only pointed out.
    pop = family("demo").generate(1_500, 1)
    result, _ = _segment(pop)
    assert result.run["selection"]["structure"]["verdict"] == "clear"
    assert "widening" not in result.run["selection"]
    assert not any(c.startswith("share_category_") for c in result.model.segmenter.feature_columns_)
    assert any("share_category_" in note and "category_mix" in note for note in result.model.segmenter.notes_)


def test_weak_structure_without_reliable_category_shares_stays_weak():
    pop = family("no_structure").generate(1_500, 2)
    result, _ = _segment(pop)
    assert result.run["selection"]["structure"]["verdict"] == "weak"
    assert "widening" not in result.run["selection"]


def test_affinity_columns_drawn_alike_for_everyone_do_not_split_segments_by_order_count():
    # micro_segments' categories and discounts are drawn alike for every type: breadth,
    # concentration and entropy then measure only how many orders a customer has, and
    # split the largest type by it (segwise.features.selection.check_sampling).
    pop = family("micro_segments").generate(4_000, 1)
    result, labels = _segment(pop)
    defined_by = result.model.segmenter.feature_columns_
    assert not {"n_categories", "top_category_share", "category_entropy", "discount_share"} & set(defined_by)
    assert "n_orders" in defined_by and "recency_days" in defined_by
    notes = result.run["features"]["notes"]
    assert any(n.startswith("n_categories, top_category_share, category_entropy left out of the definition")
               for n in notes)
    assert any(n.startswith("segments are defined by the rfm family;") for n in notes)
    assert _score(pop, labels) >= 0.32   # measured 0.338 (k 4); with the affinity columns 0.300 (k 5)
    # Where the types do differ in categories and discounts (the demo population) they stay.
    demo, _ = _segment(family("demo").generate(1_500, 1))
    assert {"n_categories", "category_entropy", "discount_share"} <= set(demo.model.segmenter.feature_columns_)
