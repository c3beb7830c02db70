"""The population families: each written from its own generative assumptions.

Every generator takes ``(n_customers, seed)`` and returns a `Population`. The
families do not share a generator: each draws its customers from a different
process (buy-till-you-die, a latent factor model, a Gaussian mixture table, a
persona table with derived totals, an invoice-line export with cancellations,
non-homogeneous Poisson journeys...). Only ``demo`` uses `segwise.synth`.

Each family's docstring says what defines its types; `FAMILIES` lists them with
their half (A or B) for the development / held-out protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.quality.common import (
    END, START, WINDOW_DAYS, Family, Population, assign_types, days_to_ts, lines_frame, order_summaries, pick,
)

__all__ = ["FAMILIES", "family"]

CATEGORIES = ("garden", "kitchen", "outdoor", "pets", "music", "games", "baby", "office", "health", "crafts")


def _ids(n: int, first: int = 100_001) -> np.ndarray:
    return np.arange(first, first + n, dtype=np.int64)


def _truth(ids: np.ndarray, types: np.ndarray, names: list[str]) -> pd.Series:
    return pd.Series(np.asarray(names, dtype=object)[types], index=pd.Index(ids.astype(str), name="customer_id"))


def _uniform_orders(rng, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customer index and fractional day of each order, uniform in [lo, hi] per customer."""
    cust = np.repeat(np.arange(len(counts)), counts)
    days = lo[cust] + rng.random(len(cust)) * (hi[cust] - lo[cust])
    return cust, days


def _order_ids(cust: np.ndarray, days: np.ndarray, first: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((cust, days))
    ids = np.empty(len(cust), dtype=np.int64)
    ids[order] = np.arange(first, first + len(cust))
    return ids, order


# --------------------------------------------------------------------------- demo

def demo(n: int, seed: int) -> Population:
    """The `segwise demo` population (`segwise.synth`): eight retail behaviour types.

    Defined by frequency, recency, span, basket value, discount use and category
    concentration (sizes 0.8% to 35%).
    """
    from segwise.synth import generate_population

    pop = generate_population(n, seed=seed)
    data = pop.orders_frame()
    known = data.dropna(subset=["customer_id"])
    lines = lines_frame(known["customer_id"].astype(np.int64), known["order_id"].str.lstrip("C").astype(np.int64),
                        known["ordered_at"], known["amount"], category=known["category"], channel=known["channel"],
                        discount=known["discount"], cancelled=known["order_id"].str.startswith("C"))
    truth = pop.truth.set_index("customer_id")["behaviour_type"]
    truth.index = truth.index.astype(str)
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days", "tenure_days",
                                           "discount_share", "cat_top"))
    return Population("log", data, truth, oracle, lines)


# --------------------------------------------------------------------------- BTYD

def btyd_personas(n: int, seed: int) -> Population:
    """Pareto/NBD purchases and dropout with gamma-gamma spend, four personas.

    Each persona has its own gamma prior on the purchase rate, on the dropout rate
    and on the spend scale (gamma-gamma). Customers are born over the first 70% of
    the window, buy as a Poisson process until an exponential death time. Types:
    loyal frequent, occasional, burst churners, rare big spenders. Defined by
    frequency, basket value, recency and tenure.
    """
    rng = np.random.default_rng(seed)
    # name, share, mean purchases/day, mean lifetime days, mean spend per order
    personas = [("loyal_frequent", 0.25, 0.035, 3000.0, 45.0), ("occasional", 0.40, 0.006, 2500.0, 40.0),
                ("burst_churners", 0.20, 0.04, 90.0, 35.0), ("rare_big_spenders", 0.15, 0.004, 3000.0, 400.0)]
    types = assign_types(n, [p[1] for p in personas], rng)
    rate_mean = np.array([p[2] for p in personas])[types]
    life_mean = np.array([p[3] for p in personas])[types]
    spend_mean = np.array([p[4] for p in personas])[types]
    lam = rng.gamma(6.0, rate_mean / 6.0)
    mu = rng.gamma(4.0, (1.0 / life_mean) / 4.0)
    birth = rng.random(n) * 0.7 * WINDOW_DAYS
    death = np.minimum(birth + rng.exponential(1.0 / mu), WINDOW_DAYS - 1)
    alive = np.maximum(death - birth, 0.0)
    extra = rng.poisson(lam * alive)
    cust, days = _uniform_orders(rng, extra, birth, birth + alive)
    cust = np.concatenate([np.arange(n), cust])
    days = np.concatenate([birth, days])
    # gamma-gamma: nu ~ Gamma(q, 1/gamma), order value ~ Gamma(p, 1/nu), mean p / nu.
    p, q = 6.0, 10.0
    gamma_scale = spend_mean * (q - 1) / p
    nu = rng.gamma(q, 1.0 / gamma_scale)
    amount = rng.gamma(p, 1.0 / nu[cust])
    ids = _ids(n)
    order_ids, _ = _order_ids(cust, days)
    category = rng.choice(CATEGORIES[:5], len(cust))
    ts = days_to_ts(days, rng.integers(8, 22, len(cust)), rng)
    data = pd.DataFrame({"customer_id": ids[cust], "order_id": order_ids, "order_date": ts,
                         "amount": np.round(amount, 2), "category": category})
    lines = lines_frame(ids[cust], order_ids, ts, amount, category=category)
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days", "tenure_days"))
    return Population("log", data.sort_values("order_date", kind="stable").reset_index(drop=True),
                      _truth(ids, types, [p[0] for p in personas]), oracle, lines)


