"""``segwise value``: fit the customer-value models on a calibration period and check them on a holdout."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from segwise.cli.app import app, err, out
from segwise.cli.engines import source_engine
from segwise.cli.errors import handle_errors
from segwise.cli.files import load_inputs
from segwise.cli.options import DebugOpt, DiscountRateOpt, EngineBounds, LoadOptions, MarginOpt, source_argument, with_option_sets
from segwise.errors import InputError

__all__ = ["value_command", "holdout_figure_html"]


def _date(value: Optional[str], option: str) -> Optional[date]:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date: use the form YYYY-MM-DD, e.g. 1997-09-30") from None


def holdout_figure_html(record: dict[str, Any]) -> str:
    """A self-contained HTML page: mean predicted vs actual holdout purchases by calibration repeat purchases."""
    import plotly.graph_objects as go  # plotting lives apart from computing, imported when needed

    rows = record["by_calibration_frequency"]
    groups = [r["calibration_repeat_purchases"] for r in rows]
    figure = go.Figure([
        go.Bar(name="actual", x=groups, y=[r["mean_actual"] for r in rows], marker_color="#4c78a8"),
        go.Scatter(name="predicted (BG/NBD)", x=groups, y=[r["mean_predicted"] for r in rows],
                   mode="lines+markers", line={"color": "#f58518", "width": 3}),
    ])
    holdout = record["holdout"]
    figure.update_layout(
        title=(f"Holdout purchases per customer, {record['calibration_end']} to {record['holdout_end']} "
               f"({record['holdout_days']} days): predicted {holdout['predicted_purchases']:,.0f}, "
               f"actual {holdout['actual_purchases']:,}"),
        xaxis_title="repeat purchase days in the calibration period",
        yaxis_title="mean purchase days in the holdout period",
        template="plotly_white", legend={"orientation": "h", "y": -0.2},
    )
    return figure.to_html(include_plotlyjs=True, full_html=True)


@app.command("value")
@handle_errors
@with_option_sets
def value_command(
    data: Annotated[Path, typer.Argument(parser=source_argument, help="Transaction log.")],
    calibration_end: Annotated[str, typer.Option(
        "--calibration-end", help="Last day (YYYY-MM-DD) of the period the models are fitted on.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")],
    holdout_end: Annotated[Optional[str], typer.Option(
        "--holdout-end", help="Last day of the holdout period (default: the last day of the log).")] = None,
    margin: MarginOpt = None,
    discount_rate: DiscountRateOpt = None,
    load: LoadOptions = LoadOptions(),
    bounds: EngineBounds = EngineBounds(),
    debug: DebugOpt = False,
) -> None:
    """Fit the customer-value models (BG/NBD, Gamma-Gamma) on a calibration period and check them on a holdout.

    Writes value.json (parameters: bgnbd r, alpha, a, b in days and gamma_gamma p, q, v;
    diagnostics; notes on a fit at a limit, also printed; predicted and actual holdout
    purchases in total and by calibration repeat purchases), holdout.parquet (customer_id, predicted, actual) and
    holdout.html (the calibration/holdout plot) into --out, together.
    """
    from segwise.features.value import calibration_holdout
    from segwise.outputs import check_output_dir, commit_outputs
    from segwise.runs import write_table

    cal_end = _date(calibration_end, "--calibration-end")
    hold_end = _date(holdout_end, "--holdout-end")
    check_output_dir(out_dir)
    transactions, _ = load_inputs(data, None, load, source_engine(data, bounds))
    record, holdout = calibration_holdout(transactions, cal_end, hold_end, margin=margin, discount_rate=discount_rate)
    record = {"source": transactions.source, "cleaning": transactions.cleaning.to_dict(), **record}
    html = holdout_figure_html(record)
    paths = commit_outputs(out_dir, {
        "holdout.parquet": lambda path: write_table(holdout[["customer_id", "predicted", "actual"]], path),
        "holdout.html": lambda path: path.write_text(html, encoding="utf-8"),
        "value.json": lambda path: path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8"),
    }, last="value.json")
    bg, gg, totals = record["bgnbd"], record["gamma_gamma"], record["holdout"]
    out.print(
        f"BG/NBD (days): r={bg['r']:.4g} alpha={bg['alpha']:.4g} a={bg['a']:.4g} b={bg['b']:.4g}; "
        f"Gamma-Gamma: p={gg['p']:.4g} q={gg['q']:.4g} v={gg['v']:.4g}",
        highlight=False, soft_wrap=True,
    )
    out.print(
        f"{record['customers']:,} calibration customers; holdout {record['calibration_end']} .. "
        f"{record['holdout_end']}: predicted {totals['predicted_purchases']:,.1f} purchase days, "
        f"actual {totals['actual_purchases']:,}",
        highlight=False, soft_wrap=True,
    )
    for note in record["notes"]:
        err.print(f"note: {note}", highlight=False, soft_wrap=True)
    out.print(f"outputs written to {Path(paths['value.json']).parent}/", highlight=False, soft_wrap=True)
