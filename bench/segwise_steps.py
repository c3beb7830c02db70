"""The measured segwise steps: features, segmentation, and the whole run."""

from __future__ import annotations

import tempfile
import time

import segwise

from bench.datasets import Dataset, load_feature_table
from bench.timing import PhaseTimer, StepOutcome

__all__ = ["segwise_features", "segwise_segmenter_fit", "segwise_end_to_end"]


def segwise_features(dataset: Dataset) -> StepOutcome:
    """``segwise.load_transactions(orders)`` then ``segwise.build_features(tx)``."""
    timer = PhaseTimer()
    with timer.phase("load"):
        transactions = segwise.load_transactions(dataset.orders_path)
    with timer.phase("features"):
        features = segwise.build_features(transactions)
    info = {
        "clean_lines": transactions.n_rows,
        "customers": len(features.frame),
        "feature_columns": len(features.frame.columns),
        "as_of": str(features.as_of),
    }
    return StepOutcome(phases=timer.phases, info=info)


def segwise_segmenter_fit(dataset: Dataset) -> StepOutcome:
    """``segwise.Segmenter(random_state=0).fit(features)`` on the cached feature table."""
    timer = PhaseTimer()
    with timer.phase("read_features"):
        features = load_feature_table(dataset.directory)
    with timer.phase("fit"):
        segmenter = segwise.Segmenter(random_state=0).fit(features)
    selection = segmenter.selection_
    info = {
        "customers": len(features.frame),
        "segment_columns": list(segmenter.feature_columns_),
        "n_segments": segmenter.n_segments_,
        "k_fit_sample_size": selection.candidates[0]["fit_sample_size"] if selection else None,
        "silhouette_sample_size": segmenter.metrics_["silhouette_sample_size"],
        "silhouette": segmenter.metrics_["silhouette"],
    }
    return StepOutcome(phases=timer.phases, info=info)


def segwise_end_to_end(dataset: Dataset) -> StepOutcome:
    """``segwise.segment(orders)`` then ``result.save(tmpdir)``.

    The phases are segwise's own stage timings (``load``, ``features``,
    ``segment``, ``assign``), ``other`` (the model and run record) and ``save``.
    """
    with tempfile.TemporaryDirectory(prefix="segwise-bench-") as out_dir:
        started = time.perf_counter()
        result = segwise.segment(dataset.orders_path, random_state=0)
        segmented = time.perf_counter()
        result.save(out_dir)
        saved = time.perf_counter()
    phases = {stage: float(seconds) for stage, seconds in result.run["timings"].items() if stage != "outputs"}
    phases["other"] = max(segmented - started - sum(phases.values()), 0.0)
    phases["save"] = saved - segmented
    info = {"customers": len(result.assignments), "n_segments": result.n_segments}
    return StepOutcome(phases=phases, info=info)
