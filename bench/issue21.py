"""``python -m bench.issue21 --before SRC [--size 10m] [--repeats N]``: issue 21's whole-process figures.

Measures from a shell, each run a fresh process tree (`bench.proctree`):

- ``segwise features ORDERS --out F.parquet`` with the code under ``--before`` (a
  ``src`` directory, e.g. main's exported with ``git archive main src | tar -x -C
  DIR``) and with this checkout's;
- the hand-written DuckDB query (`bench.reference_cli`: read the Parquet log, clean,
  compute, write Parquet): the 12-column query, and the query computing the same
  columns as ``segwise features --features <SAME_COLUMNS_FAMILIES>`` (every SQL
  family of the default; the value family is a model fit), run alongside it with the
  code before and after;
- ``segwise run ORDERS --out DIR`` (automatic k, report included) before and after.

Before and after alternate run by run, so that both see the same machine; every
figure is recorded with the 1-minute load average before it and the share of the
CPUs other processes used during it (the machine is shared). Writes
``bench/results/issue21-<size>[-<label>]-<date>-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.datasets import ensure_dataset
from bench.proctree import measure_command
from bench.reference_duckdb import SAME_COLUMNS_FAMILIES
from bench.results import describe_machine, machine_sentence, record_named
from bench.sizes import SIZES

ROOT = Path(__file__).resolve().parent.parent


def _segwise(src: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    # The installed console script, run with the chosen code first on the path.
    return [str(Path(sys.executable).parent / "segwise"), *args], env


def _commands(before: Path, orders: Path, tmp: Path, limit: str | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    after = ROOT / "src"
    reference_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    limited = {}
    if limit:
        limited = {
            f"features_after_limit_{limit}": _segwise(after, "features", str(orders), "--out", str(tmp / "fl.parquet"),
                                                      "--memory-limit", limit),
            f"run_after_limit_{limit}": _segwise(after, "run", str(orders), "--out", str(tmp / "run_limited"),
                                                 "--memory-limit", limit),
        }
    return {
        "features_before": _segwise(before, "features", str(orders), "--out", str(tmp / "fb.parquet")),
        "features_after": _segwise(after, "features", str(orders), "--out", str(tmp / "fa.parquet")),
        "reference": ([sys.executable, "-m", "bench.reference_cli", str(orders), str(tmp / "ref.parquet")],
                      reference_env),
        # The same-columns pair: segwise's SQL families (the default's, without the
        # value family's model fits) against a hand-written query for those columns,
        # with the code before and after, so that one record holds both sides.
        "features_sql_families_before": _segwise(before, "features", str(orders), "--out",
                                                 str(tmp / "fsb.parquet"), "--features",
                                                 ",".join(SAME_COLUMNS_FAMILIES)),
        "features_sql_families_after": _segwise(after, "features", str(orders), "--out", str(tmp / "fsa.parquet"),
                                                "--features", ",".join(SAME_COLUMNS_FAMILIES)),
        "reference_same_columns": ([sys.executable, "-m", "bench.reference_cli", str(orders),
                                    str(tmp / "ref_same.parquet"), "--same-columns"], reference_env),
        "run_before": _segwise(before, "run", str(orders), "--out", str(tmp / "run_before")),
        "run_after": _segwise(after, "run", str(orders), "--out", str(tmp / "run_after")),
        **limited,
    }


def _head() -> str | None:
    """This checkout's commit (``+`` when its files differ from it), or None outside git."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "bench"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def render_markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# Issue 21, size {record['size']} ({record['order_lines']:,} order lines), {record['started']}",
        "",
        f"Before: `{record['before']}`; after: this checkout at {record.get('after_commit') or 'an unknown commit'}.",
        "",
        f"Machine: {machine_sentence(record['machine'], ('duckdb', 'pyarrow', 'pandas'))}; shared with other "
        "engineers: every run is listed with the load average before it and the share of "
        "the CPUs other processes used during it. CPU s is the command's own CPU time (user + system, all its "
        "processes), less disturbed by other processes than the wall time. Whole processes from a shell (start-up, imports, reading, "
        "cleaning, computing, writing); peak RSS is the largest sum over the process tree.",
        "",
        "| command | run | wall s | CPU s | peak RSS MiB | load before | others' CPU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in record["runs"].items():
        for i, run in enumerate(runs, 1):
            others = "-" if run["others_cpu_share"] is None else f"{100 * run['others_cpu_share']:.0f}%"
            status = "" if run["returncode"] == 0 else " (failed)"
            lines.append(f"| {name}{status} | {i} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
                         f"{run['peak_tree_rss_mib']:,.0f} | "
                         f"{run['loadavg_before']:.2f} | {others} |")
    lines += ["", "Medians:", ""]
    for name, summary in record["medians"].items():
        lines.append(f"- {name}: {summary['wall_s']:.1f} s, {summary['peak_tree_rss_mib']:,.0f} MiB")
    ratios = record.get("ratios", {})
    if ratios:
        lines += ["", *[f"- {k}: {v:.2f}" for k, v in ratios.items()]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.issue21", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="src directory of the version before")
    parser.add_argument("--size", choices=list(SIZES), default="10m")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--memory-limit", default=None,
                        help="also run this checkout's features and run with --memory-limit (e.g. 1GB)")
    parser.add_argument("--only", default="", help="comma-separated commands to run (default: all)")
    parser.add_argument("--label", help="recorded as issue21-SIZE-LABEL-<date>-<machine>, so that one "
                                        "measurement does not replace another of the same day")
    args = parser.parse_args(argv)
    dataset = ensure_dataset(SIZES[args.size])
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runs: dict[str, list[dict[str, Any]]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="segwise-issue21-"))
    try:
        commands = _commands(args.before.resolve(), dataset.orders_path, tmp, args.memory_limit)
        wanted = [c for c in args.only.split(",") if c] or list(commands)
        for _ in range(args.repeats):
            for name in wanted:
                command, env = commands[name]
                result = measure_command(command, env=env, cwd=tmp)
                runs.setdefault(name, []).append(result)
                print(f"{name}: {result['wall_s']:.1f} s, {result['peak_tree_rss_mib']:,.0f} MiB, load "
                      f"{result['loadavg_before']:.2f}, rc {result['returncode']}", file=sys.stderr, flush=True)
                if result["returncode"]:
                    print(result["stderr_tail"], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {
        name: {"wall_s": statistics.median(r["wall_s"] for r in rs),
               "peak_tree_rss_mib": statistics.median(r["peak_tree_rss_mib"] for r in rs)}
        for name, rs in runs.items()
    }
    ratios = {}
    pairs = (("reference", ("features_before", "features_after")),
             ("reference_same_columns", ("features_sql_families_before", "features_sql_families_after")))
    for reference, sides in pairs:
        if reference not in medians:
            continue
        reference_cpu = statistics.median(r["cpu_s"] for r in runs[reference])
        for side in sides:
            if side in medians:
                ratios[f"{side} / {reference} (wall)"] = medians[side]["wall_s"] / medians[reference]["wall_s"]
                ratios[f"{side} / {reference} (CPU)"] = (statistics.median(r["cpu_s"] for r in runs[side])
                                                          / reference_cpu)
    record = {"size": args.size, "label": args.label, "order_lines": dataset.order_lines, "started": started,
              "machine": describe_machine(), "before": str(args.before), "after_commit": _head(),
              "runs": runs, "medians": medians,
              "ratios": ratios}
    markdown = render_markdown(record)
    record_named("-".join(["issue21", args.size, *filter(None, [args.label])]), record, markdown)
    print(markdown)
    return 0 if all(r["returncode"] == 0 for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
