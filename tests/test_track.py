"""Snapshots, transitions, comparisons and the segment history, checked by hand."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import segwise
from segwise.errors import InputError
from segwise.store import RunStore
from segwise.track import (
    GONE, NEW, TRANSITION_COLUMNS, compare_assignments, track, transition_matrix, update,
)

from .conftest import tiny_log

Q1, Q2, Q3 = date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30)
MANY, FEW = 0, 1


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def _orders(customer: str, days: list[str]) -> list[tuple]:
    # Amounts vary a little (a feature constant for everyone is not what these tests are about).
    return [(f"{customer}-{i}", customer, day, 10.0 + i + len(customer)) for i, day in enumerate(days)]


@pytest.fixture(scope="module")
def model():
    """Two segments on the number of orders: 'many' (id 0, worth more) and 'few' (id 1)."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-01-01", "2023-12-31").strftime("%Y-%m-%d").to_numpy()
    rows = []
    for i in range(10):
        rows += _orders(f"one{i}", [rng.choice(days)])
        rows += _orders(f"ten{i}", sorted(rng.choice(days, 10, replace=False)))
    result = segwise.segment(tiny_log(rows), features=["n_orders"], n_segments=2, random_state=0)
    assert result.profiles[MANY].means["n_orders"] == 10 and result.profiles[FEW].means["n_orders"] == 1
    return result.model


def _moves_log(without: tuple[str, ...] = ()) -> pd.DataFrame:
    """Five customers moving known ways between the quarter ends of 2024.

    A: 1 order in Q1, 5 more in Q2          -> few, many, many
    B: 6 orders in Q1                        -> many, many, many
    C: 1 order in Q1                         -> few, few, few
    D: first (only) order in Q2              -> new, few, few
    E: first orders (6) in Q3                -> new, new, many
    """
    rows = (
        _orders("A", ["2024-01-10", "2024-04-02", "2024-04-20", "2024-05-03", "2024-05-20", "2024-06-01"])
        + _orders("B", ["2024-01-05", "2024-01-15", "2024-01-25", "2024-02-05", "2024-02-15", "2024-02-25"])
        + _orders("C", ["2024-02-01"])
        + _orders("D", ["2024-05-01"])
        + _orders("E", ["2024-07-15", "2024-07-25", "2024-08-01", "2024-08-10", "2024-08-20", "2024-08-30"])
    )
    return tiny_log([r for r in rows if r[1] not in without])


def test_transition_matrix_by_hand():
    before = pd.Series({"a": 0, "b": 0, "c": 1, "d": 1})
    after = pd.Series({"a": 0, "b": 1, "c": 1, "e": 0})
    counts, shares = transition_matrix(before, after, {0: "Gold", 1: "Silver"})
    assert counts.to_dict("index") == {
        "Gold": {"Gold": 1, "Silver": 1, GONE: 0},
        "Silver": {"Gold": 0, "Silver": 1, GONE: 1},
        NEW: {"Gold": 1, "Silver": 0, GONE: 0},
    }
    assert shares.loc["Gold"].tolist() == [0.5, 0.5, 0.0]
    assert shares.loc["Silver"].tolist() == [0.0, 0.5, 0.5]
    assert shares.loc[NEW].tolist() == [1.0, 0.0, 0.0]


def test_track_on_a_tiny_log_where_customers_move_known_ways(model):
    tx = segwise.load_transactions(_moves_log())
    result = track(model, tx, ["2024-03-31", "2024-06-30", "2024-09-30"])
    segment = {d: frame.set_index("customer_id")["segment_id"].to_dict() for d, frame in result.assignments.items()}
    assert segment[Q1] == {"A": FEW, "B": MANY, "C": FEW}
    assert segment[Q2] == {"A": MANY, "B": MANY, "C": FEW, "D": FEW}
    assert segment[Q3] == {"A": MANY, "B": MANY, "C": FEW, "D": FEW, "E": MANY}

    many, few = model.names[MANY], model.names[FEW]
    assert list(result.transitions.columns) == TRANSITION_COLUMNS
    cells = {
        (r.period_start, r.from_segment, r.to_segment): (r.customers, r.row_share)
        for r in result.transitions.itertuples()
    }
    assert len(cells) == 2 * (3 * 3 - 1)
    # Q1 -> Q2: B stays many; A moves few -> many; C stays few; D is new in few.
    assert cells[(Q1, many, many)] == (1, 1.0)
    assert cells[(Q1, many, few)] == (0, 0.0)
    assert cells[(Q1, few, many)] == (1, 0.5)
    assert cells[(Q1, few, few)] == (1, 0.5)
    assert cells[(Q1, NEW, few)] == (1, 1.0)
    assert cells[(Q1, NEW, many)] == (0, 0.0)
    assert cells[(Q1, few, GONE)] == (0, 0.0)
    # Q2 -> Q3: nobody moves; E is new in many.
    assert cells[(Q2, many, many)] == (2, 1.0)
    assert cells[(Q2, few, few)] == (2, 1.0)
    assert cells[(Q2, NEW, many)] == (1, 1.0)
    ids = result.transitions.set_index(["period_start", "from_segment", "to_segment"])
    assert ids.loc[(Q1, NEW, few), "from_segment_id"] is pd.NA
    assert ids.loc[(Q1, few, GONE), "to_segment_id"] is pd.NA
    assert ids.loc[(Q1, few, many), "from_segment_id"] == FEW

    first, second = result.summary["periods"]
    # ARI of (few, many, few) against (many, many, few): (0 - 1/3) / (1 - 1/3).
    assert first["temporal_ari"] == pytest.approx(-0.5)
    assert first["stayed"] == pytest.approx(2 / 3)
    assert (first["customers_in_both"], first["new"], first["gone"]) == (3, 1, 0)
    assert second["temporal_ari"] == 1.0 and second["stayed"] == 1.0 and second["new"] == 1
    assert result.summary["mean_temporal_ari"] == pytest.approx(0.25)

    shares = result.shares.set_index(["as_of", "segment_id"])
    assert shares.loc[(Q1, FEW), "customers"] == 2 and shares.loc[(Q1, FEW), "share"] == pytest.approx(2 / 3)
    assert shares.loc[(Q3, MANY), "customers"] == 3 and shares.loc[(Q3, MANY), "share"] == pytest.approx(0.6)


