"""The category_mix family: one share of orders per category level learned at fit time."""

from datetime import date

import pandas as pd
import pytest

from segwise.data import load_transactions
from segwise.features import build_features
from segwise.features.base import FeatureSpec
from segwise.features.categories import MAX_CATEGORY_LEVELS
from segwise.features.selection import GATED_FAMILIES
from segwise.features.shrink import SHRUNK_FAMILIES

COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "category")
ROWS = [
    ("1", "a", "2024-01-01 10:00", 10.0, "Toys"),    # one order, two categories
    ("1", "a", "2024-01-01 10:00", 5.0, "Books"),
    ("2", "a", "2024-01-06 20:00", 20.0, "Toys"),
    ("3", "a", "2024-03-01 09:00", 30.0, None),       # an order without a category
    ("4", "b", "2024-02-15 15:00", 8.0, "Garden"),
    ("5", "b", "2024-02-20 15:00", 4.0, "Garden"),
    ("5", "b", "2024-02-20 15:00", 4.0, "Garden"),    # a second line: the order counts once
    ("6", "c", "2024-03-10 12:00", 7.0, "Garden"),
    ("C7", "d", "2024-02-01 12:00", -3.0, "Books"),   # a return: not a purchase of Books
]
AS_OF = date(2024, 4, 5)


def _log(rows):
    log = pd.DataFrame(rows, columns=COLUMNS)
    log["ordered_at"] = pd.to_datetime(log["ordered_at"])
    return load_transactions(log)


@pytest.fixture(scope="module")
def features():
    return build_features(_log(ROWS), as_of=AS_OF)


def test_levels_are_learned_by_customers_ties_by_name(features):
    # Garden: b and c; Books and Toys: a only (d's Books line is a return).
    assert features.spec.category_levels == ["Garden", "Books", "Toys"]
    assert "category_mix" in features.spec.families
    assert [c for c in features.frame.columns if c.startswith("share_category_")] == [
        "share_category_garden", "share_category_books", "share_category_toys"]
    assert features.columns["share_category_toys"].family == "category_mix"
    assert features.columns["share_category_toys"].unit == "share 0-1"


def test_shares_are_of_all_the_customers_orders(features):
    a, b = features.frame.loc["a"], features.frame.loc["b"]
    # a: three orders; Toys in two, Books in one, the third has no category.
    assert (a.share_category_toys, a.share_category_books, a.share_category_garden) == (
        pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0)
    # b: two orders, both Garden (the two lines of order 5 are one order).
    assert (b.share_category_garden, b.share_category_toys) == (1.0, 0.0)


def test_a_customer_whose_orders_have_no_category_has_shares_of_zero_not_missing():
    # The counts come from the per-customer category table, where such a customer has no
    # row: every share is 0 of their orders, as for any level they did not buy.
    rows = ROWS + [("8", "e", "2024-03-12 12:00", 9.0, None), ("9", "e", "2024-03-14 12:00", 6.0, None)]
    frame = build_features(_log(rows), as_of=AS_OF).frame
    shares = [c for c in frame.columns if c.startswith("share_category_")]
    assert frame.loc["e", shares].tolist() == [0.0] * len(shares)
    assert frame.loc["a", "share_category_toys"] == pytest.approx(2 / 3)


def test_levels_are_reused_at_assignment_and_an_unseen_category_counts_in_none(features):
    new = [
        ("10", "e", "2024-01-02 10:00", 9.0, "Music"),    # a category the model never saw
        ("11", "e", "2024-01-03 10:00", 9.0, "Toys"),
        ("12", "e", "2024-01-04 10:00", 9.0, "Music"),
        ("12", "e", "2024-01-04 10:00", 9.0, "Garden"),
    ]
    spec = FeatureSpec.from_dict(features.spec.to_dict())
    assigned = build_features(_log(new), as_of=AS_OF, spec=spec)
    assert assigned.spec.category_levels == ["Garden", "Books", "Toys"]
    assert not any("music" in c for c in assigned.frame.columns)
    e = assigned.frame.loc["e"]
    assert (e.share_category_toys, e.share_category_garden, e.share_category_books) == (
        pytest.approx(1 / 3), pytest.approx(1 / 3), 0.0)


def test_a_model_stored_before_the_levels_existed_has_none():
    stored = FeatureSpec(families=["rfm", "affinity"], has_category=True).to_dict()
    del stored["category_levels"]
    assert FeatureSpec.from_dict(stored).category_levels == []


def test_at_most_the_levels_bought_by_the_most_customers():
    rows = []
    for i in range(MAX_CATEGORY_LEVELS + 3):
        # Category i is bought by i + 1 customers.
        for j in range(i + 1):
            rows.append((f"o{i}-{j}", f"c{j}", "2024-01-01 10:00", 1.0, f"cat {i:02d}"))
    for j in range(MAX_CATEGORY_LEVELS + 3):
        # As many customers as 'cat 14' and the same column name: first by name, the other skipped.
        rows.append((f"x{j}", f"c{j}", "2024-01-02 10:00", 1.0, "CAT 14"))
    levels = build_features(_log(rows), as_of=AS_OF).spec.category_levels
    assert len(levels) == MAX_CATEGORY_LEVELS
    assert levels[:2] == ["CAT 14", "cat 13"] and "cat 14" not in levels
    assert levels[-1] == f"cat {15 - MAX_CATEGORY_LEVELS:02d}"


def test_shares_are_shrunk_when_chosen_but_do_not_pass_the_default_gate():
    # Measured on bench.quality (docs/quality.md): as gate candidates they cost the
    # demo population more than they gained; they describe, and are shrunk when chosen.
    assert "category_mix" in SHRUNK_FAMILIES and "category_mix" not in GATED_FAMILIES
