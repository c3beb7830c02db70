"""Option sets shared by commands, each defined once.

`LoadOptions` (how to read a transaction log or customer table: 15 options) and
`EngineBounds` (DuckDB's memory, threads and spill directory) are dataclasses. A
command asks for one by declaring a parameter of that type (``load: LoadOptions =
LoadOptions()``); `with_option_sets` puts the set's options in its place in the
command's signature, so Typer shows and documents each of them (``--help``,
docs/cli.md), and hands the command the dataclass built from them. The single
options every command reuses (``--debug``, ``--as-of``, ``--customers``) are aliases.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from segwise.errors import InputError

__all__ = [
    "LoadOptions", "EngineBounds", "with_option_sets", "DebugOpt", "AsOfOpt", "CustomersOpt",
    "CustomerIdOpt", "TimestampOpt", "AmountOpt", "DateFormatOpt", "MarginOpt", "DiscountRateOpt",
    "source_argument",
]


def source_argument(value: str) -> Path | str:
    """A DATA argument: a ``postgresql://`` URL verbatim, else a file path.

    A path type would fold the URL's ``///`` (the local socket form, ``postgresql:///shop``)
    into ``/``, after which the host can no longer be told from the database.
    """
    from segwise.engines.postgres_url import is_postgres_url

    return value.strip() if is_postgres_url(value) else Path(value)

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
AsOfOpt = Annotated[
    Optional[str], typer.Option("--as-of", help="Observation date YYYY-MM-DD (default: day after the last order).")
]
CustomersOpt = Annotated[
    Optional[Path], typer.Option("--customers", help=(
        "Customer attribute table (one row per customer): a file, or with a postgresql:// DATA a table NAME there."))
]
MarginOpt = Annotated[Optional[float], typer.Option(
    "--margin", help="Share of revenue that is profit, for the value family's clv_365d (default 1.0: revenue).")]
DiscountRateOpt = Annotated[Optional[float], typer.Option(
    "--discount-rate", help="Yearly discount rate of future purchases in clv_365d (default 0.10).")]
CustomerIdOpt = Annotated[Optional[str], typer.Option("--customer-id-col", help="Column holding the customer id.")]
TimestampOpt = Annotated[Optional[str], typer.Option("--timestamp-col", help="Column holding the order date/time.")]
AmountOpt = Annotated[Optional[str], typer.Option("--amount-col", help="Column holding the line or order amount.")]
DateFormatOpt = Annotated[
    Optional[str], typer.Option("--date-format", help="strptime format of the date column, e.g. '%d/%m/%Y %H:%M'.")
]


def _text(flag: str, help: str) -> Any:
    return Annotated[Optional[str], typer.Option(flag, help=help)]


OrderIdOpt = _text("--order-id-col", "Column holding the order/invoice id.")
QuantityOpt = _text("--quantity-col", "Quantity column (amount = quantity x price).")
PriceOpt = _text("--price-col", "Unit price column (amount = quantity x price).")
CategoryOpt = _text("--category-col", "Product category column.")
ChannelOpt = _text("--channel-col", "Sales channel column.")
DiscountOpt = _text("--discount-col", "Discount/promotion flag column.")
DelimiterOpt = _text("--delimiter", "Field delimiter: ',', ';', '\\t', '|' or 'whitespace'.")
ColumnNamesOpt = _text("--column-names", "Comma-separated column names for a file without header.")
TableOpt = _text("--table", "Table to read from a DuckDB file or a postgresql:// database.")
QueryOpt = _text("--query", "With a postgresql:// DATA: a SELECT whose rows are the transaction log.")


@dataclass(frozen=True)
class LoadOptions:
    """How to read the data of a command: column roles and the file's format."""

    customer_id_col: CustomerIdOpt = None
    timestamp_col: TimestampOpt = None
    amount_col: AmountOpt = None
    order_id_col: OrderIdOpt = None
    quantity_col: QuantityOpt = None
    price_col: PriceOpt = None
    category_col: CategoryOpt = None
    channel_col: ChannelOpt = None
    discount_col: DiscountOpt = None
    date_format: DateFormatOpt = None
    delimiter: DelimiterOpt = None
    header: Annotated[
        Optional[bool], typer.Option("--header/--no-header", help="Whether the text file has a header line (detected).")
    ] = None
    column_names: ColumnNamesOpt = None
    encoding: Annotated[str, typer.Option("--encoding", help="auto, utf-8 or latin-1.")] = "auto"
    table: TableOpt = None
    query: QueryOpt = None

    def transactions_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `segwise.load_transactions`."""
        options = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.query is None:
            del options["query"]
        options["column_names"] = [c.strip() for c in self.column_names.split(",")] if self.column_names else None
        return options

    def customers_kwargs(self, primary: bool) -> dict[str, Any]:
        """Keyword arguments of `segwise.load_customers`: the file-format flags apply when it is the only input."""
        load = self.transactions_kwargs()
        options = {"customer_id_col": load["customer_id_col"]}
        if primary:
            options.update({k: load[k] for k in ("delimiter", "header", "column_names", "encoding", "table")})
        return options


_MEMORY_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class EngineBounds:
    """The resources of the DuckDB engine of one command."""

    memory_limit: Annotated[
        Optional[str],
        typer.Option("--memory-limit",
                     help=("Memory for DuckDB, e.g. 4GB or 500MB; beyond it DuckDB spills to --temp-dir "
                           "(default: SEGWISE_DUCKDB_MEMORY_LIMIT, else half the machine's memory).")),
    ] = None
    threads: Annotated[
        Optional[int], typer.Option("--threads", help="DuckDB worker threads (default: one per core).")
    ] = None
    temp_dir: Annotated[
        Optional[Path],
        typer.Option("--temp-dir", help="Where DuckDB spills data over --memory-limit (default: a new system temp dir)."),
    ] = None

    @property
    def given(self) -> bool:
        return self.memory_limit is not None or self.threads is not None or self.temp_dir is not None

    def engine(self):
        """The DuckDB engine with these bounds, checked."""
        from segwise.engines import get_engine

        if self.memory_limit is not None and not _MEMORY_LIMIT.match(self.memory_limit):
            raise InputError(f"--memory-limit takes a size such as 4GB or 500MB; got {self.memory_limit!r}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1; got {self.threads}")
        if self.temp_dir is not None:
            if self.temp_dir.exists() and not self.temp_dir.is_dir():
                raise InputError(f"--temp-dir {self.temp_dir}: is a file; give a directory")
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        return get_engine(memory_limit=self.memory_limit, threads=self.threads,
                          temp_directory=str(self.temp_dir) if self.temp_dir is not None else None)


_OPTION_SETS = (LoadOptions, EngineBounds)


def _set_parameters(option_set: type) -> list[inspect.Parameter]:
    hints = {name: value for name, value in inspect.get_annotations(option_set, eval_str=True).items()}
    return [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default,
                              annotation=hints[f.name]) for f in fields(option_set)]


def with_option_sets(command: Callable) -> Callable:
    """Expand each parameter of ``command`` typed `LoadOptions` or `EngineBounds` into that set's options.

    The options take the parameter's place in the signature Typer reads; the command
    receives the dataclass built from them under the parameter's name.
    """
    signature = inspect.signature(command, eval_str=True)
    expanded: dict[str, type] = {}
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.annotation in _OPTION_SETS:
            expanded[parameter.name] = parameter.annotation
            parameters += _set_parameters(parameter.annotation)
        else:
            parameters.append(parameter)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name, option_set in expanded.items():
            kwargs[name] = option_set(**{f.name: kwargs.pop(f.name) for f in fields(option_set) if f.name in kwargs})
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)
    return wrapper