def bgnbd_overlap(n: int, seed: int) -> Population:
    """BG/NBD: exponential gaps, dropout after each purchase; three overlapping personas.

    The purchase rates (gamma, shape 2) and dropout probabilities (beta) of the
    personas overlap heavily and spend is log-normal with close means. Defined by
    frequency, basket value, recency and tenure. The dates are text (YYYY-MM-DD).
    """
    rng = np.random.default_rng(seed)
    personas = [("steady", 0.45, 0.02, 0.05, 40.0), ("fading", 0.35, 0.03, 0.3, 55.0), ("slow", 0.20, 0.007, 0.1, 90.0)]
    types = assign_types(n, [p[1] for p in personas], rng)
    lam = rng.gamma(2.0, np.array([p[2] for p in personas])[types] / 2.0)
    pmean = np.array([p[3] for p in personas])[types]
    drop = rng.beta(2.0 * pmean / (1 - pmean), 2.0)
    drop = np.clip(drop, 0.01, 0.95)
    t = rng.random(n) * 0.6 * WINDOW_DAYS
    active = np.ones(n, dtype=bool)
    cust_parts, day_parts = [np.arange(n)], [t.copy()]
    for _ in range(400):
        active &= rng.random(n) >= drop
        t = t + rng.exponential(1.0 / lam)
        active &= t < WINDOW_DAYS
        if not active.any():
            break
        cust_parts.append(np.flatnonzero(active))
        day_parts.append(t[active])
    cust, days = np.concatenate(cust_parts), np.concatenate(day_parts)
    spend = np.array([p[4] for p in personas])[types]
    amount = np.exp(np.log(spend[cust]) + rng.normal(0, 0.6, len(cust)))
    ids = _ids(n, 500_001)
    ts = days_to_ts(days)
    data = pd.DataFrame({"client_id": ids[cust], "purchase_date": pd.to_datetime(ts).strftime("%Y-%m-%d"),
                         "revenue": np.round(amount, 2)})
    lines = lines_frame(ids[cust], np.arange(len(cust)), pd.to_datetime(ts).normalize(), amount)
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days", "tenure_days"))
    return Population("log", data, _truth(ids, types, [p[0] for p in personas]), oracle, lines)


# --------------------------------------------------------------------------- only engagement / affinity / journey

def _common_process(rng, n: int, mean_orders: float) -> tuple[np.ndarray, np.ndarray]:
    """One purchase process for everyone: gamma-Poisson counts (at least one), uniform days."""
    counts = 1 + rng.poisson(rng.gamma(3.0, (mean_orders - 1) / 3.0, n))
    birth = rng.random(n) * 0.3 * WINDOW_DAYS
    return _uniform_orders(rng, counts, birth, np.full(n, WINDOW_DAYS - 1.0))


def engagement_only(n: int, seed: int) -> Population:
    """Five types that differ only in channel mix, time of day and weekend habit.

    Everyone shares one purchase process and one spend distribution; a type sets
    the channel probabilities, the hours of its orders and its weekend propensity.
    The timestamp column is a datetime named ``order_ts``.
    """
    rng = np.random.default_rng(seed)
    channels = np.array(["web", "app", "store", "phone"])
    # name, channel probabilities, (first hour, last hour), weekend probability
    kinds = [("office_web", (0.8, 0.1, 0.1, 0.0), (9, 17), 0.1), ("evening_app", (0.15, 0.8, 0.05, 0.0), (19, 23), 0.3),
             ("weekend_store", (0.1, 0.05, 0.85, 0.0), (10, 18), 0.85),
             ("phone_mornings", (0.1, 0.0, 0.2, 0.7), (7, 11), 0.15), ("night_owls", (0.5, 0.5, 0.0, 0.0), (0, 4), 0.5)]
    types = assign_types(n, [0.3, 0.25, 0.2, 0.15, 0.1], rng)
    cust, days = _common_process(rng, n, 7.0)
    kt = types[cust]
    probs = np.array([k[1] for k in kinds])[kt]
    channel = channels[(rng.random(len(cust))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=3)]
    lo, hi = np.array([k[2][0] for k in kinds])[kt], np.array([k[2][1] for k in kinds])[kt]
    hours = lo + rng.integers(0, 1_000_000, len(cust)) % (hi - lo + 1)
    weekend = rng.random(len(cust)) < np.array([k[3] for k in kinds])[kt]
    dow = np.where(weekend, rng.integers(5, 7, len(cust)), rng.integers(0, 5, len(cust)))
    # START is a Sunday (day of week 6): move each order into its week's chosen day.
    week = np.floor(days / 7.0)
    days = np.minimum(week * 7 + (dow - 6) % 7, WINDOW_DAYS - 1)
    amount = np.exp(np.log(45.0) + rng.normal(0, 0.5, len(cust)))
    ids = _ids(n, 200_001)
    ts = days_to_ts(days, hours, rng)
    category = rng.choice(CATEGORIES[:6], len(cust))
    data = pd.DataFrame({"user_id": ids[cust], "order_ts": ts, "total": np.round(amount, 2), "channel": channel,
                         "category": category})
    lines = lines_frame(ids[cust], np.arange(len(cust)), ts, amount, channel=channel, category=category)
    oracle = pick(order_summaries(lines), ("chan_", "weekend_share", "hour_"))
    return Population("log", data, _truth(ids, types, [k[0] for k in kinds]), oracle, lines)


