"""Segment profiles aggregated by Spark: only one row per segment reaches the driver.

`spark_segment_stats` computes `segwise.profile_stats.SegmentStats` (sizes, means,
medians, shares of observed values, revenue, population statistics, the
log-scale standardised means that rank traits and choose names, and the top
categories) with Spark aggregates over a DataFrame of customers and their segment
ids; `segwise.profile.profiles_from_stats` and `segwise.profile.name_segments` turn
them into the same profiles and names as the local engine.

The numbers equal numpy's (medians are Spark's exact ``percentile``, interpolating
as ``numpy.median`` does; standard deviations and skewness are the population
ones, as numpy's and scipy's defaults). One difference: categories whose shares
tie within a segment are listed by value here, in order of first appearance by
pandas.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from segwise.profile import Profiles, name_segments, profiles_from_stats
from segwise.profile_stats import SegmentStats

__all__ = ["spark_segment_stats", "spark_profiles"]

#: Categories kept per categorical column and segment (as `segwise.profile_stats.segment_stats`).
TOP_CATEGORIES = 5


def _float(value) -> float:
    return float("nan") if value is None else float(value)


#: The segment id column added to the customers sent to Spark (not a feature name).
LABEL_COLUMN = "__segwise_segment"


def spark_profiles(engine, frame: pd.DataFrame, labels: np.ndarray, *, units: Mapping[str, str],
                   value_column: str | None, log_columns: set[str],
                   names: Mapping[Any, str] | None = None) -> Profiles:
    """Named profiles of ``labels`` over every column of ``frame``, aggregated on Spark.

    The same result as `segwise.profile.compute_profiles` followed by
    `segwise.profile.name_segments` (see the module docstring for the one tie rule).
    """
    customers = engine.to_spark(frame.reset_index(drop=True).assign(**{LABEL_COLUMN: np.asarray(labels)}))
    stats_ = spark_segment_stats(customers, LABEL_COLUMN, frame.columns, value_column=value_column,
                                 log_columns=log_columns)
    profiles = profiles_from_stats(stats_, units=units, value_column=value_column)
    return name_segments(profiles, list(frame.columns), None, log_columns=log_columns, overrides=names,
                         naming_zscores=stats_.naming_zscores)


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

    # Log scale for ranking: as `segwise.profile_stats.naming_zscores` decides it.
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
