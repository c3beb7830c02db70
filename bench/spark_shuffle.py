"""Benchmark: how much each feature family shuffles on Spark local[2].

Usage::

    .venv/bin/python -m bench.spark_shuffle --size 10m   # 9,991,165 order lines
    .venv/bin/python -m bench.spark_shuffle --size quick

Every family aggregates by customer, so every family shuffles; how much decides
executor memory and network on a cluster (docs/scaling.md). This loads the
benchmark log once into one Spark session, then builds the features with
``families=["rfm"]`` (rfm is always computed, and with it the orders table that
several families share), then with rfm plus each other family, then with all. The
bytes come from Spark's own accounting: the monitoring REST API of the session's
UI (``/api/v1/applications/<id>/stages``), summed over the stages each build ran.
A family's share is its build's figure minus the rfm-only build's.

Results go to ``bench/results/spark-shuffle-<size>-<date>-<machine>.{json,md}``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.datasets import order_log
from bench.results import describe_machine, machine_sentence, record_named, result_parser
from bench.sizes import SIZES

#: The UI's store is updated by a listener after each job ends; give it time.
UI_SETTLE_S = 2.0
METRICS = ("shuffleWriteBytes", "shuffleReadBytes", "shuffleWriteRecords", "inputBytes")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def completed_stage_totals(ui_url: str, app_id: str) -> dict[str, int]:
    """Sums of `METRICS` (and the stage count) over the session's completed stages."""
    time.sleep(UI_SETTLE_S)
    with urllib.request.urlopen(f"{ui_url}/api/v1/applications/{app_id}/stages?status=complete", timeout=30) as reply:
        stages = json.load(reply)
    totals = {metric: sum(int(stage.get(metric, 0)) for stage in stages) for metric in METRICS}
    totals["stages"] = len(stages)
    return totals


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


def measure(orders: Path, order_lines: int, label: str, driver_memory: str) -> dict[str, Any]:
    """Load ``orders`` on Spark local[2] and measure each feature build's shuffle."""
    import segwise
    from segwise.features.build import learn_spec
    from segwise.engines.spark import SparkEngine

    engine = SparkEngine(master="local[2]", app_name="segwise-bench-shuffle", conf={
        "spark.ui.enabled": "true", "spark.ui.port": str(_free_port()), "spark.driver.memory": driver_memory,
        # Keep every stage of the run in the UI's store.
        "spark.ui.retainedStages": "100000", "spark.ui.retainedJobs": "100000",
    })
    context = engine.spark.sparkContext
    ui_url, app_id = context.uiWebUrl, context.applicationId
    record: dict[str, Any] = {"size": label, "order_lines": order_lines, "builds": []}
    try:
        before = completed_stage_totals(ui_url, app_id)
        started = time.perf_counter()
        transactions = segwise.load_transactions(orders, engine=engine)
        record["load"] = {**_difference(completed_stage_totals(ui_url, app_id), before),
                          "seconds": round(time.perf_counter() - started, 1)}
        spec_families = learn_spec(transactions, None, None).families
        builds = [["rfm"]] + [["rfm", family] for family in spec_families if family != "rfm"] + [list(spec_families)]
        for families in builds:
            before = completed_stage_totals(ui_url, app_id)
            started = time.perf_counter()
            features = segwise.build_features(transactions, families=families)
            seconds = time.perf_counter() - started
            record["builds"].append({"families": families, "seconds": round(seconds, 1),
                                     "customers": len(features.frame),
                                     **_difference(completed_stage_totals(ui_url, app_id), before)})
            print(json.dumps(record["builds"][-1]), flush=True)
    finally:
        engine.close()
    rfm_only = record["builds"][0]
    record["per_family"] = {
        build["families"][1]: {metric: build[metric] - rfm_only[metric] for metric in METRICS}
        for build in record["builds"][1:-1]
    }
    return record


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f} MiB"


def _markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# Shuffle per feature family on Spark local[2], {record['size']} ({record['order_lines']:,} order lines)",
        "",
        f"Measured {record['started']} on {machine_sentence(record['machine'], ('pyspark',))}; "
        "bytes from Spark's monitoring REST API (completed stages), after Spark's shuffle compression.",
        "",
        f"Loading and cleaning: {_mib(record['load']['shuffleWriteBytes'])} shuffle written, "
        f"{_mib(record['load']['inputBytes'])} read from Parquet, {record['load']['seconds']} s.",
        "",
        "| build | time | stages | shuffle written | shuffle records | bytes per order line |",
        "|---|---|---|---|---|---|",
    ]
    for build in record["builds"]:
        lines.append(
            f"| {' + '.join(build['families'])} | {build['seconds']} s | {build['stages']} | "
            f"{_mib(build['shuffleWriteBytes'])} | {build['shuffleWriteRecords']:,} | "
            f"{build['shuffleWriteBytes'] / record['order_lines']:.1f} |"
        )
    lines += ["", "Each family's own share (its build minus the rfm-only build, which includes the orders table):", "",
              "| family | shuffle written | bytes per order line |", "|---|---|---|"]
    for family, metrics in record["per_family"].items():
        lines.append(f"| {family} | {_mib(metrics['shuffleWriteBytes'])} | "
                     f"{metrics['shuffleWriteBytes'] / record['order_lines']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = result_parser(__doc__.splitlines()[0])
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--orders", type=Path, metavar="PARQUET",
                        help="measure this order log instead of the generated one of --size")
    args = parser.parse_args(argv)
    machine = describe_machine()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    orders, order_lines, _customers, label = order_log(SIZES[args.size], args.orders)
    record = {**measure(orders, order_lines, label, args.driver_memory), "machine": machine, "started": started}
    print(_markdown(record))
    if not args.no_record:
        record_named(f"spark-shuffle-{label}", record, _markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