def affinity_only(n: int, seed: int) -> Population:
    """Six types that differ only in which product categories they buy.

    One purchase process and one line value for everyone; each type puts 80% of
    its lines on two or three favourite categories (favourites overlap between
    types) and spreads the rest over all ten. Several lines per order.
    """
    rng = np.random.default_rng(seed)
    favourites = [(0, 1), (2, 3, 4), (5, 6), (7, 8), (1, 9), (3, 6, 8)]
    pref = np.full((len(favourites), len(CATEGORIES)), 0.2 / len(CATEGORIES))
    for t, fav in enumerate(favourites):
        pref[t, list(fav)] += 0.8 / len(fav)
    types = assign_types(n, [0.25, 0.2, 0.18, 0.15, 0.12, 0.1], rng)
    ocust, odays = _common_process(rng, n, 5.0)
    n_lines = 1 + rng.poisson(1.5, len(ocust))
    order_no = np.repeat(np.arange(len(ocust)), n_lines)
    cust, days = ocust[order_no], odays[order_no]
    cum = np.cumsum(pref[types[cust]], axis=1)
    cat = np.asarray(CATEGORIES)[(rng.random(len(cust))[:, None] > cum).sum(axis=1).clip(max=len(CATEGORIES) - 1)]
    value = np.exp(np.log(18.0) + rng.normal(0, 0.6, len(cust)))
    ids = _ids(n, 300_001)
    ts = days_to_ts(days, np.repeat(rng.integers(7, 23, len(ocust)), n_lines))
    data = pd.DataFrame({"customer": ids[cust], "order_no": order_no + 70_000, "date": ts, "item_category": cat,
                         "line_value": np.round(value, 2)})
    lines = lines_frame(ids[cust], order_no, ts, value, category=cat)
    oracle = pick(order_summaries(lines), ("cat_",))
    oracle = oracle.drop(columns=["cat_top", "cat_breadth"], errors="ignore")
    return Population("log", data, _truth(ids, types, [f"likes_{'_'.join(CATEGORIES[i] for i in f)}"
                                                        for f in favourites]), oracle, lines)


def journey_only(n: int, seed: int) -> Population:
    """Five journeys with the same expected orders and spend: steady, accelerating,
    decelerating, summer-only and winter-holiday-only shoppers.

    Order days follow a non-homogeneous Poisson process whose intensity is the
    type's curve over the two years. Timestamps are ISO text.
    """
    rng = np.random.default_rng(seed)
    grid = np.arange(WINDOW_DAYS) + 0.5
    month = (START + pd.to_timedelta(grid, unit="D")).month.to_numpy()
    curves = {
        "steady": np.ones_like(grid),
        "accelerating": 0.1 + 1.8 * grid / WINDOW_DAYS,
        "decelerating": 1.9 - 1.8 * grid / WINDOW_DAYS,
        "summer_shoppers": np.where(np.isin(month, (6, 7, 8)), 1.0, 0.03),
        "holiday_shoppers": np.where(np.isin(month, (11, 12)), 1.0, 0.03),
    }
    names = list(curves)
    types = assign_types(n, [0.3, 0.2, 0.2, 0.15, 0.15], rng)
    counts = 1 + rng.poisson(9.0, n)
    cust = np.repeat(np.arange(n), counts)
    days = np.empty(len(cust))
    for t, name in enumerate(names):
        rows = np.flatnonzero(types[cust] == t)
        cdf = np.cumsum(curves[name])
        cdf /= cdf[-1]
        days[rows] = np.searchsorted(cdf, rng.random(len(rows))) + rng.random(len(rows))
    amount = np.exp(np.log(60.0) + rng.normal(0, 0.5, len(cust)))
    ids = _ids(n, 400_001)
    ts = days_to_ts(days, rng.integers(8, 22, len(cust)), rng)
    data = pd.DataFrame({"CustID": ids[cust], "Timestamp": pd.to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%S"),
                         "Amount": np.round(amount, 2)})
    lines = lines_frame(ids[cust], np.arange(len(cust)), ts, amount)
    oracle = pick(order_summaries(lines), ("rate_change", "quarter_"))
    return Population("log", data, _truth(ids, types, names), oracle, lines)


# --------------------------------------------------------------------------- sizes and latent factors

