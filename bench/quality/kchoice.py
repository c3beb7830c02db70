"""``python -m bench.quality.kchoice``: rules for the number of segments, compared on every family.

For each family, segwise runs with no flags and the matrix its k-means clusters
(after preparation) is kept. On that matrix k-means is fitted for k = 2..12 and
every candidate rule picks a k; the ARI of that k's segments against the planted
types is the rule's score. Rules measured:

- ``silhouette``: the highest silhouette, ties (0.005) to the smaller k (the rule
  before issue 16);
- ``calinski_harabasz``: the highest Calinski-Harabasz index;
- ``bic_diag``: the lowest BIC of a diagonal Gaussian mixture started at the k-means centres;
- ``gap``: Tibshirani's gap statistic (Gaussian reference, first k with
  gap(k) >= gap(k+1) - s(k+1));
- ``margin``: the highest silhouette minus that of Gaussian reference data at the
  same k (`segwise.cluster.select.MARGIN_RULE`, ties to the smaller k);
- ``prediction_strength``: the largest k whose prediction strength (two halves,
  two splits) is at least 0.8;
- ``stability``: the largest k whose subsample agreement (ARI of fits on two 80%
  subsamples, three pairs) is at least 0.9;
- ``margin_stable``: the best margin among the k with stability at least 0.8.

Results: ``bench/results/quality-kchoice-<size>-<date>-<machine>.json`` and ``.md``,
with the mean ARI and the share of k within +-1 of the truth per half.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import date
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from bench.quality.families import FAMILIES
from bench.quality.measure import _clean_id
from bench.results import describe_machine, machine_sentence, record_named

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["main", "RULES", "defining_rows"]

KS = list(range(2, 13))


def _fit(X: np.ndarray, k: int, seed: int = 0) -> KMeans:
    return KMeans(k, n_init=4, random_state=seed).fit(X)


def _defining_matrix(pop, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The matrix segwise's k-means clusters for this population, and the truth in its row order."""
    X, truth, _ = defining_rows(pop, seed)
    return X, truth


def defining_rows(pop, seed: int) -> tuple[np.ndarray, np.ndarray, "pd.Index"]:
    """`_defining_matrix` and the customer ids of its rows (text).

    The matrix is the one given to the last k choice of the run: with a widened
    definition (weak structure, `segwise.segmenter.Segmenter._widen_if_weak`) that is
    the widened one.
    """
    import segwise
    import segwise.cluster.kmeans as kmeans_module

    kept: dict[str, np.ndarray] = {}
    original = kmeans_module.select_n_segments

    def keep(X, *args, **kwargs):
        kept["X"] = np.array(X, dtype=np.float64)
        return original(X, *args, **kwargs)

    kmeans_module.select_n_segments = keep
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = (segwise.segment(pop.data, random_state=seed) if pop.kind == "log"
                      else segwise.segment(customers=pop.data, random_state=seed))
    finally:
        kmeans_module.select_n_segments = original
    # The segmenter's rows are the assignments' rows (checked: its labels are the assignments' ids).
    labels = np.asarray(result.model.segmenter.labels_)
    assert adjusted_rand_score(labels, result.assignments["segment_id"]) == 1.0
    ids = _clean_id(result.assignments["customer_id"])
    return kept["X"], pop.truth.reindex(ids).to_numpy(), ids


