"""pandas baselines for the RFM features: idiomatic, and notebook-style.

Both read the raw Parquet order log, clean it with segwise's rules (the same
`clean_order_lines`) and compute segwise's five ``rfm`` columns
(``recency_days``, ``n_orders``, ``monetary_total``, ``monetary_avg``,
``tenure_days``) at ``as_of`` = the day after the last line. They differ only in
how the per-customer summary is computed:

- `idiomatic_rfm`: vectorised ``groupby().agg`` with named aggregations, as a
  careful pandas user writes it;
- `notebook_rfm`: ``groupby().apply`` with a Python function per customer, as
  typical customer-segmentation notebooks do.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from bench.datasets import Dataset
from bench.timing import PhaseTimer, StepOutcome

__all__ = [
    "RFM_COLUMNS", "clean_order_lines", "observation_date", "idiomatic_rfm", "notebook_rfm",
    "pandas_idiomatic", "pandas_notebook",
]

#: The columns both baselines compute, as segwise names them.
RFM_COLUMNS = ("recency_days", "n_orders", "monetary_total", "monetary_avg", "tenure_days")


def clean_order_lines(orders: pd.DataFrame) -> pd.DataFrame:
    """Apply segwise's cleaning rules to the raw synthetic order log.

    Lines without a customer id, date or finite non-zero amount are removed,
    identical lines are kept once, and ``C``-prefixed invoices and negative
    amounts become returns (``is_return``; the amount made negative).

    Parameters
    ----------
    orders : pandas.DataFrame
        ``order_id``, ``customer_id``, ``ordered_at``, ``amount`` and any other columns.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (text), ``order_id``, ``ordered_at``, ``amount``, ``is_return``.
    """
    lines = orders.dropna(subset=["customer_id", "ordered_at", "amount"])
    lines = lines[np.isfinite(lines["amount"]) & (lines["amount"] != 0)]
    lines = lines.drop_duplicates()
    is_cancellation = lines["order_id"].str.startswith("C")
    return pd.DataFrame({
        "customer_id": lines["customer_id"].astype("int64").astype(str),
        "order_id": lines["order_id"],
        "ordered_at": lines["ordered_at"],
        "amount": lines["amount"].where(~is_cancellation, -lines["amount"].abs()),
        "is_return": is_cancellation | (lines["amount"] < 0),
    })


def observation_date(lines: pd.DataFrame) -> pd.Timestamp:
    """The as_of date segwise uses by default: midnight after the last line."""
    return lines["ordered_at"].max().normalize() + pd.Timedelta(days=1)


def idiomatic_rfm(lines: pd.DataFrame) -> pd.DataFrame:
    """RFM per customer with vectorised groupby aggregations.

    Parameters
    ----------
    lines : pandas.DataFrame
        Output of `clean_order_lines`.

    Returns
    -------
    pandas.DataFrame
        One row per customer with a purchase, indexed by ``customer_id``, with the
        `RFM_COLUMNS`.
    """
    as_of = observation_date(lines)
    purchases = lines[~lines["is_return"]]
    orders = purchases.groupby(["customer_id", "order_id"], sort=False, as_index=False)["ordered_at"].min()
    per_customer = orders.groupby("customer_id").agg(
        n_orders=("order_id", "size"), first_ts=("ordered_at", "min"), last_ts=("ordered_at", "max")
    )
    monetary_total = lines.groupby("customer_id")["amount"].sum().reindex(per_customer.index, fill_value=0.0)
    n_orders = per_customer["n_orders"].astype("float64")
    return pd.DataFrame({
        "recency_days": (as_of - per_customer["last_ts"].dt.normalize()).dt.days.astype("float64"),
        "n_orders": n_orders,
        "monetary_total": monetary_total,
        "monetary_avg": monetary_total / n_orders,
        "tenure_days": (as_of - per_customer["first_ts"].dt.normalize()).dt.days.astype("float64"),
    })


def notebook_rfm(lines: pd.DataFrame) -> pd.DataFrame:
    """RFM per customer with ``groupby().apply`` and a Python function per customer.

    Same inputs, output and definitions as `idiomatic_rfm`; the most recent and
    first purchase are taken over purchase lines, which equals segwise's
    order-level definition when the lines of an order share one timestamp (they
    do in the synthetic log).
    """
    as_of = observation_date(lines)

    def summarise(customer: pd.DataFrame) -> pd.Series:
        purchases = customer[~customer["is_return"]]
        n_orders = purchases["order_id"].nunique()
        monetary_total = customer["amount"].sum()
        return pd.Series({
            "recency_days": (as_of - purchases["ordered_at"].max().normalize()).days if n_orders else np.nan,
            "n_orders": n_orders,
            "monetary_total": monetary_total,
            "monetary_avg": monetary_total / n_orders if n_orders else np.nan,
            "tenure_days": (as_of - purchases["ordered_at"].min().normalize()).days if n_orders else np.nan,
        })

    rfm = lines.groupby("customer_id")[["order_id", "ordered_at", "amount", "is_return"]].apply(summarise)
    return rfm[rfm["n_orders"] > 0].astype("float64")


def _measure_rfm(dataset: Dataset, compute_rfm: Callable[[pd.DataFrame], pd.DataFrame]) -> StepOutcome:
    timer = PhaseTimer()
    with timer.phase("read"):
        orders = pd.read_parquet(dataset.orders_path)
    with timer.phase("clean"):
        lines = clean_order_lines(orders)
        del orders
    with timer.phase("features"):
        rfm = compute_rfm(lines)
    return StepOutcome(
        phases=timer.phases,
        info={"clean_lines": len(lines), "customers": len(rfm), "feature_columns": len(rfm.columns)},
        output=rfm,
    )


def pandas_idiomatic(dataset: Dataset) -> StepOutcome:
    """The measured step: read the order log, `clean_order_lines`, `idiomatic_rfm`."""
    return _measure_rfm(dataset, idiomatic_rfm)


def pandas_notebook(dataset: Dataset) -> StepOutcome:
    """The measured step: read the order log, `clean_order_lines`, `notebook_rfm`."""
    return _measure_rfm(dataset, notebook_rfm)
