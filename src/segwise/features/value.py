"""Customer value: expected purchases, probability alive and discounted lifetime value.

The Ibis part is the buy-till-you-die summary (`segwise.features.btyd.summary_table`)
at ``as_of``; the models are fitted in memory on it (BG/NBD for purchases, Gamma-Gamma
for spend) when the feature table is built for training, and their parameters are
kept in the feature spec (so in the model file): assigning new customers scores them
with the trained parameters instead of refitting. Where the models cannot be fitted
(too few repeat customers) the family is left out with a note, never an error.

Not a defining family: segments are defined by ``rfm`` and ``affinity`` unless chosen
otherwise; the value columns describe segments (and can be chosen with ``--features``).
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd

from segwise.errors import InputError
from segwise.features.base import FeatureColumn, FeatureContext, FeatureSpec, register_family
from segwise.features.btyd import (
    DEFAULT_DISCOUNT_RATE,
    DEFAULT_MARGIN,
    BetaGeoModel,
    GammaGammaModel,
    discounted_clv,
    summary_table,
)

__all__ = ["VALUE_COLUMNS", "calibration_holdout", "fit_value_models", "predict_value", "value_options"]

log = logging.getLogger(__name__)

_SUMMARY = {"frequency": "_btyd_frequency", "recency": "_btyd_recency", "T": "_btyd_T",
            "monetary_value": "_btyd_monetary"}

#: Prediction horizons of the expected-purchase columns, in days.
HORIZONS = (90, 365)
#: A shape parameter (r, a, b; p, q) below this means a mixing distribution collapsed
#: onto zero (the optimiser ran off to a boundary where the model says nothing). Shapes
#: growing without limit are the opposite, well-defined limit: they stop at
#: `segwise.features.btyd.SHAPE_LIMIT` and the fit is kept (see ``at_limit`` in the
#: diagnostics). The scale parameters (alpha in days, v in currency) depend on the
#: data's units and have no such range.
_MIN_SHAPE = 1e-6
#: The columns the family adds.
#: (The summary itself stays internal: repeat purchase days and spend repeat ``rfm``'s
#: n_orders and monetary_avg almost exactly, and would crowd the segment traits.)
VALUE_COLUMNS = ("expected_purchases_90d", "expected_purchases_365d", "p_alive", "clv_365d")


def value_options(margin: float | None = None, discount_rate: float | None = None) -> dict[str, float]:
    """The CLV options, with the documented defaults for those not given."""
    options = {"margin": DEFAULT_MARGIN if margin is None else float(margin),
               "discount_rate": DEFAULT_DISCOUNT_RATE if discount_rate is None else float(discount_rate)}
    if not 0 < options["margin"] <= 1:
        raise InputError(f"--margin is the share of revenue that is profit, in (0, 1]; got {options['margin']}")
    if not 0 <= options["discount_rate"] < 10:
        raise InputError(f"--discount-rate is a yearly rate such as 0.1 (10%); got {options['discount_rate']}")
    return options


def _columns(spec: FeatureSpec) -> list[FeatureColumn]:
    return [
        FeatureColumn(
            "expected_purchases_90d", "value", "purchase days",
            "Purchase days the BG/NBD model expects from the customer in the 90 days after as_of.",
            higher_is="better", log_scale=True,
        ),
        FeatureColumn(
            "expected_purchases_365d", "value", "purchase days",
            "Purchase days the BG/NBD model expects from the customer in the 365 days after as_of.",
            higher_is="better", log_scale=True,
        ),
        FeatureColumn(
            "p_alive", "value", "probability",
            "Probability (BG/NBD) that the customer is still active at as_of: low for a customer who bought "
            "often and then stopped.", higher_is="better",
        ),
        FeatureColumn(
            "clv_365d", "value", "currency",
            "Predicted value of the next 365 days: expected purchases (BG/NBD) times expected spend per purchase "
            "(Gamma-Gamma) times the margin (default 1: revenue), discounted monthly at the yearly discount "
            "rate (default 10%).", higher_is="better",
        ),
    ]


def fit_value_models(summary: pd.DataFrame, options: dict[str, float]) -> dict[str, Any]:
    """Fit BG/NBD and Gamma-Gamma to a summary (days); the record kept in the spec and run.json.

    Raises
    ------
    InputError
        When the data cannot support the models (too few repeat customers).
    """
    started = time.perf_counter()
    f, r, T, m = (summary[c].to_numpy("float64") for c in ("frequency", "recency", "T", "monetary_value"))
    bg = BetaGeoModel().fit(f, r, T)
    gg = GammaGammaModel().fit(f, m)
    params = {**bg.params_, **gg.params_}
    shapes = {"r", "a", "b", "p", "q"}
    # a on its floor is the no-dropout limit, not a collapse (`segwise.features.btyd.DROPOUT_FLOOR`).
    degenerate = {k: v for k, v in params.items()
                  if not (np.isfinite(v) and v > 0) or (k in shapes and v < _MIN_SHAPE and k not in bg.at_floor_)}
    if degenerate:
        raise InputError(
            "the buy-till-you-die models ran off to degenerate parameters ("
            + ", ".join(f"{k}={v:.3g}" for k, v in degenerate.items())
            + "): the purchase history is too short or too irregular to estimate the models"
        )
    if gg.q_ <= 1:
        raise InputError(
            f"the Gamma-Gamma spend model has q = {gg.q_:.3f} <= 1, so the mean spend is undefined "
            "(spend per purchase varies too wildly between customers)"
        )
    return {
        "bgnbd": {**bg.params_, "time_unit": "days"},
        "gamma_gamma": gg.params_,
        **options,
        "diagnostics": {
            "bgnbd": {
                "log_likelihood": bg.log_likelihood_, "converged": bg.converged_, "iterations": bg.n_iter_,
                "customers": bg.n_customers_, "repeat_customers": bg.n_repeat_customers_,
                "standard_errors": bg.standard_errors_, "message": bg.message_, "at_limit": bg.at_limit_,
                "at_floor": bg.at_floor_,
            },
            "gamma_gamma": {
                "log_likelihood": gg.log_likelihood_, "converged": gg.converged_, "iterations": gg.n_iter_,
                "customers": gg.n_customers_, "standard_errors": gg.standard_errors_, "message": gg.message_,
                "at_limit": gg.at_limit_,
            },
            "fit_seconds": round(time.perf_counter() - started, 3),
        },
    }


def _models(record: dict[str, Any]) -> tuple[BetaGeoModel, GammaGammaModel]:
    bg, gg = BetaGeoModel(), GammaGammaModel()
    bg.r_, bg.alpha_, bg.a_, bg.b_ = (float(record["bgnbd"][k]) for k in ("r", "alpha", "a", "b"))
    gg.p_, gg.q_, gg.v_ = (float(record["gamma_gamma"][k]) for k in ("p", "q", "v"))
    return bg, gg


def predict_value(summary: pd.DataFrame, record: dict[str, Any]) -> pd.DataFrame:
    """The value columns for each row of a summary (days), with fitted parameters ``record``."""
    bg, gg = _models(record)
    f, r, T, m = (summary[c].to_numpy("float64") for c in ("frequency", "recency", "T", "monetary_value"))
    e90, e365 = bg.expected_purchases_at(list(HORIZONS), f, r, T)
    return pd.DataFrame({
        "expected_purchases_90d": e90,
        "expected_purchases_365d": e365,
        "p_alive": bg.p_alive(f, r, T),
        "clv_365d": discounted_clv(bg, gg, f, r, T, m, margin=record["margin"],
                                   discount_rate=record["discount_rate"]),
    }, index=summary.index)


#: What a shape parameter that ended on its limit says about the customers: the limit
#: model's spread in that quantity is gone (every customer alike in it).
_AT_LIMIT_MEANING = {
    "r": "purchase rates are alike across customers (BG/NBD r)",
    "a": "the chance of dropping out after a purchase is alike for every customer (BG/NBD a)",
    "b": "the chance of dropping out after a purchase is alike for every customer (BG/NBD b)",
    "p": "spend hardly varies between a customer's purchases, so each one's expected spend is their own mean "
         "(Gamma-Gamma p)",
    "q": "mean spend per purchase is alike across customers (Gamma-Gamma q)",
}


def limit_notes(diagnostics: dict[str, Any]) -> list[str]:
    """Notes for the shape parameters of a fit that ended on their limit or floor (``at_limit``, ``at_floor``).

    The predictions are then the limit model's: a reader of P(alive) or the CLV should
    know that the data showed no spread between customers in that respect.
    """
    no_dropout = "a" in diagnostics.get("bgnbd", {}).get("at_floor", [])
    meanings: list[str] = []
    for model in ("bgnbd", "gamma_gamma"):
        for name in diagnostics.get(model, {}).get("at_limit", []):
            # Without dropout, b no longer shapes anything the reader sees.
            if _AT_LIMIT_MEANING[name] not in meanings and not (no_dropout and name == "b"):
                meanings.append(_AT_LIMIT_MEANING[name])
    if no_dropout:
        meanings.append("customers are not seen to stop buying, so the dropout part all but vanished "
                        "(BG/NBD a at its floor: close to the NBD model without dropout)")
    if not meanings:
        return []
    return ["the value models fit at their limit, so their predictions are the limit model's: "
            + "; ".join(meanings) + " (docs/value.md)"]


def _finish(frame: pd.DataFrame, spec: FeatureSpec, fit: bool) -> dict[str, Any]:
    """Fit (training) or apply (assignment) the models and add the value columns to ``frame``."""
    summary = frame[list(_SUMMARY.values())].rename(columns={v: k for k, v in _SUMMARY.items()})
    record = spec.models.get("value", {})
    if fit or "bgnbd" not in record:
        record = fit_value_models(summary, value_options(record.get("margin"), record.get("discount_rate")))
        spec.models["value"] = {k: v for k, v in record.items() if k != "diagnostics"}
    predicted = predict_value(summary, record)
    bad = ~np.isfinite(predicted.to_numpy()).all(axis=1)
    if bad.any():
        raise InputError(f"the value models give no finite prediction for {int(bad.sum())} customers")
    for column in predicted.columns:
        frame[column] = predicted[column].to_numpy()
    if "diagnostics" in record:
        record = {**record, "notes": limit_notes(record["diagnostics"])}
    return record


@register_family(
    "value", columns=_columns, finish=_finish,
    description="customer value: expected purchases, probability alive, lifetime value (BG/NBD, Gamma-Gamma)",
)
def value(ctx: FeatureContext) -> ibis.Table:
    """The buy-till-you-die summary of every customer with a purchase before as_of."""
    summary = summary_table(ctx.purchases, ctx.as_of)
    return summary.select("customer_id", **{new: summary[old] for old, new in _SUMMARY.items()})


def calibration_holdout(
    transactions: Any,
    calibration_end: date,
    holdout_end: date | None = None,
    *,
    margin: float | None = None,
    discount_rate: float | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit the value models on a calibration period and compare with the holdout period after it.

    The way the buy-till-you-die literature validates (Fader, Hardie and Lee 2005):
    the models are fitted on purchases up to ``calibration_end`` (inclusive), then each
    calibration customer's predicted purchase days in the holdout period
    (``calibration_end``, ``holdout_end``] are compared with the actual ones.

    Parameters
    ----------
    transactions : Transactions
        A cleaned log (`segwise.load_transactions`).
    calibration_end : date
        Last day of the calibration period.
    holdout_end : date, optional
        Last day of the holdout period (default: the day of the last transaction).
    margin, discount_rate : float, optional
        Of the lifetime values (defaults in `segwise.features.btyd`).

    Returns
    -------
    record : dict
        Parameters (``bgnbd`` in days, ``gamma_gamma``), diagnostics and holdout totals.
    holdout : pandas.DataFrame
        One row per calibration customer: ``customer_id``, ``predicted`` and ``actual``
        holdout purchase days, and ``calibration_frequency`` (repeat purchase days).
    """
    last_day = pd.Timestamp(transactions.last_timestamp).date()
    first_day = pd.Timestamp(transactions.first_timestamp).date()
    holdout_end = last_day if holdout_end is None else holdout_end
    if calibration_end < first_day:
        raise InputError(f"--calibration-end {calibration_end} is before the first transaction ({first_day}) of "
                         f"{transactions.source}: choose a date inside the log")
    if holdout_end <= calibration_end:
        raise InputError(f"--holdout-end {holdout_end} must be after --calibration-end {calibration_end} "
                         f"(the log of {transactions.source} ends on {last_day})")
    engine = transactions.engine
    table = transactions.table
    purchases = table.filter(~table.is_return)
    as_of = calibration_end + timedelta(days=1)
    summary = engine.fetch_df(summary_table(purchases, as_of).order_by("customer_id"))
    record = fit_value_models(summary, value_options(margin, discount_rate))
    holdout_days = (holdout_end - calibration_end).days
    in_holdout = purchases.filter((purchases.ts >= ibis.literal(as_of).cast("timestamp"))
                                  & (purchases.ts < ibis.literal(holdout_end + timedelta(days=1)).cast("timestamp")))
    actual = engine.fetch_df(in_holdout.group_by("customer_id").aggregate(actual=in_holdout.ts.date().nunique()))
    bg, _ = _models(record)
    predicted = bg.expected_purchases(holdout_days, summary["frequency"], summary["recency"], summary["T"])
    frame = pd.DataFrame({"customer_id": summary["customer_id"].astype(str), "predicted": predicted,
                          "calibration_frequency": summary["frequency"].to_numpy("float64")})
    frame = frame.merge(actual.astype({"customer_id": str}), on="customer_id", how="left")
    frame["actual"] = frame["actual"].fillna(0).astype("int64")
    holdout_ids = engine.fetch_df(in_holdout.select("customer_id").distinct())["customer_id"].astype(str)
    record.update({
        "notes": limit_notes(record["diagnostics"]),
        "calibration_end": str(calibration_end),
        "holdout_end": str(holdout_end),
        "holdout_days": holdout_days,
        "customers": int(len(frame)),
        "holdout": {
            "predicted_purchases": float(frame["predicted"].sum()),
            "actual_purchases": int(frame["actual"].sum()),
            # New customers of the holdout period are not predicted (the models score known customers).
            "new_customers_in_holdout": int((~holdout_ids.isin(frame["customer_id"])).sum()),
        },
        "by_calibration_frequency": _by_frequency(frame),
    })
    return record, frame[["customer_id", "predicted", "actual", "calibration_frequency"]]


#: Calibration repeat purchases from this many up share one group in the holdout comparison.
HOLDOUT_GROUPS = 7


def _by_frequency(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Mean predicted and actual holdout purchases by calibration repeat purchases (0, 1, ..., 7+)."""
    group = frame["calibration_frequency"].clip(upper=HOLDOUT_GROUPS).astype(int)
    rows = []
    for value, part in frame.groupby(group):
        rows.append({
            "calibration_repeat_purchases": f"{value}+" if value == HOLDOUT_GROUPS else str(value),
            "customers": int(len(part)),
            "mean_predicted": float(part["predicted"].mean()),
            "mean_actual": float(part["actual"].mean()),
        })
    return rows
