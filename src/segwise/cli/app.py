"""The Typer app every command registers on, and the two consoles (stdout, stderr)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from segwise._version import __version__

__all__ = ["app", "out", "err"]

app = typer.Typer(
    name="segwise",
    help="Customer segmentation from raw transaction logs: features, segments, names, profiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

out = Console()
if not out.is_terminal:
    # Piped or captured output: wide enough that the segment table stays readable.
    out = Console(width=140)
err = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"segwise {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = None,
) -> None:
    """segwise: customer segmentation from raw transaction logs."""
