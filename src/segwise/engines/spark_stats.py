"""Statistics of customers held by Spark: what fitting needs, computed with Spark aggregates.

`SparkCustomers` is the Spark engine's `segwise.engines.statistics.CustomerStatistics`
of a customer feature table (``engine.customer_statistics(frame)``):

- **preparation**: every statistic `segwise.prepare.Preprocessor.fit` learns (medians
  or means, missing shares, skewness, winsorising quantiles, centre and scale,
  correlations, category levels) by Spark aggregates, returned as the
  Preprocessor's fitted state, so the model file does not change and assignment
  needs no Spark. Quantiles are exact (Spark's ``percentile``, linear
  interpolation, as numpy). Two differences, both documented in docs/scaling.md:
  correlations use every customer (the local engine samples 100,000 above that),
  and ``skew_transform="quantile"`` and ``pca`` are not available here (they raise an
  `InputError`);
- **prepared customers**: the Preprocessor's arithmetic as Spark columns (a
  ``features`` vector per customer), for the MLlib methods (`segwise.cluster.mllib`);
- **segment statistics** (`SegmentStats`: sizes, means, medians, shares of observed
  values, revenue, population statistics, the log-scale standardised means that
  rank traits and choose names, and the top categories): only one row per segment
  reaches the driver. The numbers equal numpy's (medians are Spark's exact
  ``percentile``, interpolating as ``numpy.median`` does; standard deviations and
  skewness are the population ones, as numpy's and scipy's defaults). A categorical
  column gets the shares of its `TOP_CATEGORIES` most frequent levels per segment
  among the customers who have a value, ties in the levels' text order, as locally.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from segwise.engines.statistics import SegmentStats, yes_no_scale
from segwise.errors import InputError

__all__ = ["SparkCustomers", "preparation_state", "prepared_columns", "prepared_vectors", "spark_segment_stats"]

#: Categories kept per categorical column and segment (as `segwise.profile.segment_stats`).
TOP_CATEGORIES = 5

#: The segment id column added to the customers sent to Spark (not a feature name).
LABEL_COLUMN = "__segwise_segment"


class SparkCustomers:
    """A customer feature table on Spark, asked for statistics instead of rows.

    Parameters
    ----------
    engine : SparkEngine
    frame : pandas.DataFrame
        The customer feature table (one row per customer, indexed by ``customer_id``).
    """

    engine_name = "spark"

    def __init__(self, engine: Any, frame: pd.DataFrame) -> None:
        self.engine = engine
        self.frame = frame
        self.columns = list(frame.columns)
        self._cached: list[DataFrame] = []

    def preparation_state(self, preprocessor: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted state of ``preprocessor`` (see `preparation_state`)."""
        customers = self.engine.to_spark(self.frame.reset_index()).cache()
        try:
            return preparation_state(customers, preprocessor)
        finally:
            customers.unpersist()

    def prepared(self, preprocessor: Any) -> DataFrame:
        """The prepared customers, ``customer_id, features`` (kept cached until `close`)."""
        vectors = prepared_vectors(self.engine, self.frame, preprocessor).cache()
        self._cached.append(vectors)
        return vectors

    def segment_stats(self, labels: np.ndarray, *, value_column: str | None, log_columns: set[str]) -> SegmentStats:
        """`SegmentStats` of every column grouped by ``labels`` (in the order of the frame's rows)."""
        customers = self.engine.to_spark(
            self.frame.reset_index(drop=True).assign(**{LABEL_COLUMN: np.asarray(labels)}))
        return spark_segment_stats(customers, LABEL_COLUMN, self.columns, value_column=value_column,
                                   log_columns=log_columns)

    def close(self) -> None:
        """Release what Spark keeps cached for these customers."""
        while self._cached:
            self._cached.pop().unpersist()


# --------------------------------------------------------------------------- preparation


