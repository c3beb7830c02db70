"""Memory never grows with n^2: the silhouette, stability and density paths sample or work in blocks.

Each test runs a path on more customers than an n x n float matrix could comfortably
hold and checks two things: the size of what the pairwise computation was given
(recorded by wrapping `segwise.cluster.silhouette._silhouette_rows`, the one place distances
between customers are computed for scores), and the peak of the memory numpy
allocated meanwhile (numpy reports its buffers to `tracemalloc`), which must stay
far below the n x n matrix. No timings are asserted.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import segwise.cluster.select as select
import segwise.cluster.silhouette as silhouette
import segwise.validate as validate
from segwise import Segmenter
from segwise.cluster import DBSCANSegmenter, HDBSCANSegmenter, KMeansSegmenter
from segwise.stability import bootstrap_stability
from segwise.validate import silhouette_many, validation_report

N = 25_000
#: What an n x n float64 matrix of N customers would take (5 GB).
SQUARE_BYTES = N * N * 8


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def customers():
    X, _ = make_blobs(N, n_features=5, centers=4, cluster_std=1.0, random_state=4)
    return X


@pytest.fixture
def pairwise_rows(monkeypatch):
    """Rows of every matrix the silhouette's pairwise distances were computed on."""
    seen: list[int] = []
    original = silhouette._silhouette_rows

    def recording(X, labelings):
        seen.append(int(np.asarray(X).shape[0]))
        return original(X, labelings)

    monkeypatch.setattr(silhouette, "_silhouette_rows", recording)
    return seen


def _peak_bytes(run):
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_the_blocked_silhouette_never_holds_all_pairwise_distances():
    X = np.random.default_rng(0).normal(size=(6_000, 4))
    labels = [np.arange(6_000) % k for k in (2, 5, 9)]
    _, peak = _peak_bytes(lambda: silhouette_many(X, labels))
    square = 6_000 * 6_000 * 8
    assert peak < square / 4, f"{peak / 2**20:.0f} MiB for a {square / 2**20:.0f} MiB square matrix"


def test_choosing_k_and_validating_sample_the_customers(customers, pairwise_rows):
    model, peak = _peak_bytes(lambda: KMeansSegmenter(k_range=(2, 5), n_init=1, random_state=0).fit(customers))
    report, peak_validation = _peak_bytes(lambda: validation_report(customers, model.labels_, n_bootstrap=20))
    assert model.selection_.candidates[0]["silhouette_sample_size"] == validate.SILHOUETTE_SAMPLE
    assert report["silhouette_sample_size"] == validate.VALIDATION_SAMPLE
    # The k rule also scores each k on REFERENCE_DRAWS Gaussian reference sets of at most
    # REFERENCE_SIZE rows (segwise.cluster.select.reference_silhouettes): small, bounded blocks.
    reference = [n for n in pairwise_rows if n == select.REFERENCE_SIZE]
    assert len(reference) <= select.REFERENCE_DRAWS * (5 - 2 + 1)
    assert [n for n in pairwise_rows if n != select.REFERENCE_SIZE] == [validate.SILHOUETTE_SAMPLE,
                                                                         validate.VALIDATION_SAMPLE]
    assert max(peak, peak_validation) < SQUARE_BYTES / 10


def test_bootstrap_stability_refits_on_capped_samples_with_sampled_scores(customers, pairwise_rows):
    frame = pd.DataFrame(customers, columns=[f"f{i}" for i in range(customers.shape[1])])
    segmenter = Segmenter(n_segments=4, random_state=0).fit(frame)
    pairwise_rows.clear()
    result, peak = _peak_bytes(lambda: bootstrap_stability(segmenter, frame, n_bootstrap=2, max_sample=8_000))
    assert result.to_dict()["sample_size"] == 8_000 and result.n_customers == N
    # each refit scores its segments (Segmenter.metrics_) on at most the silhouette sample
    assert len(pairwise_rows) == 2 and max(pairwise_rows) <= validate.SILHOUETTE_SAMPLE
    assert peak < SQUARE_BYTES / 10


@pytest.mark.parametrize("method", [DBSCANSegmenter, HDBSCANSegmenter])
def test_density_methods_fit_a_sample_and_assign_everyone_in_chunks(customers, method):
    model, peak = _peak_bytes(lambda: method(fit_sample=3_000, random_state=0).fit(customers))
    assert model.details_["fit_sample_size"] == 3_000 and model.details_["sampled"] is True
    assert model.labels_.shape == (N,)
    assert peak < SQUARE_BYTES / 10
