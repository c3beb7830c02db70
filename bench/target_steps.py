"""The per-method targets of issue 11, measured on the cached feature table.

- ``segwise_method_<name>``: `segwise.Segmenter(method=name, random_state=0).fit`
  for GMM (BIC choice of k and covariance), hierarchical (micro-cluster route above
  its exact limit), DBSCAN and HDBSCAN (fit on a sample, everyone assigned) and a
  10 x 10 SOM;
- ``segwise_stability``: bootstrap stability with B = 20 refits of the whole
  pipeline (`segwise.stability.bootstrap_stability`, one worker per core, samples
  capped at `segwise.stability.MAX_BOOTSTRAP_SAMPLE` draws) of a fitted k-means
  Segmenter;
- ``segwise_assign``: `Segmenter.assign` of every customer with a fitted model
  (what ``segwise assign`` does after computing features), as customers per second.
"""

from __future__ import annotations

from typing import Any

import segwise
from segwise.stability import bootstrap_stability

from bench.datasets import Dataset, load_feature_table
from bench.timing import PhaseTimer, StepOutcome

__all__ = ["METHOD_STEPS", "method_fit", "stability_b20", "assign_throughput"]

#: Method name to its parameters in the measured fit.
METHOD_STEPS: dict[str, dict[str, Any]] = {
    "gmm": {},
    "hierarchical": {},
    "dbscan": {},
    "hdbscan": {},
    "som": {"map_rows": 10, "map_cols": 10},
}

#: Bootstrap refits of the stability step.
STABILITY_B = 20


def method_fit(dataset: Dataset, method: str) -> StepOutcome:
    """``Segmenter(method=method).fit`` on the cached feature table."""
    timer = PhaseTimer()
    with timer.phase("read_features"):
        features = load_feature_table(dataset.directory)
    with timer.phase("fit"):
        segmenter = segwise.Segmenter(method=method, method_params=METHOD_STEPS[method] or None,
                                      random_state=0).fit(features)
    details = segmenter.method_details_ or {}
    info = {"customers": len(features.frame), "n_segments": segmenter.n_segments_, "method": method,
            "method_params": METHOD_STEPS[method]}
    for key in ("fit_sample_size", "sampled"):
        if key in details:
            info[key] = details[key]
    tree = details.get("tree") or {}
    if tree.get("kind"):
        info["tree"] = tree["kind"]
    return StepOutcome(phases=timer.phases, info=info)


def _method_target(method: str):
    def target(dataset: Dataset) -> StepOutcome:
        return method_fit(dataset, method)

    target.__name__ = f"segwise_method_{method}"
    target.__doc__ = f"``Segmenter(method={method!r}).fit`` on the cached feature table."
    return target


segwise_method_gmm = _method_target("gmm")
segwise_method_hierarchical = _method_target("hierarchical")
segwise_method_dbscan = _method_target("dbscan")
segwise_method_hdbscan = _method_target("hdbscan")
segwise_method_som = _method_target("som")


def stability_b20(dataset: Dataset) -> StepOutcome:
    """Reference k-means fit, then `bootstrap_stability` with B = 20 on every core."""
    timer = PhaseTimer()
    with timer.phase("read_features"):
        features = load_feature_table(dataset.directory)
    with timer.phase("reference_fit"):
        segmenter = segwise.Segmenter(random_state=0).fit(features)
    with timer.phase("stability"):
        result = bootstrap_stability(segmenter, features, n_bootstrap=STABILITY_B, random_state=0, n_jobs=-1)
    record = result.to_dict()
    info = {"customers": len(features.frame), "B": record["B"], "sample_size": record["sample_size"],
            "ari_mean": round(record["ari_mean"], 4), "n_segments": segmenter.n_segments_,
            "unstable": record["unstable"]}
    return StepOutcome(phases=timer.phases, info=info)


def assign_throughput(dataset: Dataset) -> StepOutcome:
    """Fit k-means with 8 segments, then time ``assign`` of every customer."""
    timer = PhaseTimer()
    with timer.phase("read_features"):
        features = load_feature_table(dataset.directory)
    with timer.phase("fit"):
        segmenter = segwise.Segmenter(n_segments=8, random_state=0).fit(features)
    with timer.phase("assign"):
        assigned = segmenter.assign(features)
    info = {"customers": len(assigned),
            "customers_per_second": round(len(assigned) / max(timer.phases["assign"], 1e-9))}
    return StepOutcome(phases=timer.phases, info=info)
