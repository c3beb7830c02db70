"""What every segwise command shares: the Typer app, error handling, options, output."""

from __future__ import annotations

import functools
import re
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import duckdb
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from segwise import __version__
from segwise.errors import DataWarning, InputError, ModelError

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


def out_of_memory_message(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"out of memory ({first}). Raise --memory-limit, lower --threads, or give --temp-dir on a disk with "
        "free space (DuckDB spills there when over the limit)"
    )


def handle_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            try:
                return command(*args, **kwargs)
            except (InputError, ModelError) as exc:
                if debug:
                    traceback.print_exc()
                # Escaped: messages quote user text ("[segments.x]", "pip install 'segwise[deep]'") that is not markup.
                err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, markup=True,
                          soft_wrap=True)
                raise typer.Exit(2) from None
            except typer.Exit:
                raise
            except (MemoryError, duckdb.OutOfMemoryException) as exc:
                if debug:
                    traceback.print_exc()
                err.print(f"[bold red]error:[/bold red] {escape(out_of_memory_message(exc))}", highlight=False,
                          markup=True, soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err.print("interrupted; previous outputs are untouched")
                raise typer.Exit(130) from None
            except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
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


# --------------------------------------------------------------------------- shared options

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
CustomerIdOpt = Annotated[Optional[str], typer.Option("--customer-id-col", help="Column holding the customer id.")]
TimestampOpt = Annotated[Optional[str], typer.Option("--timestamp-col", help="Column holding the order date/time.")]
AmountOpt = Annotated[Optional[str], typer.Option("--amount-col", help="Column holding the line or order amount.")]
OrderIdOpt = Annotated[Optional[str], typer.Option("--order-id-col", help="Column holding the order/invoice id.")]
QuantityOpt = Annotated[Optional[str], typer.Option("--quantity-col", help="Quantity column (amount = quantity x price).")]
PriceOpt = Annotated[Optional[str], typer.Option("--price-col", help="Unit price column (amount = quantity x price).")]
CategoryOpt = Annotated[Optional[str], typer.Option("--category-col", help="Product category column.")]
ChannelOpt = Annotated[Optional[str], typer.Option("--channel-col", help="Sales channel column.")]
DiscountOpt = Annotated[Optional[str], typer.Option("--discount-col", help="Discount/promotion flag column.")]
DateFormatOpt = Annotated[
    Optional[str], typer.Option("--date-format", help="strptime format of the date column, e.g. '%d/%m/%Y %H:%M'.")
]
DelimiterOpt = Annotated[
    Optional[str], typer.Option("--delimiter", help="Field delimiter: ',', ';', '\\t', '|' or 'whitespace'.")
]
HeaderOpt = Annotated[
    Optional[bool], typer.Option("--header/--no-header", help="Whether the text file has a header line (detected).")
]
ColumnNamesOpt = Annotated[
    Optional[str], typer.Option("--column-names", help="Comma-separated column names for a file without header.")
]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="auto, utf-8 or latin-1.")]
TableOpt = Annotated[Optional[str], typer.Option("--table", help="Table to read from a DuckDB file.")]
AsOfOpt = Annotated[
    Optional[str], typer.Option("--as-of", help="Observation date YYYY-MM-DD (default: day after the last order).")
]
CustomersOpt = Annotated[
    Optional[Path], typer.Option("--customers", help="Customer attribute table (one row per customer).")
]
MemoryLimitOpt = Annotated[
    Optional[str],
    typer.Option("--memory-limit", help="Memory for DuckDB, e.g. 4GB or 500MB; beyond it DuckDB spills to --temp-dir."),
]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="DuckDB worker threads (default: one per core).")]
TempDirOpt = Annotated[
    Optional[Path],
    typer.Option("--temp-dir", help="Where DuckDB spills data over --memory-limit (default: a new system temp dir)."),
]

_MEMORY_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def make_engine(memory_limit: Optional[str], threads: Optional[int], temp_dir: Optional[Path]):
    """The DuckDB engine of one command, with its resource bounds checked."""
    from segwise.engine import get_engine

    if memory_limit is not None and not _MEMORY_LIMIT.match(memory_limit):
        raise InputError(f"--memory-limit takes a size such as 4GB or 500MB; got {memory_limit!r}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1; got {threads}")
    if temp_dir is not None:
        if temp_dir.exists() and not temp_dir.is_dir():
            raise InputError(f"--temp-dir {temp_dir}: is a file; give a directory")
        temp_dir.mkdir(parents=True, exist_ok=True)
    return get_engine(memory_limit=memory_limit, threads=threads,
                      temp_directory=str(temp_dir) if temp_dir is not None else None)


def load_options(
    customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col, category_col, channel_col,
    discount_col, date_format, delimiter, header, column_names, encoding, table,
) -> dict[str, Any]:
    return {
        "customer_id_col": customer_id_col, "timestamp_col": timestamp_col, "amount_col": amount_col,
        "order_id_col": order_id_col, "quantity_col": quantity_col, "price_col": price_col,
        "category_col": category_col, "channel_col": channel_col, "discount_col": discount_col,
        "date_format": date_format, "delimiter": delimiter, "header": header,
        "column_names": [c.strip() for c in column_names.split(",")] if column_names else None,
        "encoding": encoding, "table": table,
    }


def customer_options(load: dict[str, Any], primary: bool) -> dict[str, Any]:
    """Options for the customer table: the file-format flags apply when it is the only input."""
    options = {"customer_id_col": load["customer_id_col"]}
    if primary:
        options.update({k: load[k] for k in ("delimiter", "header", "column_names", "encoding", "table")})
    return options


def split_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def parse_segments(value: str) -> int | str | tuple[int, int]:
    if value.strip().lower() == "auto":
        return "auto"
    if ".." in value:  # a range: auto within it (segwise.select.resolve_n_segments)
        from segwise.select import resolve_n_segments

        return resolve_n_segments(value)[1]
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"--segments must be 'auto' or a whole number, got {value!r}") from None
    if n < 1:
        raise InputError(f"--segments must be at least 1, got {n}")
    return n


def parse_weights(values: Optional[list[str]]) -> Optional[dict[str, float]]:
    if not values:
        return None
    weights = {}
    for item in values:
        name, sep, number = item.partition("=")
        try:
            weights[name.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--weight takes NAME=NUMBER (e.g. recency_days=2), got {item!r}")
    return weights


class StageProgress:
    """Rich progress lines for pipeline stages (on stderr, only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
            transient=False, disable=not enabled,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "StageProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, label: str) -> None:
        if label == "done":
            task = self.tasks.get(stage)
            if task is not None:
                self.progress.update(task, total=1, completed=1)
        else:
            self.tasks[stage] = self.progress.add_task(label, total=None)


def load_inputs(data: Optional[Path], customers: Optional[Path], load: dict[str, Any], engine=None):
    """Load the transaction log and/or customer table given on the command line."""
    from segwise.data import load_customers, load_transactions
    from segwise.engine import get_engine

    if data is None and customers is None:
        raise InputError("give a transaction log (DATA), a customer table (--customers FILE), or both")
    engine = get_engine(engine)
    transactions = load_transactions(str(data), engine=engine, **load) if data is not None else None
    customer_table = (
        load_customers(str(customers), engine=engine, **customer_options(load, primary=data is None))
        if customers is not None else None
    )
    return transactions, customer_table


def write_atomic_table(frame, path: Path) -> None:
    """Write a table to a temporary name beside ``path`` and rename it into place."""
    import os
    import tempfile

    from segwise.pipeline import write_table

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write_table(frame, Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
