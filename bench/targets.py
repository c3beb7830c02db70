"""``python -m bench.targets --size 10m``: the per-method targets of issue 11, once each.

Runs the steps of `bench.target_steps` (GMM, hierarchical, DBSCAN, HDBSCAN, SOM
10 x 10, bootstrap stability B=20, assign throughput), each in a fresh process like
every benchmark step (`bench.harness`), on the data set of a size (``--data DIR``
reuses an existing one, e.g. another checkout's ``bench/data/10m``), and writes
``bench/results/targets-<size>-<date>-<machine>.json`` and ``.md`` with the machine,
the load average before and after every step and the share of the CPUs other
processes used. Runs disturbed by other processes are labelled provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from bench.datasets import Dataset, ensure_dataset
from bench.harness import IDLE_SHARE, StepFailed, _run_once
from bench.results import describe_machine
from bench.sizes import SIZES
from bench.steps import STEPS

__all__ = ["TARGET_STEPS", "main", "render_markdown"]

RESULTS = Path(__file__).resolve().parent / "results"

#: Step name to the issue's target it measures.
TARGET_STEPS = {
    "segwise_method_gmm": "GMM with BIC selection: under 60 s",
    "segwise_method_hierarchical": "hierarchical (micro-cluster route): under 30 s",
    "segwise_method_dbscan": "DBSCAN (sample fit, assign): under 120 s and 4 GiB",
    "segwise_method_hdbscan": "HDBSCAN (sample fit, assign): under 120 s and 4 GiB",
    "segwise_method_som": "SOM 10 x 10: under 60 s",
    "segwise_stability": "bootstrap stability B=20: under 120 s",
    "segwise_assign": "assign with a saved model: at least 1M customers/s",
}


def _target_seconds(step: dict[str, Any]) -> float | None:
    """The seconds the target is about (the phase measured, not reading the features)."""
    phases = step.get("phases") or {}
    for phase in ("stability", "assign", "fit"):
        if phase in phases:
            return phases[phase]
    return None


def render_markdown(record: dict[str, Any]) -> str:
    """The table of one targets run."""
    machine = record["machine"]
    lines = [
        f"# segwise targets, size {record['size']} ({record['customers']:,} customers), {record['date']}",
        "",
        f"Machine: {machine['slug']} ({machine.get('cpu_model') or 'unknown CPU'}, {machine['ram_gib']} GiB). "
        f"{'PROVISIONAL: other processes used the CPUs during these runs.' if record['provisional'] else ''}",
        "",
        "| step | target | measured s | peak RSS MiB | others' CPU % | load avg before | facts |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for step in record["steps"]:
        if step["status"] != "ok":
            lines.append(f"| {step['name']} | {step['target']} | failed | | | {step['load_before']} | "
                         f"{step['error']} |")
            continue
        seconds = _target_seconds(step)
        others = step.get("others_cpu_share")
        facts = ", ".join(f"{k} {v}" for k, v in step["info"].items() if k not in ("method", "method_params"))
        lines.append(
            f"| {step['name']} | {step['target']} | {seconds:.1f} | {step['peak_rss_mib']:,.0f} | "
            f"{'' if others is None else f'{100 * others:.0f}'} | {step['load_before']} | {facts} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the target steps once each; return 1 when one failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="quick")
    parser.add_argument("--data", type=Path, default=None, help="an existing data set directory of that size")
    parser.add_argument("--steps", default=",".join(TARGET_STEPS), help="comma-separated step names")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.steps.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TARGET_STEPS))
    if unknown:
        parser.error(f"unknown target step(s) {', '.join(unknown)}; steps are: {', '.join(TARGET_STEPS)}")
    dataset = Dataset.read(args.data) if args.data is not None else ensure_dataset(SIZES[args.size])
    if dataset is None:
        parser.error(f"{args.data} is not a benchmark data set (orders.parquet, features.parquet, features.json)")
    steps = {step.name: step for step in STEPS}
    machine = describe_machine()
    results = []
    for name in names:
        load_before = " ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"{name} ... (load average {load_before})", file=sys.stderr, flush=True)
        try:
            run = _run_once(steps[name], dataset, None)
        except StepFailed as error:
            results.append({"name": name, "target": TARGET_STEPS[name], "status": "failed", "error": str(error),
                            "load_before": load_before})
            continue
        results.append({"name": name, "target": TARGET_STEPS[name], "status": "ok", "load_before": load_before,
                        "load_after": " ".join(f"{v:.1f}" for v in os.getloadavg()), **run})
        print(f"{name}: {_target_seconds(results[-1]):.1f} s, peak RSS {run['peak_rss_mib']:,.0f} MiB",
              file=sys.stderr, flush=True)
    shares = [r.get("others_cpu_share") for r in results if r["status"] == "ok"]
    record = {
        "benchmark": "issue 11 targets",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "size": args.size,
        "customers": dataset.customers_with_features,
        "order_lines": dataset.order_lines,
        "machine": machine,
        "provisional": any(s is None or s > IDLE_SHARE for s in shares),
        "steps": results,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = f"targets-{args.size}-{date.today().isoformat()}-{machine['slug']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=1))
    (RESULTS / f"{stem}.md").write_text(render_markdown(record))
    print(render_markdown(record))
    return 1 if any(r["status"] != "ok" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
