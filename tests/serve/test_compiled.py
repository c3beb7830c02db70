"""The compiled assignment (`segwise.serve.compiled`) equals the model's own, for every method.

Reference: the pandas path, `Segmenter._prepared` (share shrinkage, then
`Preprocessor.transform`), `Segmenter.predict` and `predict_confidence`, and
`SegmentationModel.assign_rows` for probabilities. Inputs: training customers, and
edge cases (missing and infinite values, negative values in log columns, values
beyond the clipping bounds, missing, unseen and capped categories).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.cluster.base import METHODS
from segwise.errors import InputError
from segwise.features import build_features
from segwise.segmenter import Segmenter
from segwise.serve.compiled import CompiledAssigner

TOLERANCE = 1e-9
#: Confidences of distance-based methods (DBSCAN's) on training customers: a distance of
#: about 0 is the square root of a rounding error, so 1e-16 in the prepared rows can read
#: as 1e-8 there.
CONFIDENCE_TOLERANCE = 1e-7
REGIONS = ["north", "south", "east", "west", "centre", "islands"]


@pytest.fixture(scope="module")
def table():
    """Features of 300 synthetic customers (every family; engagement shares get shrunk)."""
    population = segwise.generate_population(300, seed=4)
    return build_features(segwise.load_transactions(population.orders))


@pytest.fixture(scope="module")
def with_regions(table):
    """The same features as a plain frame with a categorical column of six levels."""
    frame = table.frame.copy()
    rng = np.random.default_rng(0)
    frame["region"] = rng.choice(REGIONS, size=len(frame), p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.03])
    frame.loc[frame.index[:5], "region"] = None
    return frame


def _edge_rows(frame: pd.DataFrame, columns: list[str], categorical: list[str], seed: int = 1) -> pd.DataFrame:
    """Training rows with missing, infinite, negative and out-of-range values and odd categories."""
    rng = np.random.default_rng(seed)
    rows = frame.sample(60, random_state=seed).copy()
    numeric = [c for c in columns if c not in categorical]
    for i, column in enumerate(numeric):
        values = rows[column].to_numpy(dtype=float, copy=True)
        values[i % 7] = np.nan
        values[(i + 1) % 7 + 7] = np.inf
        values[(i + 2) % 7 + 14] = -np.inf
        values[21] = -3.5  # negative in a log column: sign(x) * log1p(|x|)
        values[22] = values[22] * 1e4 + 1e6  # far beyond the clipping bound
        values[23:30] = rng.normal(0, 1e3, 7)
        rows[column] = values
    rows.iloc[30, :] = np.nan  # a customer with nothing known
    for column in categorical:
        values = rows[column].to_numpy(dtype=object, copy=True)
        values[31], values[32], values[33], values[34] = None, float("nan"), "atlantis", "other"
        rows[column] = values
    return rows


def _check(segmenter: Segmenter, frame: pd.DataFrame) -> CompiledAssigner:
    compiled = CompiledAssigner(segmenter)
    columns = list(compiled.numeric) + list(compiled.categorical_columns)
    probe = pd.concat([frame.iloc[:80], _edge_rows(frame, columns, list(compiled.categorical_columns))])
    with np.errstate(invalid="ignore"):  # the shrinkage of an infinite share warns on this path
        expected = segmenter._prepared(probe)
    rows = probe[columns].astype(object).where(probe[columns].notna(), None).to_dict("records")
    values, categories = compiled.values_of(rows)
    prepared = compiled.prepare(values, categories)
    assert prepared.shape == expected.shape
    np.testing.assert_allclose(prepared, expected, rtol=TOLERANCE, atol=TOLERANCE)
    result = compiled.assign_rows(rows)
    with np.errstate(invalid="ignore"):
        assert result.segment_id.tolist() == segmenter.predict(probe).tolist()
        np.testing.assert_allclose(result.confidence, segmenter.predict_confidence(probe), rtol=0,
                                   atol=CONFIDENCE_TOLERANCE)
    # One customer at a time, as the service assigns them (another code path).
    ones = [compiled.assign_rows([row]) for row in rows]
    assert [one.segment_id[0] for one in ones] == result.segment_id.tolist()
    np.testing.assert_allclose([one.confidence[0] for one in ones], result.confidence, rtol=0,
                               atol=CONFIDENCE_TOLERANCE)
    if not compiled._quantile.size:
        np.testing.assert_allclose(np.vstack([compiled._prepare_one(row) for row in rows]), expected,
                                   rtol=TOLERANCE, atol=TOLERANCE)
    if hasattr(segmenter.clusterer_, "predict_proba"):
        assert result.probabilities is not None
        expected_proba = segmenter.clusterer_.predict_proba(expected)
        np.testing.assert_allclose(result.probabilities[:, segmenter.label_map_], expected_proba, atol=TOLERANCE)
    return compiled


#: k-prototypes needs a categorical column: it is checked below, with one.
NUMERIC_METHODS = sorted(set(METHODS) - {"kprototypes"})
#: Methods that find the number of segments themselves.
OWN_K = ("dbscan", "hdbscan", "multiview")


@pytest.mark.parametrize("method", NUMERIC_METHODS)
def test_every_method_on_a_feature_table_with_shrinkage(method, table):
    segmenter = Segmenter(method=method, n_segments="auto" if method in OWN_K else 3, k_range=(2, 4),
                          features=["rfm", "affinity", "engagement"], random_state=0).fit(table)
    assert segmenter.shrinkage_ is not None and segmenter.shrinkage_.params_
    _check(segmenter, table.frame)


@pytest.mark.parametrize("method", ["kmeans", "gmm", "kprototypes", "hierarchical"])
def test_categorical_columns_one_hot_capped_and_codes(method, with_regions):
    segmenter = Segmenter(method=method, n_segments=3, random_state=0,
                          features=["recency_days", "n_orders", "monetary_total", "region"],
                          preprocessing={"max_levels": 4}).fit(with_regions)
    compiled = _check(segmenter, with_regions)
    assert compiled.categorical_columns == ("region",)


@pytest.mark.parametrize("preprocessing", [
    {"pca": 3},
    {"pca": 0.9, "scaler": "robust"},
    {"skew_transform": "quantile"},
    {"skew_transform": "none", "winsorize": None},
    {"indicator_min_share": 0.0, "corr_threshold": None},
], ids=["pca3", "pca-variance-robust", "quantile", "no-skew-no-clip", "indicators-no-pruning"])
def test_preparation_options(preprocessing, with_regions, table):
    frame = with_regions.copy()
    # Missing values in training, so that indicator columns exist.
    frame.loc[frame.index[::9], "monetary_avg"] = np.nan
    segmenter = Segmenter(method="kmeans", n_segments=3, random_state=0, weights={"recency_days": 2.0},
                          features=["recency_days", "n_orders", "monetary_total", "monetary_avg", "tenure_days",
                                    "region"],
                          preprocessing=preprocessing).fit(frame)
    _check(segmenter, frame)


def test_served_model_uses_the_compiled_form(model_a):
    compiled = CompiledAssigner.from_model(model_a.model)
    rows = [item["features"] for item in model_a.feature_rows(50)]
    expected = model_a.model.assign_rows(rows)
    got = compiled.assign_rows(rows)
    assert got.segment_id.tolist() == expected.segment_id.tolist()
    np.testing.assert_allclose(got.confidence, expected.confidence, atol=TOLERANCE)
    assert compiled.assign_rows([]).segment_id.shape == (0,)


def test_rows_missing_a_column_or_holding_text_are_refused_like_the_model(model_a):
    compiled = CompiledAssigner.from_model(model_a.model)
    row = dict(model_a.feature_rows(1)[0]["features"])
    column = compiled.numeric[0]
    with pytest.raises(InputError, match=f"the features lack the column '{column}', which the model needs"):
        compiled.assign_rows([{k: v for k, v in row.items() if k != column}])
    with pytest.raises(InputError, match=rf"feature column\(s\) '{column}' must hold numbers"):
        compiled.assign_rows([dict(row, **{column: "recent"})])
