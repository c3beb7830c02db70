"""``python -m bench.same_segments --before SRC [--customers N] [--label NAME]``: the same segments as another version.

Segments the demo population (`segwise.generate_population`, ``segwise demo``'s
default 50,000 customers, seed 0) with the segwise code under ``--before`` (a
``src`` directory, e.g. main's, exported with ``git archive main src | tar -x -C
DIR``) and with this checkout's, each in a fresh process with ``segwise.segment(...,
random_state=0)`` and automatic k, and compares the two assignments: the adjusted
Rand index (1.0: the same partition), the number of segments, the share of customers
with the same segment id and name, and the largest difference of any feature value.
Writes ``bench/results/same-segments-<date>-<machine>.json`` and ``.md``
(``same-segments-NAME-<date>-<machine>`` with ``--label NAME``, so a comparison of
one branch does not replace another's record).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import describe_machine, record_named

ROOT = Path(__file__).resolve().parent.parent

_SEGMENT_SCRIPT = """
import sys
import segwise
from segwise.synth import generate_population
population = generate_population(int(sys.argv[2]), seed=0)
orders = sys.argv[1] + "/orders.parquet"
import pyarrow.parquet as pq
pq.write_table(population.orders, orders)
result = segwise.segment(orders, random_state=0)
result.assignments.to_parquet(sys.argv[1] + "/assignments.parquet", index=False)
result.features.frame.to_parquet(sys.argv[1] + "/features.parquet")
print(result.n_segments)
"""


def _segment(src: Path, out_dir: Path, n_customers: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", _SEGMENT_SCRIPT, str(out_dir), str(n_customers)], env=env, check=True,
                   cwd=out_dir)


def compare(before_dir: Path, after_dir: Path) -> dict:
    """ARI and agreement of the two runs' assignments and features."""
    from sklearn.metrics import adjusted_rand_score

    before = pd.read_parquet(before_dir / "assignments.parquet").set_index("customer_id").sort_index()
    after = pd.read_parquet(after_dir / "assignments.parquet").set_index("customer_id").sort_index()
    if not before.index.equals(after.index):
        raise AssertionError("the two runs assigned different customers")
    features_before = pd.read_parquet(before_dir / "features.parquet").sort_index()
    features_after = pd.read_parquet(after_dir / "features.parquet").sort_index()
    worst = 0.0
    for column in features_before.columns:
        if pd.api.types.is_float_dtype(features_before[column]):
            x = features_before[column].to_numpy(float)
            y = features_after[column].to_numpy(float)
            if (np.isnan(x) != np.isnan(y)).any():
                raise AssertionError(f"feature {column!r}: missing values differ between the two runs")
            both = ~np.isnan(x)
            if both.any():
                worst = max(worst, float(np.max(np.abs(x[both] - y[both]) / np.maximum(1.0, np.abs(x[both])))))
    return {
        "customers": int(len(before)),
        "ari": float(adjusted_rand_score(before["segment_id"], after["segment_id"])),
        "n_segments_before": int(before["segment_id"].nunique()),
        "n_segments_after": int(after["segment_id"].nunique()),
        "same_segment_id_share": float((before["segment_id"] == after["segment_id"]).mean()),
        "same_segment_name_share": float((before["segment_name"] == after["segment_name"]).mean()),
        "feature_columns_equal": list(features_before.columns) == list(features_after.columns),
        "largest_relative_feature_difference": worst,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.same_segments", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="src directory of the version to compare with")
    parser.add_argument("--customers", type=int, default=50_000, help="demo population size (default 50,000)")
    parser.add_argument("--label", help="recorded as same-segments-LABEL-<date>-<machine> (a named comparison)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="segwise-same-") as tmp:
        before_dir, after_dir = Path(tmp, "before"), Path(tmp, "after")
        before_dir.mkdir()
        after_dir.mkdir()
        _segment(args.before.resolve(), before_dir, args.customers)
        _segment(ROOT / "src", after_dir, args.customers)
        record = {"date": date.today().isoformat(), "machine": describe_machine(), "before": str(args.before),
                  "seed": 0, **compare(before_dir, after_dir)}
    markdown = "\n".join([
        f"# Same segments as {args.before}, {record['date']}",
        "",
        f"Demo population, {record['customers']:,} customers, seed 0, `segwise.segment(..., random_state=0)`, "
        "automatic k.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| adjusted Rand index | {record['ari']:.6f} |",
        f"| segments before / after | {record['n_segments_before']} / {record['n_segments_after']} |",
        f"| same segment id | {100 * record['same_segment_id_share']:.2f}% |",
        f"| same segment name | {100 * record['same_segment_name_share']:.2f}% |",
        f"| same feature columns | {record['feature_columns_equal']} |",
        f"| largest relative feature difference | {record['largest_relative_feature_difference']:.3g} |",
        "",
    ])
    json_path, md_path = record_named("-".join(["same-segments", *filter(None, [args.label])]), record, markdown)
    print(markdown)
    print(f"written: {json_path}\n         {md_path}")
    return 0 if record["ari"] == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
