"""Whole-process measurements: wall time and peak RSS of a command's whole process tree.

`measure_command` starts a command, samples the resident memory of it and every
descendant (Linux ``/proc``, `bench.spark.TreeMemorySampler`), and returns the wall seconds,
the peak of the tree's summed RSS, the load average before and after, and the share
of the CPUs other processes used meanwhile. It measures what a user sees from a
shell: interpreter start-up, imports, reading, computing and writing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from bench.harness import busy_share_since, machine_busy_seconds
from bench.spark import TreeMemorySampler

__all__ = ["measure_command"]


def measure_command(
    command: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``command`` to completion and measure it.

    Parameters
    ----------
    command : sequence of str
    env : dict, optional
        Environment of the command (default: this process's).
    cwd : path, optional

    Returns
    -------
    dict
        ``wall_s``, ``peak_tree_rss_mib``, ``returncode``, ``loadavg_before``,
        ``loadavg_after`` (1-minute load averages), ``others_cpu_share`` (share of the
        machine's CPU time used by other processes during the run; None where unknown)
        ``cpu_s`` (user + system seconds of the command and the processes it waited for)
        and the last lines of ``stderr`` when the command failed.
    """
    load_before = os.getloadavg()[0]
    times_before = os.times()
    busy_before = machine_busy_seconds()
    started = time.perf_counter()
    # Error output to a file, not a pipe: a pipe nobody reads until the end would block a
    # command that writes more than the pipe holds.
    with tempfile.TemporaryFile("w+") as stderr_file:
        process = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr_file,
                                   text=True)
        with TreeMemorySampler(process.pid) as sampler:
            process.wait()
        wall = time.perf_counter() - started
        stderr_file.seek(0)
        stderr = stderr_file.read()
    peak = sampler.peak_bytes
    times_after = os.times()
    # The command and the descendants it waited for, once reaped.
    own_cpu = (times_after.children_user + times_after.children_system
               - times_before.children_user - times_before.children_system)
    machine_share = busy_share_since(busy_before, wall)
    others = None
    if machine_share is not None:
        cpus = os.cpu_count() or 1
        own_share = min(own_cpu / (wall * cpus), 1.0)
        others = round(max(machine_share - own_share, 0.0), 3)
    return {
        "wall_s": round(wall, 3),
        "peak_tree_rss_mib": round(peak / 2**20, 1),
        "returncode": process.returncode,
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
        "others_cpu_share": others,
        "cpu_s": round(own_cpu, 2),
        "stderr_tail": "\n".join(stderr.splitlines()[-15:]) if process.returncode else "",
    }
