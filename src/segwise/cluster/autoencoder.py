"""Autoencoder embedding, then k-means on it (PyTorch, CPU; the optional ``deep`` extra).

A small fully connected autoencoder (``d -> hidden -> embedding -> hidden -> d``,
ReLU) learns to reconstruct the prepared features through a narrow embedding;
k-means (`segwise.cluster.KMeansSegmenter`, automatic k) then segments the
customers in that embedding. It helps when segments differ along curved
combinations of features that k-means on the raw features cuts badly.

Reproducible: training runs on CPU with a seeded generator (initial weights,
shuffling), deterministic algorithms and one thread, and restores torch's global
random state, thread count and determinism flag afterwards. The reconstruction
loss of every epoch is kept in ``details_["loss_curve"]`` for the report.

Only training needs torch: the trained weights are stored as arrays and new
customers are encoded with numpy, so ``segwise assign`` works without the extra.
Above ``fit_sample`` customers the network is trained on a seeded sample; every
customer is encoded and segmented.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segwise.cluster.base import (
    SegmentClusterer, fit_input, check_int_param, param_error, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.cluster.kmeans import KMeansSegmenter, _check_n_segments
from segwise.errors import InputError
from segwise.cluster.silhouette import sample_indices

__all__ = ["AutoencoderSegmenter", "MissingExtraError", "require_torch"]


class MissingExtraError(InputError, ImportError):
    """An optional dependency is not installed (the message names the extra)."""


def require_torch():
    """Import torch, or raise `MissingExtraError` naming the ``deep`` extra."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError(
            "the autoencoder method needs PyTorch, which is not installed; install the deep extra: "
            "pip install 'segwise[deep]' (CPU build: pip install torch==2.13.0)"
        ) from None
    return torch


