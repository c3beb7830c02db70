"""Recording results: the machine, the JSON file, and the markdown table.

One results file pair per day and machine, ``bench/results/<date>-<machine>.json``
and ``.md``; each ``--size`` run adds (or replaces) its own section, so running
the three sizes on one day fills one file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "describe_machine", "machine_sentence", "record_size", "record_named", "render_markdown", "result_parser"]

#: Where result files are written.
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Distributions whose versions are recorded.
LIBRARIES = ("segwise", "numpy", "pandas", "pyarrow", "duckdb", "ibis-framework", "scikit-learn", "scipy", "pyspark")


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _library_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def describe_machine() -> dict[str, Any]:
    """The machine and software, without the host name.

    Returns
    -------
    dict
        ``slug`` (used in file names, e.g. ``x86_64-2cpu-24gib-py3.11``),
        ``architecture``, ``cpu_count``, ``cpu_model``, ``ram_gib``, ``os``,
        ``python`` and ``libraries`` (distribution name to version).
    """
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    major_minor = ".".join(python.split(".")[:2])
    return {
        "slug": f"{platform.machine()}-{os.cpu_count()}cpu-{round(ram_gib)}gib-py{major_minor}",
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": round(ram_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": python,
        "libraries": {name: _library_version(name) for name in LIBRARIES},
    }


def machine_sentence(machine: dict[str, Any], libraries: tuple[str, ...] = ()) -> str:
    """``machine`` (from `describe_machine`) in words, e.g. for a results file's header.

    ``libraries`` adds those libraries' versions.
    """
    versions = "".join(f", {name} {machine['libraries'].get(name)}" for name in libraries)
    return (f"{machine['architecture']}, {machine['cpu_count']} CPUs ({machine['cpu_model'] or 'unknown model'}), "
            f"{machine['ram_gib']} GiB RAM, Python {machine['python']}{versions}")


def record_size(size_result: dict[str, Any], run_date: date, machine: dict[str, Any]) -> tuple[Path, Path]:
    """Add one size's results to the day's files for this machine and rewrite both.

    Parameters
    ----------
    size_result : dict
        The results of one ``--size`` run (``size`` names it).
    run_date : date
    machine : dict
        From `describe_machine`.

    Returns
    -------
    tuple of Path
        The JSON and markdown files written.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"{run_date.isoformat()}-{machine['slug']}"
    json_path, markdown_path = RESULTS_DIR / f"{stem}.json", RESULTS_DIR / f"{stem}.md"
    record = {"date": run_date.isoformat(), "machine": machine, "sizes": {}}
    if json_path.exists():
        record["sizes"] = json.loads(json_path.read_text())["sizes"]
    record["sizes"][size_result["size"]] = size_result
    record["sizes"] = {name: record["sizes"][name] for name in sorted(record["sizes"], key=_size_order)}
    _write_atomically(json_path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    _write_atomically(markdown_path, render_markdown(record))
    return json_path, markdown_path


def result_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every recorded benchmark has: ``--size`` and ``--no-record``."""
    from bench.sizes import SIZES

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=list(SIZES), default="quick", help="benchmark data set (default: quick)")
    parser.add_argument("--no-record", action="store_true", help="print only; write nothing to bench/results")
    return parser


def record_named(prefix: str, record: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write one benchmark's record as ``bench/results/<prefix>-<date>-<machine>.json`` and ``.md``.

    For benchmarks with their own layout (e.g. ``bench.spark``); ``record["machine"]``
    comes from `describe_machine`, the date is today's. Each file is replaced
    atomically, and their paths are printed.

    Returns
    -------
    tuple of Path
        The JSON and markdown files written.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{date.today().isoformat()}-{record['machine']['slug']}"
    # Not Path.with_suffix: the machine slug ends in ".11" (py3.11), which it would replace.
    json_path, markdown_path = RESULTS_DIR / f"{name}.json", RESULTS_DIR / f"{name}.md"
    _write_atomically(json_path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    _write_atomically(markdown_path, markdown)
    print("recorded", json_path, markdown_path)
    return json_path, markdown_path


def _size_order(name: str) -> int:
    from bench.sizes import SIZES

    return list(SIZES).index(name) if name in SIZES else len(SIZES)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _breakdown(step: dict[str, Any]) -> str:
    parts = [f"{phase} {_seconds(seconds)}" for phase, seconds in step["phases_median_s"].items()]
    parts += [f"{part} skipped: {reason}" for part, reason in step["skipped_parts"].items()]
    return "; ".join(parts)


def size_table(size_result: dict[str, Any]) -> str:
    """The markdown table of one size: a row per step."""
    lines_count = f"{size_result['order_lines']:,}"
    customers = f"{size_result['customers']:,}"
    rows = [
        "| step | lines | customers | wall s (median) | N | peak RSS MiB | others' CPU % | breakdown, s (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for step in size_result["steps"]:
        if step["status"] == "ok":
            others = step["others_cpu_share_max"]
            rows.append(
                f"| {step['title']} | {lines_count} | {customers} | {_seconds(step['wall_s_median'])} | "
                f"{len(step['wall_s_runs'])} | {step['peak_rss_mib_max']:,.0f} | "
                f"{'n/a' if others is None else f'{100 * others:.0f}'} | {_breakdown(step)} |"
            )
        else:
            reason = step["reason"].replace("|", "/")
            rows.append(
                f"| {step['title']} | {lines_count} | {customers} | – | 0 | – | – | {step['status']}: {reason} |"
            )
    return "\n".join(rows)


def _agreement_lines(size_result: dict[str, Any]) -> list[str]:
    lines = []
    for step in size_result["steps"]:
        agreement = step.get("agreement")
        if agreement is None:
            continue
        worst = max(agreement["max_abs_diff"].values())
        verdict = "agrees" if agreement["agrees"] else "DIFFERS"
        lines.append(
            f"- {step['title']}: {verdict} with segwise on {len(agreement['max_abs_diff'])} columns "
            f"and {agreement['customers']:,} customers (largest |difference| {worst:.1e}; "
            f"customers only in the baseline: {agreement['customers_only_in_step']}, only in segwise: "
            f"{agreement['customers_only_in_segwise']}; NaN mismatches: {sum(agreement['nan_mismatches'].values())})"
        )
    return lines


def render_markdown(record: dict[str, Any]) -> str:
    """The markdown report of a results record (all its sizes)."""
    machine = record["machine"]
    libraries = ", ".join(f"{name} {v}" for name, v in machine["libraries"].items() if v)
    out = [
        f"# segwise benchmarks, {record['date']}, {machine['slug']}",
        "",
        f"- date: {record['date']}",
        f"- machine: {machine['slug']} ({machine['cpu_model'] or 'unknown CPU'}, {machine['cpu_count']} CPUs, "
        f"{machine['ram_gib']} GiB RAM, {machine['os']}, Python {machine['python']})",
        f"- libraries: {libraries}",
        "",
        "Each step ran in a fresh Python process; wall seconds are the median over N runs and exclude "
        "interpreter start-up and imports; peak RSS is the largest over the runs; others' CPU % is the "
        "largest share of the machine's CPU time used by other processes during a run (timings with more "
        "than a few % are slowed down by them). See bench/README.md.",
    ]
    for name, size_result in record["sizes"].items():
        out += [
            "",
            f"## {name}: {size_result['order_lines']:,} order lines, {size_result['customers']:,} customers",
            "",
            f"Run {size_result['started_at']} to {size_result['finished_at']} (UTC), seed {size_result['seed']}, "
            f"N = {size_result['repeats']}.",
            "",
            size_table(size_result),
        ]
        agreement = _agreement_lines(size_result)
        if agreement:
            out += ["", "Same numbers as segwise (baseline output against the segwise feature table):", "", *agreement]
    return "\n".join(out) + "\n"
