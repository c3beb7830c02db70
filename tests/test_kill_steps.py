"""SIGKILL delivered at every write and rename step of saving a run, and what is left each time.

Saving marks each step with `segwise.persist.saving_step` (a test hook, inert unless
its environment variables are set). A first save lists the steps; then, for every
step, a fresh process saves a new run over a previous one and stops itself with
SIGKILL exactly there (its exit status proves the kill landed at that step). After
each kill, reading the directory (which recovers first, as every reader does) must
give the previous run whole if the kill came before the commit marker was renamed
into place, and the new run whole from then on; no staging directory is ever left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import segwise
from segwise.outputs import STAGING_PREFIX
from segwise.runs import OUTPUT_FILES

N_CUSTOMERS = 300


def _save_in_child(data: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(f"""
        import segwise
        segwise.segment({str(data)!r}, n_segments=3, random_state=2).save({str(out)!r})
    """)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    environment.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill-steps")
    data = root / "orders.parquet"
    pq.write_table(segwise.generate_population(N_CUSTOMERS, seed=5).orders, data)
    previous = root / "previous"
    segwise.segment(str(data), n_segments=4, random_state=1).save(previous)
    log = root / "steps.log"
    listing = _save_in_child(data, root / "listing", SEGWISE_TEST_STEPS_LOG=str(log))
    assert listing.returncode == 0, listing.stderr
    steps = list(dict.fromkeys(log.read_text().split()))
    return data, previous, steps


def test_saving_has_a_step_per_write_and_rename(setup):
    _, _, steps = setup
    for name in OUTPUT_FILES:
        assert f"written:{name}" in steps and f"renamed:{name}" in steps, (name, steps)
    assert "committed" in steps and steps.index("atomic-renamed:COMMIT") < steps.index("renamed:assignments.parquet")
    # run.json is renamed last: a reader that sees it sees everything else already.
    renames = [s for s in steps if s.startswith("renamed:")]
    assert renames[-1] == "renamed:run.json"


def _snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUT_FILES if (out / name).exists()}


@pytest.mark.slow
def test_a_kill_at_any_step_leaves_the_previous_run_or_the_new_one_whole(setup, tmp_path):
    data, previous, steps = setup
    before = _snapshot(previous)
    before_run = json.loads(before["run.json"])
    # The new run is committed once the COMMIT marker is renamed into the staging directory.
    committed_from = steps.index("atomic-renamed:COMMIT")
    for position, step in enumerate(steps):
        out = tmp_path / f"out-{position}"
        os.system(f"cp -a {previous} {out}")  # noqa: S605 - a plain copy keeping the directory as it is
        killed = _save_in_child(data, out, SEGWISE_TEST_KILL_AT=step)
        assert killed.returncode == -signal.SIGKILL, (step, killed.returncode, killed.stderr[-2000:])
        loaded = segwise.load_run(out)  # recovers first
        after = _snapshot(out)
        run = loaded["run"]
        assert not list(out.glob(STAGING_PREFIX + "*")), step
        assert set(after) == set(before), step
        if position < committed_from:
            assert after == before, f"killed at {step} (before the commit marker): the previous run must be whole"
            assert run["model_id"] == before_run["model_id"]
        else:
            changed = [name for name in OUTPUT_FILES if after[name] != before[name]]
            assert set(changed) >= {"run.json", "model.segwise", "assignments.parquet", "assignments.csv"}, step
            assert run["n_segments"] == 3 and run["model_id"] != before_run["model_id"], step
            assert loaded["model"].metadata["model_id"] == run["model_id"], step
            assert set(loaded["assignments"]["segment_id"]) == {0, 1, 2}, step
