"""Customer value (BG/NBD + Gamma-Gamma): reference values on CDNOW and time at scale.

    python -m bench.value reference [--cdnow DIR]      # lifetimes vs segwise on CDNOW
    python -m bench.value scale --customers 1000000     # the value family at N customers
        [--lifetimes-customers 100000]                  # and lifetimes' fitter at a smaller size

``reference`` needs ``lifetimes`` (``pip install lifetimes``; not a segwise
dependency) and records its summary totals, parameters, log-likelihoods and
calibration/holdout totals on the CDNOW master log next to segwise's, with fit times.
``scale`` simulates a BG/NBD population (purchases at Gamma-mixed Poisson rates with a
Beta-mixed dropout chance after each purchase, Gamma-Gamma spend) over two years, loads
it like any log, and times the value family: the Ibis summary on DuckDB, both fits and
all predictions. Results go to bench/results/value-<what>-<date>-<machine>.json with the
machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.results import RESULTS_DIR, describe_machine

#: The shared CDNOW files beside the checkout (a worktree sits one level deeper); --cdnow overrides.
CDNOW_DIR = next((p / "shared" / "data" / "cdnow" for p in Path(__file__).resolve().parents[1:4]
                  if (p / "shared" / "data" / "cdnow").is_dir()), Path("shared/data/cdnow"))
START = date(2023, 1, 1)
DAYS = 730


def _write(name: str, record: dict[str, Any]) -> Path:
    machine = describe_machine()
    # The machine is shared: the load says how much of it the run had.
    record = {"date": str(date.today()), "machine": machine, "load_average_1_5_15_min": os.getloadavg(), **record}
    path = RESULTS_DIR / f"value-{name}-{date.today()}-{machine['slug']}.json"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=float) + "\n")
    return path


# ----------------------------------------------------------------------------- reference on CDNOW


def _cdnow_log(directory: Path) -> pd.DataFrame:
    log = pd.read_csv(directory / "CDNOW_master.txt", sep=r"\s+", dtype={"customer_id": str, "date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


def reference(directory: Path) -> dict[str, Any]:
    """lifetimes and segwise side by side on the CDNOW master log."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

    import segwise
    from segwise.features.btyd import BetaGeoModel, GammaGammaModel, summary_table
    from segwise.features.value import calibration_holdout

    log = _cdnow_log(directory)
    out: dict[str, Any] = {"data": str(directory / "CDNOW_master.txt"), "lines": len(log)}

    started = time.perf_counter()
    ref = summary_data_from_transaction_data(log, "customer_id", "date", monetary_value_col="dollar_value",
                                             observation_period_end="1998-06-30", freq="D")
    lt: dict[str, Any] = {"summary_seconds": time.perf_counter() - started}
    lt["summary_totals"] = {c: float(ref[c].sum()) for c in ("frequency", "recency", "T", "monetary_value")}
    started = time.perf_counter()
    bgf = BetaGeoFitter().fit(ref["frequency"], ref["recency"], ref["T"])
    lt["bgnbd_seconds"] = time.perf_counter() - started
    lt["bgnbd"] = bgf.params_.to_dict()
    repeat = ref[(ref["frequency"] > 0) & (ref["monetary_value"] > 0)]
    started = time.perf_counter()
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    lt["gamma_gamma_seconds"] = time.perf_counter() - started
    lt["gamma_gamma"] = ggf.params_.to_dict()

    # With a monetary column: without one, this lifetimes function fails on pandas 2 (no column to count).
    cal = calibration_and_holdout_data(log, "customer_id", "date", calibration_period_end="1997-09-30",
                                       observation_period_end="1998-06-30", freq="D",
                                       monetary_value_col="dollar_value")
    cal_fit = BetaGeoFitter().fit(cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
    predicted = cal_fit.conditional_expected_number_of_purchases_up_to_time(
        cal["duration_holdout"].iloc[0], cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
    lt["holdout"] = {"bgnbd": cal_fit.params_.to_dict(), "predicted_purchases": float(predicted.sum()),
                     "actual_purchases": float(cal["frequency_holdout"].sum()),
                     "days": int(cal["duration_holdout"].iloc[0])}
    out["lifetimes"] = lt

    ours: dict[str, Any] = {}
    started = time.perf_counter()
    tx = segwise.load_transactions(str(directory / "CDNOW_master.txt"))
    table = tx.table
    summary = tx.engine.fetch_df(summary_table(table.filter(~table.is_return), date(1998, 7, 1)))
    ours["load_and_summary_seconds"] = time.perf_counter() - started
    ours["summary_totals"] = {c: float(summary[c].sum()) for c in ("frequency", "recency", "T", "monetary_value")}
    started = time.perf_counter()
    bg = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    ours["bgnbd_seconds"] = time.perf_counter() - started
    ours["bgnbd"] = bg.params_
    ours["bgnbd_log_likelihood"] = bg.log_likelihood_
    started = time.perf_counter()
    gg = GammaGammaModel().fit(summary["frequency"], summary["monetary_value"])
    ours["gamma_gamma_seconds"] = time.perf_counter() - started
    ours["gamma_gamma"] = gg.params_
    record, _ = calibration_holdout(tx, date(1997, 9, 30), date(1998, 6, 30))
    ours["holdout"] = {"bgnbd": {k: record["bgnbd"][k] for k in ("r", "alpha", "a", "b")},
                       "predicted_purchases": record["holdout"]["predicted_purchases"],
                       "actual_purchases": record["holdout"]["actual_purchases"], "days": record["holdout_days"]}
    out["segwise"] = ours

    def rel(a: float, b: float) -> float:
        return abs(a - b) / abs(b)

    out["relative_differences"] = {
        "bgnbd": {k: rel(ours["bgnbd"][k], lt["bgnbd"][k]) for k in lt["bgnbd"]},
        "gamma_gamma": {k: rel(ours["gamma_gamma"][k], lt["gamma_gamma"][k]) for k in lt["gamma_gamma"]},
        "holdout_bgnbd": {k: rel(ours["holdout"]["bgnbd"][k], lt["holdout"]["bgnbd"][k]) for k in ("r", "alpha", "a", "b")},
        "holdout_predicted": rel(ours["holdout"]["predicted_purchases"], lt["holdout"]["predicted_purchases"]),
    }
    return out


# ----------------------------------------------------------------------------- scale


def simulate(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """A BG/NBD + Gamma-Gamma transaction log of ``n_customers`` over two years (one line per purchase)."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.25, 40.0, 0.6, 2.5  # about CDNOW's, in days
    p, q, v = 6.0, 4.0, 15.0
    rate = rng.gamma(r, 1 / alpha, n_customers)
    drop = rng.beta(a, b, n_customers)
    scale_nu = rng.gamma(q, 1 / v, n_customers)
    birth = rng.uniform(0, DAYS / 2, n_customers)
    # Purchases after the first: exponential gaps, until dropout (geometric) or the end.
    max_repeats = 40
    gaps = rng.exponential(1.0, (n_customers, max_repeats)) / rate[:, None]
    times = birth[:, None] + np.cumsum(gaps, axis=1)
    alive_for = rng.geometric(drop)  # purchases made before dropping out, the first included
    keep = (times < DAYS) & (np.arange(1, max_repeats + 1)[None, :] < alive_for[:, None])
    customer = np.concatenate([np.arange(n_customers), np.nonzero(keep)[0]])
    day = np.concatenate([birth, times[keep]]).astype("int64")
    spend = rng.gamma(p, 1 / scale_nu[customer])
    ts = np.datetime64(START) + day.astype("timedelta64[D]")
    return pd.DataFrame({"customer_id": customer.astype("int64"), "ordered_at": ts, "amount": np.round(spend, 2)})


def scale(n_customers: int, lifetimes_customers: int | None) -> dict[str, Any]:
    """Time the value family at ``n_customers`` (and lifetimes' fitter at a smaller size)."""
    import segwise
    from segwise.features.btyd import summary_table
    from segwise.features.value import fit_value_models, predict_value, value_options

    log = simulate(n_customers)
    tx = segwise.load_transactions(log)
    as_of = START + timedelta(days=DAYS)
    table = tx.table
    timings: dict[str, float] = {}
    started = time.perf_counter()
    summary = tx.engine.fetch_df(summary_table(table.filter(~table.is_return), as_of))
    timings["summary"] = time.perf_counter() - started
    started = time.perf_counter()
    record = fit_value_models(summary, value_options())
    timings["fit"] = time.perf_counter() - started
    started = time.perf_counter()
    predicted = predict_value(summary, record)
    timings["predict"] = time.perf_counter() - started
    timings["value_family"] = sum(timings.values())
    out: dict[str, Any] = {
        "customers": int(len(summary)), "lines": int(len(log)), "seconds": timings,
        "parameters": {"bgnbd": record["bgnbd"], "gamma_gamma": record["gamma_gamma"]},
        "true_parameters": {"bgnbd": {"r": 0.25, "alpha": 40.0, "a": 0.6, "b": 2.5},
                            "gamma_gamma": {"p": 6.0, "q": 4.0, "v": 15.0}},
        "mean_clv_365d": float(predicted["clv_365d"].mean()),
    }
    if lifetimes_customers:
        try:
            from lifetimes import BetaGeoFitter, GammaGammaFitter
        except ImportError:
            out["lifetimes"] = "not installed"
        else:
            part = summary.sample(n=min(lifetimes_customers, len(summary)), random_state=0)
            started = time.perf_counter()
            BetaGeoFitter().fit(part["frequency"], part["recency"], part["T"])
            lt_bg = time.perf_counter() - started
            repeat = part[(part["frequency"] > 0) & (part["monetary_value"] > 0)]
            started = time.perf_counter()
            GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
            lt_gg = time.perf_counter() - started
            started = time.perf_counter()
            fit_value_models(part.reset_index(drop=True), value_options())
            ours = time.perf_counter() - started
            out["lifetimes"] = {"customers": int(len(part)), "bgnbd_fit_seconds": lt_bg,
                                "gamma_gamma_fit_seconds": lt_gg, "segwise_fit_seconds_same_customers": ours}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.value", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    ref = sub.add_parser("reference", help="lifetimes vs segwise on CDNOW")
    ref.add_argument("--cdnow", type=Path, default=CDNOW_DIR)
    sc = sub.add_parser("scale", help="the value family at N customers")
    sc.add_argument("--customers", type=int, default=1_000_000)
    sc.add_argument("--lifetimes-customers", type=int, default=None)
    args = parser.parse_args(argv)
    if args.what == "reference":
        record = reference(args.cdnow)
        name = "reference"
    else:
        record = scale(args.customers, args.lifetimes_customers)
        name = f"scale-{args.customers}"
    path = _write(name, record)
    print(json.dumps(record, indent=2, default=float))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