def micro_segments(n: int, seed: int) -> Population:
    """A hurdle/negative-binomial model with two micro-segments (2% and 0.5%).

    Types: casual (55%), regular (30%), lapsed (12.5%), wholesale buyers (2%,
    huge baskets) and VIPs (0.5%, very frequent). Defined by frequency, basket
    value and recency.
    """
    rng = np.random.default_rng(seed)
    # name, share, mean orders, NB dispersion, basket, active from, active to (days)
    kinds = [("casual", 0.55, 2.0, 2.0, 35.0, 0, 730), ("regular", 0.30, 12.0, 6.0, 50.0, 0, 730),
             ("lapsed", 0.125, 5.0, 4.0, 45.0, 0, 300), ("wholesale", 0.02, 20.0, 8.0, 900.0, 0, 730),
             ("vip", 0.005, 90.0, 20.0, 120.0, 0, 730)]
    types = assign_types(n, [k[1] for k in kinds], rng)
    mean = np.array([k[2] for k in kinds])[types]
    disp = np.array([k[3] for k in kinds])[types]
    counts = 1 + rng.negative_binomial(disp, disp / (disp + mean - 1 + 1e-9))
    lo = np.array([k[5] for k in kinds], dtype=float)[types] + rng.random(n) * 100
    hi = np.array([k[6] for k in kinds], dtype=float)[types] - rng.random(n) * 30
    cust, days = _uniform_orders(rng, counts, lo, hi)
    basket = np.array([k[4] for k in kinds])[types]
    amount = np.exp(np.log(basket[cust]) + rng.normal(0, 0.45, len(cust)))
    discount = rng.random(len(cust)) < 0.15
    ids = _ids(n, 600_001)
    order_ids, _ = _order_ids(cust, days, 3_000_000)
    ts = days_to_ts(days, rng.integers(6, 23, len(cust)), rng)
    category = rng.choice(CATEGORIES[:8], len(cust))
    data = pd.DataFrame({"customer_id": ids[cust], "order_id": order_ids, "created_at": ts,
                         "amount": np.round(amount, 2), "category": category, "discount": discount})
    lines = lines_frame(ids[cust], order_ids, ts, amount, category=category, discount=discount)
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days"))
    return Population("log", data, _truth(ids, types, [k[0] for k in kinds]), oracle, lines)


def latent_k10(n: int, seed: int) -> Population:
    """Ten types as separated centres of a five-dimensional latent factor model.

    Latent factors (frequency, basket, recency, price sensitivity, breadth) are a
    type centre plus small noise; the log is drawn from them. Sizes 1% to 30%.
    Defined by frequency, basket value, recency, discount share and breadth.
    """
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    while len(centres) < 10:
        c = rng.uniform(-2, 2, 5)
        if all(np.linalg.norm(c - o) >= 2.2 for o in centres):
            centres.append(c)
    shares = [0.3, 0.2, 0.12, 0.1, 0.08, 0.07, 0.05, 0.04, 0.03, 0.01]
    types = assign_types(n, shares, rng)
    z = np.asarray(centres)[types] + rng.normal(0, 0.3, (n, 5))
    counts = 1 + rng.poisson(np.exp(1.0 + 0.8 * z[:, 0]))
    last = WINDOW_DAYS - 1 - np.exp(3.8 + 0.8 * z[:, 2]).clip(max=WINDOW_DAYS - 2)
    span = np.minimum(last, 45.0 * counts)
    cust, days = _uniform_orders(rng, counts, last - span, last)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    days[first] = last  # every customer's last order is on its last day
    amount = np.exp(3.8 + 0.6 * z[cust, 1] + rng.normal(0, 0.3, len(cust)))
    promo = rng.random(len(cust)) < 1 / (1 + np.exp(-1.5 * z[cust, 3]))
    breadth = np.clip(np.round(3 + 1.5 * z[:, 4]), 1, 8).astype(int)
    category = np.asarray(CATEGORIES)[rng.integers(0, 1_000_000, len(cust)) % breadth[cust]]
    ids = _ids(n, 700_001)
    order_ids, _ = _order_ids(cust, days, 5_000_000)
    ts = days_to_ts(days, rng.integers(8, 22, len(cust)), rng)
    data = pd.DataFrame({"customer_id": ids[cust], "order_id": order_ids, "order_date": ts,
                         "amount": np.round(amount, 2), "category": category, "promo": promo})
    lines = lines_frame(ids[cust], order_ids, ts, amount, category=category, discount=promo)
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days", "discount_share",
                                           "cat_breadth"))
    return Population("log", data, _truth(ids, types, [f"type_{i}" for i in range(10)]), oracle, lines)


