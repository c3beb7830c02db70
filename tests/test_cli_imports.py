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
