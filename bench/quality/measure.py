"""Measuring one family: segwise with no flags, the seed notebook baseline and the oracle.

- **segwise**: ``segwise.segment(data)`` for an order log, or
  ``segwise.segment(customers=table)`` for a customer table: the call ``segwise
  run`` makes, with no option set.
- **baseline** (the seed guide's notebook): per customer recency, frequency
  (orders) and monetary (net spend) from the order lines, cancellations left
  out; ``log1p``, standardised, k-means (``n_init=10``) for k = 2..10, the k with
  the best silhouette (5,000-customer sample). On a customer table, which has no
  RFM, the same loop runs on every numeric column (``log1p`` of the skewed
  non-negative ones, missing values filled with the median).
- **oracle**: k-means and Gaussian mixtures (full and diagonal covariance) at the
  *true* k on the family's standardised defining features; the best ARI. It
  shows what is recoverable when one knows what defines the types.

Everything runs with one thread (see `measure_family`). Every score is the adjusted Rand index against the planted types, on the
customers that segwise, the baseline and the truth all have.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from bench.quality.common import Family, Population

__all__ = ["run_segwise", "baseline_labels", "oracle_ari", "measure_family", "WEAK_WORDS"]

#: Words of a structure verdict that count as "weak structure reported".
WEAK_WORDS = ("weak", "none", "no clear", "continuum")


def _clean_id(values) -> pd.Index:
    text = pd.Index(values).astype(str)
    return text.str.replace(r"\.0$", "", regex=True)


def run_segwise(pop: Population, seed: int = 0) -> dict[str, Any]:
    """Run segwise with no flags; labels (Series by customer id), chosen k and the structure verdict."""
    import segwise

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pop.kind == "log":
            result = segwise.segment(pop.data, random_state=seed)
        else:
            result = segwise.segment(customers=pop.data, random_state=seed)
    seconds = time.perf_counter() - started
    assignments = result.assignments
    labels = pd.Series(assignments["segment_id"].to_numpy(), index=_clean_id(assignments["customer_id"]))
    selection = result.run.get("selection") or {}
    structure = selection.get("structure") or {}
    return {
        "labels": labels,
        "k": int(result.n_segments),
        "seconds": round(seconds, 2),
        "structure": structure.get("verdict", "not reported"),
        "structure_sentence": structure.get("sentence"),
        "structure_margin": structure.get("margin"),
        "k_supported": selection.get("supported"),
        "reason": selection.get("reason"),
        "merged": selection.get("merged"),
        "defined_by": list(result.model.segmenter.feature_columns_),
    }


def _kmeans_silhouette(X: np.ndarray, seed: int, k_range=(2, 10)) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(X), size=min(len(X), 5_000), replace=False)
    best = (-2.0, None, None)
    for k in range(k_range[0], min(k_range[1], len(X) - 1) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
        if len(np.unique(labels[sample])) < 2:
            continue
        score = silhouette_score(X[sample], labels[sample])
        if score > best[0]:
            best = (score, labels, k)
    return best[1], best[2]


def baseline_labels(pop: Population, seed: int = 0) -> tuple[pd.Series, int]:
    """The seed notebook: log RFM (or log numeric columns of a table), k-means, silhouette-best k."""
    if pop.kind == "log":
        lines = pop.lines
        if "cancelled" in lines:
            lines = lines[~lines["cancelled"]]
        as_of = lines["ts"].max().normalize() + pd.Timedelta(days=1)
        g = lines.groupby("cust")
        rfm = pd.DataFrame({"recency": (as_of - g["ts"].max()).dt.days, "frequency": g["order"].nunique(),
                            "monetary": g["amount"].sum().clip(lower=0)})
        X = np.log1p(rfm.to_numpy(dtype=float))
        index = rfm.index.astype(str)
    else:
        table = pop.data.set_index(pop.data.columns[0])
        numeric = table.select_dtypes("number")
        numeric = numeric.fillna(numeric.median())
        cols = []
        for c in numeric.columns:
            v = numeric[c].to_numpy(dtype=float)
            cols.append(np.log1p(v) if v.min() >= 0 and pd.Series(v).skew() > 1 else v)
        X = np.column_stack(cols)
        index = _clean_id(numeric.index)
    X = StandardScaler().fit_transform(X)
    labels, k = _kmeans_silhouette(X, seed)
    return pd.Series(labels, index=index), int(k)


def oracle_ari(pop: Population, truth: pd.Series, k: int, seed: int = 0) -> tuple[float, str]:
    """The better ARI of k-means and a Gaussian mixture at the true k on the defining features."""
    features = pop.oracle.reindex(truth.index).fillna(0.0)
    X = StandardScaler().fit_transform(features.to_numpy(dtype=float))
    scores = {
        "kmeans": adjusted_rand_score(truth, KMeans(k, n_init=10, random_state=seed).fit_predict(X)),
    }
    for covariance in ("full", "diag"):
        gmm = GaussianMixture(k, covariance_type=covariance, n_init=3, random_state=seed).fit(X)
        scores[f"gmm_{covariance}"] = adjusted_rand_score(truth, gmm.predict(X))
    best = max(scores, key=scores.get)
    return float(scores[best]), best


def measure_family(fam: Family, size: str, seed: int = 0) -> dict[str, Any]:
    """Generate the family at ``size`` and measure segwise, the baseline and the oracle.

    Everything runs with one BLAS/OpenMP thread: on a shared machine k-means with
    as many threads as cores is oversubscribed and runs tens of times slower.
    """
    with threadpool_limits(1):
        return _measure_family(fam, size, seed)


def _measure_family(fam: Family, size: str, seed: int) -> dict[str, Any]:
    n = fam.sizes[size]
    started = time.perf_counter()
    pop = fam.generate(n, seed)
    generate_s = time.perf_counter() - started
    truth = pop.truth
    row: dict[str, Any] = {"family": fam.name, "half": fam.half, "structure": fam.structure, "true_k": fam.true_k,
                           "customers": int(n), "input_rows": int(len(pop.data)), "kind": pop.kind,
                           "generate_s": round(generate_s, 2)}
    try:
        seg = run_segwise(pop, seed)
    except Exception as exc:  # a failure is a result: recorded, scored as ARI 0
        seg = {"error": f"{type(exc).__name__}: {exc}"[:400], "labels": None, "k": None, "seconds": None,
               "structure": "failed"}
    base, base_k = baseline_labels(pop, seed)
    common = truth.index.intersection(base.index)
    if seg["labels"] is not None:
        common = common.intersection(seg["labels"].index)
    t = truth.loc[common]
    row["scored_customers"] = int(len(common))
    row["baseline_k"] = base_k
    row["baseline_ari"] = round(float(adjusted_rand_score(t, base.loc[common])), 4)
    row["segwise_k"] = seg["k"]
    row["segwise_ari"] = None if seg["labels"] is None else round(
        float(adjusted_rand_score(t, seg["labels"].loc[common])), 4)
    row["segwise_s"] = seg["seconds"]
    for key in ("structure", "structure_margin", "structure_sentence", "k_supported", "reason", "merged", "defined_by", "error"):
        if seg.get(key) is not None:
            row[f"segwise_{key}"] = seg[key]
    if fam.true_k is not None:
        oracle, method = oracle_ari(pop, t, fam.true_k, seed)
        row["oracle_ari"], row["oracle_method"] = round(oracle, 4), method
    else:
        row["oracle_ari"], row["oracle_method"] = None, None
    row["total_s"] = round(time.perf_counter() - started, 2)
    return row
