"""Benchmark: the DuckDB engine against Spark local[2] on one synthetic order log.

Usage::

    .venv/bin/python -m bench.spark --size 10m --wait-idle 600   # 9,991,165 order lines
    .venv/bin/python -m bench.spark --size quick                 # a quick check

Both engines read the same ``bench/data/<size>/orders.parquet`` (generated once by
`bench.datasets.ensure_dataset`, shared with ``python -m bench``). Each engine runs
``segwise run ORDERS --engine E --segments K --no-store`` in a fresh process, timed
from outside. Peak memory is the largest sum of resident memory over the whole
process tree, sampled every 0.2 s from ``/proc``: for Spark that is the Python
driver plus the JVM (which does the work in local mode), for DuckDB the one
Python process. ``--segments 0`` lets both engines choose the number of segments.

Results go to ``bench/results/spark-<size>-<date>-<machine>.{json,md}`` with the
machine, the date and the share of the CPUs other processes used during each run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.datasets import order_log
from bench.harness import busy_share_since, machine_busy_seconds, wait_for_idle
from bench.results import describe_machine, machine_sentence, record_named, result_parser
from bench.sizes import SIZES

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_INTERVAL_S = 0.2
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants, read from ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces; the parent pid follows its closing ')'.
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _tree_rss_bytes(root_pid: int) -> int:
    total = 0
    for pid in _process_tree(root_pid):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue  # the process ended between listing and reading
    return total


class TreeMemorySampler:
    """Largest resident memory of a process tree, sampled in a background thread."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, _tree_rss_bytes(self.root_pid))
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self) -> "TreeMemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def run_engine(orders: Path, engine: str, out: Path, segments: int, driver_memory: str) -> dict[str, Any]:
    """One ``segwise run`` with ``engine`` in a fresh process: wall time, peak tree memory, stage timings."""
    command = [str(Path(sys.executable).parent / "segwise"), "run", str(orders), "--out", str(out),
               "--no-store", "--timings", "--engine", engine]
    if segments:
        command += ["--segments", str(segments)]
    if engine == "spark":
        command += ["--spark-master", "local[2]", "--spark-conf", f"spark.driver.memory={driver_memory}"]
    busy_before, started = machine_busy_seconds(), time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, cwd=ROOT)
        with TreeMemorySampler(process.pid) as sampler:
            returncode = process.wait()
        seconds = time.perf_counter() - started
        stderr.seek(0)
        error_output = stderr.read()
    busy_share = busy_share_since(busy_before, seconds)
    run: dict[str, Any] = json.loads((out / "run.json").read_text()) if returncode == 0 else {}
    result = {
        "engine": engine,
        "returncode": returncode,
        "wall_s": round(seconds, 1),
        "peak_tree_rss_mib": round(sampler.peak_bytes / 2**20),
        "machine_busy_share": busy_share,
        "segments": run.get("n_segments") or run.get("segments"),
        "timings": run.get("timings"),
        "error": None if returncode == 0 else error_output[-3000:],
    }
    return result


def _markdown(record: dict[str, Any]) -> str:
    customers = f", {record['customers']:,} customers" if record["customers"] else ""
    lines = [
        f"# Spark local[2] vs DuckDB, {record['size']} ({record['order_lines']:,} order lines{customers})",
        "",
        f"Measured {record['started']} on {machine_sentence(record['machine'], ('pyspark', 'duckdb'))}.",
        f"Command: `segwise run orders.parquet --engine E --no-store --timings"
        f"{' --segments ' + str(record['segments']) if record['segments'] else ''}`"
        f" (Spark: `--spark-master local[2] --spark-conf spark.driver.memory={record['driver_memory']}`).",
        "Peak memory is the largest sum of resident memory over the process tree (Spark: Python driver + JVM).",
        "Machine busy share is the share of both CPUs used by everything, the run included "
        "(about 0.5 means one core busy, 1.0 both).",
        "",
        "| engine | exit | wall time | peak memory (tree) | machine busy | stages (s) |",
        "|---|---|---|---|---|---|",
    ]
    for run in record["runs"]:
        stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in (run["timings"] or {}).items()
                           if isinstance(seconds, (int, float)))
        lines.append(f"| {run['engine']} | {run['returncode']} | {run['wall_s']:.1f} s | "
                     f"{run['peak_tree_rss_mib']:,} MiB | {run['machine_busy_share']} | {stages} |")
    failed = [run for run in record["runs"] if run["returncode"] != 0]
    for run in failed:
        lines += ["", f"{run['engine']} failed:", "", "```", run["error"].strip(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = result_parser(__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=6, help="fixed k for both engines; 0 lets each choose")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--driver-memory", default="8g", help="spark.driver.memory (default: 8g)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each engine, wait up to SECONDS for the machine to be idle")
    parser.add_argument("--orders", type=Path, metavar="PARQUET",
                        help="benchmark this order log instead of the generated one of --size")
    args = parser.parse_args(argv)

    orders, order_lines, customers, size = order_log(SIZES[args.size], args.orders)
    machine = describe_machine()
    record: dict[str, Any] = {
        "size": size, "order_lines": order_lines, "customers": customers,
        "segments": args.segments, "driver_memory": args.driver_memory, "machine": machine,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": [],
    }
    print(json.dumps({key: record[key] for key in ("size", "order_lines", "customers")}), flush=True)
    with tempfile.TemporaryDirectory(prefix="segwise-bench-spark-") as tmp:
        for engine in args.engines.split(","):
            waited = wait_for_idle(args.wait_idle) if args.wait_idle else 0.0
            run = run_engine(orders, engine, Path(tmp) / engine, args.segments, args.driver_memory)
            run["idle_wait_s"] = round(waited, 1)
            record["runs"].append(run)
            print(json.dumps(run), flush=True)
    if not args.no_record:
        record_named(f"spark-{size}", record, _markdown(record))
    return 0 if all(run["returncode"] == 0 for run in record["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
