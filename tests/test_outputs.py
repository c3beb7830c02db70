"""Writers of one output directory take turns: recovery never removes a live writer's staging."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from segwise.outputs import STAGING_PREFIX, commit_outputs, recover


def _hold_directory_lock(directory):
    """Another process holding the writer's lock on ``directory`` (as a `segwise run` mid-commit does)."""
    script = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(directory)!r}, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_recovery_leaves_the_staging_of_a_writer_at_work_alone(tmp_path):
    staging = tmp_path / f"{STAGING_PREFIX}live"
    staging.mkdir()
    (staging / "run.json").write_text("{}")  # being written: no COMMIT marker yet
    holder = _hold_directory_lock(tmp_path)
    try:
        assert recover(tmp_path) == []
        assert (staging / "run.json").exists()
    finally:
        holder.communicate("")
    assert recover(tmp_path) == [f"removed an incomplete write ({staging.name})"]  # the writer died: roll back
    assert not staging.exists()


def test_a_second_writer_waits_for_the_first(tmp_path):
    holder = _hold_directory_lock(tmp_path)
    script = textwrap.dedent(f"""
        from segwise.outputs import commit_outputs
        commit_outputs({str(tmp_path)!r}, {{"a.txt": lambda p: p.write_text("second")}})
    """)
    second = subprocess.Popen([sys.executable, "-c", script])
    try:
        try:
            second.wait(timeout=3)
            finished_while_locked = True
        except subprocess.TimeoutExpired:
            finished_while_locked = False
        assert not finished_while_locked and not (tmp_path / "a.txt").exists()
    finally:
        holder.communicate("")
    assert second.wait(timeout=60) == 0
    assert (tmp_path / "a.txt").read_text() == "second"
    commit_outputs(tmp_path, {"a.txt": lambda p: p.write_text("third")})
    assert (tmp_path / "a.txt").read_text() == "third" and not list(tmp_path.glob(STAGING_PREFIX + "*"))
