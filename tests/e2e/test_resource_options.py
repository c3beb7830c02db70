"""--memory-limit, --threads and --temp-dir reach DuckDB in run, features, assign and update."""

from __future__ import annotations

import pytest

from . import datasets
from .conftest import assert_bad_input, assert_ok, run_segwise


@pytest.fixture
def small_log(tmp_path):
    datasets.write_text(tmp_path / "orders.csv", datasets.simple_log_lines(30))
    return tmp_path


def test_features_within_bounds_and_a_limit_too_small_for_the_work(small_log):
    ok = run_segwise("features", "orders.csv", "--memory-limit", "200MB", "--threads", "1", "--temp-dir", "spill",
                     "--out", "f.csv", cwd=small_log)
    assert_ok(ok)
    assert (small_log / "f.csv").exists() and (small_log / "spill").is_dir()
    starved = run_segwise("features", "orders.csv", "--memory-limit", "1MB", "--out", "g.csv", cwd=small_log)
    assert_bad_input(starved, "error: out of memory (Out of Memory Error",
                     "Raise --memory-limit, lower --threads, or give --temp-dir on a disk with free space")
    assert not (small_log / "g.csv").exists()


@pytest.mark.parametrize("command", ["run", "features", "assign", "update"])
def test_every_data_command_checks_its_bounds(trained, tmp_path, command):
    model = trained.out / "model.segwise"
    argv = {
        "run": ["run", trained.data, "--out", "out"],
        "features": ["features", trained.data],
        "assign": ["assign", model, trained.data],
        "update": ["update", model, trained.data, "--store", tmp_path / "store.duckdb"],
    }[command]
    assert_bad_input(run_segwise(*argv, "--memory-limit", "lots", cwd=tmp_path),
                     "error: --memory-limit takes a size such as 4GB or 500MB; got 'lots'")
    assert_bad_input(run_segwise(*argv, "--threads", "0", cwd=tmp_path), "error: --threads must be at least 1; got 0")
    assert not (tmp_path / "out").exists()