def _col(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")


def _row(frame: DataFrame, exprs: list[Column]) -> list[Any]:
    return list(frame.agg(*exprs).collect()[0]) if exprs else []


def preparation_state(frame: DataFrame, pre: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The fitted state of the `segwise.prepare.Preprocessor` ``pre``, its statistics computed by Spark.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per customer; numeric columns as doubles, categorical as text.
    pre : Preprocessor
        Unfitted; its parameters (``numeric_columns``, ``categorical_columns``,
        ``weights``, ``families``, ``log_columns`` ...) say what to learn.

    Returns
    -------
    (meta, arrays)
        What ``Preprocessor.to_state`` gives for the same data fitted locally.
    """
    owner = type(pre).__name__
    if pre.skew_transform == "quantile" or pre.pca is not None:
        raise InputError(
            f"{owner} with skew_transform='quantile' or pca is fitted by the duckdb engine only; "
            "on Spark use skew_transform='log1p' or 'none' and no pca"
        )
    categorical = list(pre.categorical_columns or [])
    numeric = list(pre.numeric_columns or [])
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
    lowest = np.asarray([np.nan if v is None else v for v in spread[0::2]], dtype=np.float64)
    highest = np.asarray([np.nan if v is None else v for v in spread[1::2]], dtype=np.float64)
    constant = np.asarray([spread[2 * j] == spread[2 * j + 1] for j in range(len(numeric))], dtype=bool)
    # Two-valued columns (segwise.prepare.yes_no_scale): no value strictly between the two ends.
    spread_out = [j for j in range(len(numeric)) if not constant[j]]
    inside = _row(frame, [F.sum(((clipped[numeric[j]] > F.lit(float(lowest[j])))
                                 & (clipped[numeric[j]] < F.lit(float(highest[j])))).cast("long"))
                          for j in spread_out]) if spread_out else []
    two_valued = np.zeros(len(numeric), dtype=bool)
    for j, count in zip(spread_out, inside):
        two_valued[j] = count == 0
    scale = yes_no_scale(scale, lowest, highest, two_valued, numeric, report)
    corr = None
    if pre.corr_threshold is not None and (~constant).sum() > 1:
        pairs = [(i, j) for j in range(len(numeric)) for i in range(j)]
        values = _row(frame, [F.corr(clipped[numeric[i]], clipped[numeric[j]]) for i, j in pairs])
        corr = np.eye(len(numeric))
        for (i, j), r in zip(pairs, values):
            corr[i, j] = corr[j, i] = 0.0 if r is None or np.isnan(r) else r
    # The Preprocessor's own rule: constant columns out, then the later of two correlated ones.
    kept = pre._prune(numeric, constant, corr, report)

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
    return meta, arrays


def prepared_columns(pre: Any) -> list[Column]:
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


def prepared_vectors(engine: Any, frame: pd.DataFrame, preprocessor: Any) -> DataFrame:
    """A Spark DataFrame ``customer_id, features`` of the prepared customers."""
    sdf = engine.to_spark(frame.reset_index())
    columns = prepared_columns(preprocessor)
    return sdf.select("customer_id", array_to_vector(F.array(*columns)).alias("features"))


# --------------------------------------------------------------------------- segment statistics


def _float(value) -> float:
    return float("nan") if value is None else float(value)


def spark_segment_stats(frame: DataFrame, label_column: str, columns: Iterable[str], *,
                        value_column: str | None = None, log_columns: set[str] | None = None) -> SegmentStats:
    """`SegmentStats` of ``columns`` of ``frame`` grouped by ``label_column``, aggregated on Spark.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per customer: the raw features and an integer segment id.
    label_column : str
        The segment id column.
    columns : iterable of str
        The feature columns to profile, in order (numeric and boolean columns get
        means and medians; others are categorical).
    value_column : str, optional
        Column whose sum is revenue.
    log_columns : set of str, optional
        Columns compared on a log scale when ranking traits (others are when skewed).
    """
    columns = list(columns)
    types = {f.name: f.dataType for f in frame.schema.fields}
    numeric = [c for c in columns if isinstance(types[c], T.NumericType | T.BooleanType)]
    categorical = [c for c in columns if c not in numeric]
    log_columns = set(log_columns or ())

    # Numbers as DOUBLE with NaN read as missing, as numpy's nan-aggregates do.
    def number(c: str):
        value = F.col(f"`{c}`").cast("double")
        return F.when(F.isnan(value), F.lit(None).cast("double")).otherwise(value)

    num = {c: f"n{j}" for j, c in enumerate(numeric)}
    data = frame.select(
        F.col(f"`{label_column}`").cast("long").alias("segment"),
        *[number(c).alias(num[c]) for c in numeric],
        *[F.col(f"`{c}`").cast("string").alias(f"c{j}") for j, c in enumerate(categorical)],
    ).cache()
    try:
        return _stats(data, numeric, categorical, num, value_column, log_columns)
    finally:
        data.unpersist()


def _stats(data: DataFrame, numeric, categorical, num, value_column, log_columns) -> SegmentStats:
    population = data.agg(
        F.count(F.lit(1)).alias("rows"),
        *[agg for c in numeric for agg in (
            F.avg(num[c]).alias(f"{num[c]}_mean"), F.stddev_pop(num[c]).alias(f"{num[c]}_std"),
            F.percentile(num[c], F.lit(0.5)).alias(f"{num[c]}_median"), F.min(num[c]).alias(f"{num[c]}_min"),
            F.count(num[c]).alias(f"{num[c]}_n"), F.skewness(num[c]).alias(f"{num[c]}_skew"),
        )],
    ).first()
    pop_mean = np.asarray([_float(population[f"{num[c]}_mean"]) for c in numeric])
    pop_std = np.asarray([_float(population[f"{num[c]}_std"]) for c in numeric])
    pop_median = np.asarray([_float(population[f"{num[c]}_median"]) for c in numeric])

    # Log scale for ranking: as `segwise.profile.naming_zscores` decides it.
    def compared(c: str):
        n, low = population[f"{num[c]}_n"], population[f"{num[c]}_min"]
        if not n or low < 0:
            return F.col(num[c])
        skew = np.nan_to_num(_float(population[f"{num[c]}_skew"]))
        return F.log1p(num[c]) if c in log_columns or (n > 2 and skew > 1.0) else F.col(num[c])

    ranked = data.select("segment", *[compared(c).alias(f"{num[c]}_r") for c in numeric])
    ranked_pop = ranked.agg(*[agg for c in numeric for agg in (
        F.avg(f"{num[c]}_r").alias(f"{num[c]}_mean"), F.stddev_pop(f"{num[c]}_r").alias(f"{num[c]}_std"))]).first()
    rank_mean = np.asarray([_float(ranked_pop[f"{num[c]}_mean"]) for c in numeric])
    rank_std = np.asarray([_float(ranked_pop[f"{num[c]}_std"]) for c in numeric])
    rank_means = {row["segment"]: row for row in ranked.groupBy("segment").agg(
        *[F.avg(f"{num[c]}_r").alias(num[c]) for c in numeric]).collect()}

    has_value = value_column in numeric
    per_segment = sorted(data.groupBy("segment").agg(
        F.count(F.lit(1)).alias("rows"),
        *[agg for c in numeric for agg in (
            F.avg(num[c]).alias(f"{num[c]}_mean"), F.percentile(num[c], F.lit(0.5)).alias(f"{num[c]}_median"),
            F.count(num[c]).alias(f"{num[c]}_n"),
        )],
        *([F.sum(num[value_column]).alias("revenue")] if has_value else []),
    ).collect(), key=lambda row: row["segment"])
    ids = np.asarray([row["segment"] for row in per_segment], dtype=np.int64)
    sizes = np.asarray([row["rows"] for row in per_segment], dtype=np.int64)
    shape = (len(ids), len(numeric))
    means = np.asarray([[_float(row[f"{num[c]}_mean"]) for c in numeric] for row in per_segment]).reshape(shape)
    medians = np.asarray([[_float(row[f"{num[c]}_median"]) for c in numeric] for row in per_segment]).reshape(shape)
    observed = np.asarray([[row[f"{num[c]}_n"] / row["rows"] for c in numeric] for row in per_segment]).reshape(shape)
    naming = {}
    for seg in ids:
        seg_mean = np.asarray([_float(rank_means[seg][num[c]]) for c in numeric])
        with np.errstate(all="ignore"):
            z = np.where(rank_std > 0, (seg_mean - rank_mean) / np.where(rank_std > 0, rank_std, 1.0), 0.0)
        naming[int(seg)] = {c: float(v) for c, v in zip(numeric, z)}
    return SegmentStats(
        numeric=numeric, categorical=categorical, segment_ids=ids, n_customers=sizes, means=means,
        medians=medians, observed=observed, pop_mean=pop_mean, pop_std=pop_std, pop_median=pop_median,
        naming_zscores=naming, categories=_categories(data, categorical, ids),
        revenue=np.asarray([_float(row["revenue"]) if row["revenue"] is not None else 0.0 for row in per_segment])
        if has_value else None,
    )


def _categories(data: DataFrame, categorical: list[str], ids: np.ndarray) -> dict[int, dict[str, dict[str, float]]]:
    out: dict[int, dict[str, dict[str, float]]] = {int(seg): {} for seg in ids}
    for j, column in enumerate(categorical):
        counts = data.where(F.col(f"c{j}").isNotNull()).groupBy("segment", f"c{j}").count()
        totals = counts.groupBy("segment").agg(F.sum("count").alias("total"))
        rows = (counts.join(totals, "segment")
                .withColumn("rank", F.row_number().over(
                    Window.partitionBy("segment").orderBy(F.desc("count"), F.col(f"c{j}"))))
                .where(F.col("rank") <= TOP_CATEGORIES).collect())
        for seg in ids:
            out[int(seg)][column] = {}
        for row in sorted(rows, key=lambda r: (r["segment"], r["rank"])):
            out[int(row["segment"])][column][str(row[f"c{j}"])] = row["count"] / row["total"]
    return out
