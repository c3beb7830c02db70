import sys

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import AutoencoderSegmenter
from segwise.cluster.autoencoder import MissingExtraError, require_torch
from segwise.errors import InputError

torch = pytest.importorskip("torch", reason="the deep extra is part of the dev install; CI has it")


@pytest.fixture(scope="module")
def curved():
    """4 groups on a 2-D plane, seen through 10 features (linear mixes, a sine, a square) with noise."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    latent = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], float)[y] + rng.normal(scale=0.5, size=(2000, 2))
    W = rng.normal(size=(2, 8))
    X = np.column_stack([latent @ W, np.sin(latent[:, :1]), latent[:, 1:] ** 2 / 4])
    X += rng.normal(scale=0.1, size=X.shape)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.fixture(scope="module")
def fitted(curved):
    X, _ = curved
    return AutoencoderSegmenter(k_range=(2, 6), embedding_dim=2, epochs=20, random_state=0).fit(X)


def test_recovers_groups_through_the_embedding(curved, fitted):
    _, y = curved
    assert fitted.n_segments_ == 4
    assert adjusted_rand_score(y, fitted.labels_) > 0.97
    details = fitted.details_
    assert details["architecture"] == [10, 64, 32, 2, 32, 64, 10]
    curve = details["loss_curve"]
    assert len(curve) == 20 and curve[-1] < curve[0]


def test_deterministic_and_leaves_torch_settings_alone(curved, fitted):
    X, _ = curved
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    again = AutoencoderSegmenter(k_range=(2, 6), embedding_dim=2, epochs=20, random_state=0).fit(X)
    assert again.details_["loss_curve"] == fitted.details_["loss_curve"]
    assert np.array_equal(again.labels_, fitted.labels_)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)
    assert not torch.are_deterministic_algorithms_enabled()


def test_state_round_trip_assigns_without_torch(curved, fitted, monkeypatch):
    X, _ = curved
    meta, arrays = fitted.to_state()
    monkeypatch.setitem(sys.modules, "torch", None)
    loaded = AutoencoderSegmenter.from_state(meta, arrays)
    assert np.array_equal(loaded.predict(X), fitted.labels_)
    assert np.array_equal(loaded.confidence(X[:100]), fitted.confidence(X[:100]))


def test_without_torch_the_message_names_the_extra(curved, monkeypatch):
    X, _ = curved
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"needs PyTorch, which is not installed; install the deep extra: "
                                                r"pip install 'segwise\[deep\]'") as info:
        AutoencoderSegmenter(epochs=1).fit(X)
    assert isinstance(info.value, ImportError) and isinstance(info.value, InputError)
    with pytest.raises(ImportError):
        require_torch()
