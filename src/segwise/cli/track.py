"""Commands about segments over time: track, compare, update."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from segwise.cli.app import app, out
from segwise.cli.errors import handle_errors
from segwise.cli.engines import source_engine
from segwise.cli.files import load_inputs
from segwise.cli.options import CustomersOpt, DebugOpt, EngineBounds, LoadOptions, source_argument, with_option_sets
from segwise.errors import InputError

ModelOpt = Annotated[Path, typer.Option("--model", metavar="MODEL", help="A model.segwise file.")]


def _json_bytes(data) -> bytes:
    from segwise.runs import _json_safe

    return json.dumps(_json_safe(data), indent=2, allow_nan=False).encode()


def _share(value) -> str:
    return "-" if value is None else f"{value:.1%}"


@app.command("track")
@handle_errors
@with_option_sets
def track_command(
    data: Annotated[Path, typer.Argument(parser=source_argument, help="Transaction log covering every --as-of date.")],
    model_path: ModelOpt,
    as_of: Annotated[
        list[str], typer.Option("--as-of", help="Snapshot date YYYY-MM-DD (repeat, at least two, increasing).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("segwise-track"),
    customers: CustomersOpt = None,
    load: LoadOptions = LoadOptions(),
    bounds: EngineBounds = EngineBounds(),
    debug: DebugOpt = False,
) -> None:
    """Assign customers with one model at several dates and measure who moved where.

    Writes transitions.parquet (transition matrix of each consecutive pair of dates,
    with "new" and "gone"), shares.parquet (segment shares at every date) and
    summary.json (temporal ARI and counts per period) into --out.
    """
    from segwise.model import load_model
    from segwise.outputs import check_output_dir, commit_outputs
    from segwise.runs import write_table
    from segwise.track import track

    check_output_dir(out_dir)
    model = load_model(model_path)
    tx, cu = load_inputs(data, customers, load, source_engine(data, bounds))
    result = track(model, tx, as_of, customers=cu)
    commit_outputs(out_dir, {
        "transitions.parquet": lambda p: write_table(result.transitions, p),
        "shares.parquet": lambda p: write_table(result.shares, p),
        "summary.json": lambda p: p.write_bytes(_json_bytes(result.summary)),
    }, last="summary.json")
    periods = Table(title="customers between snapshots", title_justify="left")
    for column in ("from", "to", "customers", "new", "gone", "stayed", "temporal ARI"):
        periods.add_column(column, justify="left" if column in ("from", "to") else "right")
    for p in result.summary["periods"]:
        periods.add_row(p["start"], p["end"], f"{p['customers_after']:,}", f"{p['new']:,}", f"{p['gone']:,}",
                        _share(p["stayed"]), "-" if p["temporal_ari"] is None else f"{p['temporal_ari']:.3f}")
    out.print(periods)
    shares = result.shares.pivot(index="segment_name", columns="as_of", values="share")
    shares = shares.reindex([n for _, n in sorted(model.names.items())])
    share_table = Table(title="segment shares", title_justify="left")
    share_table.add_column("segment")
    for d in shares.columns:
        share_table.add_column(str(d), justify="right")
    for name, row in shares.iterrows():
        share_table.add_row(name, *[_share(v) for v in row])
    out.print(share_table)
    out.print(f"outputs written to {out_dir}/ (transitions.parquet, shares.parquet, summary.json)",
              highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def compare(
    run_a: Annotated[Path, typer.Argument(metavar="RUN_A", help="A run directory (segwise run --out).")],
    run_b: Annotated[Path, typer.Argument(metavar="RUN_B", help="Another run directory.")],
    out_file: Annotated[
        Optional[Path], typer.Option("--out", help="Write the cross-table of segments (.parquet or .csv).")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Compare two runs' segments on the customers they share (ARI, same id, same name)."""
    from segwise.cli.files import write_atomic_table
    from segwise.runs import load_run
    from segwise.track import compare_assignments

    summary, crosstab = compare_assignments(load_run(run_a)["assignments"], load_run(run_b)["assignments"])
    if summary["customers_shared"] == 0:
        raise InputError(f"{run_a} and {run_b} share no customer: there is nothing to compare")
    out.print(
        f"{summary['customers_shared']:,} customers in both runs ({summary['only_a']:,} only in {run_a}, "
        f"{summary['only_b']:,} only in {run_b})", highlight=False, soft_wrap=True,
    )
    out.print(
        f"adjusted Rand index {summary['ari']:.3f}; same segment id {_share(summary['same_segment_id'])}; "
        f"same segment name {_share(summary['same_segment_name'])}", highlight=False, soft_wrap=True,
    )
    table = Table(title="largest flows between the runs' segments", title_justify="left")
    for column in ("segment in A", "segment in B", "customers"):
        table.add_column(column, justify="right" if column == "customers" else "left")
    for row in crosstab.sort_values("customers", ascending=False).head(15).itertuples():
        table.add_row(f"{row.segment_a} {row.segment_name_a}", f"{row.segment_b} {row.segment_name_b}",
                      f"{row.customers:,}")
    out.print(table)
    if out_file is not None:
        write_atomic_table(crosstab, out_file)
        out.print(f"cross-table written to {out_file}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
@with_option_sets
def update(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.segwise file.")],
    data: Annotated[Path, typer.Argument(parser=source_argument, help="Current transaction log.")],
    store: Annotated[Path, typer.Option("--store", help="DuckDB store holding the segment history.")] = Path(
        "segwise.duckdb"),
    as_of: Annotated[
        Optional[str], typer.Option("--as-of", help="Date of this update YYYY-MM-DD (default: day after the last order).")
    ] = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Where migrations.parquet and update.json go (default: beside --store).")
    ] = None,
    customers: CustomersOpt = None,
    load: LoadOptions = LoadOptions(),
    bounds: EngineBounds = EngineBounds(),
    debug: DebugOpt = False,
) -> None:
    """Assign current customers with a model, record their segment history and check drift.

    Records each customer's segment in the store's segment_history table (valid-from /
    valid-to), writes the migrations since the last update (migrations.parquet) and the
    drift against the training snapshot (update.json), and says whether to retrain.
    Repeating the same update changes nothing.
    """
    from segwise.model import load_model
    from segwise.outputs import check_output_dir, commit_outputs
    from segwise.runs import write_table
    from segwise.track import update as run_update

    out_dir = check_output_dir(out_dir if out_dir is not None else store.parent)
    if store.exists() and not store.is_file():
        raise InputError(f"--store {store}: is a directory; give the path of a DuckDB file, e.g. {store / 'segwise.duckdb'}")
    model = load_model(model_path)
    tx, cu = load_inputs(data, customers, load, source_engine(data, bounds))
    result = run_update(model, tx, store, as_of=as_of, customers=cu)
    summary = result.summary
    commit_outputs(out_dir, {
        "migrations.parquet": lambda p: write_table(result.migrations, p),
        "update.json": lambda p: p.write_bytes(_json_bytes(summary)),
    }, last="update.json")
    if result.already_recorded:
        out.print(f"the update as of {result.as_of} is already recorded in {store}; nothing changed",
                  highlight=False, soft_wrap=True)
    out.print(
        f"{summary['n_customers']:,} customers as of {result.as_of}: {summary['n_new']:,} new, "
        f"{summary['n_moved']:,} moved, {summary['n_gone']:,} gone, {summary['n_unchanged']:,} unchanged",
        highlight=False, soft_wrap=True,
    )
    drift = summary.get("drift")
    if drift is None:
        out.print("drift: not measured (the model file has no training snapshot; retrain with this version)",
                  highlight=False, soft_wrap=True)
    else:
        top = sorted(drift["features"].items(), key=lambda kv: -kv[1]["psi"])[:3]
        out.print(
            f"drift: segment shares PSI {drift['segment_share_psi']:.3f}; largest feature PSI "
            + ", ".join(f"{c} {v['psi']:.3f}" for c, v in top), highlight=False, soft_wrap=True,
        )
        if drift["retrain_recommended"]:
            out.print("retrain recommended: " + "; ".join(drift["reasons"]), highlight=False, soft_wrap=True)
        else:
            out.print(f"no retrain needed ({drift['rule']})", highlight=False, soft_wrap=True)
    out.print(f"history in {store}; migrations written to {out_dir}/migrations.parquet", highlight=False,
              soft_wrap=True)