def no_structure(n: int, seed: int, daily_rate: float = 0.008) -> Population:
    """No cluster structure: every customer from one continuous, unimodal population.

    Purchase rate (median ``daily_rate`` purchases a day) and basket are independent
    log-normals, first and last activity uniform; channel and category at random. The
    truth is a single type. About a third of the customers buy once at the default
    rate, half at 0.004 and two thirds at 0.002.
    """
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.normal(np.log(daily_rate), 0.7, n))
    lo = rng.random(n) * 0.8 * WINDOW_DAYS
    hi = lo + rng.random(n) * (WINDOW_DAYS - 1 - lo)
    counts = 1 + rng.poisson(rate * (hi - lo))
    cust, days = _uniform_orders(rng, counts, lo, hi)
    basket = np.exp(rng.normal(np.log(50.0), 0.5, n))
    amount = basket[cust] * np.exp(rng.normal(0, 0.3, len(cust)))
    ids = _ids(n, 800_001)
    ts = days_to_ts(days, rng.integers(0, 24, len(cust)), rng)
    channel = rng.choice(["web", "app", "store"], len(cust))
    category = rng.choice(CATEGORIES[:6], len(cust))
    discount = rng.random(len(cust)) < 0.2
    data = pd.DataFrame({"customer_id": ids[cust], "order_date": ts, "amount": np.round(amount, 2),
                         "channel": channel, "category": category, "discount": discount})
    lines = lines_frame(ids[cust], np.arange(len(cust)), ts, amount, channel=channel, category=category,
                        discount=discount)
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days", "tenure_days"))
    return Population("log", data, _truth(ids, np.zeros(n, dtype=int), ["everyone"]), oracle, lines)


# --------------------------------------------------------------------------- invoice lines

def online_retail(n: int, seed: int) -> Population:
    """Invoice lines in the UCI Online Retail layout, with cancellations; six types.

    Types: wholesalers (many large invoices), regular shoppers, gift buyers (only
    October to December), one-off buyers, lapsed (active in the first nine months
    only) and returners (40% of invoices later cancelled). Cancellations are
    ``C``-prefixed invoices with negative quantities; 2% of lines have no
    CustomerID. Defined by frequency, invoice value, recency, cancellation share
    and the fourth-quarter share.
    """
    rng = np.random.default_rng(seed)
    # name, share, extra invoices (Poisson), lines per invoice, quantity range, price factor, cancel rate
    kinds = [("wholesalers", 0.05, 20.0, 25.0, (12, 48), 1.0, 0.03), ("regulars", 0.35, 6.0, 12.0, (1, 6), 1.0, 0.02),
             ("gift_buyers", 0.15, 3.0, 8.0, (1, 4), 2.5, 0.02), ("one_off", 0.25, 0.0, 6.0, (1, 6), 1.0, 0.02),
             ("lapsed", 0.15, 4.0, 10.0, (1, 6), 1.0, 0.02), ("returners", 0.05, 6.0, 10.0, (1, 6), 1.0, 0.4)]
    types = assign_types(n, [k[1] for k in kinds], rng)
    invoices = 1 + rng.poisson(np.array([k[2] for k in kinds])[types])
    icust = np.repeat(np.arange(n), invoices)
    it = types[icust]
    days = rng.random(len(icust)) * (WINDOW_DAYS - 1)
    lapsed = it == 4
    days[lapsed] = rng.random(lapsed.sum()) * 270
    gift = it == 2
    year = rng.integers(0, 2, gift.sum())
    days[gift] = np.where(year == 0, 273, 639) + rng.random(gift.sum()) * 91
    n_lines = 1 + rng.poisson(np.array([k[3] for k in kinds])[it])
    inv_of_line = np.repeat(np.arange(len(icust)), n_lines)
    lt = it[inv_of_line]
    qlo, qhi = np.array([k[4][0] for k in kinds])[lt], np.array([k[4][1] for k in kinds])[lt]
    quantity = qlo + rng.integers(0, 1_000_000, len(lt)) % (qhi - qlo + 1)
    n_products = 400
    product = rng.integers(0, n_products, len(lt))
    base_price = np.round(np.exp(rng.normal(np.log(2.5), 0.6, n_products)), 2)
    price = np.round(base_price[product] * np.array([k[5] for k in kinds])[lt], 2)
    ts_inv = days_to_ts(days, rng.integers(8, 20, len(icust)), rng)
    order_inv = np.argsort(ts_inv, kind="stable")
    inv_no = np.empty(len(icust), dtype=np.int64)
    inv_no[order_inv] = 536_365 + np.arange(len(icust))
    # Cancellations: a later C-invoice negating part of an invoice's lines.
    cancel = rng.random(len(icust)) < np.array([k[6] for k in kinds])[it]
    cancel_lines = cancel[inv_of_line] & (rng.random(len(lt)) < 0.7)
    cl = np.flatnonzero(cancel_lines)
    ts_lines = ts_inv[inv_of_line]
    delay = pd.to_timedelta(rng.integers(1, 20, len(cl)), unit="D").to_numpy()
    c_ts = np.minimum(ts_lines[cl] + delay, END.to_datetime64())
    c_inv_no = 600_000 + inv_no[inv_of_line[cl]]
    ids = _ids(n, 12_346)
    cust_line = np.concatenate([icust[inv_of_line], icust[inv_of_line[cl]]])
    frame = pd.DataFrame({
        "InvoiceNo": np.concatenate([inv_no[inv_of_line].astype(str), np.char.add("C", c_inv_no.astype(str))]),
        "StockCode": np.concatenate([85_000 + product, 85_000 + product[cl]]).astype(str),
        "Description": np.concatenate([np.char.add("PRODUCT ", product.astype(str)),
                                       np.char.add("PRODUCT ", product[cl].astype(str))]),
        "Quantity": np.concatenate([quantity, -quantity[cl]]),
        "InvoiceDate": pd.to_datetime(np.concatenate([ts_lines, c_ts])),
        "UnitPrice": np.concatenate([price, price[cl]]),
        "CustomerID": ids[cust_line].astype(float),
        "Country": np.where(rng.random(len(cust_line)) < 0.88, "United Kingdom",
                            rng.choice(["France", "Germany", "EIRE", "Spain", "Netherlands"], len(cust_line))),
    })
    frame = frame.sort_values("InvoiceDate", kind="stable").reset_index(drop=True)
    lines = lines_frame(frame["CustomerID"].astype(np.int64), frame["InvoiceNo"].str.lstrip("C").astype(np.int64)
                        + np.where(frame["InvoiceNo"].str.startswith("C"), 10_000_000, 0),
                        frame["InvoiceDate"], frame["Quantity"] * frame["UnitPrice"],
                        cancelled=frame["InvoiceNo"].str.startswith("C").to_numpy())
    missing = rng.random(len(frame)) < 0.02
    frame.loc[missing, "CustomerID"] = np.nan
    frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%m/%d/%Y %H:%M")
    oracle = pick(order_summaries(lines), ("log_orders", "log_order_value", "recency_days", "cancel_share",
                                           "quarter_4"))
    return Population("log", frame, _truth(ids, types, [k[0] for k in kinds]), oracle, lines)


