"""Benchmark: the DuckDB engine against Spark local[2] on one synthetic order log.

Usage::

    .venv/bin/python bench/spark.py --customers 900000   # about 10M order lines
    .venv/bin/python bench/spark.py --customers 20000    # a quick check

Each engine runs in a fresh child process (``segwise run DATA --engine E``, fixed
k so both do the same work), timed from outside; peak memory is the child's
maximum resident set (``ru_maxrss`` of the children), which for Spark includes the
JVM (the Python driver and the JVM are both children of the measured process).
Prints one JSON line per engine; record results in bench/README.md with the machine
and date.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_engine(data: str, engine: str, out: Path, segments: int) -> dict:
    command = [str(Path(sys.executable).parent / "segwise"), "run", data, "--out", str(out), "--segments", str(segments),
               "--no-store", "--engine", engine]
    if engine == "spark":
        command += ["--spark-master", "local[2]", "--spark-conf", "spark.driver.memory=8g"]
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "elapsed = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': done.returncode, 'seconds': elapsed, 'peak_rss_mb': peak / 1024,"
        " 'stderr': done.stderr[-2000:]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    run = json.loads((out / "run.json").read_text()) if measured["rc"] == 0 else {}
    return {"engine": engine, "seconds": round(measured["seconds"], 1), "peak_rss_mb": round(measured["peak_rss_mb"]),
            "timings": run.get("timings"), "rc": measured["rc"], "error": None if measured["rc"] == 0 else measured["stderr"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--engines", default="duckdb,spark")
    args = parser.parse_args()
    from segwise.synth import generate_population

    with tempfile.TemporaryDirectory(prefix="segwise-bench-spark-") as tmp:
        started = time.perf_counter()
        population = generate_population(args.customers, seed=0)
        paths = population.write(Path(tmp) / "data", "parquet")
        print(json.dumps({"order_lines": population.orders.num_rows, "customers": args.customers,
                          "generated_seconds": round(time.perf_counter() - started, 1),
                          "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
                          "python": platform.python_version()}), flush=True)
        del population
        for engine in args.engines.split(","):
            print(json.dumps(run_engine(paths["orders"], engine, Path(tmp) / engine, args.segments)), flush=True)


if __name__ == "__main__":
    main()
