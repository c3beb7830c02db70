"""The measured steps, in the order they run, and when a step is skipped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.sizes import BenchSize

__all__ = ["Step", "STEPS", "NOTEBOOK_PANDAS_MAX_LINES"]

#: Largest log (target order lines) the notebook-style pandas baseline runs on.
NOTEBOOK_PANDAS_MAX_LINES = 1_000_000


@dataclass(frozen=True)
class Step:
    """One measured step.

    Attributes
    ----------
    name : str
        Identifier used in the results.
    title : str
        What the step does, as shown in the results table.
    target : str
        ``"module:function"`` taking a `bench.datasets.Dataset` and returning a
        `bench.timing.StepOutcome`. The module is imported in the step's own
        subprocess before the clock starts, so it imports the libraries the
        step uses at its top, and no others (they count in peak memory).
    skip_reason : callable
        Takes the `BenchSize`; returns why the step is skipped at that size, or None.
    """

    name: str
    title: str
    target: str
    skip_reason: Callable[[BenchSize], str | None] = lambda size: None


def _notebook_pandas_skip(size: BenchSize) -> str | None:
    if size.target_lines <= NOTEBOOK_PANDAS_MAX_LINES:
        return None
    return (
        f"runs only up to {NOTEBOOK_PANDAS_MAX_LINES:,} order lines: a Python call per customer is "
        "about 10x slower than the vectorised baseline"
    )


def _targets_only(size: BenchSize) -> str:
    # Minutes each at 10m: kept out of `python -m bench` (and its 2-minute quick size).
    return "a per-method target: run by python -m bench.targets (bench/README.md#targets)"


STEPS: tuple[Step, ...] = (
    Step("segwise_features", "segwise: load_transactions + build_features (22 features)",
         "bench.segwise_steps:segwise_features"),
    Step("duckdb_reference", "DuckDB: hand-written SQL (12 features)",
         "bench.reference_duckdb:duckdb_reference"),
    Step("pandas_idiomatic", "pandas idiomatic: groupby/agg (5 rfm features)",
         "bench.baselines_pandas:pandas_idiomatic"),
    Step("pandas_notebook", "pandas notebook: groupby().apply (5 rfm features)",
         "bench.baselines_pandas:pandas_notebook", skip_reason=_notebook_pandas_skip),
    Step("segwise_segmenter_fit", "segwise: Segmenter(random_state=0).fit, auto k 2..12",
         "bench.segwise_steps:segwise_segmenter_fit"),
    Step("sklearn_notebook", "scikit-learn notebook: StandardScaler + KMeans k=2..12 + full silhouette",
         "bench.baseline_sklearn:sklearn_notebook"),
    Step("segwise_end_to_end", "segwise: segment(orders) + result.save",
         "bench.segwise_steps:segwise_end_to_end"),
    Step("segwise_assign", "segwise: Segmenter.assign of every customer (k-means, 8 segments)",
         "bench.target_steps:assign_throughput", skip_reason=_targets_only),
    Step("segwise_method_gmm", "segwise: Segmenter(method='gmm').fit, BIC choice",
         "bench.target_steps:segwise_method_gmm", skip_reason=_targets_only),
    Step("segwise_method_hierarchical", "segwise: Segmenter(method='hierarchical').fit (micro-clusters above 20k)",
         "bench.target_steps:segwise_method_hierarchical", skip_reason=_targets_only),
    Step("segwise_method_dbscan", "segwise: Segmenter(method='dbscan').fit (sample fit, everyone assigned)",
         "bench.target_steps:segwise_method_dbscan", skip_reason=_targets_only),
    Step("segwise_method_hdbscan", "segwise: Segmenter(method='hdbscan').fit (sample fit, everyone assigned)",
         "bench.target_steps:segwise_method_hdbscan", skip_reason=_targets_only),
    Step("segwise_method_som", "segwise: Segmenter(method='som').fit, 10 x 10 map",
         "bench.target_steps:segwise_method_som", skip_reason=_targets_only),
    Step("segwise_stability", "segwise: bootstrap stability, B = 20 refits of the whole pipeline",
         "bench.target_steps:stability_b20", skip_reason=_targets_only),
)
