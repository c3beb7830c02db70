"""Run one step once, in this (fresh) process, and print its measurements.

``python -m bench.runner STEP DATASET_DIR [--output FILE]`` imports the step,
runs it, and prints one line ``BENCH_RESULT {json}`` with its wall time and
phase timings, the step's info and skipped parts, the import time and the process's peak resident memory
(``ru_maxrss``, read when the step has finished, before its output is written).
With ``--output`` the step's per-customer table is written as Parquet for the
agreement check.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
from pathlib import Path

from bench.datasets import Dataset
from bench.steps import STEPS

__all__ = ["RESULT_MARKER", "main"]

#: Prefix of the line carrying the measurements on stdout.
RESULT_MARKER = "BENCH_RESULT "


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run the step once and print ``BENCH_RESULT {json}``."""
    steps = {step.name: step for step in STEPS}
    parser = argparse.ArgumentParser(prog="python -m bench.runner", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=list(steps))
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--output", type=Path, help="write the step's per-customer table here (Parquet)")
    args = parser.parse_args(argv)
    dataset = Dataset.read(args.dataset_dir)
    if dataset is None:
        parser.error(f"{args.dataset_dir} holds no generated dataset; run `python -m bench` first")
    module_name, function_name = steps[args.step].target.split(":")
    started = time.perf_counter()
    step_function = getattr(importlib.import_module(module_name), function_name)
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    outcome = step_function(dataset)
    wall_seconds = time.perf_counter() - started
    peak_rss_mib = _peak_rss_mib()
    if args.output is not None and outcome.output is not None:
        outcome.output.reset_index().to_parquet(args.output, index=False)
    result = {
        "phases": outcome.phases,
        "wall_s": wall_seconds,
        "import_s": import_seconds,
        "peak_rss_mib": peak_rss_mib,
        "info": outcome.info,
        "skipped_parts": outcome.skipped_parts,
    }
    print(RESULT_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
