"""Run every step of one size, each repeat in a fresh subprocess, and summarise."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from bench.agreement import compare_with_segwise
from bench.datasets import Dataset
from bench.runner import RESULT_MARKER
from bench.sizes import SEED, BenchSize
from bench.steps import STEPS, Step

__all__ = ["run_size", "busy_share", "busy_share_since", "machine_busy_seconds", "wait_for_idle", "StepFailed", "IDLE_SHARE"]

#: The repository root: steps run from here so ``bench`` is importable.
ROOT = Path(__file__).resolve().parent.parent

#: Share of the CPUs other processes may use for the machine to count as idle.
IDLE_SHARE = 0.05

#: Share of the CPUs used by other processes during a run above which the run
#: is redone (only when waiting for idle CPUs, ``--wait-idle``).
DISTURBED_SHARE = 0.10

#: Most runs made to get one undisturbed run.
MAX_ATTEMPTS = 3


class StepFailed(RuntimeError):
    """A step's subprocess exited with an error.

    The message is the last line of its error output; ``error_output`` holds
    the end of it (the traceback).
    """

    def __init__(self, message: str, error_output: str) -> None:
        super().__init__(message)
        self.error_output = error_output


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def machine_busy_seconds() -> float | None:
    """CPU seconds spent by all processes since boot (Linux ``/proc/stat``), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def busy_share_since(busy_before: float | None, seconds: float) -> float | None:
    """Share of the machine's CPUs busy (every process) over the last ``seconds``, rounded.

    ``busy_before`` is `machine_busy_seconds` read when those seconds began.
    """
    if busy_before is None:
        return None
    return round((machine_busy_seconds() - busy_before) / (seconds * os.cpu_count()), 2)


def busy_share(window_s: float = 1.0) -> float | None:
    """Share of the machine's CPUs busy during the next ``window_s`` seconds (Linux), or None."""
    busy_before = machine_busy_seconds()
    if busy_before is None:
        return None
    time.sleep(window_s)
    return (machine_busy_seconds() - busy_before) / (window_s * os.cpu_count())


def wait_for_idle(max_wait_s: float, log: Callable[[str], None] = print) -> float:
    """Wait until under `IDLE_SHARE` of the CPUs are busy, for at most ``max_wait_s``.

    Called between runs, when no step is running, so the busy share is that of
    other processes. Probes in one-second windows; returns at once where
    `busy_share` is unavailable.

    Returns
    -------
    float
        Seconds waited.
    """
    started = time.perf_counter()
    announced = False
    while time.perf_counter() - started < max_wait_s:
        share = busy_share()
        if share is None or share < IDLE_SHARE:
            break
        if not announced:
            log(f"waiting for the machine to be idle (other processes use {100 * share:.0f}% of the CPUs) ...")
            announced = True
    return time.perf_counter() - started


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_once(step: Step, dataset: Dataset, output: Path | None) -> dict[str, Any]:
    """Run the step in a fresh process; add the share of the CPUs other processes used meanwhile."""
    command = [sys.executable, "-m", "bench.runner", step.name, str(dataset.directory)]
    if output is not None:
        command += ["--output", str(output)]
    busy_before, own_before, started = machine_busy_seconds(), _children_cpu_seconds(), time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    process_seconds = time.perf_counter() - started
    busy_after, own_after = machine_busy_seconds(), _children_cpu_seconds()
    results = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not results:
        error_output = completed.stderr.strip()
        last_line = error_output.splitlines()[-1] if error_output else "no error output"
        raise StepFailed(f"exit code {completed.returncode}: {last_line}", error_output[-4000:])
    others_share = None
    if busy_before is not None and busy_after is not None:
        others_seconds = max(busy_after - busy_before - (own_after - own_before), 0.0)
        others_share = others_seconds / (process_seconds * os.cpu_count())
    return {
        **json.loads(results[-1][len(RESULT_MARKER):]),
        "process_s": process_seconds,
        "others_cpu_share": others_share,
    }


