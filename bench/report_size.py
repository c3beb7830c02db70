"""Benchmark: size and build time of the HTML report of a large run.

    .venv/bin/python bench/report_size.py --customers 1000000
    .venv/bin/python bench/report_size.py --run-dir /tmp/bench-1m/run   # rebuild the report of a saved run

Generates a synthetic population, segments it as ``segwise run`` does (automatic
number of segments) and saves the run without a report; then builds the report
from the saved run directory (`segwise.report.build_report`, what ``segwise report``
does) and measures it. Writes one JSON record to
bench/results/report-<customers>-<date>.json: machine, load average before and
after (the machine may be shared: timings are provisional), seconds of every
stage, the report's size in bytes and how many customers its map draws.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# Run as a script (python bench/NAME.py): the repository root makes `bench` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import describe_machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/segwise-bench-report"))
    parser.add_argument("--run-dir", type=Path, default=None, help="Reuse a saved run instead of making one.")
    args = parser.parse_args(argv)

    import pyarrow.parquet as pq

    import segwise
    from segwise.report import MAX_REPORT_BYTES, build_report

    record: dict = {
        "benchmark": "report_size", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(), "load_before": os.getloadavg(), "segwise": segwise.__version__, "seconds": {},
    }
    if args.run_dir is None:
        started = time.perf_counter()
        population = segwise.generate_population(args.customers, seed=args.seed)
        data_dir = args.work_dir / "data"
        paths = population.write(data_dir, "parquet")
        record["seconds"]["generate"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        result = segwise.segment(paths["orders"], random_state=args.seed)
        record["seconds"]["segment"] = round(time.perf_counter() - started, 1)
        run_dir = args.work_dir / "run"
        started = time.perf_counter()
        result.save(run_dir, store=False, report=False)
        record["seconds"]["save_without_report"] = round(time.perf_counter() - started, 1)
        record["order_lines"] = int(population.orders.num_rows)
    else:
        run_dir = args.run_dir
    run = json.loads((run_dir / "run.json").read_text())
    record["customers"] = int(run["n_customers"])
    record["n_segments"] = int(run["n_segments"])
    record["method"] = run["method"]
    report = build_report(run_dir)
    record["seconds"]["report"] = round(report.seconds, 1)
    record["report_bytes"] = report.size_bytes
    record["report_mb"] = round(report.size_bytes / 1e6, 2)
    record["limit_bytes"] = MAX_REPORT_BYTES
    record["under_limit"] = report.size_bytes < MAX_REPORT_BYTES
    record["figures"] = report.figures
    record["assignments_rows"] = pq.read_metadata(run_dir / "assignments.parquet").num_rows
    record["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    record["load_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    record["mode"] = "rebuild of a saved run" if args.run_dir is not None else "generate, segment, save, report"
    suffix = "-rebuild" if args.run_dir is not None else ""
    out = RESULTS / f"report-{record['customers']}-{record['date'][:10]}{suffix}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    sys.exit(0 if main()["under_limit"] else 1)
