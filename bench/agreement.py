"""Check that a baseline computes the same numbers as segwise.

A speed comparison means something only when both sides compute the same
thing: every baseline's per-customer table is compared with the segwise feature
table of the same data, column by column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TOLERANCE", "compare_with_segwise"]

#: Largest absolute difference counted as agreement (sums of money in float64).
TOLERANCE = 1e-6


def compare_with_segwise(output_path: Path, segwise_features_path: Path) -> dict:
    """Compare a step's per-customer table with segwise's feature table.

    Parameters
    ----------
    output_path : Path
        Parquet written by ``bench.runner --output`` (a ``customer_id`` column
        and feature columns named as segwise names them).
    segwise_features_path : Path
        The cached segwise feature table of the same dataset.

    Returns
    -------
    dict
        ``customers`` of the step, ``customers_only_in_step`` and
        ``customers_only_in_segwise``; by column, ``max_abs_diff`` (over the
        customers where both values are present) and ``nan_mismatches`` (missing
        on one side only); and ``agrees``: same customers, no NaN mismatch, every
        difference within `TOLERANCE`.
    """
    step = pd.read_parquet(output_path).set_index("customer_id")
    reference = pd.read_parquet(segwise_features_path, columns=["customer_id", *step.columns])
    reference = reference.set_index("customer_id")
    common = step.index.intersection(reference.index)
    max_abs_diff = {}
    nan_mismatches = {}
    for column in step.columns:
        ours = step.loc[common, column].to_numpy(dtype="float64")
        theirs = reference.loc[common, column].to_numpy(dtype="float64")
        both = ~np.isnan(ours) & ~np.isnan(theirs)
        max_abs_diff[column] = float(np.abs(ours[both] - theirs[both]).max(initial=0.0))
        nan_mismatches[column] = int((np.isnan(ours) != np.isnan(theirs)).sum())
    only_in_step = int(len(step.index.difference(reference.index)))
    only_in_segwise = int(len(reference.index.difference(step.index)))
    return {
        "customers": int(len(step)),
        "customers_only_in_step": only_in_step,
        "customers_only_in_segwise": only_in_segwise,
        "max_abs_diff": max_abs_diff,
        "nan_mismatches": nan_mismatches,
        "agrees": only_in_step == 0
        and only_in_segwise == 0
        and not any(nan_mismatches.values())
        and all(diff <= TOLERANCE for diff in max_abs_diff.values()),
    }
