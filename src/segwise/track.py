"""Segments over time: point-in-time snapshots, transitions, comparisons and updates.

**Snapshots** (`track`): one transaction log, features computed ``as_of`` several
dates (e.g. quarter ends; only purchases before each date count), every customer
assigned with one model at each date. Between consecutive dates:

- the **transition matrix**: rows are the segment at the earlier date plus ``new``
  (not yet a customer), columns the segment at the later date plus ``gone`` (no
  longer in the data); each cell counts customers, and ``row_share`` divides by the
  row total. `track` returns it long (one row per cell, zeros included):
  ``period_start``, ``period_end``, ``from_segment_id`` (null for new),
  ``from_segment``, ``to_segment_id`` (null for gone), ``to_segment``,
  ``customers``, ``row_share``;
- the **temporal ARI**: adjusted Rand index of the two assignments over the
  customers present at both dates (1: nobody changed segment, up to relabelling);
- ``stayed``: the share of those customers in the same segment.

**Shares** over time: ``as_of``, ``segment_id``, ``segment_name``, ``customers``,
``share``.

**Comparisons** (`compare_assignments`): two runs' assignments joined on the
customers they share: ARI, share with the same segment id and the same name, and
the cross-table.

**Updates** (`update`): assign the current customers with an existing model, record
them in the store's ``segment_history`` (slowly changing dimension, type 2; see
`segwise.store`), list the migrations since the last update, and measure drift
against the model's training snapshot (`segwise.drift`). Updates go forward in
time; repeating the latest update (same as_of, same model) changes nothing and
returns what was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from segwise.drift import drift_report
from segwise.errors import InputError
from segwise.features.build import parse_as_of

__all__ = [
    "TrackResult", "track", "transition_matrix", "transitions_long", "segment_shares", "compare_assignments",
    "UpdateResult", "update", "NEW", "GONE", "TRANSITION_COLUMNS", "SHARE_COLUMNS",
]

NEW = "new"
GONE = "gone"
TRANSITION_COLUMNS = [
    "period_start", "period_end", "from_segment_id", "from_segment", "to_segment_id", "to_segment", "customers",
    "row_share",
]
SHARE_COLUMNS = ["as_of", "segment_id", "segment_name", "customers", "share"]


def _as_series(assignments: pd.DataFrame | pd.Series) -> pd.Series:
    if isinstance(assignments, pd.Series):
        return assignments
    return assignments.set_index(assignments["customer_id"].astype(str))["segment_id"]


def transition_matrix(before: pd.DataFrame | pd.Series, after: pd.DataFrame | pd.Series,
                      names: dict[int, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts and row shares of customers moving between two assignments.

    Parameters
    ----------
    before, after : DataFrame with customer_id and segment_id, or Series indexed by customer id
    names : dict of int to str
        Every segment id to its name (rows and columns come in this order).

    Returns
    -------
    counts, row_shares : DataFrame
        Rows: segment names and ``new``; columns: segment names and ``gone``.
        ``new`` x ``gone`` is always 0 (such a customer is in neither).
    """
    a, b = _as_series(before), _as_series(after)
    ids = sorted(names)
    labels = [names[i] for i in ids]
    joined = pd.concat([a.rename("before"), b.rename("after")], axis=1, join="outer")
    row_label = joined["before"].map(lambda v: NEW if pd.isna(v) else names[int(v)])
    col_label = joined["after"].map(lambda v: GONE if pd.isna(v) else names[int(v)])
    counts = pd.crosstab(row_label, col_label).reindex(index=labels + [NEW], columns=labels + [GONE], fill_value=0)
    counts.index.name, counts.columns.name = "from", "to"
    totals = counts.sum(axis=1).to_numpy(dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = pd.DataFrame(np.where(totals > 0, counts.to_numpy() / np.maximum(totals, 1), 0.0),
                              index=counts.index, columns=counts.columns)
    return counts.astype(np.int64), shares


def transitions_long(counts: pd.DataFrame, shares: pd.DataFrame, names: dict[int, str], start, end) -> pd.DataFrame:
    """A transition matrix as rows of `TRANSITION_COLUMNS`."""
    by_name = {v: k for k, v in names.items()}
    rows = []
    for from_label in counts.index:
        for to_label in counts.columns:
            if from_label == NEW and to_label == GONE:
                continue
            rows.append({
                "period_start": start, "period_end": end,
                "from_segment_id": by_name.get(from_label), "from_segment": from_label,
                "to_segment_id": by_name.get(to_label), "to_segment": to_label,
                "customers": int(counts.loc[from_label, to_label]),
                "row_share": float(shares.loc[from_label, to_label]),
            })
    frame = pd.DataFrame(rows, columns=TRANSITION_COLUMNS)
    frame["from_segment_id"] = frame["from_segment_id"].astype("Int64")
    frame["to_segment_id"] = frame["to_segment_id"].astype("Int64")
    return frame


def segment_shares(assignments: pd.DataFrame, names: dict[int, str], as_of) -> pd.DataFrame:
    """Customers and share of every segment (zeros included) at one date."""
    counts = assignments["segment_id"].value_counts()
    total = max(int(counts.sum()), 1)
    return pd.DataFrame([
        {"as_of": as_of, "segment_id": s, "segment_name": names[s], "customers": int(counts.get(s, 0)),
         "share": float(counts.get(s, 0)) / total}
        for s in sorted(names)
    ], columns=SHARE_COLUMNS)


def _pair_summary(a: pd.Series, b: pd.Series) -> dict[str, Any]:
    both = a.index.intersection(b.index)
    x, y = a.loc[both].to_numpy(), b.loc[both].to_numpy()
    return {
        "customers_before": int(len(a)),
        "customers_after": int(len(b)),
        "customers_in_both": int(len(both)),
        "new": int(len(b.index.difference(a.index))),
        "gone": int(len(a.index.difference(b.index))),
        "temporal_ari": float(adjusted_rand_score(x, y)) if len(both) else None,
        "stayed": float(np.mean(x == y)) if len(both) else None,
    }


@dataclass
class TrackResult:
    """Snapshots of one model over several as_of dates.

    Attributes
    ----------
    as_of : list of date
    assignments : dict of date to DataFrame
    transitions : DataFrame
        Long transition table (`TRANSITION_COLUMNS`) of every consecutive pair.
    shares : DataFrame
        `SHARE_COLUMNS` at every date.
    summary : dict
        ``model_id``, ``as_of``, ``segments`` (id to name), ``periods`` (one dict per
        consecutive pair: start, end, customer counts, new, gone, temporal_ari,
        stayed) and ``mean_temporal_ari``.
    """

    as_of: list[date]
    assignments: dict[date, pd.DataFrame]
    transitions: pd.DataFrame
    shares: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def track(model, transactions, as_of: Sequence[str | date], *, customers=None) -> TrackResult:
    """Assign every customer with ``model`` at each ``as_of`` date and measure the moves.

    Parameters
    ----------
    model : SegmentationModel
    transactions : Transactions
        One log covering every date.
    as_of : sequence of dates
        At least two, in increasing order.
    customers : CustomerTable, optional
        Attributes, when the model needs them.
    """
    dates = [parse_as_of(d) for d in as_of]
    if len(dates) < 2:
        raise InputError("tracking needs at least two --as-of dates (e.g. two quarter ends)")
    if any(b <= a for a, b in zip(dates, dates[1:])):
        raise InputError(f"--as-of dates must be distinct and increasing; got {', '.join(map(str, dates))}")
    names = {int(k): v for k, v in model.names.items()}
    assignments = {d: model.assign(transactions, customers=customers, as_of=d) for d in dates}
    series = {d: _as_series(frame) for d, frame in assignments.items()}
    transition_parts, periods = [], []
    for start, end in zip(dates, dates[1:]):
        counts, shares = transition_matrix(series[start], series[end], names)
        transition_parts.append(transitions_long(counts, shares, names, start, end))
        periods.append({"start": str(start), "end": str(end), **_pair_summary(series[start], series[end])})
    aris = [p["temporal_ari"] for p in periods if p["temporal_ari"] is not None]
    summary = {
        "model_id": model.metadata.get("model_id"),
        "as_of": [str(d) for d in dates],
        "segments": {str(k): v for k, v in names.items()},
        "periods": periods,
        "mean_temporal_ari": float(np.mean(aris)) if aris else None,
        "definitions": {
            "temporal_ari": "adjusted Rand index of the two dates' segments over customers present at both",
            "stayed": "share of customers present at both dates who kept their segment",
            "new": "customers with no purchase before the earlier date",
            "gone": "customers present at the earlier date and absent at the later one",
        },
    }
    return TrackResult(
        as_of=dates, assignments=assignments, transitions=pd.concat(transition_parts, ignore_index=True),
        shares=pd.concat([segment_shares(assignments[d], names, d) for d in dates], ignore_index=True),
        summary=summary,
    )


def compare_assignments(a: pd.DataFrame, b: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Compare two assignment tables on the customers they share.

    Returns
    -------
    summary : dict
        ``customers_a``, ``customers_b``, ``customers_shared``, ``only_a``,
        ``only_b``, ``ari``, ``same_segment_id``, ``same_segment_name`` (shares of
        the shared customers).
    crosstab : DataFrame
        ``segment_a``, ``segment_name_a``, ``segment_b``, ``segment_name_b``,
        ``customers`` for every pair that occurs.
    """
    left = a[["customer_id", "segment_id", "segment_name"]].assign(customer_id=a["customer_id"].astype(str))
    right = b[["customer_id", "segment_id", "segment_name"]].assign(customer_id=b["customer_id"].astype(str))
    merged = left.merge(right, on="customer_id", suffixes=("_a", "_b"))
    shared = len(merged)
    summary = {
        "customers_a": int(len(left)),
        "customers_b": int(len(right)),
        "customers_shared": int(shared),
        "only_a": int(len(left) - shared),
        "only_b": int(len(right) - shared),
        "ari": float(adjusted_rand_score(merged["segment_id_a"], merged["segment_id_b"])) if shared else None,
        "same_segment_id": float((merged["segment_id_a"] == merged["segment_id_b"]).mean()) if shared else None,
        "same_segment_name": float((merged["segment_name_a"] == merged["segment_name_b"]).mean()) if shared else None,
    }
    crosstab = (
        merged.groupby(["segment_id_a", "segment_name_a", "segment_id_b", "segment_name_b"], sort=True)
        .size().rename("customers").reset_index()
        .rename(columns={"segment_id_a": "segment_a", "segment_id_b": "segment_b"})
    )
    return summary, crosstab


# --------------------------------------------------------------------------- updates


@dataclass
class UpdateResult:
    """What one `update` recorded (or found already recorded).

    Attributes
    ----------
    as_of : date
    model_id : str
    assignments : DataFrame
        The current customers' segments.
    migrations : DataFrame
        New, moved and gone customers of this update (`segwise.store.MIGRATION_COLUMNS`).
    summary : dict
        Counts (``n_customers``, ``n_new``, ``n_moved``, ``n_gone``, ``n_unchanged``),
        ``drift`` (`segwise.drift.drift_report`, None when the model has no training
        snapshot), ``retrain_recommended``, ``previous_as_of``.
    already_recorded : bool
        True when this exact update was recorded before (nothing was written).
    """

    as_of: date
    model_id: str
    assignments: pd.DataFrame
    migrations: pd.DataFrame
    summary: dict[str, Any]
    already_recorded: bool = False


def update(model, transactions, store_path: str | Path, *, as_of: str | date | None = None,
           customers=None) -> UpdateResult:
    """Assign the current customers and record them in the store's segment history.

    Parameters
    ----------
    model : SegmentationModel
    transactions : Transactions
        The current log.
    store_path : path
        The DuckDB store (created when missing).
    as_of : date, optional
        Date of this update (default: the day after the last transaction).
    customers : CustomerTable, optional

    Raises
    ------
    InputError
        When an update at a later date is already recorded, or one at the same
        date with another model.
    """
    from segwise.store import RunStore

    features = model.features_for(transactions, customers=customers, as_of=as_of)
    update_as_of = features.as_of
    model_id = model.metadata.get("model_id") or "unknown"
    with RunStore(store_path) as store:
        last = store.last_update()
        if last is not None:
            if last["as_of"] > update_as_of:
                raise InputError(
                    f"{store_path}: an update as of {last['as_of']} is already recorded; updates go forward in "
                    f"time, so this one (as of {update_as_of}) must be later: give a later --as-of"
                )
            if last["as_of"] == update_as_of:
                if last["model_id"] != model_id:
                    raise InputError(
                        f"{store_path}: the update as of {update_as_of} was recorded with another model "
                        f"({last['model_id']}); give a later --as-of for the new model"
                    )
                return UpdateResult(
                    as_of=update_as_of, model_id=model_id,
                    assignments=model.assign_features(features), migrations=store.migrations(update_as_of),
                    summary=last["summary"], already_recorded=True,
                )
        assignments = model.assign_features(features)
        snapshot = model.training_snapshot
        drift = drift_report(snapshot, features.frame, assignments["segment_id"].to_numpy()) if snapshot else None
        summary = {
            "as_of": str(update_as_of),
            "model_id": model_id,
            "previous_as_of": str(last["as_of"]) if last else None,
            "drift": drift,
            "retrain_recommended": drift["retrain_recommended"] if drift else None,
        }
        counts = store.record_update(update_as_of, model_id, model.file_sha256, assignments, summary)
        summary.update(counts)
        migrations = store.migrations(update_as_of)
    return UpdateResult(as_of=update_as_of, model_id=model_id, assignments=assignments, migrations=migrations,
                        summary=summary)
