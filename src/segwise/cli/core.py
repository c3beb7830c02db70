"""The core commands: run, features, assign, synth, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from segwise.cli.common import (
    AmountOpt, AsOfOpt, CategoryOpt, ChannelOpt, ColumnNamesOpt, CustomerIdOpt, CustomersOpt, DateFormatOpt,
    DebugOpt, DelimiterOpt, DiscountOpt, EncodingOpt, HeaderOpt, OrderIdOpt, PriceOpt, QuantityOpt, TableOpt,
    TimestampOpt, StageProgress, app, customer_options, err, handle_errors, load_inputs, load_options, out,
    parse_segments, parse_weights, split_list, write_atomic_table, MemoryLimitOpt, TempDirOpt, ThreadsOpt,
    make_engine,
)
from segwise.errors import InputError

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
                  seed, show_progress: bool, playbook: Optional[Path] = None, stability=None, align_to=None,
                  engine=None):
    from segwise.pipeline import segment

    with StageProgress(show_progress) as progress:
        return segment(
            str(data) if data is not None else None,
            customers=str(customers) if customers is not None else None,
            as_of=as_of, n_segments=parse_segments(segments), method=method,
            features=split_list(features), exclude=split_list(exclude), weights=parse_weights(weights),
            k_range=(k_min, k_max), random_state=seed,
            load_options=load, customer_options=customer_options(load, primary=data is None),
            progress=progress, playbook=playbook,
            stability=stability, align_to=str(align_to) if align_to is not None else None,
            n_jobs=-1 if stability else None, engine=engine,
        )


def _print_checks(run: dict[str, Any]) -> None:
    """Stability, alignment and actionability lines under the segment table."""
    stability = run.get("stability")
    if stability:
        low, high = stability["ari_ci"]
        line = (f"stability over {stability['B']} bootstrap refits: ARI {stability['ari_mean']:.3f} "
                f"({low:.3f}-{high:.3f})")
        unstable = stability["unstable"]
        line += f"; unstable segments (Jaccard < {stability['threshold']}): {', '.join(map(str, unstable))}" if unstable \
            else "; every segment stable"
        out.print(line, highlight=False, soft_wrap=True)
    alignment = run.get("alignment")
    if alignment:
        kept = sum(m["status"] == "kept" for m in alignment["matches"])
        line = f"aligned to the previous model: {kept} segments kept their ids"
        if alignment["new_segments"]:
            line += "; new: " + ", ".join(f"{s['segment_id']} {s['segment_name']}" for s in alignment["new_segments"])
        if alignment["vanished_segments"]:
            line += "; vanished: " + ", ".join(
                f"{s['segment_id']} {s['segment_name']}" for s in alignment["vanished_segments"])
        out.print(line, highlight=False, soft_wrap=True)
    for flag in (run.get("actionability") or {}).get("flags", []):
        out.print(f"check: {flag['detail']}: {flag['suggestion']}", highlight=False, soft_wrap=True)


def _print_cleaning(run: dict[str, Any]) -> None:
    cleaning = {k: v for k, v in run.get("cleaning", {}).items() if v}
    if cleaning:
        err.print("cleaning: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in cleaning.items()), highlight=False)
    for note in run.get("features", {}).get("notes", []):
        err.print(f"note: {note}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- commands


@app.command()
@handle_errors
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
    stability: Annotated[
        Optional[int],
        typer.Option("--stability", metavar="B", help="Measure stability with B bootstrap refits (e.g. 20)."),
    ] = None,
    align_to: Annotated[
        Optional[Path],
        typer.Option("--align-to", metavar="OLD_MODEL", help="Keep the ids and names of this previous model's segments."),
    ] = None,
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
    memory_limit: MemoryLimitOpt = None,
    threads: ThreadsOpt = None,
    temp_dir: TempDirOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not append the run to DIR/segwise.duckdb.")] = False,
    playbook: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook TOML file: checked and stored in the model.")
    ] = None,
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
    if stability is not None and stability < 2:
        raise InputError(f"--stability takes the number of bootstrap refits, at least 2 (e.g. 20); got {stability}")
    if align_to is not None and not align_to.is_file():
        raise InputError(f"--align-to {align_to}: no such model file; give the model.segwise of the previous run")
    load = load_options(customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col,
                         category_col, channel_col, discount_col, date_format, delimiter, header, column_names,
                         encoding, table)
    result = _run_pipeline(data, customers, load, as_of=as_of, segments=segments, method=method, features=features,
                           exclude=exclude, weights=weight, k_min=k_min, k_max=k_max, seed=seed,
                           show_progress=err.is_terminal, playbook=playbook, stability=stability,
                           align_to=align_to, engine=make_engine(memory_limit, threads, temp_dir))
    paths = result.save(out_dir, store=not no_store)
    _print_cleaning(result.run)
    out.print(_segments_table(result))
    selection = result.run.get("selection")
    if selection:
        out.print(f"number of segments: {selection['reason']}", highlight=False, soft_wrap=True)
    _print_checks(result.run)
    out.print(f"outputs written to {Path(paths['run.json']).parent}/", highlight=False, soft_wrap=True)


@app.command("features")
@handle_errors
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
    memory_limit: MemoryLimitOpt = None,
    threads: ThreadsOpt = None,
    temp_dir: TempDirOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the customer feature table (one row per customer) without segmenting."""
    from segwise.features import build_features

    load = load_options(customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col,
                         category_col, channel_col, discount_col, date_format, delimiter, header, column_names,
                         encoding, table)
    tx, cu = load_inputs(data, customers, load, make_engine(memory_limit, threads, temp_dir))
    table_ = build_features(tx, customers=cu, as_of=as_of)
    write_atomic_table(table_.frame.reset_index(), out_file)
    out.print(
        f"{len(table_.frame):,} customers x {table_.frame.shape[1]} features as of {table_.as_of} written to {out_file}",
        highlight=False, soft_wrap=True,
    )


@app.command()
@handle_errors
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
    memory_limit: MemoryLimitOpt = None,
    threads: ThreadsOpt = None,
    temp_dir: TempDirOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Assign the customers of new data to the segments of a saved model."""
    from segwise.model import load_model

    model = load_model(model_path)
    load = load_options(customer_id_col, timestamp_col, amount_col, order_id_col, quantity_col, price_col,
                         category_col, channel_col, discount_col, date_format, delimiter, header, column_names,
                         encoding, table)
    tx, cu = load_inputs(data, customers, load, make_engine(memory_limit, threads, temp_dir))
    assignments = model.assign(tx, customers=cu, as_of=as_of)
    write_atomic_table(assignments, out_file)
    counts = assignments["segment_name"].value_counts()
    out.print(f"{len(assignments):,} customers assigned to {out_file}", highlight=False, soft_wrap=True)
    for name, count in counts.items():
        out.print(f"  {name}: {count:,}", highlight=False)


@app.command()
@handle_errors
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
@handle_errors
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
    result = _run_pipeline(Path(paths["orders"]), Path(paths["customers"]), load_options(*([None] * 13), "auto", None),
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