# --------------------------------------------------------------------------- customer tables

def noise_table(n: int, seed: int) -> Population:
    """A customer table: three types in three columns, plus eight irrelevant columns.

    Types differ in visits per month, basket and membership months; six numeric
    and two categorical columns are pure noise, independent of the type.
    """
    rng = np.random.default_rng(seed)
    types = assign_types(n, [0.5, 0.35, 0.15], rng)
    visits = rng.gamma(8.0, np.array([2.0, 7.0, 14.0])[types] / 8.0)
    basket = np.exp(np.log(np.array([30.0, 80.0, 45.0])[types]) + rng.normal(0, 0.25, n))
    months = np.clip(rng.normal(np.array([6.0, 30.0, 60.0])[types], [4.0, 8.0, 10.0][0]), 1, None).round()
    ids = _ids(n, 900_001)
    data = pd.DataFrame({
        "customer_id": ids,
        "visits_per_month": visits.round(1),
        "avg_basket": basket.round(2),
        "months_member": months,
        "survey_score": rng.normal(50, 15, n).round(1),
        "postcode_digit": rng.integers(0, 10, n),
        "satisfaction": rng.integers(1, 6, n),
        "app_sessions": np.exp(rng.normal(2, 1, n)).round(),
        "referrals": rng.poisson(1.0, n),
        "ad_impressions": np.exp(rng.normal(5, 0.8, n)).round(),
        "favourite_colour": rng.choice(["red", "green", "blue", "black", "white"], n),
        "device": rng.choice(["ios", "android", "desktop"], n),
    })
    oracle = pd.DataFrame({"visits": np.log1p(visits), "basket": np.log(basket), "months": months},
                          index=ids.astype(str))
    return Population("table", data, _truth(ids, types, ["browsers", "loyal_mid", "heavy_long"]), oracle)


