"""``segwise report``: (re)build the HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segwise.cli.app import app, out
from segwise.cli.errors import handle_errors
from segwise.cli.options import DebugOpt
from segwise.errors import InputError


def report_summary(path: Path, size_bytes: int, seconds: float | None = None) -> str:
    """The line the CLI prints about a written report."""
    timing = f", {seconds:.1f} s" if seconds is not None else ""
    return f"report written to {path} ({size_bytes / 1e6:.1f} MB{timing}); open it in a web browser"


@app.command()
@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="Output directory of `segwise run`.")],
    out_file: Annotated[
        Optional[Path], typer.Option("--out", help="Report file to write (default RUN_DIR/report.html).")
    ] = None,
    currency: Annotated[
        Optional[str], typer.Option("--currency", help="Symbol or code put before money amounts, e.g. '€' or 'USD '.")
    ] = None,
    max_points: Annotated[
        int, typer.Option("--max-points", help="Most customers drawn on the map of segments.")
    ] = 20_000,
    debug: DebugOpt = False,
) -> None:
    """Build the HTML report of a run from its saved outputs (nothing is refitted).

    One self-contained file: segment cards, profiles, a map of the customers,
    distributions, and how the number of segments was chosen. It opens in any
    browser without a network connection.
    """
    from segwise.report import build_report

    if max_points < 100:
        raise InputError(f"--max-points must be at least 100, got {max_points}")
    result = build_report(run_dir, out_file, currency=currency, max_points=max_points)
    out.print(report_summary(result.path, result.size_bytes, result.seconds), highlight=False, soft_wrap=True)
