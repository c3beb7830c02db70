"""Self-organising map segmentation (minisom), segments by clustering the codebook.

The map is trained with minisom (sequential training, seeded); everything done to
all customers afterwards is vectorised numpy (best-matching units, errors,
component planes) and needs no minisom, so assignment works from the model file.

- **Map size** (`map_shape`): ``5 * sqrt(n)`` nodes (Vesanto's rule), kept within
  16..400 so that training and the codebook clustering stay fast, with the
  sides in the ratio of the spreads along the first two principal components
  (``sqrt(lambda1 / lambda2)``, at most 4:1).
- **PCA initialisation**: node (i, j) starts at ``mean + a_i sqrt(lambda1) pc1 +
  b_j sqrt(lambda2) pc2`` with ``a``, ``b`` evenly spaced in [-1, 1]: the map is
  a flat grid spanning the plane of the first two principal components, one
  standard deviation each way (as SOM Toolbox's ``lininit``). minisom's own
  ``pca_weights_init`` spans unit-length eigenvectors whatever the spread of the
  data, so it is not used.
- **Training**: ``min(100,000, max(10,000, 500 * nodes))`` iterations (Kohonen's
  500 per node, capped), initial neighbourhood radius half the longer side,
  learning rate 0.5, both decaying asymptotically (minisom's defaults).
- **Quality**: quantisation error (mean distance of a customer to its
  best-matching unit) and topographic error (share of customers whose two best
  units are not neighbours on the grid, diagonals included).
- **Segments**: Ward clustering of the node weights (Vesanto & Alhoniemi, 2000),
  number of segments chosen over ``k_range`` by `segwise.cluster.select.CHOICE_RULE` on the
  customers' segments; a customer's segment is its best unit's.
- ``details_`` holds the U-matrix (mean distance of each node to its grid
  neighbours), hit counts, the node -> cluster map and component planes (mean
  prepared value of each feature over the customers of each node; the node's
  weight where no customer lands).
"""

from __future__ import annotations


import numpy as np
from scipy.cluster.hierarchy import linkage as scipy_linkage

from segwise.cluster.base import (
    SegmentClusterer, fit_input, check_int_param, param_error, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.cluster.hierarchical import _Cut, _within_ss
from segwise.cluster.kmeans import _check_n_segments, centroid_confidence, squared_distances
from segwise.cluster.tree import cut_levels
from segwise.cluster.select import KSelection, select_n_segments

__all__ = ["SOMSegmenter", "map_shape", "pca_grid"]

_CHUNK = 50_000


def map_shape(n: int, X: np.ndarray | None = None, *, min_nodes: int = 16, max_nodes: int = 400) -> tuple[int, int]:
    """Rows and columns of the map for ``n`` customers (see the module docstring)."""
    nodes = int(np.clip(round(5 * np.sqrt(n)), min_nodes, max_nodes))
    ratio = 1.0
    if X is not None and X.shape[1] >= 2 and X.shape[0] >= 3:
        eig = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1]
        if eig[1] > 0:
            ratio = float(np.clip(np.sqrt(eig[0] / eig[1]), 1.0, 4.0))
    rows = max(2, int(round(np.sqrt(nodes * ratio))))
    cols = max(2, int(round(nodes / rows)))
    return rows, cols