def _measure(
    step: Step, dataset: Dataset, output: Path | None, idle_wait_s: float, label: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """One run of ``step``; with ``idle_wait_s``, wait for idle CPUs first and redo a disturbed run.

    A run during which other processes used more than `DISTURBED_SHARE` of the
    CPUs is redone, up to `MAX_ATTEMPTS` runs in all; the least disturbed is kept.
    """
    attempts = []
    while True:
        waited = wait_for_idle(idle_wait_s, log) if idle_wait_s > 0 else 0.0
        attempts.append({**_run_once(step, dataset, output), "idle_wait_s": waited})
        log(f"{label}: {_describe_run(attempts[-1])}")
        others = attempts[-1]["others_cpu_share"]
        if idle_wait_s == 0 or others is None or others <= DISTURBED_SHARE or len(attempts) == MAX_ATTEMPTS:
            break
        log(f"{label}: disturbed by other processes, running it again")
    best = min(attempts, key=lambda run: run["others_cpu_share"] or 0.0)
    return {**best, "attempts": len(attempts)}


def _describe_run(run: dict[str, Any]) -> str:
    text = f"{run['wall_s']:.2f} s (process {run['process_s']:.1f} s), peak RSS {run['peak_rss_mib']:,.0f} MiB"
    if run["others_cpu_share"] is not None:
        text += f", other processes used {100 * run['others_cpu_share']:.0f}% of the CPUs"
    return text


def _summarise(step: Step, runs: list[dict[str, Any]]) -> dict[str, Any]:
    phase_names = list(runs[0]["phases"])
    return {
        "step": step.name,
        "title": step.title,
        "status": "ok",
        "wall_s_median": statistics.median(run["wall_s"] for run in runs),
        "wall_s_runs": [run["wall_s"] for run in runs],
        "phases_median_s": {
            name: statistics.median(run["phases"][name] for run in runs) for name in phase_names
        },
        "peak_rss_mib_max": max(run["peak_rss_mib"] for run in runs),
        "peak_rss_mib_runs": [run["peak_rss_mib"] for run in runs],
        "import_s_runs": [run["import_s"] for run in runs],
        "process_s_runs": [run["process_s"] for run in runs],
        "others_cpu_share_runs": [run["others_cpu_share"] for run in runs],
        "idle_wait_s_runs": [run["idle_wait_s"] for run in runs],
        "attempts_runs": [run["attempts"] for run in runs],
        "others_cpu_share_max": max(
            (run["others_cpu_share"] for run in runs if run["others_cpu_share"] is not None), default=None
        ),
        "skipped_parts": runs[0]["skipped_parts"],
        "info": runs[0]["info"],
    }


def run_size(
    size: BenchSize,
    dataset: Dataset,
    repeats: int,
    *,
    idle_wait_s: float = 0.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every step `repeats` times on ``dataset`` and summarise the runs.

    Each run is a fresh ``python -m bench.runner`` process. The share of the
    machine's CPU time that other processes used during each run is recorded
    (Linux), as they distort the timings. The first run of a step that makes a
    per-customer table also writes it, and the table is compared with segwise's
    (`bench.agreement`).

    Parameters
    ----------
    size : BenchSize
    dataset : Dataset
        The generated data of ``size``.
    repeats : int
        Runs per step.
    idle_wait_s : float
        Before each run, wait up to this long for other processes to leave the
        CPUs idle (`wait_for_idle`), and redo runs they disturbed (`_measure`);
        0 to start at once and keep every run.
    log : callable
        Receives one progress message per run.

    Returns
    -------
    dict
        The size's results, as recorded in the results JSON: ``size``,
        ``order_lines``, ``customers``, ``repeats``, ``seed``, ``started_at``,
        ``finished_at`` and ``steps`` (one summary per step, with ``status`` ``ok``,
        ``skipped`` or ``failed``).
    """
    started_at = _now()
    steps = []
    with tempfile.TemporaryDirectory(prefix="segwise-bench-outputs-") as outputs_dir:
        for step in STEPS:
            reason = step.skip_reason(size)
            if reason is not None:
                log(f"{step.name}: skipped ({reason})")
                steps.append({"step": step.name, "title": step.title, "status": "skipped", "reason": reason})
                continue
            output = Path(outputs_dir) / f"{step.name}.parquet"
            runs = []
            try:
                for repeat in range(repeats):
                    label = f"{step.name}: run {repeat + 1}/{repeats}"
                    runs.append(_measure(step, dataset, output if repeat == 0 else None, idle_wait_s, label, log))
            except StepFailed as error:
                log(f"{step.name}: FAILED {error}\n{error.error_output}")
                steps.append({
                    "step": step.name, "title": step.title, "status": "failed", "reason": str(error),
                    "error_output": error.error_output,
                })
                continue
            summary = _summarise(step, runs)
            if output.exists():
                summary["agreement"] = compare_with_segwise(output, dataset.features_path)
            steps.append(summary)
    return {
        "size": size.name,
        "order_lines": dataset.order_lines,
        "customers": dataset.customers,
        "customers_with_purchases": dataset.customers_with_features,
        "repeats": repeats,
        "seed": SEED,
        "started_at": started_at,
        "finished_at": _now(),
        "steps": steps,
    }
