"""``python -m bench.memory_stages ORDERS``: where the peak memory of ``segwise run`` comes from.

Runs what ``segwise run ORDERS`` runs (`segwise.segment`, then saving the run with its
report) in this process while a thread samples the process's resident memory every
20 ms (Linux ``/proc/self/statm``). Prints, per stage of the flow (the stages of
its progress callback, then ``save``), the seconds, the RSS at the start, the peak
and the RSS at the end, and the memory DuckDB reports holding at the end of each
stage (``duckdb_memory()``), as a table and as JSON, with the 1-minute load average
before and after the run (on a shared machine, wall seconds are only comparable at a
similar load).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    """Resident memory of this process in MiB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE / 2**20


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    orders = args[0]
    import segwise
    from segwise.engines import get_engine

    engine = get_engine(None)
    load_before = round(os.getloadavg()[0], 2)
    stages: list[dict] = []
    current = {"name": "imports", "peak": rss_mib(), "start": rss_mib(), "t0": time.perf_counter()}
    lock = threading.Lock()
    done = threading.Event()

    def duckdb_mib() -> float | None:
        try:
            rows = engine.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()")
            return round(rows[0][0] / 2**20, 1)
        except Exception:  # noqa: BLE001 - a profile, not the product: a closed engine reads nothing
            return None

    def close_stage(next_name: str) -> None:
        with lock:
            now = rss_mib()
            stages.append({"stage": current["name"], "seconds": round(time.perf_counter() - current["t0"], 2),
                           "rss_start_mib": round(current["start"], 1),
                           "rss_peak_mib": round(max(current["peak"], now), 1),
                           "rss_end_mib": round(now, 1), "duckdb_end_mib": duckdb_mib()})
            current.update(name=next_name, peak=now, start=now, t0=time.perf_counter())

    def sample() -> None:
        while not done.is_set():
            value = rss_mib()
            with lock:
                current["peak"] = max(current["peak"], value)
            time.sleep(0.02)

    def progress(stage: str, label: str) -> None:
        if label == "done":
            close_stage(f"between ({stage} ..)")
        else:
            close_stage(stage)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    close_stage("start")
    result = segwise.segment(orders, random_state=0, engine=engine, progress=progress)
    close_stage("save")
    with tempfile.TemporaryDirectory(prefix="segwise-memory-") as out_dir:
        result.save(out_dir)
    close_stage("end")
    done.set()
    print(f"{'stage':32s} {'s':>7s} {'start':>8s} {'peak':>8s} {'end':>8s} {'duckdb':>8s}  (MiB)")
    for row in stages:
        print(f"{row['stage']:32s} {row['seconds']:7.2f} {row['rss_start_mib']:8.0f} {row['rss_peak_mib']:8.0f} "
              f"{row['rss_end_mib']:8.0f} {row['duckdb_end_mib'] if row['duckdb_end_mib'] is not None else '-':>8}")
    load_after = round(os.getloadavg()[0], 2)
    print(f"1-minute load average: {load_before} before, {load_after} after")
    print(json.dumps({"stages": stages, "n_segments": result.n_segments, "customers": len(result.assignments),
                      "load_1min_before": load_before, "load_1min_after": load_after}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