def test_track_needs_increasing_dates(model):
    tx = segwise.load_transactions(_moves_log())
    with pytest.raises(InputError, match="at least two --as-of dates"):
        track(model, tx, ["2024-03-31"])
    with pytest.raises(InputError, match="--as-of dates must be distinct and increasing; got 2024-06-30, 2024-03-31"):
        track(model, tx, ["2024-06-30", "2024-03-31"])


def test_compare_assignments_on_shared_customers():
    a = pd.DataFrame({"customer_id": ["1", "2", "3", "4"], "segment_id": [0, 0, 1, 1],
                      "segment_name": ["Gold", "Gold", "Silver", "Silver"]})
    b = pd.DataFrame({"customer_id": ["2", "3", "4", "5"], "segment_id": [1, 0, 0, 0],
                      "segment_name": ["Gold", "Silver", "Silver", "Silver"]})
    summary, crosstab = compare_assignments(a, b)
    assert summary == {
        "customers_a": 4, "customers_b": 4, "customers_shared": 3, "only_a": 1, "only_b": 1, "ari": 1.0,
        "same_segment_id": 0.0, "same_segment_name": 1.0,
    }
    assert crosstab.to_dict("records") == [
        {"segment_a": 0, "segment_name_a": "Gold", "segment_b": 1, "segment_name_b": "Gold", "customers": 1},
        {"segment_a": 1, "segment_name_a": "Silver", "segment_b": 0, "segment_name_b": "Silver", "customers": 2},
    ]


# --------------------------------------------------------------------------- updates and history


def _history(store_path) -> list[tuple]:
    with RunStore(store_path, read_only=True) as store:
        frame = store.segment_history()
    return [
        (r.customer_id, int(r.segment_id), r.valid_from.date() if hasattr(r.valid_from, "date") else r.valid_from,
         None if pd.isna(r.valid_to) else (r.valid_to.date() if hasattr(r.valid_to, "date") else r.valid_to))
        for r in frame.itertuples()
    ]


def test_segment_history_after_two_updates_and_a_repeated_one(model, tmp_path):
    store = tmp_path / "segwise.duckdb"
    first = update(model, segwise.load_transactions(_moves_log()), store, as_of="2024-03-31")
    assert first.summary["n_new"] == 3 and first.summary["n_moved"] == 0 and not first.already_recorded
    assert _history(store) == [("A", FEW, Q1, None), ("B", MANY, Q1, None), ("C", FEW, Q1, None)]

    # By Q2, A buys more and moves; C is no longer in the data; D is new.
    second_tx = segwise.load_transactions(_moves_log(without=("C",)))
    second = update(model, second_tx, store, as_of="2024-06-30")
    expected = [
        ("A", FEW, Q1, Q2), ("A", MANY, Q2, None), ("B", MANY, Q1, None), ("C", FEW, Q1, Q2), ("D", FEW, Q2, None),
    ]
    assert _history(store) == expected
    counts = {k: second.summary[k] for k in ("n_customers", "n_new", "n_moved", "n_gone", "n_unchanged")}
    assert counts == {"n_customers": 3, "n_new": 1, "n_moved": 1, "n_gone": 1, "n_unchanged": 1}
    moves = second.migrations[["customer_id", "from_segment_id", "to_segment_id", "kind"]]
    assert moves.astype(object).where(moves.notna(), None).values.tolist() == [
        ["A", FEW, MANY, "moved"], ["C", FEW, None, "gone"], ["D", None, FEW, "new"]]
    assert (second.migrations["as_of"].dt.date == Q2).all()
    assert second.summary["previous_as_of"] == "2024-03-31"

    again = update(model, second_tx, store, as_of="2024-06-30")
    assert again.already_recorded
    assert _history(store) == expected
    pd.testing.assert_frame_equal(again.migrations, second.migrations)
    with RunStore(store, read_only=True) as run_store:
        assert len(run_store.updates()) == 2
        assert len(run_store.migrations()) == 3 + 3


def test_updates_go_forward_in_time(model, tmp_path):
    store = tmp_path / "segwise.duckdb"
    tx = segwise.load_transactions(_moves_log())
    update(model, tx, store, as_of="2024-06-30")
    with pytest.raises(InputError, match="an update as of 2024-06-30 is already recorded; updates go forward in "
                                         "time, so this one \\(as of 2024-03-31\\) must be later"):
        update(model, tx, store, as_of="2024-03-31")
    model_copy = type(model)(segmenter=model.segmenter, spec=model.spec,
                             metadata={**model.metadata, "model_id": "another"})
    with pytest.raises(InputError, match="the update as of 2024-06-30 was recorded with another model"):
        update(model_copy, tx, store, as_of="2024-06-30")
    assert len(_history(store)) == 4
