"""Synthetic retail populations with planted behaviour types.

`generate_population` builds, fully vectorised and seeded, an order log and a
customer attribute table for a retail business whose customers follow known
behaviour types. The ground-truth type of every customer comes back with the
data, so segmentations can be scored against it (adjusted Rand index).

The order log has what real exports have: several lines per order, seasonality
(a November-December peak and busier weekends), returns as negative lines with
``C``-prefixed invoice ids, a few exact duplicate lines (double exports) and a few
lines without a customer id.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["BehaviourType", "BEHAVIOUR_TYPES", "SyntheticPopulation", "generate_population", "CATEGORIES", "CHANNELS"]

CATEGORIES = ("apparel", "beauty", "books", "electronics", "grocery", "home", "sports", "toys")
CHANNELS = ("web", "app", "store", "phone")
REGIONS = ("North", "South", "East", "West", "Central")


@dataclass(frozen=True)
class BehaviourType:
    """How one planted type of customer buys.

    Days are counted back from the end of the log. ``span_days`` is the time
    between the first and the last order; ``n_orders`` is ``base + Poisson(extra)``.
    """

    name: str
    share: float
    orders_base: int
    orders_extra: float
    last_order_days: tuple[int, int]
    span_days: tuple[int, int]
    order_value: float
    order_value_sd: float = 0.4
    lines_mean: float = 1.5
    discount_rate: float = 0.08
    favourite_category_rate: float = 0.35
    channel_weights: tuple[float, float, float, float] = (0.45, 0.25, 0.25, 0.05)
    description: str = ""


#: The planted types: sizes from under 1% to 35% of customers.
BEHAVIOUR_TYPES: tuple[BehaviourType, ...] = (
    BehaviourType(
        "champions", 0.008, 40, 20.0, (1, 10), (700, 1000), 220.0, 0.3, lines_mean=3.0,
        channel_weights=(0.35, 0.35, 0.25, 0.05),
        description="buy very often, spend a lot, bought in the last days",
    ),
    BehaviourType(
        "loyal_regulars", 0.16, 12, 6.0, (1, 45), (500, 1000), 45.0, 0.35,
        description="buy regularly for years, moderate baskets, recent",
    ),
    BehaviourType(
        "big_spenders", 0.072, 2, 1.0, (20, 250), (100, 700), 600.0, 0.4, lines_mean=2.0,
        channel_weights=(0.3, 0.1, 0.55, 0.05),
        description="few orders with very large baskets",
    ),
    BehaviourType(
        "new_customers", 0.11, 1, 0.25, (1, 60), (0, 30), 45.0, 0.45,
        description="first order in the last two months",
    ),
    BehaviourType(
        "at_risk", 0.12, 6, 4.0, (180, 400), (300, 700), 50.0, 0.4,
        description="used to buy regularly, nothing for 6 to 13 months",
    ),
    BehaviourType(
        "lost_one_timers", 0.35, 1, 0.0, (400, 1000), (0, 0), 40.0, 0.5, discount_rate=0.02,
        description="one order, more than a year ago",
    ),
    BehaviourType(
        "deal_hunters", 0.10, 6, 4.0, (1, 90), (200, 700), 22.0, 0.35, discount_rate=0.85,
        channel_weights=(0.35, 0.55, 0.05, 0.05),
        description="buy mostly on discount, small baskets",
    ),
    BehaviourType(
        "category_specialists", 0.08, 4, 3.0, (1, 120), (200, 800), 60.0, 0.4,
        favourite_category_rate=1.0,
        description="buy from one category only",
    ),
)


@dataclass
class SyntheticPopulation:
    """A generated population: order log, customer table and ground truth.

    Attributes
    ----------
    orders : pyarrow.Table
        order_id, customer_id, ordered_at, amount, category, channel, discount.
    customers : pyarrow.Table
        customer_id, age, gender, region, signup_date.
    truth : pandas.DataFrame
        customer_id (text) and behaviour_type, one row per customer.
    end_date : date
        The last day covered by the log.
    seed : int
    """

    orders: pa.Table
    customers: pa.Table
    truth: pd.DataFrame
    end_date: date
    seed: int
    types: tuple[BehaviourType, ...] = field(default=BEHAVIOUR_TYPES)

    def orders_frame(self) -> pd.DataFrame:
        """The order log as pandas."""
        return self.orders.to_pandas()

    def customers_frame(self) -> pd.DataFrame:
        """The customer table as pandas."""
        return self.customers.to_pandas()

    def write(self, out_dir: str | os.PathLike, fmt: str = "parquet") -> dict[str, str]:
        """Write ``orders``, ``customers`` and ``truth`` files into ``out_dir``.

        Each file is written to a temporary name and renamed into place.
        Returns the paths written, by name.
        """
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        truth = pa.Table.from_pandas(self.truth, preserve_index=False)
        for name, table in (("orders", self.orders), ("customers", self.customers), ("truth", truth)):
            path = out / f"{name}.{fmt}"
            tmp = out / f".{name}.{fmt}.tmp-{os.getpid()}"
            if fmt == "parquet":
                pq.write_table(table, tmp)
            else:
                pacsv.write_csv(table, tmp)
            os.replace(tmp, path)
            paths[name] = str(path)
        meta = out / "population.json"
        tmp = out / f".population.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({
            "seed": self.seed,
            "end_date": str(self.end_date),
            "customers": int(len(self.truth)),
            "order_lines": int(self.orders.num_rows),
            "types": {t.name: t.description for t in self.types},
            "type_counts": self.truth["behaviour_type"].value_counts().to_dict(),
        }, indent=2))
        os.replace(tmp, meta)
        paths["population"] = str(meta)
        return paths


def _type_counts(n: int, types: tuple[BehaviourType, ...]) -> np.ndarray:
    shares = np.array([t.share for t in types])
    shares = shares / shares.sum()
    counts = np.floor(shares * n).astype(np.int64)
    # Hand the rounding remainder to the largest fractional parts (deterministic).
    remainder = n - counts.sum()
    order = np.argsort(-(shares * n - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


def _seasonal_cdf(n_days: int, end_date: date) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative order intensity per day, day 0 = first day of the history."""
    days = pd.date_range(end=pd.Timestamp(end_date), periods=n_days, freq="D")
    doy = days.day_of_year.to_numpy()
    weekend = days.day_of_week.to_numpy() >= 5
    weight = (
        1.0
        + 0.9 * np.exp(-(((doy - 335) / 18.0) ** 2))  # Black-Friday-to-Christmas peak
        + 0.15 * np.sin(2 * np.pi * (doy - 80) / 365.25)  # mild spring/summer swell
        + 0.2 * weekend
    )
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    return cdf / cdf[-1], days.to_numpy()


