"""How a command fails: bad input exits 2 without a traceback, a bug exits 1."""

from __future__ import annotations

import functools
import sys
import traceback
import warnings
from typing import Any, Callable

import typer
from rich.markup import escape

from segwise.cli.app import err
from segwise.errors import DataWarning, InputError, ModelError

__all__ = ["handle_errors", "out_of_memory_message"]


def out_of_memory_message(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"out of memory ({first}). Raise --memory-limit, lower --threads, or give --temp-dir on a disk with "
        "free space (DuckDB spills there when over the limit)"
    )


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    # DuckDB is imported only by the commands that use it; an error cannot come from it otherwise.
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.OutOfMemoryException)


def _fail(message: str, debug: bool, status: int) -> typer.Exit:
    if debug:
        traceback.print_exc()
    # Escaped: messages quote user text ("[segments.x]", "pip install 'segwise[deep]'") that is not markup.
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(status)


def handle_errors(command: Callable) -> Callable:
    """Run ``command``: `InputError`/`ModelError` and out-of-memory print one line and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            try:
                return command(*args, **kwargs)
            except (InputError, ModelError) as exc:
                raise _fail(str(exc), debug, 2) from None
            except typer.Exit:
                raise
            except KeyboardInterrupt:
                err.print("interrupted; previous outputs are untouched")
                raise typer.Exit(130) from None
            except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
                if _out_of_memory(exc):
                    raise _fail(out_of_memory_message(exc), debug, 2) from None
                if debug:
                    traceback.print_exc()
                else:
                    err.print(
                        f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))}\n"
                        "This is a bug in segwise; run again with --debug for the traceback and report it.",
                        highlight=False, soft_wrap=True,
                    )
                raise typer.Exit(1) from None
            finally:
                for warning in caught:
                    if issubclass(warning.category, DataWarning):
                        err.print(f"[yellow]warning:[/yellow] {escape(str(warning.message))}", highlight=False,
                                  soft_wrap=True)

    return wrapper
