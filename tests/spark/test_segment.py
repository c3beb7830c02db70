"""Preparation and clustering on Spark, exported into the ordinary model file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segwise.data import load_transactions
from segwise.features import build_features
from segwise.runs import segment
from segwise.segmenter import Segmenter

# A Spark session takes tens of seconds to start: the module is slow as a whole.
pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def features(synthetic_log):
    return build_features(load_transactions(synthetic_log["parquet"]))


def test_preparation_fitted_on_spark_is_the_local_preparation(spark_engine, features):
    from segwise.engines.spark_stats import SparkCustomers, prepared_vectors
    from segwise.prepare import Preprocessor

    local = Segmenter(n_segments=3, random_state=0).fit(features).preprocessor_
    spark = Preprocessor(numeric_columns=local.numeric_columns, categorical_columns=local.categorical_columns,
                         weights=local.weights, families=local.families, log_columns=local.log_columns,
                         random_state=0).fit(SparkCustomers(spark_engine, features.frame))
    local_meta, local_arrays = local.to_state()
    spark_meta, spark_arrays = spark.to_state()
    for key in ("numeric_in", "indicator_columns", "categorical_levels", "prepared_names"):
        assert spark_meta[key] == local_meta[key], key
    assert spark_meta["report"]["log"] == local_meta["report"]["log"]
    assert spark_meta["report"]["dropped"] == local_meta["report"]["dropped"]
    for key, value in local_arrays.items():
        np.testing.assert_allclose(spark_arrays[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
    # The Spark columns compute what the model file's numpy code computes.
    rows = prepared_vectors(spark_engine, features.frame, spark).collect()
    on_spark = np.asarray([r["features"].toArray() for r in rows])
    ids = [r["customer_id"] for r in rows]
    np.testing.assert_allclose(on_spark, spark.transform(features.frame.loc[ids]), rtol=1e-9, atol=1e-12)


def test_spark_finds_and_scales_two_valued_columns_as_the_local_preparation(spark_engine, features):
    from segwise.engines.spark_stats import SparkCustomers
    from segwise.prepare import Preprocessor

    frame = features.frame.assign(repeat_buyer=(features.frame["n_orders"] > 1).astype(float),
                                  big_basket=np.where(features.frame["monetary_avg"] > 60, 120.0, 8.0))
    columns = ["recency_days", "n_orders", "repeat_buyer", "big_basket"]
    params = {"numeric_columns": columns, "log_columns": ["n_orders", "big_basket"], "corr_threshold": None}
    local = Preprocessor(**params).fit(frame)
    spark = Preprocessor(**params).fit(SparkCustomers(spark_engine, frame))
    assert local.report_["yes_no"] == spark.to_state()[0]["report"]["yes_no"] == ["repeat_buyer", "big_basket"]
    np.testing.assert_allclose(spark.scale_, local.scale_, rtol=1e-9)
    prepared = spark.transform(frame)
    for j in (2, 3):
        assert np.ptp(prepared[:, j]) == pytest.approx(np.sqrt(2))


def test_kmeans_from_the_same_initial_centres_agrees_with_the_local_engine(spark_engine, features):
    from segwise.cluster.mllib import fit_spark_method
    from segwise.engines.spark_stats import prepared_vectors

    pre = Segmenter(n_segments=3, random_state=0).fit(features).preprocessor_
    X = pre.transform(features.frame)
    init = X[np.random.default_rng(3).choice(len(X), 5, replace=False)]
    local = KMeans(n_clusters=5, init=init, n_init=1, max_iter=300, tol=1e-6).fit(X)
    vectors = prepared_vectors(spark_engine, features.frame, pre)
    spark = fit_spark_method(vectors, method="kmeans", n_segments=5, init_centers=init, random_state=0)
    assert adjusted_rand_score(local.labels_, spark.predict(X)) >= 0.99
    np.testing.assert_allclose(spark.cluster_centers_, local.cluster_centers_, atol=1e-6)


def test_profiles_aggregated_on_spark_equal_the_local_profiles(spark_engine, features):
    from segwise.engines.spark_stats import SparkCustomers
    from segwise.naming import name_segments, named_profiles
    from segwise.profile import compute_profiles

    segmenter = Segmenter(n_segments=4, random_state=0).fit(features)
    frame = features.frame.copy()
    # A categorical column (as customer attributes give), shares 4:2:1 so no two tie.
    frame["region"] = np.where(np.arange(len(frame)) % 7 < 4, "north",
                               np.where(np.arange(len(frame)) % 7 < 6, "south", "east"))
    options = {"units": segmenter.units_, "value_column": segmenter.value_col_,
               "log_columns": set(segmenter.log_columns_)}
    local = compute_profiles(frame, segmenter.labels_, **options)
    name_segments(local, frame, segmenter.labels_, log_columns=options["log_columns"])
    stats_ = SparkCustomers(spark_engine, frame).segment_stats(
        segmenter.labels_, value_column=options["value_column"], log_columns=options["log_columns"])
    on_spark = named_profiles(stats_, **options)
    assert frame["interpurchase_days_mean"].isna().any()  # missing values are part of the check
    assert on_spark.names == local.names and len(set(local.names.values())) == 4
    for mine, theirs in zip(on_spark, local):
        assert (mine.n_customers, mine.archetype, mine.description) == (theirs.n_customers, theirs.archetype,
                                                                       theirs.description)
        assert [t["feature"] for t in mine.traits] == [t["feature"] for t in theirs.traits]
        # journey's first_purchase_category (eight levels, five kept, ties in text order) and the region.
        assert list(mine.categories) == list(theirs.categories) == ["first_purchase_category", "region"]
        for column in mine.categories:
            assert list(mine.categories[column]) == list(theirs.categories[column]), column
            assert mine.categories[column] == pytest.approx(theirs.categories[column], rel=1e-12)
        assert set(mine.categories["region"]) == {"north", "south", "east"}
        assert len(mine.categories["first_purchase_category"]) == 5
        for field in ("means", "medians", "zscores"):
            got, expected = getattr(mine, field), getattr(theirs, field)
            assert list(got) == list(expected)
            np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-9, atol=1e-12,
                                       err_msg=field)
        assert mine.share_revenue == pytest.approx(theirs.share_revenue, rel=1e-9)
    np.testing.assert_allclose(list(on_spark.population_medians.values()),
                               list(local.population_medians.values()), rtol=1e-9)


@pytest.fixture(scope="module")
def spark_run(spark_engine, synthetic_log, tmp_path_factory):
    result = segment(synthetic_log["parquet"], engine=spark_engine, k_range=(2, 4), random_state=0)
    out = tmp_path_factory.mktemp("spark-run")
    result.save(out)
    return result, out


def test_run_on_spark_chooses_k_on_spark_and_writes_the_usual_outputs(spark_run, synthetic_log):
    result, out = spark_run
    selection = result.run["selection"]
    assert [c["k"] for c in selection["candidates"]] == [2, 3, 4]
    assert "ClusteringEvaluator" in selection["rule"] and selection["chosen"] == result.n_segments
    assert all(-1 <= c["silhouette"] <= 1 and c["inertia"] > 0 for c in selection["candidates"])
    assert result.run["method"] == "kmeans" and len(result.assignments) == result.run["n_customers"]
    truth = synthetic_log["population"].truth.set_index("customer_id")["behaviour_type"]
    truth.index = truth.index.astype(str)
    local = segment(synthetic_log["parquet"], n_segments=result.n_segments, random_state=0)
    assert adjusted_rand_score(local.assignments["segment_id"], result.assignments["segment_id"]) > 0.8
    assert sorted(p.name for p in result.profiles) == sorted(set(result.assignments["segment_name"]))


def test_a_spark_model_assigns_identically_without_spark(spark_run, synthetic_log, tmp_path):
    result, out = spark_run
    assigned = tmp_path / "assigned.csv"
    code = (
        "import sys\n"
        "from segwise.cli import main\n"
        f"sys.argv = ['segwise', 'assign', {str(out / 'model.segwise')!r}, {synthetic_log['parquet']!r}, "
        f"'--out', {str(assigned)!r}, '--as-of', {result.run['as_of']!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'pyspark' not in sys.modules, 'pyspark was imported'\n"
        "print('no-spark-ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "no-spark-ok" in done.stdout, done.stderr
    again = pd.read_csv(assigned, dtype={"customer_id": str})
    merged = result.assignments.merge(again, on="customer_id", suffixes=("", "_again"))
    assert len(merged) == len(result.assignments)
    assert (merged["segment_id"] == merged["segment_id_again"]).all()
    np.testing.assert_allclose(merged["confidence"], merged["confidence_again"], rtol=1e-9)
    assert json.loads((out / "run.json").read_text())["method"] == "kmeans"


def test_bisecting_kmeans_splits_standardised_customers(spark_engine, features):
    # MLlib nudges a centre by a multiple of its norm to split it; standardised data
    # is centred at the origin, which left everyone in one cluster before the shift.
    segmenter = Segmenter(method="bisecting_kmeans", n_segments=4, random_state=0).fit(features, engine=spark_engine)
    assert segmenter.clusterer_.method_name == "spark_bisecting_kmeans"
    assert segmenter.n_segments_ == 4 and sorted(np.unique(segmenter.labels_)) == [0, 1, 2, 3]
    assert np.bincount(segmenter.labels_).min() >= 0.02 * len(segmenter.labels_)


def test_a_range_of_segments_is_chosen_within_on_spark(spark_engine, features):
    segmenter = Segmenter(n_segments="3..4", random_state=0).fit(features, engine=spark_engine)
    assert [c["k"] for c in segmenter.clusterer_.selection_.candidates] == [3, 4]
    assert segmenter.n_segments_ in (3, 4)


@pytest.mark.parametrize("method,stored", [("gmm", "spark_gmm"), ("bisecting_kmeans", "spark_bisecting_kmeans")])
def test_gmm_and_bisecting_kmeans_export_to_models_that_reload(spark_engine, tmp_path, method, stored):
    from segwise.features import FeatureTable
    from segwise.features.base import FeatureColumn

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    X = np.vstack([rng.normal(c, 1.0, (120, 2)) for c in centres])
    frame = pd.DataFrame(X, columns=["spend", "visits"], index=pd.Index([f"c{i}" for i in range(len(X))],
                                                                        name="customer_id"))
    table = FeatureTable(frame=frame, columns={c: FeatureColumn(c, "attributes", "units", f"{c} of the customer")
                                               for c in frame.columns}, as_of=None, spec=None)
    segmenter = Segmenter(method=method, n_segments=3, random_state=0,
                          preprocessing={"winsorize": None}).fit(table, engine=spark_engine)
    truth = np.repeat([0, 1, 2], 120)
    assert adjusted_rand_score(truth, segmenter.labels_) > 0.95
    assert segmenter.clusterer_.method_name == stored
    state = segmenter.to_state()
    again = Segmenter.from_state(*state)
    np.testing.assert_array_equal(again.predict(frame), segmenter.labels_)
    confidence = again.predict_confidence(frame)
    assert ((0 <= confidence) & (confidence <= 1)).all()
    with pytest.raises(ValueError, match="is fitted on the Spark engine"):
        type(segmenter.clusterer_)(n_segments=3).fit(X)
