"""A/B tests of segment strategies: split customers into arms, then measure the lift.

Splitting (`split_customers`)
    Within every chosen segment, customers are ordered by a hash of the experiment
    name, the seed and their customer id (BLAKE2b, 64 bits), and the first
    ``round(n * treatment_share)`` go to treatment. So the split is

    - stratified and exact: in every segment the treatment count is within half a
      customer of ``n * treatment_share``;
    - reproducible: the same name, seed and customers give the same arms, whatever
      the order of the rows; another name gives an independent split;
    - stable: a customer's place in the order depends only on its own hash, so
      when the population changes a little, only customers at the boundary change arm.

Analysis (`analyze_experiment`)
    The split is joined to outcomes: a table of customer id and a conversion flag
    and/or revenue (`read_outcomes`), or a transaction log after a start date
    (`outcomes_from_transactions`). Customers of the split without an outcome row
    count as not converted with zero revenue (outcome exports usually list only
    buyers); their number is reported. Per segment and overall it reports arm
    sizes, conversion rate and revenue per customer in each arm, the absolute and
    relative lift of the chosen metric with confidence intervals and p-values
    (methods in `segwise.experiment_stats`, named in the result), Holm-adjusted p-values
    across segments, the minimum detectable effect at the achieved sizes, and a
    sample-ratio-mismatch check of the arm counts against the planned share.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, Sequence

import numpy as np
import pandas as pd

from segwise.errors import InputError
from segwise.experiment_stats import conversion_lift, holm, mde_conversion, mde_mean, mean_lift, srm_check

__all__ = [
    "ARMS", "SPLIT_COLUMNS", "split_customers", "read_split", "read_outcomes", "outcomes_from_transactions",
    "analyze_experiment", "METRICS",
]

ARMS = ("control", "treatment")
#: Columns of a split file (``segment_name`` when the assignments have names).
SPLIT_COLUMNS = ["customer_id", "segment_id", "segment_name", "arm"]
METRICS = ("converted", "revenue")

_CONVERTED_NAMES = ("converted", "conversion", "isconverted", "convertedflag", "purchased", "bought", "responded")
_REVENUE_NAMES = ("revenue", "amount", "sales", "spend", "ordervalue", "value", "totalrevenue")


def _hash_unit(name: str, seed: int, customer_ids: Sequence[str]) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by (name, seed, customer id)."""
    salt = f"{name}\x1f{seed}\x1f".encode()
    out = np.empty(len(customer_ids), dtype=np.float64)
    for i, customer in enumerate(customer_ids):
        digest = hashlib.blake2b(salt + customer.encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def split_customers(
    assignments: pd.DataFrame,
    *,
    name: str,
    segments: Sequence[int] | None = None,
    treatment_share: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Assign the customers of chosen segments to control and treatment (see the module docstring).

    Parameters
    ----------
    assignments : DataFrame
        ``customer_id``, ``segment_id`` (and ``segment_name``) per customer.
    name : str
        The experiment's name; part of the hash, so every experiment splits independently.
    segments : list of int, optional
        Segment ids to include (default: every segment).
    treatment_share : float
        Share of each segment that goes to treatment, in (0, 1).
    seed : int

    Returns
    -------
    DataFrame
        ``customer_id``, ``segment_id``, (``segment_name``,) ``arm``, ordered by
        segment and customer id.
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError("The 'name' parameter of split_customers must be a non-empty string. Got "
                         f"{name!r} instead.")
    if not isinstance(treatment_share, (int, float)) or not 0 < treatment_share < 1:
        raise InputError(f"The 'treatment_share' parameter of split_customers must be a float in the range "
                         f"(0, 1). Got {treatment_share!r} instead.")
    frame = assignments.copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    repeated = int(frame["customer_id"].duplicated().sum())
    if repeated:
        raise InputError(f"the assignments list {repeated} customers more than once; split one assignment "
                         "per customer (a run's assignments.parquet)")
    known = sorted(int(s) for s in frame["segment_id"].unique())
    if segments is not None:
        unknown = sorted(set(int(s) for s in segments) - set(known))
        if unknown:
            raise InputError(f"no segment {', '.join(map(str, unknown))} in the assignments; segment ids are "
                             f"{', '.join(map(str, known))}")
        frame = frame[frame["segment_id"].isin([int(s) for s in segments])]
    if frame.empty:
        raise InputError("no customers to split: the chosen segments are empty")
    frame["_u"] = _hash_unit(name, int(seed), frame["customer_id"].tolist())
    frame = frame.sort_values(["segment_id", "_u", "customer_id"], kind="stable")
    rank = frame.groupby("segment_id").cumcount().to_numpy()
    size = frame.groupby("segment_id")["customer_id"].transform("size").to_numpy()
    n_treatment = np.floor(size * treatment_share + 0.5)
    frame["arm"] = np.where(rank < n_treatment, "treatment", "control")
    columns = [c for c in SPLIT_COLUMNS if c in frame.columns]
    return frame[columns].sort_values(["segment_id", "customer_id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- reading inputs


def _read_table(source: Any, what: str, engine=None):
    from segwise.engines import get_engine

    engine = get_engine(engine)
    return engine, engine.cleaning.read_raw(source, what=what)


def read_split(source: Any) -> pd.DataFrame:
    """Read a split file (CSV/Parquet written by ``segwise ab split``) and check it."""
    from segwise.engines import quote_identifier as q

    engine, raw = _read_table(source, "split file")
    missing = [c for c in ("customer_id", "segment_id", "arm") if c not in raw.kinds]
    if missing:
        raise InputError(f"{raw.label}: missing column(s) {', '.join(missing)}; a split file has customer_id, "
                         "segment_id and arm (write one with `segwise ab split`)")
    sql = engine.cleaning
    select = [f"{sql.id_sql(raw, 'customer_id')} AS customer_id",
              f"CAST({sql.number_sql(raw, 'segment_id').sql} AS BIGINT) AS segment_id",
              f"lower({sql.text_sql('arm')}) AS arm"]
    if "segment_name" in raw.kinds:
        select.append(f"{sql.text_sql('segment_name')} AS segment_name")
    frame = engine.fetch_df(f"SELECT {', '.join(select)} FROM {q(raw.name)}")
    bad = frame[~frame["arm"].isin(ARMS)]
    if len(bad):
        values = sorted({str(v) for v in bad["arm"].head(20)})[:5]
        raise InputError(f"{raw.label}: column 'arm': {len(bad)} rows are neither control nor treatment "
                         f"(values: {', '.join(map(repr, values))}); fix the split file")
    if frame["customer_id"].isna().any():
        raise InputError(f"{raw.label}: column 'customer_id': {int(frame['customer_id'].isna().sum())} rows have "
                         "no customer id; fix the split file")
    repeated = int(frame["customer_id"].duplicated().sum())
    if repeated:
        raise InputError(f"{raw.label}: {repeated} customers appear more than once; each customer belongs to "
                         "one arm")
    return frame


def _pick(columns: Sequence[str], override: str | None, names: Sequence[str], label: str, flag: str) -> str | None:
    if override is not None:
        if override not in columns:
            raise InputError(f"{label}: no column {override!r} ({flag}); columns are {', '.join(columns)}")
        return override
    normal = {c: "".join(ch for ch in c.lower() if ch.isalnum()) for c in columns}
    for wanted in names:
        for column, norm in normal.items():
            if norm == wanted:
                return column
    return None


def read_outcomes(source: Any, *, customer_id_col: str | None = None, converted_col: str | None = None,
                  revenue_col: str | None = None) -> pd.DataFrame:
    """Read an outcome table: customer id plus a conversion flag and/or revenue.

    Columns are found by name (``converted``/``conversion``/``purchased``...,
    ``revenue``/``amount``/``sales``...) unless given. Several rows of one
    customer are combined (converted if any row is, revenue summed).

    Returns
    -------
    DataFrame
        ``customer_id``, ``converted`` (bool, when there is a flag) and
        ``revenue`` (float, when there is an amount); one row per customer.
    """
    from segwise.engines import quote_identifier as q
    from segwise.schema import detect_customer_id_column

    engine, raw = _read_table(source, "outcome table")
    columns = list(raw.kinds)
    id_col = detect_customer_id_column(raw.kinds, customer_id_col, source=raw.label)
    converted = _pick(columns, converted_col, _CONVERTED_NAMES, raw.label, "--converted-col")
    revenue = _pick(columns, revenue_col, _REVENUE_NAMES, raw.label, "--revenue-col")
    if converted is None and revenue is None:
        raise InputError(
            f"{raw.label}: no conversion or revenue column found among {', '.join(columns)}; name them "
            "with --converted-col / --revenue-col (Python: converted_col=, revenue_col=)"
        )
    sql = engine.cleaning
    parts = [f"{sql.id_sql(raw, id_col)} AS customer_id"]
    aggregates = ["customer_id"]
    if converted is not None:
        parts.append(f"{sql.flag_sql(raw, converted).sql} AS converted")
        aggregates.append("bool_or(converted) AS converted")
    if revenue is not None:
        parts.append(f"{sql.number_sql(raw, revenue).sql} AS revenue")
        aggregates.append("sum(revenue) AS revenue")
    base = f"SELECT {', '.join(parts)} FROM {q(raw.name)}"
    n_missing = engine.execute(f"SELECT count(*) FROM ({base}) WHERE customer_id IS NULL")[0][0]
    if n_missing:
        raise InputError(f"{raw.label}: column {id_col!r}: {n_missing} rows have no customer id; remove them")
    return engine.fetch_df(f"SELECT {', '.join(aggregates)} FROM ({base}) GROUP BY customer_id ORDER BY customer_id")


def outcomes_from_transactions(transactions: Any, *, since: str | date,
                               until: str | date | None = None) -> pd.DataFrame:
    """Outcomes from a transaction log: purchases on or after ``since`` (and before ``until``).

    ``converted`` is True for a customer with at least one purchase (not a return)
    in the window, ``revenue`` the net amount in the window (returns subtract).
    """
    from segwise.engines import quote_identifier as q

    try:
        start = pd.Timestamp(since)
        end = pd.Timestamp(until) if until is not None else None
    except ValueError:
        raise InputError(f"--since/--until must be dates (YYYY-MM-DD), got {since!r} / {until!r}") from None
    if end is not None and end <= start:
        raise InputError(f"--until ({end.date()}) must be after --since ({start.date()})")
    condition = "ts >= ?" + (" AND ts < ?" if end is not None else "")
    params = [start.to_pydatetime()] + ([end.to_pydatetime()] if end is not None else [])
    return transactions.engine.fetch_df(
        f"SELECT customer_id, bool_or(NOT is_return) AS converted, sum(amount) AS revenue "
        f"FROM {q(transactions.table_name)} WHERE {condition} GROUP BY customer_id ORDER BY customer_id",
        params,
    )


# --------------------------------------------------------------------------- analysis


def _arm_summary(rows: pd.DataFrame, has_converted: bool, has_revenue: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"customers": int(len(rows))}
    if has_converted:
        out["conversions"] = int(rows["converted"].sum())
        out["conversion_rate"] = float(rows["converted"].mean()) if len(rows) else None
    if has_revenue:
        out["revenue"] = float(rows["revenue"].sum())
        out["revenue_per_customer"] = float(rows["revenue"].mean()) if len(rows) else None
    return out


def _compare(rows: pd.DataFrame, *, metric: str, has_converted: bool, has_revenue: bool, treatment_share: float,
             alpha: float, power: float, revenue_method: str, n_resamples: int, random_state: int | None
             ) -> dict[str, Any]:
    control = rows[rows["arm"] == "control"]
    treatment = rows[rows["arm"] == "treatment"]
    n_c, n_t = len(control), len(treatment)
    out: dict[str, Any] = {
        "n_control": n_c, "n_treatment": n_t,
        "control": _arm_summary(control, has_converted, has_revenue),
        "treatment": _arm_summary(treatment, has_converted, has_revenue),
        "srm": srm_check(n_c, n_t, treatment_share),
    }
    minimum = 1 if metric == "converted" else 2
    if n_c < minimum or n_t < minimum:
        out.update(absolute_lift=None, absolute_ci=None, relative_lift=None, relative_ci=None, p_value=None,
                   mde=None, method=None, note=f"fewer than {minimum} customer(s) in an arm: not tested")
        return out
    if metric == "converted":
        lift = conversion_lift(int(treatment["converted"].sum()), n_t, int(control["converted"].sum()), n_c,
                               alpha=alpha)
        mde = mde_conversion(lift["control_rate"], n_t, n_c, alpha=alpha, power=power)
        lift.pop("control_rate"), lift.pop("treatment_rate")
    else:
        t, c = treatment["revenue"].to_numpy(np.float64), control["revenue"].to_numpy(np.float64)
        lift = mean_lift(t, c, alpha=alpha, method=revenue_method, n_resamples=n_resamples,
                         random_state=random_state)
        pooled_sd = float(np.sqrt(((n_t - 1) * t.var(ddof=1) + (n_c - 1) * c.var(ddof=1)) / (n_t + n_c - 2)))
        mde = mde_mean(lift["control_mean"], pooled_sd, n_t, n_c, alpha=alpha, power=power)
        lift.pop("control_mean"), lift.pop("treatment_mean")
    out.update(lift)
    out["mde"] = mde
    return out


def analyze_experiment(
    split: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    metric: str = "converted",
    treatment_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    revenue_method: str = "auto",
    n_resamples: int = 2000,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Lift of the treatment per segment and overall (see the module docstring).

    Parameters
    ----------
    split : DataFrame
        ``customer_id``, ``segment_id``, ``arm`` (and ``segment_name``), e.g. from `read_split`.
    outcomes : DataFrame
        ``customer_id`` with ``converted`` and/or ``revenue`` (one row per customer).
    metric : {"converted", "revenue"}
        What the lift, tests and MDE are about. ``converted`` without a flag
        column uses ``revenue > 0``.
    treatment_share : float
        The planned treatment share, for the sample-ratio-mismatch check.
    alpha, power : float
        Significance level (intervals are 1 - alpha) and power for the MDE.
    revenue_method : {"auto", "welch", "bootstrap"}
        See `segwise.experiment_stats.mean_lift`.
    n_resamples, random_state
        Bootstrap resamples and seed.

    Returns
    -------
    dict
        JSON-able: ``metric``, settings, ``outcomes`` (coverage counts), ``srm``,
        ``segments`` (one entry per segment) and ``overall``.
    """
    if metric not in METRICS:
        raise InputError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not 0 < treatment_share < 1:
        raise InputError(f"--treatment-share must be between 0 and 1, got {treatment_share}")
    if not 0 < alpha < 0.5:
        raise InputError(f"--alpha must be between 0 and 0.5, got {alpha}")
    outcomes = outcomes.copy()
    outcomes["customer_id"] = outcomes["customer_id"].astype(str)
    has_converted = "converted" in outcomes.columns
    has_revenue = "revenue" in outcomes.columns
    if metric == "revenue" and not has_revenue:
        raise InputError("--metric revenue needs a revenue column in the outcomes (name it with --revenue-col)")
    derived = None
    if not has_converted:
        outcomes["converted"] = outcomes["revenue"].fillna(0) > 0
        has_converted, derived = True, "converted means revenue > 0 (the outcomes have no conversion flag)"
    rows = split.copy()
    rows["customer_id"] = rows["customer_id"].astype(str)
    # One outer join counts both kinds of mismatch (isin on Arrow strings is slow).
    rows = rows.merge(outcomes, on="customer_id", how="outer", indicator=True, sort=False)
    not_in_split = int((rows["_merge"] == "right_only").sum())
    without = int((rows["_merge"] == "left_only").sum())
    rows = rows[rows["_merge"] != "right_only"].astype({"segment_id": "int64"})
    rows["converted"] = rows["converted"].astype("boolean").fillna(False).astype(bool)
    if has_revenue:
        rows["revenue"] = rows["revenue"].astype("float64").fillna(0.0)
    settings = dict(metric=metric, has_converted=has_converted, has_revenue=has_revenue,
                    treatment_share=treatment_share, alpha=alpha, power=power, revenue_method=revenue_method,
                    n_resamples=n_resamples, random_state=random_state)
    names = (rows.groupby("segment_id")["segment_name"].first().to_dict() if "segment_name" in rows.columns
             else {})
    segments = []
    for segment_id, block in rows.groupby("segment_id", sort=True):
        entry = {"segment_id": int(segment_id), "segment_name": names.get(segment_id)}
        entry.update(_compare(block, **settings))
        segments.append(entry)
    adjusted = holm([s["p_value"] for s in segments], alpha=alpha)
    for entry, p_holm in zip(segments, adjusted):
        entry["p_value_holm"] = p_holm
        entry["significant"] = bool(p_holm is not None and p_holm < alpha)
    overall = {"segment_id": None, "segment_name": "all segments"}
    overall.update(_compare(rows, **settings))
    overall["significant"] = bool(overall["p_value"] is not None and overall["p_value"] < alpha)
    flagged = [s["segment_id"] for s in segments if s["srm"]["mismatch"]]
    notes = [derived] if derived else []
    return {
        "metric": metric,
        "alpha": alpha,
        "confidence_level": 1 - alpha,
        "power": power,
        "treatment_share": treatment_share,
        "method": overall.get("method"),
        "multiple_comparisons": f"Holm step-down across {sum(p is not None for p in adjusted)} tested segments",
        "outcomes": {
            "customers_in_split": int(len(rows)),
            "customers_without_outcome_row": without,
            "outcome_rows_not_in_split": not_in_split,
            "missing_outcome_means": "not converted, zero revenue",
        },
        "srm": {"mismatch": bool(overall["srm"]["mismatch"] or flagged), "overall": overall["srm"],
                "segments_flagged": flagged},
        "notes": notes,
        "segments": segments,
        "overall": overall,
    }