def household_table(n: int, seed: int) -> Population:
    """A household table like the Customer Personality data: four household personas.

    Income, birth year, children and teenagers at home and the spend composition
    over six product groups depend on the persona; spend totals follow income.
    Purchase counts by channel, deal purchases, web visits, a recency column that
    is uniform noise (as in the real data), education and marital status
    (weakly related) complete the table. Defined by income, total spend, spend
    shares, household size and age.
    """
    rng = np.random.default_rng(seed)
    groups = ["spend_fresh", "spend_meat", "spend_seafood", "spend_drinks", "spend_treats", "spend_jewellery"]
    # name, share, income mean, kids (p of 1, p of 2), teens mean, birth range, spend/income, composition
    kinds = [
        ("affluent_couples", 0.3, 78_000, (0.0, 0.0), 0.2, (1948, 1965), 0.020, (0.10, 0.35, 0.10, 0.35, 0.05, 0.05)),
        ("young_families", 0.3, 32_000, (0.6, 0.3), 0.0, (1978, 1993), 0.003, (0.40, 0.15, 0.05, 0.05, 0.30, 0.05)),
        ("established_families", 0.25, 58_000, (0.4, 0.0), 1.3, (1960, 1976), 0.009, (0.2, 0.25, 0.1, 0.2, 0.15, 0.1)),
        ("single_professionals", 0.15, 55_000, (0.0, 0.0), 0.0, (1980, 1996), 0.012, (0.05, 0.1, 0.3, 0.3, 0.05, 0.2)),
    ]
    types = assign_types(n, [k[1] for k in kinds], rng)
    income = np.clip(rng.normal(np.array([k[2] for k in kinds])[types], 9_000), 5_000, None).round()
    p1, p2 = np.array([k[3][0] for k in kinds])[types], np.array([k[3][1] for k in kinds])[types]
    u = rng.random(n)
    kids = np.where(u < p2, 2, np.where(u < p1 + p2, 1, 0))
    teens = np.minimum(rng.poisson(np.array([k[4] for k in kinds])[types]), 2)
    lo, hi = np.array([k[5][0] for k in kinds])[types], np.array([k[5][1] for k in kinds])[types]
    birth = lo + rng.integers(0, 100, n) % (hi - lo + 1)
    total = income * np.array([k[6] for k in kinds])[types] * np.exp(rng.normal(0, 0.3, n))
    comp = np.array([rng.dirichlet(40 * np.asarray(kinds[t][7])) for t in types])
    spend = np.round(total[:, None] * comp)
    n_purchases = np.maximum(1, np.round(total / 60 + rng.poisson(3, n)))
    web_share = np.array([0.3, 0.45, 0.4, 0.25])[types]
    web = rng.binomial(n_purchases.astype(int), web_share)
    catalog = rng.binomial((n_purchases - web).astype(int), np.array([0.4, 0.1, 0.2, 0.5])[types])
    store = n_purchases - web - catalog
    deals = rng.poisson(np.array([1.0, 3.5, 4.0, 1.5])[types])
    enrolled = pd.Timestamp("2012-07-30") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    ids = _ids(n, 1_001)
    income_col = income.astype(float)
    income_col[rng.random(n) < 0.01] = np.nan
    edu_p = np.array([[0.02, 0.45, 0.25, 0.28], [0.1, 0.6, 0.2, 0.1], [0.03, 0.5, 0.2, 0.27], [0.02, 0.5, 0.3, 0.18]])
    education = np.array(["Basic", "Graduation", "Master", "PhD"])[
        (rng.random(n)[:, None] > np.cumsum(edu_p[types], axis=1)).sum(axis=1).clip(max=3)]
    single = np.where(types == 3, 0.8, 0.25)
    marital = np.where(rng.random(n) < single, rng.choice(["Single", "Divorced"], n),
                       rng.choice(["Married", "Together"], n))
    data = pd.DataFrame({
        "customer_id": ids, "year_of_birth": birth, "education": education, "marital_status": marital,
        "income": income_col, "kids_home": kids, "teens_home": teens,
        "enrolled_on": enrolled.strftime("%d-%m-%Y"), "days_since_purchase": rng.integers(0, 100, n),
        **{g: spend[:, i].astype(int) for i, g in enumerate(groups)},
        "n_deal_purchases": deals, "n_web_purchases": web, "n_catalog_purchases": catalog,
        "n_store_purchases": store.astype(int), "web_visits_month": rng.poisson(np.array([3, 7, 6, 4])[types]),
        "accepted_offer": (rng.random(n) < 0.1).astype(int), "complained": (rng.random(n) < 0.01).astype(int),
    })
    shares = spend / np.maximum(spend.sum(axis=1, keepdims=True), 1)
    oracle = pd.DataFrame(np.column_stack([income / 10_000, np.log1p(spend.sum(axis=1)), kids + teens,
                                           2024 - birth, shares]),
                          index=ids.astype(str), columns=["income", "log_total", "household", "age", *groups])
    return Population("table", data, _truth(ids, types, [k[0] for k in kinds]), oracle)


