"""``python -m bench.post_features DATASET_DIR [--repeats N] [--label NAME]``: the stages of a run after the features.

`segwise run` spends its time in two halves: loading the log and building the
features, then everything after them (preparation and the choice of k, assignment,
validation, economics, saving the outputs and the report). This times the second
half alone, in this process, on the feature table cached in ``DATASET_DIR``
(``features.parquet`` and ``features.json``, see `bench.datasets.load_feature_table`),
so a change to it can be measured without the minute the features take at 10M lines.

Each repeat runs ``segwise.segment(feature_table, random_state=0)`` (`segwise.pipeline.run_flow`
takes a built `FeatureTable`: no load or features stage, no retention proxy, which
needs the log) and ``result.save(tmpdir)``, and records per stage the wall and CPU
seconds (the process's, all threads) from the flow's progress callback, ``save`` as a
whole and its ``report`` part, the peak RSS of the process, the 1-minute load average
before and after, and the run's number of segments. The feature table is read once,
before the first repeat. With ``--label NAME`` the record is written to
``bench/results/post-features-NAME-<date>-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.datasets import load_feature_table
from bench.results import describe_machine, machine_sentence, record_named


def _load_1min() -> float:
    return round(os.getloadavg()[0], 2)


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_once(feature_table) -> dict[str, Any]:
    """One run of the after-feature stages: per stage wall and CPU seconds, and the whole."""
    import segwise

    stages: dict[str, dict[str, float]] = {}
    started: dict[str, tuple[float, float]] = {}

    def progress(stage: str, label: str) -> None:
        now = (time.perf_counter(), time.process_time())
        if label != "done":
            started[stage] = now
            return
        wall0, cpu0 = started.pop(stage)
        stages[stage] = {"wall_s": round(now[0] - wall0, 3), "cpu_s": round(now[1] - cpu0, 3)}

    load_before = _load_1min()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = segwise.segment(feature_table, random_state=0, progress=progress)
    save0 = (time.perf_counter(), time.process_time())
    with tempfile.TemporaryDirectory(prefix="segwise-post-features-") as out_dir:
        result.save(out_dir)
    end = (time.perf_counter(), time.process_time())
    stages["save"] = {"wall_s": round(end[0] - save0[0], 3), "cpu_s": round(end[1] - save0[1], 3)}
    stages["save: report"] = {"wall_s": result.run["timings"]["report"],
                              "cpu_s": result.run["cpu_timings"]["report"]}
    return {
        "stages": stages,
        "total_wall_s": round(end[0] - wall0, 3),
        "total_cpu_s": round(end[1] - cpu0, 3),
        "load_1min_before": load_before,
        "load_1min_after": _load_1min(),
        "n_segments": int(result.n_segments),
        "customers": int(len(result.assignments)),
    }


def markdown(record: dict[str, Any]) -> str:
    """The record as a short markdown page: median per stage, then every run's total."""
    runs = record["runs"]
    lines = [
        f"# After-feature stages of `segwise run`: {record['label'] or 'unlabelled'}",
        "",
        f"{record['customers']:,} customers ({record['dataset']}), {len(runs)} run(s) in one process, "
        f"code at {record['code']}; {machine_sentence(record['machine'])}",
        "",
        "| stage | wall s (median) | CPU s (median) |",
        "|---|---:|---:|",
    ]
    for stage in runs[0]["stages"]:
        wall = statistics.median(r["stages"][stage]["wall_s"] for r in runs)
        cpu = statistics.median(r["stages"][stage]["cpu_s"] for r in runs)
        lines.append(f"| {stage} | {wall:.2f} | {cpu:.2f} |")
    lines += ["", "| run | total wall s | total CPU s | load before | load after | segments |", "|---|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(runs, 1):
        lines.append(f"| {i} | {r['total_wall_s']:.2f} | {r['total_cpu_s']:.2f} | {r['load_1min_before']} | "
                     f"{r['load_1min_after']} | {r['n_segments']} |")
    lines += ["", f"Peak RSS of the process (feature table included): {record['peak_rss_mib']:,.0f} MiB; "
              f"after reading the feature table: {record['rss_after_read_mib']:,.0f} MiB.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.post_features", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path, help="a bench data directory with features.parquet/.json")
    parser.add_argument("--repeats", type=int, default=1, help="runs in this process (default 1)")
    parser.add_argument("--label", default=None, help="record under bench/results/post-features-LABEL-...")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not (args.dataset_dir / "features.json").exists():
        parser.error(f"{args.dataset_dir}: no cached feature table (features.json); run the bench of that size first")
    feature_table = load_feature_table(args.dataset_dir)
    rss_after_read = _peak_rss_mib()
    runs = []
    for _ in range(args.repeats):
        runs.append(run_once(feature_table))
        print(json.dumps(runs[-1]), flush=True)
    import segwise

    record = {
        "label": args.label,
        "dataset": str(args.dataset_dir),
        "customers": runs[0]["customers"],
        "code": str(Path(segwise.__file__).resolve().parent),
        "runs": runs,
        "rss_after_read_mib": rss_after_read,
        "peak_rss_mib": _peak_rss_mib(),
        "machine": describe_machine(),
    }
    page = markdown(record)
    print(page)
    if args.label:
        record_named(f"post-features-{args.label}", record, page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
