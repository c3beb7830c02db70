"""Derived features of customer tables (segwise.features.customers)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

import segwise
from bench.quality.families import family
from segwise.cluster.screen import screen_columns
from segwise.features.customers import apply_plan, derive_plan


def test_groups_birth_year_and_children_are_found_by_words_not_by_data_set_names():
    kinds = {"AmtBooks": "numeric", "AmtGames": "numeric", "AmtMusic": "numeric", "YearBorn": "numeric",
             "kids_home": "numeric", "teens_home": "numeric", "joined": "date", "region": "categorical"}
    plan = {item.name: item for item in derive_plan(kinds)}
    assert set(plan) == {"total_amt", "books_share_of_amt", "games_share_of_amt", "music_share_of_amt", "age",
                         "children_at_home"}
    attrs = pd.DataFrame({"AmtBooks": [10, 0], "AmtGames": [30, 0], "AmtMusic": [60, 0], "YearBorn": [1980, 2000],
                          "kids_home": [1, 0], "teens_home": [1, 2], "joined": pd.to_datetime(["2020-01-01"] * 2),
                          "region": ["a", "b"]})
    values = apply_plan(attrs, list(plan.values()), date(2024, 6, 1))
    assert values["total_amt"].tolist() == [100, 0]
    assert values["music_share_of_amt"].tolist() == pytest.approx([0.6, 0.0])
    assert values["age"].tolist() == [44, 24]
    assert values["children_at_home"].tolist() == [2, 2]


def test_the_value_column_is_found_by_words_and_their_shorthand():
    from segwise.defining_columns import VALUE_COLUMN_HINTS, value_column

    def frame(*names):
        return pd.DataFrame({name: [1.0, 2.0] for name in names})

    assert value_column(frame("Income", "MntWines", "total_mnt")) == "total_mnt"
    assert value_column(frame("visits", "amount_books", "amount_games")) == "amount_books"
    assert value_column(frame("mnths_active", "sales_calls", "visits")) is None   # not amounts
    assert value_column(frame("Income", "visits")) == "Income"
    assert value_column(frame("total_spend", "Income")) == "total_spend"
    assert value_column(frame("visits", "tenure")) is None
    # No hint is one data set's column: each is a word, a word pair or a shorthand of one.
    assert "mntwines" not in VALUE_COLUMN_HINTS


def test_two_columns_are_not_a_group():
    assert derive_plan({"spend_a": "numeric", "spend_b": "numeric"}) == []


def test_household_table_is_recovered_at_the_true_k_and_named_in_plain_words():
    pop = family("household_table").generate(800, 2)
    with threadpool_limits(1):
        result = segwise.segment(customers=pop.data, n_segments=4, random_state=0)
    labels = pd.Series(result.assignments["segment_id"].to_numpy(),
                       index=result.assignments["customer_id"].astype(str))
    assert adjusted_rand_score(pop.truth.loc[labels.index], labels) >= 0.9
    assert result.model.segmenter.value_col_ == "total_spend"
    spend = result.features.frame["total_spend"].groupby(result.assignments["segment_id"].to_numpy()).mean()
    assert np.all(np.diff(spend.to_numpy()) < 0)  # segment 0 spends most


def test_noise_columns_of_a_customer_table_are_screened_out_and_the_types_recovered():
    # Three types in three columns among six numeric and two categorical noise columns.
    # With every column defining (the default before the screen) the types merged into
    # two segments (ARI 0.78 at this size); segwise.cluster.screen leaves the noise out.
    pop = family("noise_table").generate(500, 1)
    with threadpool_limits(1):
        result = segwise.segment(customers=pop.data, random_state=0)
    labels = pd.Series(result.assignments["segment_id"].to_numpy(),
                       index=result.assignments["customer_id"].astype(str))
    assert adjusted_rand_score(pop.truth.loc[labels.index], labels) >= 0.95
    assert result.n_segments == 3
    segmenter = result.model.segmenter
    assert set(segmenter.feature_columns_) == {"visits_per_month", "avg_basket", "months_member"}
    note = [n for n in result.run["features"]["notes"] if "does not separate them" in n]
    assert len(note) == 1 and "survey_score" in note[0] and "favourite_colour" in note[0]
    # Left-out columns still describe the segments.
    assert "survey_score" in segmenter.profile_columns_


def test_screen_keeps_columns_that_carry_the_groups():
    from segwise.cluster.screen import screen_columns

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 200)
    prepared = np.column_stack([labels + rng.normal(0, 0.2, 600), rng.normal(0, 1, 600), rng.normal(0, 1, 600),
                                (labels == 1) + rng.normal(0, 0.1, 600), rng.normal(0, 1, 600)])
    sources = ["signal", "noise_a", "noise_b", "region", "region"]  # region: two one-hot levels
    screen = screen_columns(prepared, labels, sources, ["signal", "noise_a", "noise_b", "region"], first_k=3)
    assert screen.kept == ["signal", "region"] and screen.left_out == ["noise_a", "noise_b"]
    assert screen.between_share["signal"] > 0.9 and screen.between_share["noise_a"] < 0.05
    # At least two columns are always kept, whatever the threshold.
    strict = screen_columns(prepared, labels, sources, ["signal", "noise_a", "noise_b", "region"], threshold=0.99)
    assert len(strict.kept) == 2


@pytest.mark.xfail(strict=True, reason="the screen's first fit takes the k rule's second peak (a lattice of the binary "
                                       "plan and the few ticket counts) on seeds 0 and 1; docs/quality.md, "
                                       "'The large size'")
def test_the_screen_leaves_out_a_weakly_tied_binary_column_whatever_peak_the_first_fit_takes():
    # overlap_table's plan column is basic/plus at 60/40 or 40/60 by type: little of its
    # variance lies between the types, and the screen leaves it out when its first fit takes
    # 3 to 5 segments (seeds 2 and 3). On seeds 0 and 1 the first fit takes 9 to 12, every
    # column then looks separated, plan stays in and the run finds 10 or 11 segments for 6
    # (at a million customers: 9 segments at ARI 0.377, the notebook 0.487). Strict, so
    # this fails as soon as the screen no longer depends on which peak the first fit takes.
    defined = {}
    for seed in range(4):
        pop = family("overlap_table").generate(5_000, seed)
        with threadpool_limits(1):
            result = segwise.segment(customers=pop.data, random_state=0)
        defined[seed] = list(result.model.segmenter.feature_columns_)
    assert all("plan" not in columns for columns in defined.values()), defined


@pytest.mark.xfail(strict=True, reason="the screen keeps tenure (its second look), but on the defining columns the k "
                   "rule takes 3 segments for 4: the margins of 3 and 4 tie and the smallest wins (docs/quality.md, "
                   "tenth pass)")
def test_a_table_of_yes_no_and_small_count_columns_is_segmented_on_its_defining_columns():
    # subscription_table (development half A): four plans of use defined by monthly charge,
    # tenure and data use, beside three yes/no columns (one 0/1 integers), lines on the
    # account, support calls and a contract type. The oracle reaches ARI 0.92 on the three
    # defining columns; segwise, told those columns and k=4, 0.86, and with no flags 0.6-0.66
    # at k=3. Strict, so this fails as soon as segwise with no flags recovers the plans.
    outcome = {}
    for seed in (0, 1):
        pop = family("subscription_table").generate(3_000, seed)
        with threadpool_limits(1):
            result = segwise.segment(customers=pop.data, random_state=0)
        labels = result.assignments.set_index(result.assignments["customer_id"].astype(str))["segment_id"]
        ari = adjusted_rand_score(pop.truth.loc[labels.index], labels)
        outcome[seed] = ("tenure_months" in result.model.segmenter.feature_columns_, round(float(ari), 3))
    assert all(kept and ari >= 0.75 for kept, ari in outcome.values()), outcome


def test_a_rare_yes_no_flag_neither_defines_the_segments_nor_makes_a_continuum_look_clear():
    # Three continuous columns without groups and a 5% complaint flag, as 0/1 numbers.
    # Standardised, the flag put its holders 4.6 standard deviations from everyone else:
    # the flag defined the segments on every seed and seed 1 was called clear structure.
    # Prepared as a yes/no column (segwise.prepare, step 4), it is left out by the screen.
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 5_000
        table = pd.DataFrame({"customer_id": np.arange(n), "spend": np.exp(rng.normal(4, 0.6, n)).round(2),
                              "visits": rng.gamma(4, 2, n).round(1), "age": rng.normal(45, 12, n).round(),
                              "complained": (rng.random(n) < 0.05).astype(int)})
        with threadpool_limits(1):
            result = segwise.segment(customers=table, random_state=0)
        assert "complained" not in result.model.segmenter.feature_columns_, seed
        assert result.run["selection"]["structure"]["verdict"] == "weak", seed


def test_the_second_look_readmits_a_column_that_splits_one_first_cluster_in_two_real_groups():
    rng = np.random.default_rng(5)
    n = 4_000
    side = rng.random(n) < 0.5
    a = np.where(side, -2.0, 2.0) + rng.normal(0, 0.5, n)
    # b tells two groups apart among the customers with a < 0 only: between a's clusters it is flat.
    b = np.where(side, np.where(rng.random(n) < 0.5, -1.5, 1.5), 0.0) + rng.normal(0, 0.4, n)
    noise = rng.normal(0, 1, n)
    counts = rng.poisson(1.0, n).astype(float)  # few distinct values: never readmitted
    a2 = a + rng.normal(0, 0.5, n)  # a second column the first clusters separate
    prepared = np.column_stack([a, a2, b, noise, counts])
    sources = ["a", "a2", "b", "noise", "counts"]
    labels = (a > 0).astype(int)
    screen = screen_columns(prepared, labels, sources, sources, first_k=2)
    assert screen.kept == ["a", "a2", "b"] and screen.left_out == ["noise", "counts"]
    assert list(screen.readmitted) == ["b"]
    assert screen.readmitted["b"]["share"] > 0.8 and screen.readmitted["b"]["p"] < 0.01
    assert any("split one of its clusters in two real groups: b" in note for note in screen.notes())
    # Without the groups inside the cluster nothing comes back.
    flat = np.column_stack([a, a2, rng.normal(0, 1, n), noise, counts])
    again = screen_columns(flat, labels, sources, sources, first_k=2)
    assert not again.readmitted and "b" in again.left_out


def test_a_column_that_separates_types_within_the_first_clusters_is_kept():
    # subscription_table: a first fit of 2-3 segments splits high charge and data use from
    # low; tenure (48 against 5 months among the low spenders) is not separated by it and
    # was left out; the second look inside the low spenders' cluster keeps it.
    for seed in (0, 1):
        pop = family("subscription_table").generate(3_000, seed)
        with threadpool_limits(1):
            result = segwise.segment(customers=pop.data, random_state=0)
        columns = result.model.segmenter.feature_columns_
        assert "tenure_months" in columns, (seed, columns)
        assert not {"senior", "has_partner", "paperless_billing"} & set(columns), (seed, columns)
        assert "tenure_months" in result.model.segmenter.column_screen_["readmitted"]
        assert any("split one of its clusters in two real groups: tenure_months" in note
                   for note in result.run["features"]["notes"]), result.run["features"]["notes"]


def test_children_are_counted_in_names_glued_into_one_word():
    kinds = {"Kidhome": "numeric", "Teenhome": "numeric", "Income": "numeric", "kidney_score": "numeric"}
    plan = {item.name: item for item in derive_plan(kinds)}
    assert plan["children_at_home"].sources == ("Kidhome", "Teenhome")
    assert "children_at_home" not in {item.name for item in derive_plan({"kidney_score": "numeric"})}


def test_column_identifiers_are_read_as_words():
    from segwise.profile import feature_label, feature_title

    assert feature_label("MntWines") == "amount of wines"
    assert feature_label("NumWebPurchases") == "number of web purchases"
    assert feature_label("Year_Birth") == "year of birth"
    assert feature_label("AcceptedCmp1") == "accepted campaign 1"
    assert feature_label("Teenhome") == "teen at home"
    assert feature_label("total_mnt") == "total amount"
    assert feature_label("meat_products_share_of_mnt") == "meat products share of amount"
    assert feature_title(feature_label("MntWines")) == "Amount of Wines"
    # segwise's own columns keep their labels; plain snake_case names read as before.
    assert feature_label("n_orders") == "orders"
    assert feature_label("share_channel_web") == "share of orders via web"
    assert feature_label("expected_purchases_90d") == "expected purchases in 90 days"
    assert feature_label("repeat_category_rate") == "repeat category rate"
    assert feature_label("share_category_home_garden") == "share of orders with home garden"
    assert feature_label("monthly_charge") == "monthly charge"


def _shorthand_household_table(n: int, seed: int):
    """household_table with its columns named the way the Customer Personality data names
    them: glued words, shorthand prefixes, no separators."""
    pop = family("household_table").generate(n, seed)
    renamed = {}
    for column in pop.data.columns:
        if column.startswith("spend_"):
            renamed[column] = "Mnt" + column[len("spend_"):].title().replace("_", "")
        elif column.startswith("n_") and column.endswith("_purchases"):
            renamed[column] = "Num" + column[2:-len("_purchases")].title() + "Purchases"
    renamed.update({"year_of_birth": "Year_Birth", "kids_home": "Kidhome", "teens_home": "Teenhome",
                    "enrolled_on": "Dt_Customer", "customer_id": "ID"})
    return pop, pop.data.rename(columns=renamed), renamed


def test_a_table_with_shorthand_column_names_is_derived_recovered_and_named_in_words():
    pop, table, renamed = _shorthand_household_table(800, 2)
    assert {"MntMeat", "NumWebPurchases", "Kidhome"} <= set(table.columns)
    with threadpool_limits(1):
        result = segwise.segment(customers=table, n_segments=4, random_state=0)
    labels = pd.Series(result.assignments["segment_id"].to_numpy(),
                       index=result.assignments["customer_id"].astype(str))
    assert adjusted_rand_score(pop.truth.loc[labels.index], labels) >= 0.9
    frame = result.features.frame
    assert {"total_mnt", "children_at_home", "age"} <= set(frame.columns)
    assert frame["children_at_home"].tolist() == (table["Kidhome"] + table["Teenhome"]).tolist()
    # Segments are ordered by the derived total of the amount columns, found by words, not by a
    # data set's column name.
    assert result.model.segmenter.value_col_ == "total_mnt"
    identifiers = set(renamed.values()) | {"Mnt", "Num", "mnt", "num"}
    for profile in result.profiles:
        words = set(profile.name.replace("&", " ").replace(",", " ").split())
        assert not words & identifiers, profile.name
        for trait in profile.traits:
            assert not set(trait["text"].replace(":", " ").split()) & identifiers, trait["text"]


def test_a_column_the_preparation_drops_is_not_reported_as_one_the_screen_left_out():
    # A near-copy of a defining column is dropped by the preparation (correlated with the
    # first); the screen's first fit never sees it, so it must not be listed among the
    # columns "a first clustering does not separate" with a share of 0.00.
    pop = family("noise_table").generate(500, 1)
    table = pop.data.assign(visits_again=pop.data["visits_per_month"] * 1.001)
    with threadpool_limits(1):
        result = segwise.segment(customers=table, random_state=0)
    screened = [n for n in result.run["features"]["notes"] if "does not separate them" in n]
    assert len(screened) == 1 and "survey_score" in screened[0] and "visits_again" not in screened[0]
    dropped = result.model.segmenter.preprocessor_.report_["dropped"]
    assert dropped["visits_again"].startswith("correlated with visits_per_month")
    assert result.model.segmenter.column_screen_["between_share"].keys().isdisjoint({"visits_again"})


def test_a_name_does_not_pair_two_columns_that_measure_the_same_thing():
    from segwise.naming import _trait_name
    from segwise.profile import SegmentProfile

    def name(*features):
        traits = [{"feature": f, "direction": "high", "zscore": 2.0 - 0.1 * i, "text": f} for i, f in enumerate(features)]
        profile = SegmentProfile(0, "", "", 100, 0.5, 0.5, {f: 1.0 for f in features}, {f: 1.0 for f in features},
                                 {f: 1.0 for f in features}, traits)
        return _trait_name(profile, set())

    # A total and one of its columns, a birth year and the age derived from it, children
    # counted two ways: the second trait says something else.
    assert name("total_mnt", "MntWines", "Income") == "High Total Amount & High Income"
    assert name("age", "Year_Birth", "MntMeat") == "High Age & High Amount of Meat"
    assert name("Teenhome", "children_at_home", "NumDealsPurchases") == \
        "High Teen at Home & High Number of Deals Purchases"
    # Two columns' shares of one total, and two categories' shares, are two things.
    assert name("seafood_share_of_spend", "jewellery_share_of_spend") == \
        "High Seafood Share of Spend & High Jewellery Share of Spend"
    assert name("share_category_books", "share_category_toys") == \
        "High Share of Orders with Books & High Share of Orders with Toys"
