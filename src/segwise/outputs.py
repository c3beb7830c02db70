"""Writing a set of output files so that a run never leaves a half-written mixture.

Protocol (`commit_outputs`):

1. every file is written into a staging directory ``DIR/.segwise-staging-<id>/``
   and fsynced;
2. an optional ``before_commit`` step runs (e.g. the store transaction);
3. a ``COMMIT`` marker listing the files is written atomically into the staging
   directory: from here the new outputs are complete;
4. the files are renamed into ``DIR`` one by one (``run.json`` last), then the
   staging directory is removed.

`recover` (run before every write and every read of a run directory) finishes step
4 when a ``COMMIT`` marker exists (roll forward) and deletes staging directories
without one (roll back). So an interruption at any point leaves either the previous
outputs intact or, once recovered, the new ones complete.

A writer holds an exclusive ``flock`` on the directory from its recovery to its
last rename, so two processes writing into one directory take turns, and `recover`
never removes the staging directory of a writer still at work (it skips recovery
while the lock is held; the kernel releases the lock of a killed process). Where
``fcntl`` does not exist (Windows) there is no such lock.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from segwise.errors import InputError
from segwise.persist import atomic_write_bytes, saving_step

__all__ = ["commit_outputs", "recover", "check_output_dir", "write_table", "STAGING_PREFIX"]

STAGING_PREFIX = ".segwise-staging-"
_MARKER = "COMMIT"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _roll_forward(out_dir: Path, staging: Path, files: list[str]) -> None:
    for name in files:
        source = staging / name
        if source.exists():
            os.replace(source, out_dir / name)
            saving_step(f"renamed:{name}")
    _fsync_dir(out_dir)
    shutil.rmtree(staging, ignore_errors=True)


def check_output_dir(out_dir: str | os.PathLike) -> Path:
    """The output directory as a Path; an InputError when it cannot be one."""
    out_dir = Path(out_dir)
    for parent in [out_dir, *out_dir.parents]:
        if parent.exists() and not parent.is_dir():
            raise InputError(
                f"{out_dir}: cannot write outputs there because {parent} is a file, not a directory; "
                "choose another --out directory"
            )
        if parent.exists():
            break
    return out_dir


@contextmanager
def _directory_lock(out_dir: Path, *, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive flock on ``out_dir``; yields False when not blocking and it is taken."""
    if fcntl is None:
        yield True
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def recover(out_dir: str | os.PathLike) -> list[str]:
    """Finish or undo interrupted writes in ``out_dir``; returns what was done.

    Does nothing while another process is writing into ``out_dir``.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    with _directory_lock(out_dir, blocking=False) as locked:
        return _recover(out_dir) if locked else []


def _recover(out_dir: Path) -> list[str]:
    actions = []
    for staging in sorted(out_dir.glob(STAGING_PREFIX + "*")):
        marker = staging / _MARKER
        if marker.exists():
            try:
                files = json.loads(marker.read_text())["files"]
            except (ValueError, KeyError):
                files = None
            if files is not None:
                _roll_forward(out_dir, staging, files)
                actions.append(f"completed an interrupted write ({staging.name})")
                continue
        shutil.rmtree(staging, ignore_errors=True)
        actions.append(f"removed an incomplete write ({staging.name})")
    return actions


def commit_outputs(
    out_dir: str | os.PathLike,
    writers: dict[str, Callable[[Path], None]],
    *,
    last: str | None = None,
    before_commit: Callable[[], None] | None = None,
) -> dict[str, str]:
    """Write every output with its writer, then move them into ``out_dir`` together.

    Parameters
    ----------
    out_dir : path
    writers : dict
        File name to a function writing that file at the path it is given.
    last : str, optional
        The file renamed last (the run's record, e.g. ``run.json``).
    before_commit : callable, optional
        Runs after every file is written and before any is moved into place.

    Returns
    -------
    dict
        File name to final path.
    """
    out_dir = check_output_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _directory_lock(out_dir, blocking=True):
        return _commit_locked(out_dir, writers, last, before_commit)


def _commit_locked(out_dir: Path, writers: dict[str, Callable[[Path], None]], last: str | None,
                   before_commit: Callable[[], None] | None) -> dict[str, str]:
    _recover(out_dir)
    staging = out_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name, write in writers.items():
            path = staging / name
            write(path)
            _fsync_file(path)
            saving_step(f"written:{name}")
        if before_commit is not None:
            before_commit()
            saving_step("before-commit-done")
        order = [n for n in writers if n != last] + ([last] if last in writers else [])
        atomic_write_bytes(staging / _MARKER, json.dumps({"files": order}).encode())
        _fsync_dir(staging)
        saving_step("committed")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _roll_forward(out_dir, staging, order)
    return {name: str(out_dir / name) for name in order}


def write_table(frame, path: str | Path) -> None:
    """Write a DataFrame as Parquet or CSV, chosen by the file suffix.

    Here rather than in `segwise.runs`: ``segwise features`` writes its table without
    importing what a run needs (the model, the report, scikit-learn).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if path.suffix.lower() in (".parquet", ".pq") or path.name.endswith(".parquet"):
        pq.write_table(table, path)
    elif path.suffix.lower() in (".csv", ".txt"):
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        raise InputError(f"{path}: unknown output format; use a .parquet or .csv file name")
