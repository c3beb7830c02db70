"""``python -m bench --size quick|1m|10m``: generate data if needed, run, record, print.

Exits 1 when a step failed (the results are still written).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from bench.datasets import ensure_dataset
from bench.harness import IDLE_SHARE, busy_share, run_size
from bench.results import describe_machine, record_size, size_table
from bench.sizes import SIZES


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark of one size; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="segwise benchmarks (see bench/README.md)")
    parser.add_argument("--size", choices=list(SIZES), default="quick",
                        help="quick: 100k order lines; 1m: 1M; 10m: 10M (default: quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per step (default: 3 for quick and 1m, 1 for 10m)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to SECONDS for other processes to leave the CPUs idle, "
                             "and redo runs they disturbed (for shared machines; default 0: do not wait)")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    repeats = args.repeats if args.repeats is not None else size.repeats
    if repeats < 1:
        parser.error(f"--repeats must be at least 1, got {repeats}")
    busy = busy_share()
    if busy is not None and busy >= IDLE_SHARE and args.wait_idle == 0:
        _log(f"warning: other processes use {100 * busy:.0f}% of the CPUs: the timings will be slower and "
             "noisier than on an idle machine (see --wait-idle)")
    run_date = date.today()
    machine = describe_machine()
    started = time.perf_counter()
    _log(f"size {size.name}: preparing data ({size.n_customers:,} customers) ...")
    dataset = ensure_dataset(size)
    _log(f"data ready in {dataset.directory} ({dataset.order_lines:,} order lines) after "
         f"{time.perf_counter() - started:.1f} s")
    size_result = run_size(size, dataset, repeats, idle_wait_s=args.wait_idle, log=_log)
    json_path, markdown_path = record_size(size_result, run_date, machine)
    print(f"segwise benchmarks, {run_date.isoformat()}, {machine['slug']}, size {size.name}\n")
    print(size_table(size_result))
    print(f"\nwritten: {json_path}\n         {markdown_path}")
    _log(f"total {time.perf_counter() - started:.1f} s")
    return 1 if any(step["status"] == "failed" for step in size_result["steps"]) else 0


if __name__ == "__main__":
    sys.exit(main())
