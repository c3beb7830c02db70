import json

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

from segwise import Segmenter
from segwise.cluster.base import METHODS, SegmentClusterer, register_method
from segwise.errors import InputError
from segwise.stability import (
    STABILITY_K_RULE, StabilityResult, bootstrap_stability, jaccard_best_match, stability_by_k,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Many small k-means fits: OpenMP threads of parallel test workers only contend."""
    with threadpool_limits(1):
        yield


def _frame(X: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])


@pytest.fixture(scope="module")
def separated():
    """Four well-separated groups."""
    X, _ = make_blobs(900, centers=[[0, 0, 0], [12, 0, 0], [0, 12, 0], [0, 0, 12]], cluster_std=1.0,
                      random_state=3)
    return _frame(X)


@pytest.fixture(scope="module")
def structureless():
    """One round Gaussian cloud: any split into four is arbitrary."""
    return _frame(np.random.default_rng(5).normal(size=(900, 3)))


def test_jaccard_best_match_by_hand():
    reference = np.array([0, 0, 0, 1, 1, 2])
    other = np.array([5, 5, 7, 7, 7, 7])
    # Segment 0 = {0,1,2}: with 5 = {0,1}: 2/3; with 7 = {2..5}: 1/6 -> 2/3.
    # Segment 1 = {3,4}: with 7: 2/4 -> 1/2.  Segment 2 = {5}: with 7: 1/4.  Segment 9: absent.
    assert jaccard_best_match(reference, other, [0, 1, 2, 9]) == pytest.approx([2 / 3, 1 / 2, 1 / 4, np.nan],
                                                                              nan_ok=True)


def test_stability_is_near_one_on_well_separated_groups(separated):
    seg = Segmenter(n_segments=4, random_state=0).fit(separated)
    result = bootstrap_stability(seg, separated, n_bootstrap=8, random_state=1)
    assert result.ari_mean > 0.97
    assert min(result.per_segment.values()) > 0.95
    assert result.unstable == []
    assert result.ari_all is not None and result.ari_all.mean() > 0.97


def test_stability_is_clearly_lower_on_structureless_data(structureless):
    seg = Segmenter(n_segments=4, random_state=0).fit(structureless)
    result = bootstrap_stability(seg, structureless, n_bootstrap=8, random_state=1)
    assert result.ari_mean < 0.8
    assert np.mean(list(result.per_segment.values())) < 0.85


def test_auto_number_of_segments_is_refitted_too(separated, structureless):
    auto = Segmenter(k_range=(2, 6), random_state=0)
    stable = bootstrap_stability(auto.fit(separated), separated, n_bootstrap=4)
    assert stable.n_segments == [4, 4, 4, 4] and stable.ari_mean > 0.97
    noise = bootstrap_stability(auto.fit(structureless), structureless, n_bootstrap=4)
    assert noise.ari_mean < stable.ari_mean - 0.15


def test_run_json_shape_and_flags(structureless):
    seg = Segmenter(n_segments=6, random_state=0).fit(structureless)
    result = bootstrap_stability(seg, structureless, n_bootstrap=5, random_state=2, threshold=0.95)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["B"] == 5
    assert set(record["per_segment"]) == {str(i) for i in range(6)}
    low, high = record["ari_ci"]
    assert low <= record["ari_mean"] <= high
    assert record["unstable"] == [int(k) for k, v in record["per_segment"].items() if v < 0.95]
    assert record["unstable"], "a 0.95 threshold flags segments of a structureless cloud"
    assert record["n_segments"] == {"reference": 6, "bootstrap": [6] * 5}
    assert record["threshold"] == 0.95 and record["n_customers"] == 900


def test_same_seed_same_result_and_workers_agree(separated):
    seg = Segmenter(n_segments=3, random_state=0).fit(separated)
    one = bootstrap_stability(seg, separated, n_bootstrap=4, random_state=7)
    again = bootstrap_stability(seg, separated, n_bootstrap=4, random_state=7, n_jobs=2)
    np.testing.assert_allclose(one.ari, again.ari)
    np.testing.assert_allclose(one.jaccard, again.jaccard)


def test_stability_by_k_prefers_the_planted_number(separated):
    result = stability_by_k(Segmenter(random_state=0), separated, [3, 4, 5, 6], n_bootstrap=4)
    by_k = {c["k"]: c for c in result["candidates"]}
    assert result["chosen"] == 4 and result["rule"] == STABILITY_K_RULE
    assert by_k[4]["ari_mean"] > 0.97 and by_k[4]["min_jaccard"] > 0.95
    assert by_k[6]["ari_mean"] < by_k[4]["ari_mean"]


@pytest.fixture
def method_without_predict():
    """A method registered only for this test: agglomerative, no assignment of new customers."""

    @register_method("test_agglomerative")
    class AgglomerativeSegmenter(SegmentClusterer):
        def __init__(self, n_segments=2, random_state=None):
            self.n_segments = n_segments
            self.random_state = random_state

        def fit(self, X, y=None):
            self.labels_ = AgglomerativeClustering(self.n_segments).fit_predict(X).astype(np.int64)
            self.n_segments_ = int(self.n_segments)
            return self

        def predict(self, X):
            raise NotImplementedError("agglomerative clustering cannot assign new customers")

    yield "test_agglomerative"
    METHODS.pop("test_agglomerative")


def test_any_method_of_the_contract_is_bootstrapped(separated, method_without_predict):
    seg = Segmenter(method=method_without_predict, n_segments=4, random_state=0).fit(separated)
    result = bootstrap_stability(seg, separated, n_bootstrap=4)
    assert result.ari_mean > 0.97
    assert result.ari_all is None and result.to_dict()["ari_all_mean"] is None


def test_parameter_errors(separated):
    seg = Segmenter(n_segments=2, random_state=0).fit(separated)
    with pytest.raises(InputError, match=r"The 'n_bootstrap' parameter of bootstrap_stability must be an int "
                                         r"in the range \[2, inf\)\. Got 1 instead\."):
        bootstrap_stability(seg, separated, n_bootstrap=1)
    with pytest.raises(InputError, match="'threshold' parameter of bootstrap_stability"):
        bootstrap_stability(seg, separated, threshold=0)
    with pytest.raises(InputError, match="fitted on 900 customers, the table has 10"):
        bootstrap_stability(seg, separated.head(10))
    with pytest.raises(InputError, match="candidates of at least 2 segments"):
        stability_by_k(seg, separated, [1, 2])


def test_stability_result_handles_a_segment_never_drawn():
    result = StabilityResult(segment_ids=[0, 1], ari=np.array([0.9, 0.8]), ari_all=None,
                             jaccard=np.array([[0.9, np.nan], [0.7, np.nan]]), n_segments=[2, 2],
                             reference_n_segments=2, n_customers=10)
    assert result.per_segment == {0: pytest.approx(0.8), 1: None}
    assert result.unstable == [1]
    assert result.to_dict()["per_segment_ci"]["1"] is None


def test_a_run_carries_the_stability(small_population, tmp_path):
    import segwise

    result = segwise.segment(small_population.orders, n_segments=6, random_state=0, stability=3)
    assert result.stability == result.run["stability"]
    assert result.stability["B"] == 3 and result.stability["n_segments"] == {"reference": 6, "bootstrap": [6, 6, 6]}
    assert set(result.stability["per_segment"]) == {str(s) for s in result.model.names}
    assert "stability" in result.run["timings"]
    result.save(tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["stability"]["ari_mean"] == pytest.approx(
        result.stability["ari_mean"])


class _SizeRecordingSegmenter(Segmenter):
    """A Segmenter that records how many customers each fit saw (clones keep the class)."""

    fitted_sizes: list[int] = []

    def fit(self, X, y=None):
        _SizeRecordingSegmenter.fitted_sizes.append(len(X.frame) if hasattr(X, "frame") else len(X))
        return super().fit(X, y)


def test_large_tables_are_bootstrapped_with_capped_samples_and_every_customer_assigned(separated):
    seg = _SizeRecordingSegmenter(n_segments=4, random_state=0).fit(separated)
    _SizeRecordingSegmenter.fitted_sizes.clear()
    result = bootstrap_stability(seg, separated, n_bootstrap=4, random_state=1, max_sample=300)
    assert _SizeRecordingSegmenter.fitted_sizes == [300] * 4
    record = result.to_dict()
    assert record["sample_size"] == 300 and record["n_customers"] == 900
    assert "300 draws with replacement (m-out-of-n bootstrap) of the 900 customers" in record["method"]
    # still stable on well-separated groups, and every original customer is assigned by each refit
    assert result.ari_mean > 0.97 and result.unstable == []
    assert result.ari_all is not None and result.ari_all.mean() > 0.97
    # below the cap, the classic bootstrap: n draws
    _SizeRecordingSegmenter.fitted_sizes.clear()
    full = bootstrap_stability(seg, separated, n_bootstrap=2, random_state=1)
    assert _SizeRecordingSegmenter.fitted_sizes == [900, 900] and full.to_dict()["sample_size"] == 900
    assert "m-out-of-n" not in full.to_dict()["method"]
    with pytest.raises(InputError, match=r"The 'max_sample' parameter of bootstrap_stability must be an int in the "
                                         r"range \[2, inf\) or None\. Got 1 instead\."):
        bootstrap_stability(seg, separated, max_sample=1)
