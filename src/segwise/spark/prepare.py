"""Preparation fitted on Spark, exported into the ordinary `segwise.prepare.Preprocessor`.

Every statistic `Preprocessor.fit` learns (medians or means, missing shares,
skewness, winsorising quantiles, centre and scale, correlations, category levels)
is computed by Spark aggregates over the customer feature table; the result is
the same fitted state (`Preprocessor.from_state`), so the model file does not
change and assignment needs no Spark. Quantiles are exact (Spark's ``percentile``,
linear interpolation, as numpy). Two differences, both documented in
docs/scaling.md: correlations use every customer (the local engine samples
100,000 above that), and ``skew_transform="quantile"`` and ``pca`` are not
available here (they raise an `InputError`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segwise.errors import InputError
from segwise.prepare import Preprocessor

__all__ = ["fit_preprocessor", "prepared_columns"]


def _col(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")


def _row(frame: DataFrame, exprs: list[Column]) -> list[Any]:
    return list(frame.agg(*exprs).collect()[0]) if exprs else []


def fit_preprocessor(frame: DataFrame, numeric: Sequence[str], categorical: Sequence[str], **params: Any) -> Preprocessor:
    """Fit a `Preprocessor` (same parameters, same learned state) on a Spark DataFrame.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per customer; numeric columns as doubles, categorical as text.
    numeric, categorical : sequence of str
        The columns to prepare.
    **params
        `Preprocessor` parameters (``weights``, ``families``, ``log_columns``, ...).
    """
    pre = Preprocessor(numeric_columns=list(numeric), categorical_columns=list(categorical), **params)
    pre._validate_params()
    owner = type(pre).__name__
    if pre.skew_transform == "quantile" or pre.pca is not None:
        raise InputError(
            f"{owner} with skew_transform='quantile' or pca is fitted by the duckdb engine only; "
            "on Spark use skew_transform='log1p' or 'none' and no pca"
        )
    numeric = list(numeric)
    n_rows = frame.count()
    if n_rows < 2:
        raise ValueError(f"n_samples={n_rows} should be >= 2: at least 2 customers are needed")
    report: dict[str, Any] = {"dropped": {}, "log": {}, "quantile": [], "indicators": [], "capped_levels": {}}

    counts = _row(frame, [F.count(_col(c)) for c in numeric])
    infinite = _row(frame, [F.max(F.abs(_col(c))) for c in numeric])
    if any(v is not None and np.isinf(v) for v in infinite):
        raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
    kept_in = [c for c, n in zip(numeric, counts) if n > 0]
    for c, n in zip(numeric, counts):
        if n == 0:
            report["dropped"][c] = "no values"
    missing_share = {c: 1.0 - n / n_rows for c, n in zip(numeric, counts) if n > 0}
    numeric = kept_in
    indicators = []
    if pre.indicator_min_share is not None:
        indicators = [c for c in numeric if pre.indicator_min_share <= missing_share[c] < 1]
    report["indicators"] = [f"{c}_missing" for c in indicators]

    aggregate = F.percentile if pre.impute == "median" else None
    fill = _row(frame, [aggregate(_col(c), 0.5) if aggregate else F.avg(_col(c)) for c in numeric])
    fill_values = np.asarray(fill, dtype=np.float64)
    filled = {c: F.coalesce(_col(c), F.lit(float(v))) for c, v in zip(numeric, fill_values)}

    stats = _row(frame, [e for c in numeric for e in (
        F.skewness(filled[c]), F.var_pop(filled[c]), F.max(F.abs(filled[c])), F.avg((filled[c] < 0).cast("double")))])
    skewness, negative_share = [], []
    for j in range(len(numeric)):
        skew, m2, max_abs, neg = stats[4 * j: 4 * j + 4]
        # As segwise.prepare._skewness: a column without spread has skewness 0.
        tiny = m2 is None or m2 <= (np.finfo(np.float64).eps * max(max_abs or 0.0, 1.0)) ** 2
        skewness.append(0.0 if tiny or skew is None or np.isnan(skew) else float(skew))
        negative_share.append(float(neg))
    skewness = np.asarray(skewness)
    skewed = np.abs(skewness) > pre.skew_threshold
    declared = np.array([c in set(pre.log_columns or ()) for c in numeric], dtype=bool)
    log_mask = np.zeros(len(numeric), bool)
    if pre.skew_transform == "log1p":
        log_mask = (skewed | declared) & (np.asarray(negative_share) < 0.01)
    report["skewness"] = {c: round(float(s), 4) for c, s in zip(numeric, skewness)}
    report["log"] = {
        c: ("declared log-scale" if d and not sk else f"skewness {s_:.2f} > {pre.skew_threshold}")
        for c, m, d, sk, s_ in zip(numeric, log_mask, declared, skewed, skewness) if m
    }
    transformed = {c: (F.signum(filled[c]) * F.log1p(F.abs(filled[c]))) if m else filled[c]
                   for c, m in zip(numeric, log_mask)}

    if pre.winsorize is not None and numeric:
        lo_q, hi_q = pre.winsorize
        bounds = _row(frame, [F.percentile(transformed[c], F.array(F.lit(lo_q), F.lit(hi_q))) for c in numeric])
        clip_lo = np.asarray([b[0] for b in bounds], dtype=np.float64)
        clip_hi = np.asarray([b[1] for b in bounds], dtype=np.float64)
    else:
        clip_lo = np.full(len(numeric), -np.inf)
        clip_hi = np.full(len(numeric), np.inf)
    clipped = {c: F.least(F.greatest(transformed[c], F.lit(float(lo))), F.lit(float(hi)))
               for c, lo, hi in zip(numeric, clip_lo, clip_hi)}

    if pre.scaler == "standard":
        moments = _row(frame, [e for c in numeric for e in (F.avg(clipped[c]), F.stddev_pop(clipped[c]))])
        center = np.asarray(moments[0::2], dtype=np.float64)
        scale = np.asarray(moments[1::2], dtype=np.float64)
    else:
        quartiles = _row(frame, [F.percentile(clipped[c], F.array(F.lit(0.25), F.lit(0.5), F.lit(0.75)))
                                 for c in numeric])
        center = np.asarray([q[1] for q in quartiles], dtype=np.float64)
        scale = np.asarray([q[2] - q[0] for q in quartiles], dtype=np.float64)
    if len(numeric) == 0:
        center, scale = np.zeros(0), np.ones(0)
    scale = scale.copy()
    scale[scale == 0] = 1.0

    spread = _row(frame, [e for c in numeric for e in (F.min(clipped[c]), F.max(clipped[c]))])
    constant = np.asarray([spread[2 * j] == spread[2 * j + 1] for j in range(len(numeric))], dtype=bool)
    for c in np.asarray(numeric)[constant]:
        report["dropped"][c] = "constant"
    kept = ~constant
    if pre.corr_threshold is not None and kept.sum() > 1:
        pairs = [(i, j) for j in range(len(numeric)) for i in range(j)]
        values = _row(frame, [F.corr(clipped[numeric[i]], clipped[numeric[j]]) for i, j in pairs])
        corr = np.eye(len(numeric))
        for (i, j), r in zip(pairs, values):
            corr[i, j] = corr[j, i] = 0.0 if r is None or np.isnan(r) else r
        for j in range(len(numeric)):
            if not kept[j]:
                continue
            for i in range(j):
                if kept[i] and abs(corr[i, j]) > pre.corr_threshold:
                    kept[j] = False
                    report["dropped"][numeric[j]] = f"correlated with {numeric[i]} (r = {corr[i, j]:.3f})"
                    break

    levels: dict[str, list[str]] = {}
    modes: dict[str, str] = {}
    for column in categorical:
        rows = frame.where(_col(column).isNotNull()).groupBy(_col(column).cast("string").alias("level")).count().collect()
        counts_by_level = {r["level"]: r["count"] for r in rows}
        if not counts_by_level:
            report["dropped"][column] = "no values"
            continue
        ordered = sorted(counts_by_level, key=lambda lv: (-counts_by_level[lv], lv))
        modes[column] = ordered[0]
        if len(ordered) > pre.max_levels:
            report["capped_levels"][column] = len(ordered)
            ordered = ordered[: pre.max_levels - 1] + ["other"]
        if len(ordered) < 2:
            report["dropped"][column] = "constant"
            continue
        levels[column] = ordered

    names = [c for c, k in zip(numeric, kept) if k]
    names += [f"{c}_missing" for c in indicators]
    for column, lvls in levels.items():
        names += [f"{column}={lv}" for lv in lvls]
    if not names:
        raise InputError(
            "no usable feature columns are left after preparation "
            f"(dropped: {', '.join(f'{c} ({r})' for c, r in report['dropped'].items()) or 'none'})"
        )
    pre.numeric_in_ = numeric
    pre.categorical_levels_ = levels
    weights = pre._weight_vector(names)
    meta = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in pre.get_params().items()},
        "feature_names_in": list(numeric) + [c for c in categorical],
        "numeric_in": numeric,
        "indicator_columns": indicators,
        "categorical_levels": levels,
        "categorical_modes": modes,
        "prepared_names": names,
        "report": report,
    }
    arrays = {
        "fill_values": fill_values, "log_mask": log_mask, "quantile_mask": np.zeros(len(numeric), bool),
        "quantiles": np.zeros((0, 0)), "references": np.zeros(0), "clip_low": clip_lo, "clip_high": clip_hi,
        "center": center, "scale": scale, "numeric_kept": kept, "weights": weights,
        "pca_components": np.zeros((0, 0)), "pca_mean": np.zeros(0),
    }
    return Preprocessor.from_state(meta, arrays)


def prepared_columns(pre: Preprocessor) -> list[Column]:
    """Spark columns computing ``pre.transform`` (one per prepared column, in order).

    The same arithmetic as `Preprocessor._prepare`, so a customer prepared on Spark
    and one prepared by the model file's numpy code get the same numbers.
    """
    out: list[Column] = []
    scaled = []
    for j, c in enumerate(pre.numeric_in_):
        x = F.coalesce(_col(c), F.lit(float(pre.fill_values_[j])))
        if pre.log_mask_[j]:
            x = F.signum(x) * F.log1p(F.abs(x))
        x = F.least(F.greatest(x, F.lit(float(pre.clip_low_[j]))), F.lit(float(pre.clip_high_[j])))
        scaled.append((x - F.lit(float(pre.center_[j]))) / F.lit(float(pre.scale_[j])))
    out += [s for s, k in zip(scaled, pre.numeric_kept_) if k]
    out += [_col(c).isNull().cast("double") for c in pre.indicator_columns_]
    for column, lvls in pre.categorical_levels_.items():
        text = F.coalesce(_col(column).cast("string"), F.lit(pre.categorical_modes_[column]))
        if lvls[-1] == "other":
            text = F.when(text.isin(lvls[:-1]), text).otherwise(F.lit("other"))
        out += [(text == F.lit(lv)).cast("double") for lv in lvls]
    return [col * F.lit(float(w)) for col, w in zip(out, pre.weights_)]