def subscription_table(n: int, seed: int) -> Population:
    """A subscription account table (telecom-like): four plans of use, many yes/no and small-count columns.

    Types differ in monthly charge, tenure and data use (log-normal, moderately
    separated). Three yes/no columns (paperless billing weakly tied to the type,
    partner and senior independent of it) and two small counts (lines on the
    account, weakly tied; support calls, Poisson with a type-dependent mean below
    one and a half) make a lattice of a few hundred cells, plus a contract column
    whose mix depends on the type. Defined by charge, tenure and data use.
    """
    rng = np.random.default_rng(seed)
    # name, share, charge, tenure months (gamma mean), data GB, p paperless, mean extra lines, support-call mean,
    # contract mix (monthly, one year, two years)
    kinds = [
        ("long_standing_basic", 0.35, 25.0, 48.0, 1.5, 0.45, 0.3, 0.4, (0.3, 0.35, 0.35)),
        ("new_heavy_data", 0.25, 70.0, 8.0, 25.0, 0.65, 0.4, 1.2, (0.8, 0.15, 0.05)),
        ("family_bundles", 0.25, 95.0, 30.0, 9.0, 0.55, 1.6, 0.8, (0.4, 0.3, 0.3)),
        ("budget_short", 0.15, 20.0, 5.0, 0.6, 0.55, 0.1, 0.6, (0.9, 0.08, 0.02)),
    ]
    types = assign_types(n, [k[1] for k in kinds], rng)
    charge = np.exp(np.log(np.array([k[2] for k in kinds])[types]) + rng.normal(0, 0.22, n))
    tenure = np.ceil(rng.gamma(3.0, np.array([k[3] for k in kinds])[types] / 3.0))
    data_gb = np.exp(np.log(np.array([k[4] for k in kinds])[types]) + rng.normal(0, 0.45, n))
    paperless = rng.random(n) < np.array([k[5] for k in kinds])[types]
    lines = 1 + np.minimum(rng.poisson(np.array([k[6] for k in kinds])[types]), 3)
    calls = rng.poisson(np.array([k[7] for k in kinds])[types])
    mix = np.cumsum(np.array([k[8] for k in kinds])[types], axis=1)
    contract = np.array(["month_to_month", "one_year", "two_year"])[(rng.random(n)[:, None] > mix).sum(axis=1).clip(max=2)]
    ids = _ids(n, 1_500_001)
    data = pd.DataFrame({
        "customerID": ids,
        "monthly_charge": charge.round(2),
        "tenure_months": tenure.astype(int),
        "data_gb_month": data_gb.round(2),
        "paperless_billing": np.where(paperless, "Yes", "No"),
        "has_partner": np.where(rng.random(n) < 0.5, "Yes", "No"),
        "senior": (rng.random(n) < 0.16).astype(int),
        "lines": lines,
        "support_calls": calls,
        "contract": contract,
    })
    oracle = pd.DataFrame({"charge": np.log(charge), "tenure": np.log(tenure), "data": np.log(data_gb)},
                          index=ids.astype(str))
    return Population("table", data, _truth(ids, types, [k[0] for k in kinds]), oracle)


def overlap_table(n: int, seed: int) -> Population:
    """A table of six heavily overlapping Gaussian types seen through skewing transforms.

    Centres lie within about 1.5 standard deviations of each other in four latent
    dimensions; the columns are log-normal spend and sessions, Poisson tickets and
    a logistic discount rate, plus a plan column weakly tied to the type.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1.4, 1.4, (6, 4))
    types = assign_types(n, [0.3, 0.2, 0.15, 0.15, 0.1, 0.1], rng)
    z = centres[types] + rng.normal(0, 0.5, (n, 4))
    tickets = rng.poisson(np.exp(0.6 * z[:, 2]))
    plan_p = np.where(types % 2 == 0, 0.6, 0.4)
    ids = _ids(n, 1_200_001)
    data = pd.DataFrame({
        "account_id": ids,
        "monthly_spend": np.exp(4 + 0.5 * z[:, 0]).round(2),
        "sessions_per_week": np.exp(1 + 0.5 * z[:, 1]).round(2),
        "support_tickets": tickets,
        "discount_rate": (1 / (1 + np.exp(-z[:, 3]))).round(4),
        "plan": np.where(rng.random(n) < plan_p, "basic", "plus"),
    })
    oracle = pd.DataFrame({"spend": z[:, 0], "sessions": z[:, 1], "tickets": np.log1p(tickets),
                           "discount": np.log(data["discount_rate"] / (1 - data["discount_rate"]))},
                          index=ids.astype(str))
    return Population("table", data, _truth(ids, types, [f"type_{i}" for i in range(6)]), oracle)


def _family(generate, half: str, structure: str, k: int | None, small: int, default: int, large: int) -> Family:
    doc = " ".join((generate.__doc__ or "").split())
    return Family(generate.__name__, half, structure, doc, generate,
                  {"k": k, "small": small, "default": default, "large": large})


#: Every family, with its half, structure, true k and sizes (small / default / large).
FAMILIES: tuple[Family, ...] = (
    _family(demo, "A", "clear", 8, 2_000, 20_000, 1_000_000),
    _family(btyd_personas, "A", "overlap", 4, 2_000, 20_000, 1_000_000),
    _family(engagement_only, "A", "clear", 5, 2_000, 20_000, 500_000),
    _family(journey_only, "A", "clear", 5, 2_000, 10_000, 200_000),
    _family(micro_segments, "A", "clear", 5, 4_000, 30_000, 1_000_000),
    _family(household_table, "A", "clear", 4, 1_000, 2_240, 100_000),
    _family(no_structure, "A", "none", None, 2_000, 10_000, 200_000),
    _family(subscription_table, "A", "clear", 4, 2_000, 20_000, 200_000),
    _family(bgnbd_overlap, "B", "overlap", 3, 2_000, 20_000, 1_000_000),
    _family(affinity_only, "B", "clear", 6, 2_000, 10_000, 200_000),
    _family(latent_k10, "B", "clear", 10, 3_000, 20_000, 1_000_000),
    _family(noise_table, "B", "clear", 3, 500, 500, 100_000),
    _family(online_retail, "B", "clear", 6, 1_500, 5_000, 100_000),
    _family(overlap_table, "B", "overlap", 6, 2_000, 50_000, 1_000_000),
)


def family(name: str) -> Family:
    """The family called ``name``."""
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(f"no family {name!r}; families: {', '.join(f.name for f in FAMILIES)}")
