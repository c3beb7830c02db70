"""``python -m bench.quality.nulls``: the structure verdict on populations without clusters.

The acceptance check "a population without cluster structure is reported as weak" is
made on populations segwise has not seen, so this runs five generators written from
other assumptions than `bench.quality.families.no_structure` (docs/quality.md,
thirteenth pass). Each draws every customer from one population; none has types:

- ``mixed_table``: a customer table with log-normal income and two spends, uniform
  birth years, Poisson children (mean 0.6) and visits (5) and a 5% yes/no flag;
- ``uniform_table``: three uniform columns;
- ``gaussian_table``: four correlated Gaussian traits, two of them exponentiated;
- ``one_order_log``: every customer buys once, on a uniform day, a log-normal amount;
- ``uniform_rates_log``: purchase rate, first day and basket uniform per customer,
  five categories at random.

Every run is `segwise.segment` with no options (``customers=`` for a table); the
record lists its k, verdict and structure margin. Options: ``--customers N`` (default
2,000), ``--seeds S`` (seeds 0..S-1, default 3), ``--label NAME``. Results:
``bench/results/quality-nulls[-NAME]-<customers>-<date>-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any, Callable

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bench.quality.common import Population
from bench.quality.measure import run_segwise
from bench.results import describe_machine, machine_sentence, record_named

__all__ = ["GENERATORS", "main"]

_START = pd.Timestamp("2024-01-01")


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    """Income, spends, birth years, counts and a rare flag, all independent."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": np.arange(n), "income": np.round(np.exp(rng.normal(10.8, 0.4, n))),
        "birth_year": rng.integers(1945, 2003, n), "kids": rng.poisson(0.6, n), "visits": rng.poisson(5, n),
        "spend_food": np.round(np.exp(rng.normal(5, 0.8, n)), 2),
        "spend_wine": np.round(np.exp(rng.normal(4, 1.0, n)), 2),
        "complained": (rng.random(n) < 0.05).astype(int)})


def uniform_table(n: int, seed: int) -> pd.DataFrame:
    """Three independent uniform columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": np.arange(n), "score": rng.uniform(0, 100, n),
                         "age_band_mid": rng.uniform(18, 80, n), "share_online": rng.uniform(0, 1, n)})


def gaussian_table(n: int, seed: int) -> pd.DataFrame:
    """Four correlated Gaussian traits; spend and visits seen through exponentials."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(4), np.eye(4) * 0.7 + 0.3, n)
    return pd.DataFrame({"customer_id": np.arange(n), "spend": np.round(np.exp(z[:, 0] + 5), 2),
                         "visits": np.round(np.exp(z[:, 1] / 2 + 2)), "tenure_months": np.round(30 + 8 * z[:, 2]),
                         "satisfaction": np.round(z[:, 3] * 10 + 60, 1)})


def one_order_log(n: int, seed: int) -> pd.DataFrame:
    """One order per customer on a uniform day of a year, a log-normal amount."""
    rng = np.random.default_rng(seed)
    day = _START + pd.to_timedelta(rng.uniform(0, 365, n), unit="D")
    return pd.DataFrame({"customer_id": np.arange(n), "order_date": day.floor("s"),
                         "amount": np.round(np.exp(rng.normal(3.5, 0.6, n)), 2)})


def uniform_rates_log(n: int, seed: int) -> pd.DataFrame:
    """Uniform purchase rates, first days and baskets; orders uniform in each customer's active time."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.002, 0.05, n)
    start = rng.uniform(0, 300, n)
    counts = 1 + rng.poisson(rate * (365 - start))
    customer = np.repeat(np.arange(n), counts)
    days = start[customer] + rng.uniform(0, 1, len(customer)) * (365 - start[customer])
    basket = rng.uniform(10, 200, n)
    return pd.DataFrame({
        "customer_id": customer, "order_date": (_START + pd.to_timedelta(days, unit="D")).floor("s"),
        "amount": np.round(basket[customer] * np.exp(rng.normal(0, 0.2, len(customer))), 2),
        "category": rng.choice(list("ABCDE"), len(customer))})


#: Each generator and whether it makes a customer table (else an order log).
GENERATORS: dict[str, tuple[Callable[[int, int], pd.DataFrame], bool]] = {
    "mixed_table": (mixed_table, True), "uniform_table": (uniform_table, True),
    "gaussian_table": (gaussian_table, True), "one_order_log": (one_order_log, False),
    "uniform_rates_log": (uniform_rates_log, False),
}


def run(name: str, customers: int, seed: int) -> dict[str, Any]:
    """segwise with no options on one population (`bench.quality.measure.run_segwise`); its k, verdict and margin."""
    generate, table = GENERATORS[name]
    data = generate(customers, seed)
    # No types, so no truth and no oracle: only the verdict is measured.
    result = run_segwise(Population("table" if table else "log", data, pd.Series(dtype=object), None), seed=0)
    return {"population": name, "seed": seed, "k": result["k"], "verdict": result["structure"],
            "margin": result["structure_margin"], "defined_by": result["defined_by"]}


def render(record: dict[str, Any]) -> str:
    rows = record["runs"]
    weak = sum(r["verdict"] == "weak" for r in rows)
    lines = [f"# structure verdict on populations without clusters, {record['customers']:,} customers, {record['date']}",
             "", machine_sentence(record["machine"]) + ".", "",
             "`python -m bench.quality.nulls`: `segwise.segment` with no options; every population has no types, "
             "so every verdict should be weak.", "",
             "| population | seed | k | verdict | margin |", "|---|---:|---:|---|---:|"]
    lines += [f"| {r['population']} | {r['seed']} | {r['k']} | {r['verdict']} | {r['margin']} |" for r in rows]
    lines += ["", f"Weak on {weak} of {len(rows)} runs."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality.nulls", description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--label", default=None)
    args = parser.parse_args(argv)
    runs = []
    with threadpool_limits(1):
        for name in GENERATORS:
            for seed in range(args.seeds):
                runs.append(run(name, args.customers, seed))
                print(f"{name} seed {seed}: {runs[-1]['verdict']} ({runs[-1]['margin']})", file=sys.stderr, flush=True)
    record = {"customers": args.customers, "seeds": args.seeds, "date": date.today().isoformat(),
              "machine": describe_machine(), "runs": runs}
    markdown = render(record)
    print(markdown)
    label = f"-{args.label}" if args.label else ""
    record_named(f"quality-nulls{label}-{args.customers}", record, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
