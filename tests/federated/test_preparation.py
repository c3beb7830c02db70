"""`Preprocessor.fit_from_statistics`: the central preparation, learned from aggregates."""

import numpy as np
import pytest

from segwise.data import load_transactions
from segwise.errors import InputError
from segwise.features import build_features
from segwise.federated.columns import agreed_columns
from segwise.federated.sketch import LogGrid, MergedColumns, column_statistics
from segwise.prepare import ColumnSummaries, Preprocessor, TransformedSummary

from .populations import population


FAMILIES = ["rfm", "affinity", "journey"]


@pytest.fixture(scope="module")
def table():
    return build_features(load_transactions(population(1500, 11).orders), families=FAMILIES)


@pytest.fixture(scope="module")
def features(table):
    # The columns a federated run with these families agrees on (numbers only).
    columns, _, _ = agreed_columns(table.spec, FAMILIES)
    return table.frame[columns]


def test_journey_takes_part_without_its_categorical_column(table, features):
    assert table.columns["first_purchase_category"].kind == "categorical"
    numeric = [c for c in table.frame.columns if table.columns[c].kind == "numeric"]
    assert list(features.columns) == numeric and "category_switching_rate" in numeric
    _, docs, notes = agreed_columns(table.spec, FAMILIES)
    assert set(docs) == set(numeric)
    assert notes == ["categorical column(s) first_purchase_category left out: a federated run shares sums of "
                     "numbers only, and a category's levels would reveal which categories each silo's customers "
                     "bought"]
    # Without journey there is nothing to leave out; named on its own, the column is refused with the reason.
    assert agreed_columns(table.spec, ["rfm", "affinity"])[2] == []
    with pytest.raises(InputError, match="'first_purchase_category' is a categorical column; a federated run "
                                         "shares sums of numbers only"):
        agreed_columns(table.spec, ["rfm", "first_purchase_category"])


def _summaries(frame):
    grid = LogGrid()
    columns = MergedColumns(column_statistics(frame.to_numpy(dtype=np.float64), grid), grid)
    moments, _ = columns.moments()
    return ColumnSummaries(
        columns=list(frame.columns), n_rows=float(len(frame)), n_missing=columns.missing[0],
        n_negative=columns.n_negative()[0], moments=moments[0][:, :3].T,
        quantiles=lambda j, p, value, count: columns.quantiles(j, p, value, count),
    )


def _transformed(frame):
    def summary(plan):
        values = frame[plan["columns"]].to_numpy(dtype=np.float64)
        t = np.where(np.isnan(values), plan["fill_values"], values)
        t = np.where(plan["log_mask"], np.sign(t) * np.log1p(np.abs(t)), t)
        t = np.clip(t, plan["clip_low"], plan["clip_high"])
        return TransformedSummary(n_rows=float(len(t)), sums=t.sum(axis=0), cross=t.T @ t)

    return summary


@pytest.mark.parametrize("scaler", ["standard", "robust"])
def test_preparation_from_statistics_matches_the_central_fit(features, scaler):
    log_columns = ["recency_days", "n_orders", "monetary_total", "monetary_avg", "tenure_days"]
    central = Preprocessor(log_columns=log_columns, scaler=scaler).fit(features)
    federated = Preprocessor(log_columns=log_columns, scaler=scaler).fit_from_statistics(
        _summaries(features), _transformed(features))
    assert federated.prepared_names_ == central.prepared_names_
    assert federated.indicator_columns_ == central.indicator_columns_
    np.testing.assert_array_equal(federated.log_mask_, central.log_mask_)
    np.testing.assert_array_equal(federated.numeric_kept_, central.numeric_kept_)
    # Medians and quantiles come from a 4.7%-wide histogram grid.
    np.testing.assert_allclose(federated.fill_values_, central.fill_values_, rtol=0.05, atol=1e-3)
    np.testing.assert_allclose(federated.clip_low_, central.clip_low_, rtol=0.05, atol=0.05)
    np.testing.assert_allclose(federated.clip_high_, central.clip_high_, rtol=0.05, atol=0.05)
    np.testing.assert_allclose(federated.center_, central.center_, rtol=0.05, atol=0.05)
    np.testing.assert_allclose(federated.scale_, central.scale_, rtol=0.1, atol=0.05)
    assert federated.report_["dropped"].keys() == central.report_["dropped"].keys()
    prepared = federated.transform(features)
    assert prepared.shape == central.transform(features).shape
    state = federated.to_state()
    again = Preprocessor.from_state(*state).transform(features)
    np.testing.assert_array_equal(again, prepared)


def test_exact_statistics_give_exact_standard_scaling(features):
    # Small integers: every histogram bin holds one value, so quantiles are exact.
    frame = features[["n_categories"]].assign(orders_capped=features["n_orders"].clip(upper=15),
                                              repeat_buyer=(features["n_orders"] > 1).astype(int))
    central = Preprocessor(corr_threshold=None).fit(frame)
    federated = Preprocessor(corr_threshold=None).fit_from_statistics(_summaries(frame), _transformed(frame))
    for name in ("fill_values_", "clip_low_", "clip_high_", "center_", "scale_"):
        np.testing.assert_allclose(getattr(federated, name), getattr(central, name), rtol=1e-9, err_msg=name)
    # The 0/1 column is found from its moments and ends, and scaled as a yes/no column.
    assert federated.report_["yes_no"] == central.report_["yes_no"] == ["repeat_buyer"]


@pytest.mark.parametrize("params, message", [
    ({"skew_transform": "quantile"},
     "The 'skew_transform' parameter of Preprocessor must be 'log1p' or 'none' when fitting from statistics. "
     "Got 'quantile' instead."),
    ({"pca": 2}, "The 'pca' parameter of Preprocessor must be None when fitting from statistics. Got 2 instead."),
    ({"categorical_columns": ["region"]},
     "categorical column(s) 'region' cannot be prepared from aggregate statistics; leave them out of the features"),
])
def test_what_needs_rows_is_refused(features, params, message):
    with pytest.raises(InputError) as info:
        Preprocessor(**params).fit_from_statistics(_summaries(features), _transformed(features))
    assert str(info.value) == message
