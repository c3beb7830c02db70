"""`SegmentationModel`: the fast path for a few customers, and what assignment needs."""

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.errors import InputError
from segwise.features import build_features
from segwise.runs import segment


@pytest.fixture(scope="module")
def result():
    population = segwise.generate_population(500, seed=3)
    return segment(population.orders, k_range=(2, 5), random_state=0)


def test_assign_rows_equals_assign_features(result):
    model = result.model
    frame = result.features.frame
    expected = model.assign_features(frame)
    rows = frame.to_dict("records")
    fast = model.assign_rows(rows)
    assert (fast.segment_id == expected["segment_id"].to_numpy()).all()
    assert fast.confidence == pytest.approx(expected["confidence"].to_numpy())
    assert fast.probabilities is None  # k-means has none
    one = model.assign_rows([rows[7]])
    assert one.segment_id.tolist() == [expected["segment_id"].iloc[7]]


def test_assign_rows_imputes_missing_values_and_ignores_other_keys(result):
    model = result.model
    frame = result.features.frame
    row = frame.iloc[0].to_dict()
    column = next(iter(model.input_columns))
    with_none = dict(row, **{column: None, "not_a_feature": 3.0})
    with_nan = dict(row, **{column: np.nan})
    a, b = model.assign_rows([with_none]), model.assign_rows([with_nan])
    assert a.segment_id.tolist() == b.segment_id.tolist()
    assert a.confidence == pytest.approx(b.confidence)
    assert model.assign_rows([]).segment_id.shape == (0,)


def test_assign_rows_names_the_missing_or_wrongly_typed_column(result):
    model = result.model
    row = result.features.frame.iloc[0].to_dict()
    del row["n_orders"]
    with pytest.raises(InputError, match="the features lack the column 'n_orders', which the model needs"):
        model.assign_rows([row])
    row = dict(result.features.frame.iloc[0].to_dict(), recency_days="recent")
    with pytest.raises(InputError, match=r"feature column\(s\) 'recency_days' must hold numbers"):
        model.assign_rows([row])


def test_input_columns_are_what_preparation_reads(result):
    model = result.model
    pre = model.segmenter.preprocessor_
    assert list(model.input_columns) == list(pre.numeric_in_) + list(pre.categorical_levels_)
    assert set(model.input_columns) <= set(model.segmenter.feature_columns_)


def test_required_spec_does_not_ask_for_columns_the_segments_do_not_use(result):
    model = result.model
    assert model.spec.channel_levels  # the training log had channels ...
    spec = model.required_spec
    assert "engagement" not in spec.families and spec.channel_levels == []  # ... the segments do not use them
    orders = segwise.generate_population(200, seed=4).orders.drop_columns(["channel"])
    tx = segwise.load_transactions(orders)
    assigned = model.assign(tx, as_of="2025-01-01")
    features = build_features(tx, as_of="2025-01-01", spec=spec).frame
    pd.testing.assert_frame_equal(assigned.set_index("customer_id"), model.assign_features(features).set_index("customer_id"))