def _encode(X: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Forward pass of the encoder with numpy (ReLU between layers, none after the last)."""
    h = X
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight.T + bias
        if i < len(layers) - 1:
            np.maximum(h, 0.0, out=h)
    return h


@register_method("autoencoder")
class AutoencoderSegmenter(SegmentClusterer):
    """k-means on an autoencoder embedding of the prepared features.

    Parameters
    ----------
    n_segments : int or "auto"
    k_range : tuple of two ints
    embedding_dim : int or "auto"
        Size of the embedding; ``"auto"``: ``max(2, min(6, n_features // 2))``.
    hidden : tuple of int
        Sizes of the hidden layers of the encoder (the decoder mirrors them).
    epochs : int
    batch_size : int
    learning_rate : float
        Adam's step size.
    fit_sample : int
        Most customers the network is trained on.
    random_state : int, RandomState or None

    Attributes
    ----------
    labels_, n_segments_, selection_, details_
    kmeans_ : KMeansSegmenter
        The k-means fitted on the embedding.
    encoder_layers_ : list of (weight, bias) arrays
    """

    param_docs = {
        "embedding_dim": ("auto|int", "size of the embedding"),
        "hidden": ("counts", "sizes of the encoder's hidden layers"),
        "epochs": ("int", "training passes over the customers"),
        "batch_size": ("int", "customers per training step"),
        "learning_rate": ("float", "step size of the optimiser"),
    }
    assignment_rule = "the nearest centroid of the k-means run in the embedding"
    report_sections = ("autoencoder",)

    def __init__(self, n_segments="auto", *, k_range=(2, 12), embedding_dim="auto", hidden=(64, 32), epochs=40,
                 batch_size=256, learning_rate=1e-3, fit_sample=50_000, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.fit_sample = fit_sample
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the autoencoder, embed every customer, run k-means on the embedding."""
        X = fit_input(X)
        owner = type(self).__name__
        n, d = X.shape
        _check_n_segments(self.n_segments, owner, n)
        epochs = check_int_param(owner, "epochs", self.epochs, 1)
        batch_size = check_int_param(owner, "batch_size", self.batch_size, 1)
        check_int_param(owner, "fit_sample", self.fit_sample, 10)
        if self.embedding_dim == "auto":
            dim = max(2, min(6, d // 2))
        else:
            dim = check_int_param(owner, "embedding_dim", self.embedding_dim, 1)
        hidden = [check_int_param(owner, "hidden", h, 1) for h in (self.hidden or ())]
        if not isinstance(self.learning_rate, (int, float)) or self.learning_rate <= 0:
            raise param_error(owner, "learning_rate", "a float in the range (0, inf)", self.learning_rate)
        torch = require_torch()
        self.n_features_in_ = d
        seed = resolve_seed(self.random_state)
        rows = sample_indices(n, self.fit_sample, seed)
        layers, curve = self._train(torch, X[rows], hidden, dim, epochs, batch_size, seed)
        self.encoder_layers_ = layers
        embedding = _encode(X, layers)
        self.kmeans_ = KMeansSegmenter(self.n_segments, k_range=self.k_range, random_state=seed).fit(embedding)
        self.labels_ = self.kmeans_.labels_
        self.n_segments_ = self.kmeans_.n_segments_
        self.selection_ = self.kmeans_.selection_
        self.details_ = {
            "architecture": [d, *hidden, dim, *reversed(hidden), d],
            "embedding_dim": dim,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": float(self.learning_rate),
            "train_sample_size": int(len(rows)),
            "loss_curve": curve,
            "final_loss": curve[-1],
            "torch_version": str(torch.__version__),
        }
        return self

    def _train(self, torch, X: np.ndarray, hidden: list[int], dim: int, epochs: int, batch_size: int,
               seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[float]]:
        nn = torch.nn
        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        try:
            # Global torch settings are changed only for the training, and restored (see the module docstring).
            torch.set_num_threads(1)
            torch.use_deterministic_algorithms(True)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                sizes = [X.shape[1], *hidden, dim]
                enc: list[Any] = []
                dec: list[Any] = []
                for a, b in zip(sizes[:-1], sizes[1:]):
                    enc += [nn.Linear(a, b), nn.ReLU()]
                back = sizes[::-1]
                for a, b in zip(back[:-1], back[1:]):
                    dec += [nn.Linear(a, b), nn.ReLU()]
                encoder = nn.Sequential(*enc[:-1])
                decoder = nn.Sequential(*dec[:-1])
                model = nn.Sequential(encoder, decoder)
                optimiser = torch.optim.Adam(model.parameters(), lr=float(self.learning_rate))
                data = torch.from_numpy(X.astype(np.float32))
                generator = torch.Generator().manual_seed(seed)
                curve = []
                for _ in range(epochs):
                    order = torch.randperm(len(data), generator=generator)
                    total = 0.0
                    for start in range(0, len(data), batch_size):
                        batch = data[order[start:start + batch_size]]
                        optimiser.zero_grad()
                        loss = torch.mean((model(batch) - batch) ** 2)
                        loss.backward()
                        optimiser.step()
                        total += float(loss.detach()) * len(batch)
                    curve.append(round(total / len(data), 8))
                layers = [(m.weight.detach().numpy().astype(np.float64), m.bias.detach().numpy().astype(np.float64))
                          for m in encoder if isinstance(m, nn.Linear)]
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
        return layers, curve

    def embed(self, X) -> np.ndarray:
        """The embedding of each row."""
        X = self._check_X(X, "encoder_layers_")
        return _encode(X, self.encoder_layers_)

    def predict(self, X):
        """Nearest k-means centroid in the embedding."""
        embedding = self.embed(X)
        return self.kmeans_.predict(embedding)

    def confidence(self, X):
        """k-means confidence in the embedding (see `segwise.cluster.kmeans.centroid_confidence`)."""
        embedding = self.embed(X)
        return self.kmeans_.confidence(embedding)

    def to_state(self):
        kmeans_meta, kmeans_arrays = self.kmeans_.to_state()
        arrays = {f"kmeans/{k}": v for k, v in kmeans_arrays.items()}
        for i, (weight, bias) in enumerate(self.encoder_layers_):
            arrays[f"encoder_{i}_weight"] = weight
            arrays[f"encoder_{i}_bias"] = bias
        meta = {
            "params": state_params(self), "n_features_in": self.n_features_in_, "n_segments": self.n_segments_,
            "n_layers": len(self.encoder_layers_), "kmeans": kmeans_meta, "details": self.details_,
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ("k_range", "hidden")))
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.encoder_layers_ = [(arrays[f"encoder_{i}_weight"], arrays[f"encoder_{i}_bias"])
                                for i in range(int(meta["n_layers"]))]
        self.kmeans_ = KMeansSegmenter.from_state(
            meta["kmeans"], {k[len("kmeans/"):]: v for k, v in arrays.items() if k.startswith("kmeans/")})
        self.selection_ = self.kmeans_.selection_
        self.details_ = meta.get("details") or {}
        return self
