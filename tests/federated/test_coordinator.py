"""The coordinator with in-process silos (same JSON bytes as over HTTP; real processes
are in tests/e2e/test_federated.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

from segwise.errors import InputError
from segwise.features import build_features
from segwise.federated import FederatedKMeans, FederationError
from segwise.model import SegmentationModel

from .populations import local_silos, random_split


def pooled_features(silos, model):
    frames = [build_features(s.silo.transactions, as_of=model.metadata["as_of"], spec=model.required_spec).frame
              for s in silos]
    return pd.concat(frames)


@pytest.fixture(scope="module")
def plain_run(small_population, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plain")
    silos, log = local_silos(random_split(small_population.orders, 3, seed=1), tmp)
    result = FederatedKMeans(silos, k_range=(2, 7), random_state=0, tol=0.0).fit()
    return silos, log, result


def test_federated_equals_central_lloyd_from_the_same_initial_centroids(plain_run):
    silos, _, result = plain_run
    model = result.model
    frame = pooled_features(silos, model)
    X = model.segmenter.preprocessor_.transform(frame[model.segmenter.feature_columns_])
    k = result.centroids.shape[0]
    central = KMeans(n_clusters=k, init=result.initial_centroids[k], n_init=1, tol=0.0, max_iter=300,
                     algorithm="lloyd").fit(X)
    np.testing.assert_allclose(result.centroids, central.cluster_centers_, rtol=0, atol=1e-6)
    labels = model.segmenter.clusterer_.predict(X)
    assert adjusted_rand_score(central.labels_, labels) == 1.0
    metrics = model.segmenter.metrics_
    assert metrics["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)
    assert metrics["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert metrics["silhouette"] is None
    assert model.segmenter.clusterer_.inertia_ == pytest.approx(central.inertia_, rel=1e-9)


def test_k_is_the_knee_of_the_aggregated_inertia(plain_run):
    from segwise.cluster.select import knee_point

    _, _, result = plain_run
    selection = result.record["selection"]
    ks = [c["k"] for c in selection["candidates"]]
    assert ks == list(range(2, 8))
    inertias = [c["inertia"] for c in selection["candidates"]]
    assert all(a > b for a, b in zip(inertias, inertias[1:]))
    assert selection["chosen"] == knee_point(ks, inertias) == result.model.segmenter.n_segments_
    assert "knee" in selection["reason"]


def test_the_model_file_works_like_any_other(plain_run, tmp_path):
    silos, _, result = plain_run
    path = tmp_path / "model.segwise"
    result.model.save(path)
    loaded = SegmentationModel.load(path)
    assert loaded.metadata["federated"]["silos"] == ["silo-1", "silo-2", "silo-3"]
    names = list(loaded.names.values())
    assert len(set(names)) == len(names) and all(names)
    for silo in silos:
        written = pd.read_parquet(silo.silo.out_dir / "assignments.parquet")
        again = loaded.assign(silo.silo.transactions, as_of=loaded.metadata["as_of"])
        assert written["customer_id"].tolist() == again["customer_id"].tolist()
        assert written["segment_id"].tolist() == again["segment_id"].tolist()
        assert set(written["silo"]) == {silo.name}
    sizes = [p.n_customers for p in loaded.profiles]
    assert sum(sizes) == sum(len(pd.read_parquet(s.silo.out_dir / "assignments.parquet")) for s in silos)


def test_secure_aggregation_gives_the_same_model_and_hides_silo_sums(small_population, plain_run, tmp_path):
    _, _, plain = plain_run
    silos, log = local_silos(random_split(small_population.orders, 3, seed=1), tmp_path)
    result = FederatedKMeans(silos, k_range=(2, 7), random_state=0, tol=0.0, secure_aggregation=True).fit()
    np.testing.assert_allclose(result.centroids, plain.centroids, rtol=0, atol=1e-9)
    masked_paths = {"/rounds/prepare", "/rounds/transformed", "/rounds/lloyd", "/rounds/profile"}
    responses = [e for e in log.read() if e["direction"] == "response" and e["path"] in masked_paths]
    assert responses
    for entry in responses:
        aggregate = entry["body"]["aggregate"]
        assert set(aggregate) == {"layout", "masked"}
        assert all(isinstance(v, int) and 0 <= v < 2**128 for v in aggregate["masked"])


def test_differential_privacy_spends_exactly_the_budget(small_population, tmp_path):
    silos, _ = local_silos(random_split(small_population.orders, 3, seed=1), tmp_path, noise_seed=5)
    result = FederatedKMeans(silos, n_segments=3, dp_epsilon=8.0, dp_iterations=3, as_of="2025-01-01",
                             random_state=0).fit()
    privacy = result.record["privacy"]
    assert privacy["epsilon_spent"] == pytest.approx(8.0, rel=1e-9)
    assert [r["release"] for r in privacy["releases"]] == (
        ["prepare", "transformed", "candidates"] + ["lloyd"] * 3 + ["profile"])
    for silo_privacy in result.record["silo_privacy"].values():
        assert silo_privacy["epsilon_spent"] == pytest.approx(8.0, rel=1e-9)
    assert result.model.metadata["privacy"]["epsilon_spent"] == pytest.approx(8.0, rel=1e-9)
    assert result.model.segmenter.clusterer_.inertia_ != result.model.segmenter.clusterer_.inertia_  # NaN
    assert result.record["lloyd"]["iterations"] == 3


def test_a_single_silo_is_the_central_option(small_population, tmp_path):
    silos, log = local_silos([small_population.orders], tmp_path, noise_seed=3)
    result = FederatedKMeans(silos, n_segments=4, dp_epsilon=4.0, as_of="2025-01-01").fit()
    assert result.record["privacy"]["epsilon_spent"] == pytest.approx(4.0, rel=1e-9)
    assert result.model.segmenter.n_segments_ == 4
    assert "last_order_date" not in str([e["body"] for e in log.read() if e["path"] == "/session"
                                         and e["direction"] == "response" and e["body"].get("last_order_date")])


def test_journey_joins_without_its_categorical_column_and_the_run_says_so(small_population, tmp_path):
    silos, _ = local_silos(random_split(small_population.orders, 2, seed=1), tmp_path)
    result = FederatedKMeans(silos, n_segments=3, features=["rfm", "affinity", "journey"], random_state=0).fit()
    columns = result.record["columns"]
    assert "category_switching_rate" in columns and "first_purchase_category" not in columns
    assert result.record["notes"] and "first_purchase_category left out" in result.record["notes"][0]
    assert any("first_purchase_category left out" in n for n in result.model.segmenter.notes_)
    # The model assigns from the transactions like any other: the silos' own assignments again.
    model = result.model
    for silo in silos:
        written = pd.read_parquet(silo.silo.out_dir / "assignments.parquet")
        again = model.assign(silo.silo.transactions, as_of=model.metadata["as_of"])
        assert written["segment_id"].tolist() == again["segment_id"].tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"dp_epsilon": 1.0, "as_of": "2025-01-01"},
     "with differential privacy give the number of segments (--segments N): choosing it would spend privacy "
     "budget on every candidate"),
    ({"dp_epsilon": 1.0, "n_segments": 3},
     "with differential privacy give --as-of: the default (the day after the last order) would reveal one "
     "customer's order date"),
    ({"n_segments": 0},
     "The 'n_segments' parameter of FederatedKMeans must be 'auto' or an int in the range [1, inf). Got 0 instead."),
    ({"k_range": (1, 4)},
     "The 'k_range' parameter of FederatedKMeans must be two ints 2 <= low <= high. Got (1, 4) instead."),
    ({"features": ["engagement"]},
     "features: 'engagement' is not available in a federated run; families are rfm, affinity, journey and columns"),
])
def test_bad_parameters_are_refused_with_the_fix(small_population, tmp_path, kwargs, message):
    silos, _ = local_silos(random_split(small_population.orders, 2, seed=1), tmp_path)
    with pytest.raises(InputError) as info:
        FederatedKMeans(silos, **kwargs).fit()
    assert str(info.value).startswith(message)


def test_secure_aggregation_needs_two_silos(small_population, tmp_path):
    silos, _ = local_silos([small_population.orders], tmp_path)
    with pytest.raises(InputError, match="secure aggregation needs at least two silos"):
        FederatedKMeans(silos, secure_aggregation=True).fit()


def test_too_few_customers_for_the_budget_is_explained(small_population, tmp_path):
    silos, _ = local_silos(random_split(small_population.orders, 3, seed=1), tmp_path, noise_seed=1)
    with pytest.raises(FederationError, match=r"too few customers for epsilon 0.1: no histogram bin of .* stands "
                                              r"above the privacy noise; give a larger --dp-epsilon or more customers"):
        FederatedKMeans(silos, n_segments=3, dp_epsilon=0.1, as_of="2025-01-01").fit()


def test_too_many_segments_for_the_candidates_is_explained(small_population, tmp_path):
    silos, _ = local_silos(random_split(small_population.orders, 2, seed=1), tmp_path)
    with pytest.raises(FederationError, match="usable candidate centroid"):
        FederatedKMeans(silos, n_segments=40, n_candidates=5).fit()
