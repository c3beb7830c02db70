"""No run loses or corrupts data: SIGKILL during `segwise run`, and concurrent writers of one store.

The kill tests overwrite an earlier run in the same --out directory and kill the
new ``segwise`` process (and anything it started) at a random moment of its run,
one moment per seed. Afterwards the directory, read the way every segwise reader
reads it (`segwise.load_run` recovers interrupted writes first), must hold either
the previous run byte for byte or the complete new one, and its store must open
and hold the previous runs plus at most the new one.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from concurrent.futures import wait

import duckdb
import pandas as pd
import pytest

import segwise
from segwise.outputs import STAGING_PREFIX
from segwise.runs import OUTPUT_FILES
from segwise.store import STORE_FILENAME, RunStore

from . import datasets
from .conftest import SEGWISE, _env, assert_bad_input, assert_ok, run_segwise, start_segwise

NEW_RUN = ["--segments", "3", "--seed", "2"]


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A directory holding one finished run (4 segments), and how long a run takes here."""
    root = tmp_path_factory.mktemp("previous")
    pop = datasets.population(600, 11)
    datasets.write_order_log(root / "orders.parquet", pop.orders)
    started = time.monotonic()
    assert_ok(run_segwise("run", "orders.parquet", "--out", "out", "--segments", "4", "--seed", "1", cwd=root))
    return root, time.monotonic() - started


def _files(out) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUT_FILES}


def _store_run_ids(out) -> list[str]:
    with RunStore(out / STORE_FILENAME, read_only=True) as store:
        return store.runs()["run_id"].tolist()


def _assert_complete(out, loaded, n_segments: int) -> None:
    run = loaded["run"]
    assert run["n_segments"] == n_segments
    assert loaded["model"].metadata["model_id"] == run["model_id"]
    assert hashlib.sha256((out / "model.segwise").read_bytes()).hexdigest() == run["model_sha256"]
    assignments = loaded["assignments"]
    assert len(assignments) == run["n_customers"]
    assert set(assignments["segment_id"]) == set(range(n_segments))
    as_csv = pd.read_csv(out / "assignments.csv", dtype={"customer_id": str})
    assert as_csv["segment_id"].tolist() == assignments["segment_id"].tolist()
    features = pd.read_parquet(out / "features.parquet")
    assert sorted(features["customer_id"].astype(str)) == sorted(assignments["customer_id"].astype(str))


@pytest.mark.slow
# Seeds whose kill moments (0.3-1.1 of a run's duration) spread over loading, fitting and writing.
@pytest.mark.parametrize("seed", [1, 7, 9, 17, 5, 19, 6, 0])
def test_sigkill_during_run_leaves_the_previous_or_the_new_outputs(previous, tmp_path, seed):
    root, run_seconds = previous
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    before, runs_before = _files(out), _store_run_ids(out)
    proc = subprocess.Popen(
        [str(SEGWISE), "run", str(root / "orders.parquet"), "--out", str(out), *NEW_RUN], cwd=tmp_path,
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    time.sleep(random.Random(seed).uniform(0.3, 1.1) * run_seconds)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it finished first: then the new outputs must be complete
    proc.wait()
    loaded = segwise.load_run(out)
    assert not list(out.glob(STAGING_PREFIX + "*"))
    after = _files(out)
    if after == before:
        _assert_complete(out, loaded, 4)
    else:
        # Both runs compute the same features.parquet; every other file must be the new run's.
        changed = {name for name in OUTPUT_FILES if after[name] != before[name]}
        assert changed >= set(OUTPUT_FILES) - {"features.parquet"}, f"a mixture of two runs: only {changed} changed"
        _assert_complete(out, loaded, 3)
    runs_after = _store_run_ids(out)
    assert runs_after[: len(runs_before)] == runs_before and len(runs_after) - len(runs_before) in (0, 1)
    assert loaded["run"]["run_id"] in runs_after


def _hold_write_lock(store_path):
    """A real second writer: this process opens the store for writing (DuckDB locks the file)."""
    con = duckdb.connect(str(store_path))
    con.execute("SELECT count(*) FROM runs").fetchall()
    return con


def test_a_locked_store_is_refused_with_a_clear_message_and_nothing_changes(previous, tmp_path):
    root, _ = previous
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    before = _files(out)
    con = _hold_write_lock(out / STORE_FILENAME)
    try:
        result = run_segwise("run", root / "orders.parquet", "--out", out, *NEW_RUN, cwd=tmp_path)
        model = out / "model.segwise"
        update = run_segwise("update", model, root / "orders.parquet", "--store", out / STORE_FILENAME,
                             "--out", tmp_path / "update", cwd=tmp_path)
    finally:
        con.close()
    assert_bad_input(result, f"{out / STORE_FILENAME}: the store is locked by another segwise process")
    assert_bad_input(update, "the store is locked by another segwise process")
    assert _files(out) == before and not list(out.glob(STAGING_PREFIX + "*"))
    assert not (tmp_path / "update").exists()
    assert_ok(run_segwise("run", root / "orders.parquet", "--out", out, *NEW_RUN, cwd=tmp_path))


@pytest.mark.slow
def test_concurrent_runs_and_an_update_on_one_store_serialise_or_refuse(previous, tmp_path):
    root, _ = previous
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    runs_before = _store_run_ids(out)
    shutil.copy(out / "model.segwise", tmp_path / "model.segwise")
    jobs = {
        "run-a": start_segwise("run", root / "orders.parquet", "--out", out, *NEW_RUN, cwd=tmp_path),
        "run-b": start_segwise("run", root / "orders.parquet", "--out", out, "--segments", "2", cwd=tmp_path),
        "update": start_segwise("update", tmp_path / "model.segwise", root / "orders.parquet",
                                "--store", out / STORE_FILENAME, "--out", tmp_path / "update", cwd=tmp_path),
    }
    wait(jobs.values())
    results = {name: job.result() for name, job in jobs.items()}
    for result in results.values():
        if result.returncode != 0:
            assert_bad_input(result, "the store is locked by another segwise process")
    assert any(r.returncode == 0 for r in results.values())
    loaded = segwise.load_run(out)
    runs_after = _store_run_ids(out)
    succeeded = [name for name in ("run-a", "run-b") if results[name].returncode == 0]
    assert runs_after[: len(runs_before)] == runs_before and len(runs_after) == len(runs_before) + len(succeeded)
    if succeeded:
        assert loaded["run"]["run_id"] in runs_after[len(runs_before):]
        _assert_complete(out, loaded, loaded["run"]["n_segments"])
    with RunStore(out / STORE_FILENAME, read_only=True) as store:
        updates = store.updates()
    assert len(updates) == (1 if results["update"].returncode == 0 else 0)
