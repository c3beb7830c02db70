"""Under CI the suite fails loudly: a missing optional dependency or an unjustified skip fails the run.

Each case runs pytest in a subprocess with ``CI=true`` and this suite's conftest
(tests/conftest.py) as a plugin, on a tiny test file written here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ALLOWED_SKIPS

ROOT = Path(__file__).resolve().parent.parent


def _pytest(tmp_path: Path, body: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(body)
    environment = dict(os.environ)
    environment.pop("PYTEST_XDIST_WORKER", None)
    environment.update(env)
    environment["PYTHONPATH"] = os.pathsep.join(
        [p for p in (env.get("SHADOW"), str(ROOT), os.environ.get("PYTHONPATH")) if p])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), "-c", os.devnull, *args, str(tmp_path / "test_probe.py")],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_an_unjustified_skip_fails_a_ci_run(tmp_path, args):
    # Under pytest-xdist (make test) only the controlling process sees every report: it decides.
    result = _pytest(tmp_path, "import pytest\n\ndef test_a():\n    pytest.skip('the network is down')\n", *args,
                     CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skips not in tests/conftest.py ALLOWED_SKIPS" in result.stdout
    assert "test_probe.py::test_a: the network is down" in result.stdout


def test_a_justified_skip_passes_a_ci_run_and_any_skip_passes_outside_ci(tmp_path):
    allowed = next(iter(ALLOWED_SKIPS))
    body = f"import pytest\n\ndef test_a():\n    pytest.skip({allowed!r})\n"
    result = _pytest(tmp_path, body, CI="true")
    assert result.returncode == 0, result.stdout + result.stderr
    unjustified = _pytest(tmp_path, "import pytest\n\ndef test_a():\n    pytest.skip('the network is down')\n",
                          CI="")
    assert unjustified.returncode == 0, unjustified.stdout + unjustified.stderr


def test_every_allowed_skip_says_why():
    for reason, why in ALLOWED_SKIPS.items():
        assert len(reason) >= 20 and len(why.split()) >= 10, reason


@pytest.mark.parametrize("module, named", [("torch", "PyTorch"), ("pyspark", "PySpark"),
                                            ("playwright", "Playwright")])
def test_a_ci_run_without_an_optional_dependency_fails_naming_it(tmp_path, module, named):
    shadow = tmp_path / "shadow"
    (shadow / module).mkdir(parents=True)
    # A package that fails to import, as when it is not installed.
    (shadow / module / "__init__.py").write_text(f"raise ImportError('No module named {module}')\n")
    result = _pytest(tmp_path, "def test_a():\n    pass\n", CI="true", SHADOW=str(shadow))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "CI is set, so every optional test dependency is required" in output, output
    assert named in output, output


def test_a_ci_run_without_java_fails_naming_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # PATH without java (and no JAVA_HOME): only the interpreter's own directory.
    os.symlink(sys.executable, bin_dir / "python")
    result = _pytest(tmp_path, "def test_a():\n    pass\n", CI="true", PATH=str(bin_dir), JAVA_HOME="")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Java (a JRE 17+" in output, output
