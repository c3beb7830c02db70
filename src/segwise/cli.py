"""The ``segwise`` command line: a thin shell over `segwise.pipeline` and friends.

Every command parses its options, builds one object and calls it. Bad input
(`InputError`, or a model file that cannot be used) is printed without a traceback
and exits with status 2; an internal failure exits with status 1 (``--debug``
shows its traceback).
"""

from __future__ import annotations

import functools
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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


def _handle_errors(command: Callable) -> Callable:
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
                err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, markup=True, soft_wrap=True)
                raise typer.Exit(2) from None
            except typer.Exit:
                raise
            except KeyboardInterrupt:
                err.print("interrupted; previous outputs are untouched")
                raise typer.Exit(130) from None
            except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
                if debug:
                    traceback.print_exc()
                else:
                    err.print(
                        f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc}\n"
                        "This is a bug in segwise; run again with --debug for the traceback and report it.",
                        highlight=False, soft_wrap=True,
                    )
                raise typer.Exit(1) from None
            finally:
                for warning in caught:
                    if issubclass(warning.category, DataWarning):
                        err.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False, soft_wrap=True)

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


def _load_options(
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


def _customer_options(load: dict[str, Any], primary: bool) -> dict[str, Any]:
    """Options for the customer table: the file-format flags apply when it is the only input."""
    options = {"customer_id_col": load["customer_id_col"]}
    if primary:
        options.update({k: load[k] for k in ("delimiter", "header", "column_names", "encoding", "table")})
    return options


def _split(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _parse_segments(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"--segments must be 'auto' or a whole number, got {value!r}") from None
    if n < 1:
        raise InputError(f"--segments must be at least 1, got {n}")
    return n


def _parse_weights(values: Optional[list[str]]) -> Optional[dict[str, float]]:
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


class _StageProgress:
    """Rich progress lines for pipeline stages (on stderr, only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
            transient=False, disable=not enabled,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "_StageProgress":
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


def _segments_table(result) -> Table:
    table = Table(title=f"{result.n_segments} segments of {len(result.assignments):,} customers", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("segment")
    table.add_column("customers", justify="right")
    table.add_column("share", justify="right")
    table.add_column("revenue", justify="right")
    table.add_column("key traits")
    for profile in result.profiles:
        table.add_row(
            str(profile.segment_id),
            profile.name,
            f"{profile.n_customers:,}",
            f"{profile.share_customers:.1%}",
            "" if profile.share_revenue is None else f"{max(profile.share_revenue, 0.0) if abs(profile.share_revenue) < 5e-4 else profile.share_revenue:.1%}",
            "; ".join(t["text"] for t in profile.traits[:2]),
        )
    return table


def _run_pipeline(data, customers, load, *, as_of, segments, method, features, exclude, weights, k_min, k_max,
                  seed, show_progress: bool):
    from segwise.pipeline import segment

    with _StageProgress(show_progress) as progress:
        return segment(
            str(data) if data is not None else None,
            customers=str(customers) if customers is not None else None,
            as_of=as_of, n_segments=_parse_segments(segments), method=method,
            features=_split(features), exclude=_split(exclude), weights=_parse_weights(weights),
            k_range=(k_min, k_max), random_state=seed,
            load_options=load, customer_options=_customer_options(load, primary=data is None),
            progress=progress,
        )


def _print_cleaning(run: dict[str, Any]) -> None:
    cleaning = {k: v for k, v in run.get("cleaning", {}).items() if v}
    if cleaning:
        err.print("cleaning: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in cleaning.items()), highlight=False)
    for note in run.get("features", {}).get("notes", []):
        err.print(f"note: {note}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- commands


@app.command()
@_handle_errors
def run(
    data: Annotated[Optional[Path], typer.Argument(help="Transaction log: CSV/TSV/text, Parquet or DuckDB file.")] = None,
    customers: CustomersOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("segwise-out"),
    as_of: AsOfOpt = None,
    segments: Annotated[str, typer.Option("--segments", help="Number of segments, or 'auto'.")] = "auto",
    method: Annotated[str, typer.Option("--method", help="Segmentation method.")] = "kmeans",
    features: Annotated[
        Optional[str], typer.Option("--features", help="Columns or families defining the segments (comma-separated).")
    ] = None,
    exclude: Annotated[Optional[str], typer.Option("--exclude", help="Columns or families to leave out.")] = None,
    weight: Annotated[
        Optional[list[str]],
        typer.Option("--weight", metavar="NAME=NUMBER", help="NAME=NUMBER feature or family weight (repeatable)."),
    ] = None,
    k_min: Annotated[int, typer.Option("--k-min", help="Smallest number of segments tried by auto.")] = 2,
    k_max: Annotated[int, typer.Option("--k-max", help="Largest number of segments tried by auto.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    customer_id_col: CustomerIdOpt = None,
    timestamp_col: TimestampOpt = None,
    amount_col: AmountOpt = None,
    order_id_col: OrderIdOpt = None,
    quantity_col: QuantityOpt = None,
    price_col: PriceOpt = None,
    category_col: CategoryOpt = None,
    channel_col: ChannelOpt = None,
    discount_col: DiscountOpt = None,
    date_format: DateFormatOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    column_names: ColumnNamesOpt = None,
    encoding: EncodingOpt = "auto",
    table: TableOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not append the run to DIR/segwise.duckdb.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Segment customers: load, clean, build features, choose segments, profile, name, save.

    Writes assignments.parquet/.csv, features.parquet, profiles.json, run.json and
    model.segwise into --out, and appends the run to --out/segwise.duckdb.
    """
    from segwise.outputs import check_output_dir

    if data is None and customers is None:
        raise InputError("give a transaction log (DATA), a customer table (--customers FILE), or both")
    check_output_dir(out_dir)
    load = _load_options(customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col,
                         category_col, channel_col, discount_col, date_format, delimiter, header, column_names,
                         encoding, table)
    result = _run_pipeline(data, customers, load, as_of=as_of, segments=segments, method=method, features=features,
                           exclude=exclude, weights=weight, k_min=k_min, k_max=k_max, seed=seed,
                           show_progress=err.is_terminal)
    paths = result.save(out_dir, store=not no_store)
    _print_cleaning(result.run)
    out.print(_segments_table(result))
    selection = result.run.get("selection")
    if selection:
        out.print(f"number of segments: {selection['reason']}", highlight=False, soft_wrap=True)
    out.print(f"outputs written to {Path(paths['run.json']).parent}/", highlight=False, soft_wrap=True)


@app.command("features")
@_handle_errors
def features_command(
    data: Annotated[Optional[Path], typer.Argument(help="Transaction log.")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")] = Path("features.parquet"),
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    customer_id_col: CustomerIdOpt = None,
    timestamp_col: TimestampOpt = None,
    amount_col: AmountOpt = None,
    order_id_col: OrderIdOpt = None,
    quantity_col: QuantityOpt = None,
    price_col: PriceOpt = None,
    category_col: CategoryOpt = None,
    channel_col: ChannelOpt = None,
    discount_col: DiscountOpt = None,
    date_format: DateFormatOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    column_names: ColumnNamesOpt = None,
    encoding: EncodingOpt = "auto",
    table: TableOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the customer feature table (one row per customer) without segmenting."""
    from segwise.features import build_features

    load = _load_options(customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col,
                         category_col, channel_col, discount_col, date_format, delimiter, header, column_names,
                         encoding, table)
    tx, cu = _load_inputs(data, customers, load)
    table_ = build_features(tx, customers=cu, as_of=as_of)
    _write_atomic_table(table_.frame.reset_index(), out_file)
    out.print(
        f"{len(table_.frame):,} customers x {table_.frame.shape[1]} features as of {table_.as_of} written to {out_file}",
        highlight=False, soft_wrap=True,
    )


def _load_inputs(data: Optional[Path], customers: Optional[Path], load: dict[str, Any]):
    """Load the transaction log and/or customer table given on the command line."""
    from segwise.data import load_customers, load_transactions
    from segwise.engine import get_engine

    if data is None and customers is None:
        raise InputError("give a transaction log (DATA), a customer table (--customers FILE), or both")
    engine = get_engine()
    transactions = load_transactions(str(data), engine=engine, **load) if data is not None else None
    customer_table = (
        load_customers(str(customers), engine=engine, **_customer_options(load, primary=data is None))
        if customers is not None else None
    )
    return transactions, customer_table


def _write_atomic_table(frame, path: Path) -> None:
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


@app.command()
@_handle_errors
def assign(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.segwise file.")],
    data: Annotated[Optional[Path], typer.Argument(help="Transaction log of the customers to assign.")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")] = Path("assignments.csv"),
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    customer_id_col: CustomerIdOpt = None,
    timestamp_col: TimestampOpt = None,
    amount_col: AmountOpt = None,
    order_id_col: OrderIdOpt = None,
    quantity_col: QuantityOpt = None,
    price_col: PriceOpt = None,
    category_col: CategoryOpt = None,
    channel_col: ChannelOpt = None,
    discount_col: DiscountOpt = None,
    date_format: DateFormatOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    column_names: ColumnNamesOpt = None,
    encoding: EncodingOpt = "auto",
    table: TableOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Assign the customers of new data to the segments of a saved model."""
    from segwise.model import load_model

    model = load_model(model_path)
    load = _load_options(customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col,
                         category_col, channel_col, discount_col, date_format, delimiter, header, column_names,
                         encoding, table)
    tx, cu = _load_inputs(data, customers, load)
    assignments = model.assign(tx, customers=cu, as_of=as_of)
    _write_atomic_table(assignments, out_file)
    counts = assignments["segment_name"].value_counts()
    out.print(f"{len(assignments):,} customers assigned to {out_file}", highlight=False, soft_wrap=True)
    for name, count in counts.items():
        out.print(f"  {name}: {count:,}", highlight=False)


@app.command()
@_handle_errors
def synth(
    n_customers: Annotated[int, typer.Option("--customers", help="Number of customers.")] = 50_000,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("synthetic"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    end_date: Annotated[str, typer.Option("--end-date", help="Last day of the order log.")] = "2024-12-31",
    debug: DebugOpt = False,
) -> None:
    """Generate a synthetic retail population with planted behaviour types."""
    from segwise.synth import generate_population

    if file_format not in ("parquet", "csv"):
        raise InputError(f"--format must be parquet or csv, got {file_format!r}")
    if n_customers < 8:
        raise InputError(f"--customers must be at least 8 (one per planted type), got {n_customers}")
    population = generate_population(n_customers, seed=seed, end_date=end_date)
    paths = population.write(out_dir, file_format)
    out.print(
        f"{n_customers:,} customers and {population.orders.num_rows:,} order lines written to {out_dir}/ "
        f"({', '.join(Path(p).name for p in paths.values())})",
        highlight=False, soft_wrap=True,
    )


@app.command()
@_handle_errors
def demo(
    n_customers: Annotated[int, typer.Option("--customers", help="Number of synthetic customers.")] = 50_000,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("segwise-demo"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    debug: DebugOpt = False,
) -> None:
    """Generate a synthetic population, segment it and show the segments."""
    from sklearn.metrics import adjusted_rand_score

    from segwise.synth import generate_population

    err.print(f"generating {n_customers:,} synthetic customers (seed {seed}) ...", highlight=False)
    population = generate_population(n_customers, seed=seed)
    data_dir = out_dir / "data"
    paths = population.write(data_dir, "parquet")
    result = _run_pipeline(Path(paths["orders"]), Path(paths["customers"]), _load_options(*([None] * 13), "auto", None),
                           as_of=None, segments="auto", method="kmeans", features=None, exclude=None, weights=None,
                           k_min=2, k_max=12, seed=seed, show_progress=err.is_terminal)
    result.save(out_dir)
    _print_cleaning(result.run)
    out.print(_segments_table(result))
    truth = population.truth.set_index("customer_id")["behaviour_type"].reindex(result.assignments["customer_id"])
    ari = adjusted_rand_score(truth.to_numpy(), result.assignments["segment_id"].to_numpy())
    selection = result.run.get("selection") or {}
    out.print(f"number of segments: {selection.get('reason', '')}", highlight=False, soft_wrap=True)
    out.print(f"agreement with the planted behaviour types: adjusted Rand index {ari:.3f}", highlight=False)
    out.print(f"outputs written to {out_dir}/ (assignments, profiles.json, run.json, model.segwise)", highlight=False,
              soft_wrap=True)
    out.print(f"try: segwise assign {out_dir}/model.segwise {data_dir}/orders.parquet --out {out_dir}/new.csv",
              highlight=False, soft_wrap=True)


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
    for name, command in root.commands.items():
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