def generate_population(
    n_customers: int = 50_000,
    *,
    seed: int = 0,
    end_date: str | date = "2024-12-31",
    history_days: int = 1100,
    types: tuple[BehaviourType, ...] = BEHAVIOUR_TYPES,
    duplicate_rate: float = 0.002,
    missing_customer_rate: float = 0.001,
    return_rate: float = 0.03,
) -> SyntheticPopulation:
    """Generate a retail population with planted behaviour types.

    Parameters
    ----------
    n_customers : int
        Number of customers (about 10 order lines each with the default types).
    seed : int
        Seed; the same seed gives the same population.
    end_date : str or date
        Last day of the log.
    history_days : int
        Days of history (must cover the longest ``last_order_days + span_days``).
    types : tuple of BehaviourType
        The planted types and their shares.
    duplicate_rate, missing_customer_rate, return_rate : float
        Share of lines exported twice, of lines without a customer id, and of
        orders with a later return.

    Returns
    -------
    SyntheticPopulation
    """
    if n_customers < len(types):
        raise ValueError(f"n_customers must be at least {len(types)}, got {n_customers}")
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(end_date).date()
    counts = _type_counts(n_customers, types)
    type_idx = np.repeat(np.arange(len(types)), counts)
    rng.shuffle(type_idx)
    customer_ids = np.arange(10_001, 10_001 + n_customers, dtype=np.int64)

    def per_type(attr):
        return np.array([getattr(t, attr) for t in types])[type_idx]

    last_lo, last_hi = (np.array([t.last_order_days[i] for t in types])[type_idx] for i in (0, 1))
    span_lo, span_hi = (np.array([t.span_days[i] for t in types])[type_idx] for i in (0, 1))
    last_day = rng.uniform(last_lo, last_hi + 1)
    span = rng.uniform(span_lo, span_hi + 1) * (span_hi > 0)
    n_orders = per_type("orders_base") + rng.poisson(per_type("orders_extra"))
    n_orders = np.maximum(n_orders, 1)
    span = np.where(n_orders == 1, 0.0, span)
    first_day = np.minimum(last_day + span, history_days - 1)

    # --- orders: first and last order at the ends of the active span, the rest
    # spread over it following the seasonal intensity (inverse-CDF sampling).
    cdf, day_dates = _seasonal_cdf(history_days, end)
    order_cust = np.repeat(np.arange(n_customers), n_orders)
    position = np.arange(order_cust.size) - np.repeat(np.cumsum(n_orders) - n_orders, n_orders)
    start_pos = history_days - first_day[order_cust]  # in days from history start
    stop_pos = history_days - last_day[order_cust]
    grid = np.arange(history_days + 1, dtype=np.float64)
    f_start, f_stop = np.interp(start_pos, grid, cdf), np.interp(stop_pos, grid, cdf)
    u = rng.uniform(0, 1, order_cust.size)
    u = np.where(position == 0, 0.0, u)
    u = np.where(position == n_orders[order_cust] - 1, 1.0, u)
    day_float = np.interp(f_start + u * (f_stop - f_start), cdf, grid)
    day_index = np.clip(day_float.astype(np.int64), 0, history_days - 1)
    hour = np.clip(rng.normal(14.0, 4.0, order_cust.size), 0, 23.99)
    seconds = (hour * 3600).astype(np.int64)
    ts = day_dates[day_index].astype("datetime64[s]") + seconds.astype("timedelta64[s]")

    order_value = np.exp(
        np.log(per_type("order_value"))[order_cust]
        + per_type("order_value_sd")[order_cust] * rng.standard_normal(order_cust.size)
    )
    discount = rng.uniform(size=order_cust.size) < per_type("discount_rate")[order_cust]
    order_value = np.where(discount, order_value * 0.8, order_value)
    channel_w = np.array([t.channel_weights for t in types], dtype=np.float64)
    channel_cum = np.cumsum(channel_w / channel_w.sum(axis=1, keepdims=True), axis=1)[type_idx][order_cust]
    channel_idx = (rng.uniform(size=(order_cust.size, 1)) > channel_cum).sum(axis=1)

    # --- lines: each order split into 1 + Poisson lines with exponential weights.
    n_lines = 1 + rng.poisson(per_type("lines_mean")[order_cust] - 1.0)
    line_order = np.repeat(np.arange(order_cust.size), n_lines)
    weights = rng.exponential(1.0, line_order.size)
    weight_sum = np.bincount(line_order, weights=weights)
    line_amount = np.round(np.maximum(order_value[line_order] * weights / weight_sum[line_order], 0.5), 2)
    favourite = rng.integers(0, len(CATEGORIES), n_customers)
    line_cust = order_cust[line_order]
    use_favourite = rng.uniform(size=line_order.size) < per_type("favourite_category_rate")[line_cust]
    category_idx = np.where(use_favourite, favourite[line_cust], rng.integers(0, len(CATEGORIES), line_order.size))

    order_numbers = 500_000 + np.argsort(ts, kind="stable").argsort(kind="stable").astype(np.int64)
    line_ts = ts[line_order]

    # --- returns: a later negative line for part of one line of some orders.
    returned = np.flatnonzero(rng.uniform(size=line_order.size) < return_rate / np.maximum(n_lines[line_order], 1))
    ret_delay = rng.integers(2, 30, returned.size).astype("timedelta64[D]")
    ret_ts = np.minimum(line_ts[returned] + ret_delay, np.datetime64(pd.Timestamp(end)) + np.timedelta64(86399, "s"))
    ret_amount = -np.round(line_amount[returned] * rng.choice([0.5, 1.0], returned.size), 2)

    all_order = np.concatenate([line_order, line_order[returned]])
    all_ts = np.concatenate([line_ts, ret_ts.astype("datetime64[s]")])
    all_amount = np.concatenate([line_amount, ret_amount])
    all_category = np.concatenate([category_idx, category_idx[returned]])
    is_return = np.concatenate([np.zeros(line_order.size, bool), np.ones(returned.size, bool)])

    # --- export noise: duplicated lines, lines without a customer id.
    n_all = all_order.size
    dup = np.flatnonzero(rng.uniform(size=n_all) < duplicate_rate)
    take = np.concatenate([np.arange(n_all), dup])
    take = take[np.argsort(np.concatenate([np.arange(n_all), dup]), kind="stable")]
    all_order, all_ts, all_amount = all_order[take], all_ts[take], all_amount[take]
    all_category, is_return = all_category[take], is_return[take]
    cust_of_line = customer_ids[order_cust[all_order]]
    no_customer = rng.uniform(size=take.size) < missing_customer_rate

    order_id_text = pc.cast(pa.array(order_numbers[all_order]), pa.string())
    order_id_text = pc.if_else(pa.array(is_return), pc.binary_join_element_wise("C", order_id_text, ""), order_id_text)
    orders = pa.table({
        "order_id": order_id_text,
        "customer_id": pa.array(cust_of_line, mask=no_customer),
        "ordered_at": pa.array(all_ts, pa.timestamp("s")),
        "amount": pa.array(all_amount),
        "category": pa.DictionaryArray.from_arrays(
            pa.array(all_category.astype(np.int32)), pa.array(CATEGORIES)
        ).cast(pa.string()),
        "channel": pa.DictionaryArray.from_arrays(
            pa.array(channel_idx[all_order].astype(np.int32)), pa.array(CHANNELS)
        ).cast(pa.string()),
        "discount": pa.array(discount[all_order]),
    })
    order_rank = pc.sort_indices(orders, sort_keys=[("ordered_at", "ascending"), ("order_id", "ascending")])
    orders = orders.take(order_rank)

    # --- customer attributes.
    age = np.clip(np.round(rng.normal(41, 13, n_customers)), 18, 90)
    age_missing = rng.uniform(size=n_customers) < 0.08
    gender = np.array(["female", "male", "other"])[rng.choice(3, n_customers, p=[0.52, 0.45, 0.03])]
    region = np.array(REGIONS)[rng.choice(len(REGIONS), n_customers, p=[0.25, 0.2, 0.2, 0.2, 0.15])]
    signup_offset = rng.integers(0, 60, n_customers)
    first_ts = day_dates[np.clip((history_days - first_day).astype(np.int64), 0, history_days - 1)]
    signup = (first_ts - signup_offset.astype("timedelta64[D]")).astype("datetime64[D]")
    customers = pa.table({
        "customer_id": pa.array(customer_ids),
        "age": pa.array(age, mask=age_missing),
        "gender": pa.array(gender),
        "region": pa.array(region),
        "signup_date": pa.array(signup, pa.date32()),
    })
    truth = pd.DataFrame({
        "customer_id": customer_ids.astype(str),
        "behaviour_type": np.array([t.name for t in types])[type_idx],
    })
    return SyntheticPopulation(orders=orders, customers=customers, truth=truth, end_date=end, seed=seed, types=types)
