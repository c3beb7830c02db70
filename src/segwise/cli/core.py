"""The core commands: run, features, assign, synth, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from segwise.cli.app import app, err, out
from segwise.cli.engines import EngineOpt, SparkConfOpt, SparkMasterOpt, command_engine, source_engine
from segwise.cli.errors import handle_errors
from segwise.cli.files import load_inputs, write_atomic_table
from segwise.cli.options import (
    AsOfOpt, CustomersOpt, DebugOpt, DiscountRateOpt, EngineBounds, LoadOptions, MarginOpt, source_argument,
    with_option_sets,
)
from segwise.cli.parsers import PARSERS, parse_method_params, parse_segments, parse_weights, split_list
from segwise.cli.progress import StageProgress
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


def _timings_table(timings: dict[str, float], cpu_timings: dict[str, float] | None = None) -> Table:
    """Wall seconds, share of the total and CPU seconds of every pipeline stage, in the order they ran.

    CPU seconds are the process's, all threads: above the wall seconds a stage used
    both cores; well below them it waited (input, or other processes on the machine).
    """
    cpu = dict(cpu_timings or {})
    total = sum(timings.values())
    table = Table(title=f"stage timings ({total:.1f} s in all)", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    table.add_column("CPU s", justify="right")
    for stage, seconds in timings.items():
        table.add_row(stage, f"{seconds:.2f}", f"{seconds / total:.0%}" if total > 0 else "-",
                      f"{cpu[stage]:.2f}" if stage in cpu else "-")
    cpu_total = f"{sum(cpu.values()):.2f}" if cpu else "-"
    table.add_row("total", f"{total:.2f}", "100%" if total > 0 else "-", cpu_total, style="bold")
    return table


def _method_params(method: str, values: Optional[list[str]], options: dict[str, Optional[str]]
                   ) -> Optional[dict[str, Any]]:
    """``--method-param KEY=VALUE`` and the options of method parameters (``--levels``), read as the
    method declares its parameters (`segwise.cluster.base.method_parameters`)."""
    from segwise.cluster import get_method
    from segwise.cluster.base import METHODS, method_parameters, methods_with_option

    declared = {p.option: p for p in method_parameters(get_method(method)) if p.option}
    params = parse_method_params(values)
    for option, text in options.items():
        if text is None:
            continue
        param = declared.get(option)
        if param is None:
            owners = methods_with_option(option)
            what = next(p.help for p in method_parameters(METHODS[owners[0]]) if p.option == option)
            raise InputError(f"{option} {what}; it needs --method {' or --method '.join(owners)}, "
                             f"not {method!r}")
        params[param.name] = PARSERS[param.type](option, text)
    return params or None


def _run_pipeline(data, customers, load, *, as_of, segments, method, features, exclude, weights, k_min, k_max,
                  seed, show_progress: bool, playbook: Optional[Path] = None, stability=None, align_to=None,
                  method_params: Optional[dict[str, Any]] = None, engine=None,
                  value_options: Optional[dict[str, Any]] = None, order_by: Optional[str] = None):
    from segwise.runs import segment

    if data is None and engine is not None and engine.name == "spark" and load.table:
        data_source = None  # a table of the Spark catalog, named by --table
    else:
        data_source = str(data) if data is not None else None
    with StageProgress(show_progress) as progress:
        return segment(
            data_source,
            customers=str(customers) if customers is not None else None,
            as_of=as_of, n_segments=parse_segments(segments), method=method,
            features=split_list(features), exclude=split_list(exclude), weights=parse_weights(weights),
            k_range=(k_min, k_max), random_state=seed, method_params=method_params,
            load_options=load.transactions_kwargs(), customer_options=load.customers_kwargs(primary=data is None),
            progress=progress, playbook=playbook,
            stability=stability, align_to=str(align_to) if align_to is not None else None,
            n_jobs=-1 if stability else None,
            engine=engine, value_options=value_options,
            order_by={"clv": "clv_365d"}.get(order_by, order_by),
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
    for source in (run.get("input") or {}).values():
        for note in ((source or {}).get("cleaning") or {}).get("notes", []):
            err.print(f"note: {note}", highlight=False, soft_wrap=True)
    for note in run.get("features", {}).get("notes", []):
        err.print(f"note: {note}", highlight=False, soft_wrap=True)


def _print_report(paths: dict[str, str]) -> None:
    from segwise.cli.report import report_summary
    from segwise.report import REPORT_FILENAME

    if REPORT_FILENAME in paths:
        path = Path(paths[REPORT_FILENAME])
        out.print(report_summary(path, path.stat().st_size), highlight=False, soft_wrap=True)


def _print_method_summary(method: str, details: dict[str, Any]) -> None:
    """One or two lines of what only this method reports (the rest is in run.json)."""
    from segwise.cluster import get_model_class

    for line in get_model_class(method).summary_lines(details):
        out.print(line, highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- commands


@app.command()
@handle_errors
@with_option_sets
def run(
    data: Annotated[Optional[Path], typer.Argument(parser=source_argument, help=(
        "Transaction log: CSV/TSV/text, Parquet or DuckDB file, or postgresql://USER@HOST:PORT/DATABASE "
        "with --table or --query."))] = None,
    customers: CustomersOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("segwise-out"),
    as_of: AsOfOpt = None,
    segments: Annotated[str, typer.Option("--segments", help="Number of segments, 'auto', or a range such as 4..8 (auto within it).")] = "auto",
    method: Annotated[str, typer.Option("--method", help=(
        "Segmentation method: kmeans, hierarchical, dbscan, hdbscan, gmm, som, kprototypes, two_stage, multiview, "
        "autoencoder (needs the deep extra) or auto (compares kmeans, gmm, hierarchical, hdbscan)."))] = "kmeans",
    method_param: Annotated[
        Optional[list[str]],
        typer.Option("--method-param", metavar="KEY=VALUE", help=(
            "Parameter of the method's estimator (repeatable; VALUE is JSON or text), e.g. linkage=average, "
            "eps=0.8, covariance_type=diag, second_method=hierarchical, "
            "views='{\"value\": [\"rfm\"], \"channel\": [\"share_channel_*\"]}'.")),
    ] = None,
    levels: Annotated[
        Optional[str],
        typer.Option("--levels", help="Hierarchical only: several numbers of segments cut from one tree, e.g. 4,12."),
    ] = None,
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
    load: LoadOptions = LoadOptions(),
    bounds: EngineBounds = EngineBounds(),
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not append the run to DIR/segwise.duckdb.")] = False,
    playbook: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook TOML file: checked and stored in the model.")
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write the HTML report (report.html).")] = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    timings: Annotated[bool, typer.Option("--timings", help="Print the wall and CPU seconds each stage took (also in run.json).")] = False,
    margin: MarginOpt = None,
    discount_rate: DiscountRateOpt = None,
    order_by: Annotated[Optional[str], typer.Option(
        "--order-by", help="Number segments by this column's mean, descending; 'clv' = predicted value (clv_365d). "
        "Default: spend.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Segment customers: load, clean, build features, choose segments, profile, name, save.

    Writes assignments.parquet/.csv, features.parquet, profiles.json, run.json,
    model.segwise and the HTML report report.html into --out, and appends the run
    to --out/segwise.duckdb. With --engine spark the work runs on Spark (methods
    kmeans, bisecting_kmeans, gmm; --table NAME reads a Spark table) and the
    assignments are also written as Parquet partitioned by segment into
    --out/assignments_by_segment/.
    """
    from segwise.outputs import check_output_dir

    if data is None and customers is None and not (engine == "spark" and load.table):
        raise InputError("give a transaction log (DATA), a customer table (--customers FILE), or both")
    check_output_dir(out_dir)
    if stability is not None and stability < 2:
        raise InputError(f"--stability takes the number of bootstrap refits, at least 2 (e.g. 20); got {stability}")
    if align_to is not None and not align_to.is_file():
        raise InputError(f"--align-to {align_to}: no such model file; give the model.segwise of the previous run")
    params = _method_params(method, method_param, {"--levels": levels})
    run_engine = command_engine(engine, spark_master, spark_conf, bounds, data)
    result = _run_pipeline(data, customers, load, as_of=as_of, segments=segments, method=method, features=features,
                           exclude=exclude, weights=weight, k_min=k_min, k_max=k_max, seed=seed,
                           show_progress=err.is_terminal, playbook=playbook, stability=stability,
                           align_to=align_to, method_params=params, engine=run_engine,
                           value_options={"margin": margin, "discount_rate": discount_rate}, order_by=order_by)
    paths = result.save(out_dir, store=not no_store, report=not no_report)
    run_engine.write_assignments(result.assignments, out_dir)
    _print_cleaning(result.run)
    out.print(_segments_table(result))
    selection = result.run.get("selection")
    if selection:
        out.print(f"number of segments: {selection['reason']}", highlight=False, soft_wrap=True)
    _print_checks(result.run)
    _print_method_summary(result.run["method"], result.run.get("method_details") or {})
    out.print(f"outputs written to {Path(paths['run.json']).parent}/", highlight=False, soft_wrap=True)
    _print_report(paths)
    if timings:
        out.print(_timings_table(result.run["timings"], result.run.get("cpu_timings")))