def pca_grid(X: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Initial weights (rows x cols x features) on the plane of the first two principal components."""
    mean = X.mean(axis=0)
    if X.shape[1] == 1:
        spread = np.sqrt(X.var())
        line = mean + np.linspace(-1, 1, rows)[:, None] * spread
        return np.repeat(line[:, None, :], cols, axis=1)
    eigvals, eigvecs = np.linalg.eigh(np.cov(X, rowvar=False))
    order = np.argsort(eigvals)[::-1]
    lam = np.maximum(eigvals[order[:2]], 0.0)
    pc1, pc2 = eigvecs[:, order[0]], eigvecs[:, order[1]]
    a = np.linspace(-1.0, 1.0, rows)[:, None, None]
    b = np.linspace(-1.0, 1.0, cols)[None, :, None]
    return mean + a * np.sqrt(lam[0]) * pc1 + b * np.sqrt(lam[1]) * pc2


def _two_best(X: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best and second-best unit of every row and the distance to the best (chunked)."""
    best = np.empty(len(X), dtype=np.int64)
    second = np.empty(len(X), dtype=np.int64)
    dist = np.empty(len(X))
    for start in range(0, len(X), _CHUNK):
        d2 = squared_distances(X[start:start + _CHUNK], codebook)
        two = np.argpartition(d2, 1, axis=1)[:, :2]
        rows = np.arange(len(d2))
        first_is_best = d2[rows, two[:, 0]] <= d2[rows, two[:, 1]]
        b = np.where(first_is_best, two[:, 0], two[:, 1])
        s = np.where(first_is_best, two[:, 1], two[:, 0])
        best[start:start + _CHUNK] = b
        second[start:start + _CHUNK] = s
        dist[start:start + _CHUNK] = np.sqrt(d2[rows, b])
    return best, second, dist


def u_matrix(weights: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance of each node's weights to its (up to 8) grid neighbours."""
    rows, cols, _ = weights.shape
    total = np.zeros((rows, cols))
    count = np.zeros((rows, cols))
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            src_i = slice(max(0, -di), rows - max(0, di))
            src_j = slice(max(0, -dj), cols - max(0, dj))
            dst_i = slice(max(0, di), rows - max(0, -di))
            dst_j = slice(max(0, dj), cols - max(0, -dj))
            d = np.linalg.norm(weights[src_i, src_j] - weights[dst_i, dst_j], axis=2)
            total[src_i, src_j] += d
            count[src_i, src_j] += 1
    return total / count


@register_method("som")
class SOMSegmenter(SegmentClusterer):
    """Self-organising map, then Ward clustering of its codebook into segments.

    Parameters
    ----------
    n_segments : int or "auto"
        Number of segments cut from the codebook tree; ``"auto"`` searches ``k_range``.
    k_range : tuple of two ints
    map_rows, map_cols : int or "auto"
        Map size; ``"auto"``: `map_shape` (see the module docstring).
    num_iteration : int or "auto"
        Training iterations (one customer each); ``"auto"``: see the module docstring.
    sigma : float or "auto"
        Initial neighbourhood radius (``"auto"``: half the longer side).
    learning_rate : float
    selection_sample : int
        Customers used for the silhouette when choosing k.
    random_state : int, RandomState or None

    Attributes
    ----------
    labels_, n_segments_, selection_, details_
    weights_ : ndarray of shape (map_rows, map_cols, n_features)
        The trained codebook.
    node_cluster_ : ndarray of shape (map_rows * map_cols,)
        Segment (cluster) of each node, row-major.
    quantization_error_, topographic_error_ : float
    """

    param_docs = {
        "map_rows": ("auto|int", "rows of the map"),
        "map_cols": ("auto|int", "columns of the map"),
        "num_iteration": ("auto|int", "training iterations of the map"),
        "sigma": ("auto|float", "initial neighbourhood radius"),
        "learning_rate": ("float", "initial learning rate of the map"),
    }
    assignment_rule = "the segment of the best-matching unit of the map"
    report_sections = ("som",)

    @classmethod
    def summary_lines(cls, details: dict) -> list[str]:
        if "quantization_error" not in details:
            return []
        return [f"map {details['map_shape'][0]}x{details['map_shape'][1]}: quantisation error "
                f"{details['quantization_error']:.3f}, topographic error {details['topographic_error']:.3f}"]

    def __init__(self, n_segments="auto", *, k_range=(2, 12), map_rows="auto", map_cols="auto",
                 num_iteration="auto", sigma="auto", learning_rate=0.5, selection_sample=10_000, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.map_rows = map_rows
        self.map_cols = map_cols
        self.num_iteration = num_iteration
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.selection_sample = selection_sample
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the map, cluster the codebook, assign every customer to its best unit's segment."""
        from minisom import MiniSom

        X = fit_input(X)
        owner = type(self).__name__
        n, d = X.shape
        _check_n_segments(self.n_segments, owner, n)
        self.n_features_in_ = d
        seed = resolve_seed(self.random_state)
        rows, cols = map_shape(n, X)
        if self.map_rows != "auto":
            rows = check_int_param(owner, "map_rows", self.map_rows, 2)
        if self.map_cols != "auto":
            cols = check_int_param(owner, "map_cols", self.map_cols, 2)
        nodes = rows * cols
        if self.num_iteration == "auto":
            iterations = int(min(100_000, max(10_000, 500 * nodes)))
        else:
            iterations = check_int_param(owner, "num_iteration", self.num_iteration, 1)
        sigma = max(rows, cols) / 2.0 if self.sigma == "auto" else self.sigma
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or sigma <= 0:
            raise param_error(owner, "sigma", "'auto' or a float in the range (0, inf)", self.sigma)
        som = MiniSom(rows, cols, d, sigma=float(sigma), learning_rate=float(self.learning_rate),
                      neighborhood_function="gaussian", random_seed=seed)
        # minisom has no public setter for initial weights; see the module docstring for why not its PCA init.
        som._weights = pca_grid(X, rows, cols)
        som.train(X, iterations, random_order=True)
        weights = np.asarray(som.get_weights(), dtype=np.float64)
        codebook = weights.reshape(nodes, d)
        best, second, dist = _two_best(X, codebook)
        grid_r, grid_c = np.divmod(np.arange(nodes), cols)
        apart = np.maximum(np.abs(grid_r[best] - grid_r[second]), np.abs(grid_c[best] - grid_c[second])) > 1
        self.quantization_error_ = float(dist.mean())
        self.topographic_error_ = float(apart.mean())
        hits = np.bincount(best, minlength=nodes)

        Z = scipy_linkage(codebook, method="ward")
        if self.n_segments == "auto":
            lo, hi = int(self.k_range[0]), min(int(self.k_range[1]), nodes, n - 1)
            node_cuts = cut_levels(Z, list(range(lo, max(lo, hi) + 1)))
            cuts = {k: _nonempty(v, best, codebook)[best] for k, v in node_cuts.items()}
            self.selection_ = select_n_segments(
                X, lambda _X, k: _Cut(cuts[k], _within_ss(X, cuts[k], int(cuts[k].max()) + 1)),
                k_range=(min(cuts), max(cuts)), sample_size=self.selection_sample, fit_sample_size=n,
                random_state=seed, choose_by="silhouette",  # a cut of the map cannot cluster reference data
            )
            k = self.selection_.chosen
            node_cluster = _nonempty(node_cuts[k], best, codebook)
        else:
            k = min(int(self.n_segments), nodes)
            node_cluster = _nonempty(cut_levels(Z, [k])[k], best, codebook)
            self.selection_ = None
        self.weights_ = weights
        self.node_cluster_ = node_cluster.astype(np.int64)
        self.labels_ = self.node_cluster_[best]
        self.n_segments_ = int(self.node_cluster_.max()) + 1
        sums = np.zeros((nodes, d))
        np.add.at(sums, best, X)
        planes = np.where(hits[:, None] > 0, sums / np.maximum(hits, 1)[:, None], codebook)
        self.details_ = {
            "map_shape": [rows, cols],
            "map_size_rule": "given" if self.map_rows != "auto" or self.map_cols != "auto" else
            "5 * sqrt(n) nodes within 16..400, sides in the ratio sqrt(lambda1 / lambda2) <= 4",
            "iterations": iterations,
            "sigma": float(sigma),
            "initialisation": "PCA plane (first two principal components, +-1 standard deviation)",
            "quantization_error": self.quantization_error_,
            "topographic_error": self.topographic_error_,
            "u_matrix": u_matrix(weights).round(6).tolist(),
            "hits": hits.reshape(rows, cols).tolist(),
            "node_cluster": self.node_cluster_.reshape(rows, cols).tolist(),
            "component_planes": [planes[:, j].reshape(rows, cols).round(6).tolist() for j in range(d)],
            "empty_nodes": int((hits == 0).sum()),
        }
        return self

    def _node_distances(self, X) -> np.ndarray:
        X = self._check_X(X, "weights_")
        return squared_distances(X, self.weights_.reshape(-1, self.n_features_in_))

    def predict(self, X):
        """Segment of each row's best-matching unit."""
        X = self._check_X(X, "weights_")
        return self.node_cluster_[_two_best(X, self.weights_.reshape(-1, self.n_features_in_))[0]]

    def confidence(self, X):
        """``1 - d_own / d_other``: distance to the best unit against the nearest unit of another segment."""
        X = self._check_X(X, "weights_")
        codebook = self.weights_.reshape(-1, self.n_features_in_)
        out = np.empty(len(X))
        for start in range(0, len(X), _CHUNK):
            d2 = squared_distances(X[start:start + _CHUNK], codebook)
            per_segment = np.full((len(d2), self.n_segments_), np.inf)
            for c in range(self.n_segments_):
                per_segment[:, c] = d2[:, self.node_cluster_ == c].min(axis=1)
            out[start:start + _CHUNK] = centroid_confidence(np.sqrt(per_segment))
        return out

    def to_state(self):
        meta = {
            "params": state_params(self),
            "n_features_in": self.n_features_in_,
            "n_segments": self.n_segments_,
            "quantization_error": self.quantization_error_,
            "topographic_error": self.topographic_error_,
            "selection": self.selection_.to_dict() if self.selection_ is not None else None,
            "details": self.details_,
        }
        return meta, {"weights": self.weights_, "node_cluster": self.node_cluster_}

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"]))
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.quantization_error_ = float(meta["quantization_error"])
        self.topographic_error_ = float(meta["topographic_error"])
        self.weights_ = arrays["weights"]
        self.node_cluster_ = arrays["node_cluster"].astype(np.int64)
        self.selection_ = KSelection.from_dict(meta["selection"]) if meta.get("selection") else None
        self.details_ = meta.get("details") or {}
        return self


def _nonempty(node_cluster: np.ndarray, best: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Node clusters renumbered so every cluster has customers.

    Nodes of a cluster no customer lands in join the cluster of the nearest node
    (in weight space) of a cluster that has customers.
    """
    node_cluster = node_cluster.copy()
    hit_clusters = np.unique(node_cluster[best])
    orphan = ~np.isin(node_cluster, hit_clusters)
    if orphan.any():
        kept = np.flatnonzero(~orphan)
        d2 = squared_distances(codebook[orphan], codebook[kept])
        node_cluster[orphan] = node_cluster[kept[d2.argmin(axis=1)]]
    _, renumbered = np.unique(node_cluster, return_inverse=True)
    return renumbered.astype(np.int64)