def _prediction_strength(X: np.ndarray, k: int, rng, splits: int = 2) -> float:
    values = []
    for _ in range(splits):
        order = rng.permutation(len(X))
        train, test = X[order[: len(X) // 2]], X[order[len(X) // 2:]]
        own, other = _fit(test, k).labels_, _fit(train, k).predict(test)
        worst = 1.0
        for c in range(k):
            members = other[own == c]
            if len(members) < 2:
                continue
            _, counts = np.unique(members, return_counts=True)
            worst = min(worst, float((counts * (counts - 1)).sum() / (len(members) * (len(members) - 1))))
        values.append(worst)
    return float(np.mean(values))


def _stability(X: np.ndarray, k: int, rng, pairs: int = 3) -> float:
    values = []
    for r in range(pairs):
        a = rng.choice(len(X), int(0.8 * len(X)), replace=False)
        b = rng.choice(len(X), int(0.8 * len(X)), replace=False)
        values.append(adjusted_rand_score(_fit(X[a], k, r).predict(X), _fit(X[b], k, r + 10).predict(X)))
    return float(np.mean(values))


def scores(X: np.ndarray, truth: np.ndarray, seed: int = 0) -> dict[str, dict[int, float]]:
    """Every k's ARI and the scores the rules read."""
    rng = np.random.default_rng(seed)
    n = len(X)
    sample = rng.choice(n, min(n, 3000), replace=False)
    models = {k: _fit(X, k) for k in KS}
    mean, cov = X.mean(axis=0), np.atleast_2d(np.cov(X, rowvar=False))
    references = [rng.multivariate_normal(mean, cov, size=min(n, 2000), method="eigh") for _ in range(3)]
    scale = n / min(n, 2000)
    out: dict[str, dict[int, float]] = {key: {} for key in
                                        ("ari", "silhouette", "ch", "gap", "gap_sd", "reference", "bic", "ps", "stability")}
    for k in KS:
        labels = models[k].labels_
        out["ari"][k] = float(adjusted_rand_score(truth, labels))
        out["silhouette"][k] = float(silhouette_score(X[sample], labels[sample]))
        out["ch"][k] = float(calinski_harabasz_score(X, labels))
        fits = [_fit(R, k) for R in references]
        log_w = [np.log(f.inertia_ * scale) for f in fits]
        out["gap"][k] = float(np.mean(log_w) - np.log(models[k].inertia_))
        out["gap_sd"][k] = float(np.std(log_w) * np.sqrt(1 + 1 / len(fits)))
        out["reference"][k] = float(np.mean([silhouette_score(R, f.labels_) for R, f in zip(references, fits)]))
        gmm = GaussianMixture(k, covariance_type="diag", random_state=seed, means_init=models[k].cluster_centers_)
        out["bic"][k] = float(gmm.fit(X).bic(X))
        out["ps"][k] = _prediction_strength(X, k, np.random.default_rng(seed + 1))
        out["stability"][k] = _stability(X, k, np.random.default_rng(seed + 2))
    return out


def _best(values: dict[int, float], ks=KS, tie: float = 0.0) -> int:
    top = max(values[k] for k in ks)
    return min(k for k in ks if values[k] >= top - tie)


def _gap_rule(s) -> int:
    for k in KS[:-1]:
        if s["gap"][k] >= s["gap"][k + 1] - s["gap_sd"][k + 1]:
            return k
    return KS[-1]


def _largest_above(values: dict[int, float], threshold: float) -> int:
    above = [k for k in KS if values[k] >= threshold]
    return max(above) if above else KS[0]


def _margin(s) -> dict[int, float]:
    return {k: s["silhouette"][k] - s["reference"][k] for k in KS}


RULES: dict[str, Callable[[dict], int]] = {
    "silhouette": lambda s: _best(s["silhouette"], tie=0.005),
    "calinski_harabasz": lambda s: _best(s["ch"]),
    "bic_diag": lambda s: _best({k: -v for k, v in s["bic"].items()}),
    "gap": _gap_rule,
    "margin": lambda s: _best(_margin(s), tie=0.005),
    "prediction_strength": lambda s: _largest_above(s["ps"], 0.8),
    "stability": lambda s: _largest_above(s["stability"], 0.9),
    "margin_stable": lambda s: _best(_margin(s), [k for k in KS if s["stability"][k] >= 0.8] or [KS[0]]),
}


def render(record: dict[str, Any]) -> str:
    rows = record["families"]
    lines = [f"# number-of-segments rules, size {record['size']}, {record['date']}", "",
             machine_sentence(record["machine"]) + f". Seed {record['seed']}.", "",
             "Each cell: the k the rule picks and the ARI of k-means at that k on segwise's defining matrix "
             "(`python -m bench.quality.kchoice`).", "",
             "| rule | " + " | ".join(f"{r['family']} ({r['half']}, k={r['true_k'] or '–'})" for r in rows)
             + " | mean ARI A | k±1 A | mean ARI B | k±1 B |",
             "|---|" + "---:|" * (len(rows) + 4)]
    for rule in RULES:
        cells = [f"{r['choices'][rule]['k']}: {r['choices'][rule]['ari']:.2f}" for r in rows]
        s = record["summary"][rule]
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {s['A']['mean_ari']:.3f} | {s['A']['within_one']} | "
                     f"{s['B']['mean_ari']:.3f} | {s['B']['within_one']} |")
    lines.append("| ARI at the true k | " + " | ".join(
        "–" if r["true_k"] is None else f"{r['true_k']}: {r['ari_by_k'][str(r['true_k'])]:.2f}" for r in rows)
        + " | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality.kchoice", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("small", "default"), default="small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    with threadpool_limits(1):
        for fam in FAMILIES:
            print(f"{fam.name} ...", file=sys.stderr, flush=True)
            X, truth = _defining_matrix(fam.generate(fam.sizes[args.size], args.seed), args.seed)
            s = scores(X, truth, args.seed)
            choices = {rule: {"k": int(pick(s)), "ari": round(s["ari"][pick(s)], 4)} for rule, pick in RULES.items()}
            rows.append({"family": fam.name, "half": fam.half, "structure": fam.structure, "true_k": fam.true_k,
                         "customers": int(len(X)), "choices": choices,
                         "ari_by_k": {str(k): round(v, 4) for k, v in s["ari"].items()},
                         "margin_by_k": {str(k): round(v, 4) for k, v in _margin(s).items()}})
    summary: dict[str, Any] = {}
    for rule in RULES:
        summary[rule] = {}
        for half in ("A", "B"):
            scored = [r for r in rows if r["half"] == half and r["true_k"] is not None]
            summary[rule][half] = {
                "mean_ari": round(float(np.mean([r["choices"][rule]["ari"] for r in scored])), 4),
                "within_one": f"{sum(abs(r['choices'][rule]['k'] - r['true_k']) <= 1 for r in scored)}/{len(scored)}",
            }
    record = {"size": args.size, "date": date.today().isoformat(), "seed": args.seed, "machine": describe_machine(),
              "families": rows, "summary": summary}
    markdown = render(record)
    print(markdown)
    record_named(f"quality-kchoice-{args.size}", record, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