@app.command("features")
@handle_errors
@with_option_sets
def features_command(
    data: Annotated[Optional[Path], typer.Argument(parser=source_argument, help="Transaction log.")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")] = Path("features.parquet"),
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    load: LoadOptions = LoadOptions(),
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    bounds: EngineBounds = EngineBounds(),
    families: Annotated[Optional[str], typer.Option(
        "--features", help="Feature families to compute (comma-separated, rfm among them; default: every family "
                           "the data supports).")] = None,
    margin: MarginOpt = None,
    discount_rate: DiscountRateOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write the customer feature table (one row per customer) without segmenting."""
    from segwise.features import build_features

    run_engine = command_engine(engine, spark_master, spark_conf, bounds, data)
    if run_engine.name == "spark":
        from segwise.data import load_customers, load_transactions

        if data is None and not load.table:
            raise InputError("give a transaction log (DATA) or a Spark table (--table NAME) with --engine spark")
        tx = load_transactions(str(data) if data is not None else None, engine=run_engine, **load.transactions_kwargs())
        cu = load_customers(str(customers), **load.customers_kwargs(primary=False)) if customers else None
    else:
        tx, cu = load_inputs(data, customers, load, run_engine)
    table_ = build_features(tx, customers=cu, as_of=as_of, families=split_list(families), margin=margin,
                            discount_rate=discount_rate)
    write_atomic_table(table_.frame.reset_index(), out_file)
    out.print(
        f"{len(table_.frame):,} customers x {table_.frame.shape[1]} features as of {table_.as_of} written to {out_file}",
        highlight=False, soft_wrap=True,
    )


@app.command()
@handle_errors
@with_option_sets
def assign(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.segwise file.")],
    data: Annotated[Optional[Path], typer.Argument(parser=source_argument, help="Transaction log of the customers to assign.")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")] = Path("assignments.csv"),
    customers: CustomersOpt = None,
    as_of: AsOfOpt = None,
    load: LoadOptions = LoadOptions(),
    bounds: EngineBounds = EngineBounds(),
    debug: DebugOpt = False,
) -> None:
    """Assign the customers of new data to the segments of a saved model."""
    from segwise.model import load_model

    model = load_model(model_path)
    tx, cu = load_inputs(data, customers, load, source_engine(data, bounds))
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
    result = _run_pipeline(Path(paths["orders"]), Path(paths["customers"]), LoadOptions(),
                           as_of=None, segments="auto", method="kmeans", features=None, exclude=None, weights=None,
                           k_min=2, k_max=12, seed=seed, show_progress=err.is_terminal)
    paths = result.save(out_dir)
    _print_cleaning(result.run)
    out.print(_segments_table(result))
    truth = population.truth.set_index("customer_id")["behaviour_type"].reindex(result.assignments["customer_id"])
    ari = adjusted_rand_score(truth.to_numpy(), result.assignments["segment_id"].to_numpy())
    selection = result.run.get("selection") or {}
    out.print(f"number of segments: {selection.get('reason', '')}", highlight=False, soft_wrap=True)
    out.print(f"agreement with the planted behaviour types: adjusted Rand index {ari:.3f}", highlight=False)
    out.print(f"outputs written to {out_dir}/ (assignments, profiles.json, run.json, model.segwise)", highlight=False,
              soft_wrap=True)
    _print_report(paths)
    out.print(f"try: segwise assign {out_dir}/model.segwise {data_dir}/orders.parquet --out {out_dir}/new.csv",
              highlight=False, soft_wrap=True)


