"""The CLI starts instantly: its help and version import no heavy library.

Each check runs in a fresh interpreter (this test process has imported everything).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("plotly", "fastapi", "sklearn", "ibis", "duckdb", "pandas", "uvicorn", "scipy")


def _heavy_after(code: str) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_library():
    assert _heavy_after("import segwise.cli") == []


def _command_paths() -> list[list[str]]:
    import typer.main

    from segwise.cli import app

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])
            else:
                yield prefix + [name]

    return [[]] + list(walk(typer.main.get_command(app), []))


@pytest.mark.parametrize("args", [["--version"]] + [path + ["--help"] for path in _command_paths()],
                         ids=lambda args: " ".join(args))
def test_help_and_version_import_no_heavy_library(args):
    code = (
        "import contextlib, io\n"
        "from segwise.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        app({args!r}, prog_name='segwise')\n"
        "    except SystemExit as exc:\n        assert exc.code == 0, exc.code\n"
    )
    assert _heavy_after(code) == []


def test_importing_the_features_package_does_not_import_scipy():
    # scipy serves only the value family's model fits (segwise.features.btyd imports it
    # inside them): a feature build without them, and the family registry, skip its import.
    code = "import segwise.features\nimport segwise.features.value\nimport segwise.features.btyd\n"
    probe = code + "import json, sys\nprint(json.dumps('scipy' in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False


def test_fitting_the_value_models_imports_scipy_where_they_need_it():
    # The other side of the lazy import: a fit works in a fresh interpreter (no import
    # left out of a function that uses scipy).
    code = (
        "import numpy as np\n"
        "from segwise.features.btyd import BetaGeoModel, GammaGammaModel\n"
        "rng = np.random.default_rng(0)\n"
        "frequency = rng.poisson(2.0, 500).astype(float)\n"
        "T = rng.uniform(100, 300, 500)\n"
        "recency = np.where(frequency > 0, T * rng.uniform(0.2, 1.0, 500), 0.0)\n"
        "bg = BetaGeoModel().fit(frequency, recency, T)\n"
        "p = bg.p_alive(frequency, recency, T)\n"
        "repeat = frequency > 0\n"
        "gg = GammaGammaModel().fit(frequency[repeat], rng.gamma(4.0, 10.0, int(repeat.sum())))\n"
        "assert np.all((p >= 0) & (p <= 1)) and all(v > 0 for v in gg.params_.values())\n"
        "print('fitted')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("fitted")
