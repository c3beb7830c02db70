"""The ``segwise ab`` commands: split customers into arms, analyze the lift, plan sample sizes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from segwise.cli.action import say
from segwise.cli.app import app, err, out
from segwise.cli.errors import handle_errors
from segwise.cli.files import write_atomic_table
from segwise.cli.options import AmountOpt, CustomerIdOpt, DateFormatOpt, DebugOpt, LoadOptions, TimestampOpt
from segwise.errors import InputError

ab_app = typer.Typer(
    name="ab", help="A/B tests of segment strategies: split, analyze, plan.", no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(ab_app, name="ab")


def _parse_segments(value: str, names: dict[int, str]) -> list[int] | None:
    if value.strip().lower() == "all":
        return None
    by_name = {name.lower(): i for i, name in names.items()}
    chosen = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        if item.isdigit() and int(item) in names:
            chosen.append(int(item))
        elif item.lower() in by_name:
            chosen.append(by_name[item.lower()])
        else:
            raise InputError(f"--segments: no segment {item!r}; use 'all' or ids/names from: "
                             + ", ".join(f"{i} {n}" for i, n in sorted(names.items())))
    if not chosen:
        raise InputError("--segments: give 'all' or a comma-separated list of segment ids or names")
    return sorted(set(chosen))


@ab_app.command("split")
@handle_errors
def split(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="Output directory of `segwise run`.")],
    name: Annotated[str, typer.Option("--name", help="Experiment name (the split is a hash of name, seed, id).")],
    out_file: Annotated[Path, typer.Option("--out", help="Split file to write (.csv or .parquet).")],
    segments: Annotated[str, typer.Option("--segments", help="'all' or segment ids/names, comma-separated.")] = "all",
    treatment_share: Annotated[
        float, typer.Option("--treatment-share", help="Share of each segment in treatment.")
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed mixed into the hash.")] = 0,
    debug: DebugOpt = False,
) -> None:
    """Assign customers of chosen segments to control and treatment, stratified by segment.

    The same name, seed and customers always give the same arms. The split is
    recorded in RUN_DIR/segwise.duckdb (tables experiments and
    experiment_assignments) and written to --out (customer_id, segment_id,
    segment_name, arm).
    """
    from segwise.experiment import split_customers
    from segwise.runs import load_run
    from segwise.store import STORE_FILENAME, RunStore

    loaded = load_run(run_dir)
    run = loaded["run"]
    chosen = _parse_segments(segments, loaded["model"].names)
    arms = split_customers(loaded["assignments"], name=name, segments=chosen, treatment_share=treatment_share,
                           seed=seed)
    settings = {"run_id": run["run_id"], "segments": sorted(int(s) for s in arms["segment_id"].unique()),
                "treatment_share": float(treatment_share), "seed": int(seed)}
    with RunStore(run_dir / STORE_FILENAME) as store:
        existing = store.experiment(name)
        if existing is None:
            store.append_experiment({"name": name, "created_at": datetime.now(timezone.utc).isoformat(), **settings},
                                    arms)
            recorded = f"split recorded in {run_dir / STORE_FILENAME}"
        else:
            meta, stored = existing
            if {k: meta[k] for k in settings} != settings:
                raise InputError(
                    f"{run_dir / STORE_FILENAME}: an experiment named {name!r} already exists with other settings "
                    f"(run {meta['run_id']}, segments {meta['segments']}, treatment share "
                    f"{meta['treatment_share']}, seed {meta['seed']}); choose another --name"
                )
            if not stored[["customer_id", "arm"]].reset_index(drop=True).equals(
                    arms.sort_values(["segment_id", "customer_id"])[["customer_id", "arm"]].reset_index(drop=True)):
                raise InputError(f"{run_dir / STORE_FILENAME}: the stored split of {name!r} differs from a "
                                 "recomputed one; the store was edited by hand")
            recorded = f"already recorded in {run_dir / STORE_FILENAME} (same split)"
    write_atomic_table(arms, out_file)
    table = Table(title=escape(f"experiment {name}: {len(arms):,} customers"), title_justify="left")
    for column, justify in (("id", "right"), ("segment", "left"), ("control", "right"), ("treatment", "right")):
        table.add_column(column, justify=justify)
    counts = arms.groupby(["segment_id", "arm"]).size().unstack(fill_value=0)
    for segment_id, row in counts.iterrows():
        table.add_row(str(segment_id), escape(loaded["model"].names.get(int(segment_id), "")),
                      f"{row.get('control', 0):,}", f"{row.get('treatment', 0):,}")
    out.print(table)
    say(recorded)
    say(f"split written to {out_file}")


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "pp":
        return f"{value * 100:+.2f} pp"
    if kind == "p":
        return f"{value:.3g}" if value >= 0.001 else "<0.001"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "signed":
        return f"{value:+,.2f}"
    return str(value)


def _results_table(result: dict[str, Any]) -> Table:
    conversion = result["metric"] == "converted"
    value_key, value_kind = ("conversion_rate", "pct") if conversion else ("revenue_per_customer", "money")
    lift_kind = "pp" if conversion else "signed"
    level = f"{result['confidence_level']:.0%}"
    table = Table(title=f"lift of {'conversion rate' if conversion else 'revenue per customer'} "
                        f"(treatment - control), {level} intervals", title_justify="left")
    for column in ("segment", "control n", "treatment n", "control", "treatment", "lift", f"{level} CI",
                   "relative", "p", "p (Holm)", "MDE", "SRM"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for row in [*result["segments"], result["overall"]]:
        label = ("all segments" if row["segment_id"] is None
                 else escape(f"{row['segment_id']} {row.get('segment_name') or ''}".strip()))
        ci = row.get("absolute_ci")
        mde = (row.get("mde") or {}).get("absolute")
        table.add_row(
            label, f"{row['n_control']:,}", f"{row['n_treatment']:,}",
            _fmt(row["control"].get(value_key), value_kind), _fmt(row["treatment"].get(value_key), value_kind),
            _fmt(row.get("absolute_lift"), lift_kind),
            "n/a" if ci is None else f"[{_fmt(ci[0], lift_kind)}, {_fmt(ci[1], lift_kind)}]",
            _fmt(row.get("relative_lift"), "pct"), _fmt(row.get("p_value"), "p"),
            _fmt(row.get("p_value_holm"), "p") if row["segment_id"] is not None else "",
            _fmt(mde, lift_kind if conversion else "money"), "MISMATCH" if row["srm"]["mismatch"] else "ok",
        )
    return table


@ab_app.command("analyze")
@handle_errors
def analyze(
    split_file: Annotated[Path, typer.Argument(metavar="SPLIT_FILE", help="Split written by `segwise ab split`.")],
    outcomes_file: Annotated[
        Path, typer.Argument(metavar="OUTCOMES_FILE",
                             help="Outcome table (customer id + converted and/or revenue), or a transaction log "
                                  "with --since."),
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Result JSON file.")] = Path("ab-result.json"),
    metric: Annotated[str, typer.Option("--metric", help="converted or revenue.")] = "converted",
    treatment_share: Annotated[
        float, typer.Option("--treatment-share", help="Planned treatment share (for the SRM check).")
    ] = 0.5,
    since: Annotated[
        Optional[str], typer.Option("--since", help="Read OUTCOMES_FILE as a transaction log: orders from this date.")
    ] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="With --since: orders before this date.")] = None,
    converted_col: Annotated[Optional[str], typer.Option("--converted-col", help="Conversion flag column.")] = None,
    revenue_col: Annotated[Optional[str], typer.Option("--revenue-col", help="Revenue column.")] = None,
    customer_id_col: CustomerIdOpt = None,
    timestamp_col: TimestampOpt = None,
    amount_col: AmountOpt = None,
    date_format: DateFormatOpt = None,
    revenue_method: Annotated[
        str, typer.Option("--revenue-method", help="auto, welch or bootstrap (auto: bootstrap when too skewed).")
    ] = "auto",
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level (intervals are 1 - alpha).")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Power for the minimum detectable effect.")] = 0.8,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    debug: DebugOpt = False,
) -> None:
    """Lift per segment and overall with confidence intervals, Holm-adjusted p-values, MDE and an SRM check."""
    from segwise.experiment import analyze_experiment, outcomes_from_transactions, read_outcomes, read_split
    from segwise.persist import atomic_write_bytes
    from segwise.profile import _clean_json

    if revenue_method not in ("auto", "welch", "bootstrap"):
        raise InputError(f"--revenue-method must be auto, welch or bootstrap, got {revenue_method!r}")
    split_frame = read_split(str(split_file))
    if since is not None:
        from segwise.data import load_transactions

        load = LoadOptions(customer_id_col=customer_id_col, timestamp_col=timestamp_col, amount_col=amount_col,
                           date_format=date_format)
        outcomes = outcomes_from_transactions(load_transactions(str(outcomes_file), **load.transactions_kwargs()),
                                              since=since, until=until)
        source = f"{outcomes_file} (orders from {since}" + (f" to {until})" if until else ")")
    else:
        if until is not None:
            raise InputError("--until needs --since (it reads OUTCOMES_FILE as a transaction log)")
        outcomes = read_outcomes(str(outcomes_file), customer_id_col=customer_id_col, converted_col=converted_col,
                                 revenue_col=revenue_col)
        source = str(outcomes_file)
    result = analyze_experiment(split_frame, outcomes, metric=metric, treatment_share=treatment_share, alpha=alpha,
                                power=power, revenue_method=revenue_method, random_state=seed)
    result = {"split": str(split_file), "outcomes_source": source, **result}
    atomic_write_bytes(out_file, json.dumps(_clean_json(result), indent=2, allow_nan=False).encode())
    out.print(_results_table(result))
    method = result["method"] or {}
    say(f"method: {method.get('test', 'n/a')}; intervals: {method.get('ci', 'n/a')}; "
        f"p-values across segments: {result['multiple_comparisons']}")
    coverage = result["outcomes"]
    if coverage["customers_without_outcome_row"]:
        say(f"note: {coverage['customers_without_outcome_row']:,} customers of the split have no outcome row "
            "(counted as not converted, zero revenue)", err)
    for note in result["notes"]:
        say(f"note: {note}", err)
    if result["srm"]["mismatch"]:
        srm = result["srm"]["overall"]
        where = (f"segments {', '.join(map(str, result['srm']['segments_flagged']))}"
                 if result["srm"]["segments_flagged"] else "overall")
        say(
            f"warning: sample-ratio mismatch ({where}): the arms do not match the planned "
            f"treatment share {treatment_share:g} (overall observed {srm['observed_treatment_share']:.3f}, "
            f"chi-square p = {srm['p_value']:.2g}). The split is broken (or --treatment-share is not the planned "
            "one): do not trust these lifts until you know why.", err)
    say(f"result written to {out_file}")


@ab_app.command("plan")
@handle_errors
def plan(
    run_dir: Annotated[
        Optional[Path], typer.Argument(metavar="RUN_DIR", help="Optional: show which segments are large enough.")
    ] = None,
    baseline_rate: Annotated[
        Optional[float], typer.Option("--baseline-rate", help="Current conversion rate (e.g. 0.04).")
    ] = None,
    baseline_mean: Annotated[
        Optional[float], typer.Option("--baseline-mean", help="Current mean per customer (e.g. revenue).")
    ] = None,
    sd: Annotated[Optional[float], typer.Option("--sd", help="Standard deviation per customer (with --baseline-mean).")
                  ] = None,
    mde: Annotated[Optional[float], typer.Option("--mde", help="Smallest effect worth detecting, absolute.")] = None,
    relative_mde: Annotated[
        Optional[float], typer.Option("--relative-mde", help="Smallest effect worth detecting, relative (0.1 = 10%).")
    ] = None,
    treatment_share: Annotated[float, typer.Option("--treatment-share", help="Share in treatment.")] = 0.5,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level (two-sided).")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Power.")] = 0.8,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Also write the plan as JSON.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Customers needed per arm to detect an effect; with RUN_DIR, the MDE each segment allows."""
    from segwise.persist import atomic_write_bytes
    from segwise.experiment_stats import mde_conversion, mde_mean, plan_conversion, plan_mean

    if (baseline_rate is None) == (baseline_mean is None):
        raise InputError("give --baseline-rate (conversion) or --baseline-mean with --sd (revenue), not both")
    if baseline_mean is not None and sd is None:
        raise InputError("--baseline-mean needs --sd, the standard deviation per customer")
    if (mde is None) == (relative_mde is None):
        raise InputError("give the effect to detect with --mde (absolute) or --relative-mde (relative), not both")
    if baseline_rate is not None:
        result = plan_conversion(baseline_rate, absolute_mde=mde, relative_mde=relative_mde,
                                 treatment_share=treatment_share, alpha=alpha, power=power)
    else:
        result = plan_mean(baseline_mean, sd, absolute_mde=mde, relative_mde=relative_mde,
                           treatment_share=treatment_share, alpha=alpha, power=power)
    conversion = baseline_rate is not None
    effect = (f"{result['absolute_mde'] * 100:+.2f} pp" if conversion else f"{result['absolute_mde']:+,.2f}")
    say(
        f"to detect {effect} ({result['relative_mde']:+.1%}) on a baseline of {result['baseline']:g} with "
        f"{power:.0%} power at alpha {alpha:g}: {result['n_treatment']:,} treatment + {result['n_control']:,} "
        f"control = {result['n_total']:,} customers ({result['method']})")
    if run_dir is not None:
        from segwise.runs import load_run

        loaded = load_run(run_dir)
        sizes = loaded["assignments"]["segment_id"].value_counts().sort_index()
        table = Table(title="per segment, if the whole segment takes part", title_justify="left")
        for column in ("id", "segment", "customers", "treatment", "control", "MDE", "enough"):
            table.add_column(column, justify="left" if column == "segment" else "right")
        rows = []
        for segment_id, size in sizes.items():
            n_t = int(size * treatment_share + 0.5)
            n_c = int(size) - n_t
            if conversion:
                achievable = mde_conversion(baseline_rate, n_t, n_c, alpha=alpha, power=power)["absolute"]
            else:
                achievable = mde_mean(baseline_mean, sd, n_t, n_c, alpha=alpha, power=power)["absolute"]
            enough = n_t >= result["n_treatment"] and n_c >= result["n_control"]
            rows.append({"segment_id": int(segment_id), "customers": int(size), "n_treatment": n_t,
                         "n_control": n_c, "mde_absolute": achievable, "enough": enough})
            shown = "n/a" if achievable is None else (
                f"{achievable * 100:+.2f} pp" if conversion else f"{achievable:+,.2f}")
            table.add_row(str(segment_id), escape(loaded["model"].names.get(int(segment_id), "")), f"{size:,}",
                          f"{n_t:,}", f"{n_c:,}", shown, "yes" if enough else "no")
        result["segments"] = rows
        out.print(table)
    if out_file is not None:
        atomic_write_bytes(out_file, json.dumps(result, indent=2, allow_nan=False).encode())
        say(f"plan written to {out_file}")
