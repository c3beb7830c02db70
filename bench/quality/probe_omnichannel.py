"""``python -m bench.quality.probe_omnichannel``: a probe population written after a decision, to check it.

Not one of the protocol's families (`bench.quality.families`): it was written on
2026-12-05, after the sampling check of the affinity columns had been decided on half
A (docs/quality.md, eleventh pass), to see the decision on a generator that had no part
in it. Seven omnichannel types differ in yearly purchase rate (gamma-Poisson), basket
(log-normal), channel mix (web, app, store) and how long they stay; every type draws
its categories (six) and its promotions (20% of orders) alike. Column names are not
segwise's (``user``, ``purchased_at``, ``total``, ``order_no``, ``promo``).

Prints the number of segments, the ARI against the planted types, the structure verdict
and the defining columns, per seed. To compare with another version of segwise, run it
with that version's ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

#: rate per year, basket, P(web), P(app), months active; and each type's share.
TYPES = [(2, 40, .8, .1, 24), (8, 60, .2, .7, 24), (20, 30, .1, .1, 24), (4, 200, .5, .2, 24),
         (6, 50, .6, .3, 8), (1, 25, .1, .1, 24), (12, 90, .45, .45, 14)]
SHARES = [.25, .2, .1, .1, .15, .12, .08]


def generate(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """The order log (one line per order) and every customer's planted type."""
    rng = np.random.default_rng(seed)
    types = rng.choice(len(TYPES), n, p=SHARES)
    rate, basket, p_web, p_app, months = (np.array([t[i] for t in TYPES], dtype=float)[types] for i in range(5))
    counts = 1 + rng.poisson(rate * months / 12 * rng.gamma(4, 0.25, n))
    customer = np.repeat(np.arange(n), counts)
    days = rng.uniform(0, (months * 30.4)[customer])
    channel_draw = rng.random(len(customer))
    channel = np.where(channel_draw < p_web[customer], "web",
                       np.where(channel_draw < (p_web + p_app)[customer], "app", "store"))
    log = pd.DataFrame({
        "user": np.char.add("u", customer.astype(str)),
        "purchased_at": np.datetime64("2024-01-01") + (days * 86400).astype("timedelta64[s]"),
        "total": np.round(np.exp(np.log(basket[customer]) + rng.normal(0, 0.5, len(customer))), 2),
        "channel": channel,
        "category": rng.choice(list("abcdef"), len(customer)),
        "promo": rng.random(len(customer)) < 0.2,
    })
    log["order_no"] = np.arange(len(log))
    return log, pd.Series(types, index=[f"u{i}" for i in range(n)])


def main(argv: list[str] | None = None) -> None:
    import segwise

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    for seed in [int(s) for s in args.seeds.split(",")]:
        log, truth = generate(args.n, seed)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            result = segwise.segment(log, random_state=0)
        labels = pd.Series(result.assignments["segment_id"].to_numpy(),
                           index=result.assignments["customer_id"].astype(str))
        common = truth.index.intersection(labels.index)
        ari = adjusted_rand_score(truth.loc[common], labels.loc[common])
        print(f"n={args.n} seed={seed}: k {result.n_segments} (true 7), ARI {ari:.3f}, "
              f"{result.run['selection']['structure']['verdict']}; defined by "
              f"{', '.join(result.model.segmenter.feature_columns_)}", flush=True)


if __name__ == "__main__":
    main()
