"""The shipped Gaussian mixture served over HTTP: probabilities are the model's ``predict_proba``.

A real ``segwise run --method gmm`` model (not a test-only method) answers ``/v1/assign``
with the segment probabilities its clusterer gives, in segment-id order; the segment is
the most probable one and the confidence is its probability.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import _train
from .server import Server

N_ASKED = 40


@pytest.fixture(scope="module")
def gmm(tmp_path_factory):
    # Six mixture components on two features overlap: many customers are between two segments.
    return _train(tmp_path_factory.mktemp("gmm"), 400, 13, method="gmm", n_segments=6,
                  features=["recency_days", "monetary_total"])


@pytest.fixture(scope="module")
def server(gmm, tmp_path_factory):
    running = Server([gmm.path], tmp_path_factory.mktemp("gmm-server") / "server.log").wait_ready()
    yield running
    running.stop()


def test_served_probabilities_are_the_models_predict_proba(server, gmm):
    segmenter = gmm.model.segmenter
    columns = list(gmm.model.input_columns)
    # The least sure customers first: where probabilities are not one-hot.
    order = np.argsort(segmenter.clusterer_.predict_proba(segmenter.preprocessor_.transform(gmm.features)).max(axis=1))
    rows = order[:N_ASKED]
    frame = gmm.features.iloc[rows]
    prepared = segmenter.preprocessor_.transform(frame)
    by_cluster = segmenter.clusterer_.predict_proba(prepared)
    expected = np.zeros_like(by_cluster)
    expected[:, segmenter.label_map_] = by_cluster  # cluster columns to segment-id order
    assert np.allclose(expected.sum(axis=1), 1.0)
    with server.client() as http:
        info = http.get("/v1/model").json()
        assert info["method"] == "gmm" and info["has_probabilities"] is True
        for row, position in enumerate(rows):
            item = gmm.feature_rows(1, start=int(position))[0]
            assert set(item["features"]) == set(columns)
            body = http.post("/v1/assign", json=item).json()
            served = np.asarray(body["probabilities"])
            np.testing.assert_allclose(served, expected[row], rtol=0, atol=1e-9)
            assert body["segment_id"] == int(np.argmax(served))
            assert body["segment_id"] == gmm.assignments.loc[frame.index[row], "segment_id"]
            assert body["confidence"] == pytest.approx(gmm.assignments.loc[frame.index[row], "confidence"], abs=1e-9)


def test_the_mixture_is_not_sure_of_everyone(gmm):
    # Otherwise the comparison above would hold for any one-hot answer.
    prepared = gmm.model.segmenter.preprocessor_.transform(gmm.features)
    top = gmm.model.segmenter.clusterer_.predict_proba(prepared).max(axis=1)
    assert (top < 0.9).sum() >= N_ASKED
