"""The ``segwise`` command line: a thin shell over `segwise.pipeline` and friends.

Every command parses its options, builds one object and calls it. Bad input
(`InputError`, or a model file that cannot be used) is printed without a traceback
and exits with status 2; an internal failure exits with status 1 (``--debug``
shows its traceback). Commands live in modules of this package by area and
register themselves on the shared `app`.
"""

from __future__ import annotations

import sys

# Importing a module registers its commands; `segwise --help` lists them in this order.
from segwise.cli import core  # noqa: F401  (run, features, assign, synth, demo)
from segwise.cli import report  # noqa: F401  (report)
from segwise.cli import track  # noqa: F401  (track, compare, update)
from segwise.cli import action, ab  # noqa: F401,E402  (playbook, cards, export; ab)
from segwise.cli import serve  # noqa: F401,E402  (serve)
from segwise.cli import federated  # noqa: F401,E402  (federated coordinator, silo, simulate)
from segwise.cli import value  # noqa: F401,E402  (value: customer-value models, calibration/holdout check)
from segwise.cli.app import app

__all__ = ["app", "main", "cli_reference_markdown"]


def cli_reference_markdown() -> str:
    """The command-line reference (docs/cli.md), generated from the commands' own help."""
    import typer.main

    root = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the commands' help (`segwise.cli.cli_reference_markdown()`); a test keeps this",
        "file equal to it. Exit status: 0 on success, 2 for bad input (the message says what to fix),",
        "1 for an internal error (`--debug` shows the traceback).",
        "",
    ]
    for name, command in _commands(root):
        lines += [f"## `segwise {name}`", ""]
        lines += [line.strip() for line in (command.help or "").strip().splitlines()] + [""]
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        if arguments:
            usage = " ".join((p.metavar or p.name).upper() for p in arguments)
            lines += [f"Arguments: `{usage}`", ""]
        lines += ["| option | default | meaning |", "|---|---|---|"]
        for param in command.params:
            if param.param_type_name == "argument":
                continue
            flags = " / ".join(f"`{o}`" for o in param.opts + param.secondary_opts)
            default = param.default
            shown = "" if default is None or default is False or callable(default) else f"`{default}`"
            lines.append(f"| {flags} | {shown} | {(param.help or '').replace('|', chr(92) + '|')} |")
        lines.append("")
    return "\n".join(lines)


def _commands(group, prefix: str = ""):
    """(full name, command) of every command, groups expanded (``ab split``, ``ab analyze``...)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
