"""Running the real ``segwise`` console script in a subprocess.

Every e2e test goes through the installed entry point (the script beside the
interpreter), in a temporary directory, and looks only at what a user sees: the
exit code, stdout/stderr and the files written.

Starting ``segwise`` costs about two seconds of imports, so a module that needs
many runs declares them up front as `Jobs`: in a plain ``pytest`` session they all
start at once (one process per core) and the tests collect the results; under
pytest-xdist, where the workers already use the cores, each job starts only when a
test asks for it, so no run is made twice. `run_segwise` is the plain blocking form.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import datasets

SEGWISE = Path(sys.executable).parent / "segwise"

#: Generous: a run here takes a few seconds; a hang should fail, not block CI.
TIMEOUT_SECONDS = 180

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
_pool = ThreadPoolExecutor(max_workers=max(1, min(_CORES, 4)), thread_name_prefix="segwise-e2e")


@dataclass
class Result:
    """What one ``segwise`` invocation did."""

    args: list[str]
    cwd: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def err(self) -> str:
        """stderr with runs of whitespace (and line wraps) collapsed to one space."""
        return " ".join(self.stderr.split())

    @property
    def out(self) -> str:
        """stdout with runs of whitespace (and line wraps) collapsed to one space."""
        return " ".join(self.stdout.split())

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return (
            f"segwise {' '.join(self.args)} (in {self.cwd}) exited {self.returncode} after {self.seconds:.1f} s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # A user's shell, not pytest's: no inherited warning filters, plain output.
    env.pop("PYTHONWARNINGS", None)
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    # Up to one segwise per core runs at once (see `start_segwise`): one thread each,
    # or OpenMP threads of concurrent processes spin against each other (k-means on
    # a few hundred customers then takes seconds instead of a tenth of one).
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_segwise(*args: str | os.PathLike, cwd: Path) -> Result:
    """Run ``segwise ARGS`` in ``cwd`` and wait for it."""
    argv = [str(a) for a in args]
    started = time.perf_counter()
    proc = subprocess.run(
        [str(SEGWISE), *argv], cwd=cwd, env=_env(), capture_output=True, text=True,
        encoding="utf-8", errors="replace", timeout=TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
    )
    return Result(argv, Path(cwd), proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started)


def start_segwise(*args: str | os.PathLike, cwd: Path) -> Future[Result]:
    """Start ``segwise ARGS`` in ``cwd`` in the background; ``.result()`` waits for it."""
    return _pool.submit(run_segwise, *args, cwd=cwd)


class Jobs:
    """Named ``segwise`` invocations of one test module: name -> (argv, working directory).

    ``jobs[name]`` waits for that invocation and returns its `Result`.
    """

    def __init__(self, specs: dict[str, tuple[list, Path]]) -> None:
        self._specs = specs
        self._futures: dict[str, Future[Result]] = {}
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            for name in specs:
                self._start(name)

    def _start(self, name: str) -> Future[Result]:
        if name not in self._futures:
            argv, cwd = self._specs[name]
            self._futures[name] = start_segwise(*argv, cwd=cwd)
        return self._futures[name]

    def __getitem__(self, name: str) -> Result:
        return self._start(name).result()


def assert_ok(result: Result) -> Result:
    """A successful run: exit 0, no traceback, no error line."""
    assert result.returncode == 0, str(result)
    assert "Traceback" not in result.stderr, str(result)
    assert "error:" not in result.stderr, str(result)
    return result


def assert_bad_input(result: Result, *fragments: str) -> Result:
    """Bad input: exit 2, an ``error:`` line holding every fragment, no traceback."""
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, str(result)
    assert result.err.startswith("error: ") or " error: " in result.err, str(result)
    for fragment in fragments:
        assert " ".join(fragment.split()) in result.err, f"{fragment!r} not in stderr\n{result}"
    return result


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path to bytes)."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def _segwise_script_exists():
    if not SEGWISE.exists():
        pytest.fail(f"the segwise console script is not installed beside the interpreter ({SEGWISE})")
    yield
    _pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- the shared training run

#: The population every "trained model" test uses: the synthetic log with its
#: export dirt (duplicate lines, lines without a customer id, returns).
TRAIN_CUSTOMERS = 800
TRAIN_SEED = 7


@dataclass
class TrainedRun:
    """``segwise run orders.parquet --out out`` on the shared synthetic log."""

    data: Path
    out: Path
    result: Result
    population: object


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> TrainedRun:
    """The shared training run (no flags besides --out). Tests must not modify it."""
    root = tmp_path_factory.mktemp("trained")
    pop = datasets.population(TRAIN_CUSTOMERS, TRAIN_SEED)
    data = datasets.write_order_log(root / "orders.parquet", pop.orders)
    result = run_segwise("run", data.name, "--out", "out", cwd=root)
    assert_ok(result)
    return TrainedRun(data=data, out=root / "out", result=result, population=pop)


@pytest.fixture
def trained_copy(trained, tmp_path) -> Path:
    """A private copy of the training output directory (safe to write into)."""
    copy = tmp_path / "out"
    shutil.copytree(trained.out, copy)
    return copy
