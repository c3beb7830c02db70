"""``python -m bench.quality.overdue``: does recency relative to the customer's own buying interval help?

online_retail's regular buyers are split across its lapsed and one-off types:
days since the last order mean different things for a customer who buys every
week and one who buys twice a year. The candidate column is the **overdue
ratio**: days since the last order over the customer's own mean interval between
orders ((tenure - recency) / (orders - 1), at least one day); a customer with one
order has no interval of their own and is measured against the median interval
of the repeat buyers. It enters as ``log1p``, standardised and scaled like the
other prepared columns (their median standard deviation).

Measured outside segwise's feature code (another change owns it): for every
order-log family, segwise runs with no flags and the matrix its k-means clusters
is kept (`bench.quality.kchoice.defining_rows`); `segwise.cluster.KMeansSegmenter`
with its defaults (the margin rule and the over-split check) is fitted on that
matrix without and with the column, and both are scored (ARI against the planted
types, chosen k). Customer tables have no order log: they keep segwise's result.
Results: ``bench/results/quality-overdue-<size>-<date>-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from bench.quality.common import order_summaries
from bench.quality.families import FAMILIES
from bench.quality.kchoice import defining_rows
from bench.results import describe_machine, machine_sentence, record_named

__all__ = ["overdue_ratio", "demo_check", "main"]


#: The ways of computing the ratio that are measured: ``raw`` (sixth pass: the customer's own
#: interval as observed, one-order customers at the repeat buyers' median) and ``shrunk``
#: (segwise's `segwise.defining_columns.overdue_ratio`: the interval pulled toward the
#: population's by a gamma prior on buying rates, by the number of intervals it rests on).
VARIANTS = ("raw", "shrunk", "weighted")
#: ``weighted``: the raw ratio, its column weighted by the square root of the intervals'
#: reliability (`segwise.features.shrink.interval_reliability`), as order shares are.


def overdue_ratio(lines: pd.DataFrame, variant: str = "raw") -> pd.Series:
    """``log1p`` of days since the last order over the customer's own mean interval (index: customer id, text)."""
    summary = order_summaries(lines)
    orders = np.expm1(summary["log_orders"]).round()
    recency = summary["recency_days"].astype(float)
    if variant == "shrunk":
        from segwise.defining_columns import overdue_ratio as segwise_ratio

        rfm = pd.DataFrame({"recency_days": recency, "tenure_days": summary["tenure_days"].astype(float),
                            "n_orders": orders}, index=summary.index)
        return np.log1p(segwise_ratio(rfm)[0])
    if variant not in ("raw", "weighted"):
        raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")
    repeat = orders >= 2
    interval = ((summary["tenure_days"] - recency) / (orders - 1)).where(repeat).clip(lower=1.0)
    typical = float(interval[repeat].median()) if repeat.any() else 1.0
    return np.log1p(recency / interval.fillna(typical))


def _fit(X: np.ndarray, seed: int) -> tuple[np.ndarray, int, str]:
    from segwise.cluster import KMeansSegmenter

    model = KMeansSegmenter(random_state=seed).fit(X)
    return model.labels_, int(model.n_segments_), model.selection_.structure["verdict"]


def measure(fam, size: str, seed: int, variant: str = "raw") -> dict[str, Any]:
    """One family: segwise's defining matrix clustered without and with the overdue ratio."""
    pop = fam.generate(fam.sizes[size], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X, truth, ids = defining_rows(pop, seed)
    known = pd.notna(truth)
    row: dict[str, Any] = {"family": fam.name, "half": fam.half, "structure": fam.structure, "true_k": fam.true_k,
                           "customers": int(len(X))}
    labels, k, verdict = _fit(X, seed)
    row["without"] = {"k": k, "ari": round(float(adjusted_rand_score(truth[known], labels[known])), 4),
                      "structure": verdict}
    if pop.kind != "log" or pop.lines is None:
        row["with"] = dict(row["without"])
        row["applies"] = False
        return row
    extra = overdue_ratio(pop.lines, variant).reindex(ids)
    extra = extra.fillna(float(extra.median())).to_numpy()
    scale = float(np.median(X.std(axis=0)))
    if variant == "weighted":
        from segwise.features.shrink import interval_reliability

        summary = order_summaries(pop.lines)
        orders = np.expm1(summary["log_orders"]).round()
        reliability = interval_reliability((summary["tenure_days"] - summary["recency_days"]).to_numpy(float),
                                           (orders - 1).to_numpy(float))
        row["reliability"] = round(reliability, 3)
        scale *= np.sqrt(reliability)
    column = (extra - extra.mean()) / (extra.std() or 1.0) * scale
    labels, k, verdict = _fit(np.column_stack([X, column]), seed)
    row["with"] = {"k": k, "ari": round(float(adjusted_rand_score(truth[known], labels[known])), 4),
                   "structure": verdict}
    row["applies"] = True
    return row


def _summary(rows: list[dict[str, Any]], half: str, key: str) -> dict[str, Any]:
    scored = [r for r in rows if r["half"] == half and r["true_k"] is not None]
    clear = [r for r in scored if r["structure"] == "clear"]
    return {"mean_ari": round(float(np.mean([r[key]["ari"] for r in scored])), 3),
            "mean_ari_clear": round(float(np.mean([r[key]["ari"] for r in clear])), 3),
            "within_one": f"{sum(abs(r[key]['k'] - r['true_k']) <= 1 for r in scored)}/{len(scored)}"}


def render(record: dict[str, Any]) -> str:
    lines = [f"# overdue ratio (recency over the customer's own interval), variant {record.get('variant', 'raw')}, "
             f"size {record['size']}, {record['date']}",
             "", machine_sentence(record["machine"]) + f". Seed {record['seed']}; {record['seconds']:.0f} s.", "",
             "segwise's defining matrix clustered by `KMeansSegmenter` (defaults) without and with the overdue "
             "ratio (`python -m bench.quality.overdue`).", "",
             "| family | half | true k | k without | ARI without | structure | k with | ARI with | structure |",
             "|---|---|---:|---:|---:|---|---:|---:|---|"]
    for r in record["families"]:
        same = "" if r["applies"] else " (table: not applicable)"
        lines.append(f"| {r['family']}{same} | {r['half']} | {r['true_k'] or '–'} | {r['without']['k']} | "
                     f"{r['without']['ari']:.3f} | {r['without']['structure']} | {r['with']['k']} | {r['with']['ari']:.3f} | "
                     f"{r['with']['structure']} |")
    lines += ["", "| half | mean ARI (structured) without → with | clear families | k within ±1 |", "|---|---|---|---|"]
    for half, s in record["summary"].items():
        lines.append(f"| {half} | {s['without']['mean_ari']} → {s['with']['mean_ari']} | "
                     f"{s['without']['mean_ari_clear']} → {s['with']['mean_ari_clear']} | "
                     f"{s['without']['within_one']} → {s['with']['within_one']} |")
    return "\n".join(lines) + "\n"


def _measure_logged(fam, size: str, seed: int, variant: str) -> dict[str, Any]:
    print(f"{fam.name} ...", file=sys.stderr, flush=True)
    r = measure(fam, size, seed, variant)
    print(f"  without k={r['without']['k']} ARI={r['without']['ari']} {r['without']['structure']}  "
          f"with k={r['with']['k']} ARI={r['with']['ari']} {r['with']['structure']}", file=sys.stderr, flush=True)
    return r


def demo_check(customers: int = 50_000) -> int:
    """The demo population (``segwise demo``'s, seed 0): the default definition against the overdue family's."""
    import os

    import segwise
    from segwise.synth import generate_population

    started = time.perf_counter()
    population = generate_population(customers, seed=0)
    load = os.getloadavg()
    default = segwise.segment(population.orders, random_state=0)
    overdue = segwise.segment(population.orders, random_state=0, features=["rfm", "affinity", "overdue"])
    a = default.assignments.set_index("customer_id").sort_index()["segment_id"]
    b = overdue.assignments.set_index("customer_id").sort_index()["segment_id"]
    record = {"date": date.today().isoformat(), "machine": describe_machine(), "customers": customers, "seed": 0,
              "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()],
              "segments_default": int(default.n_segments), "segments_overdue": int(overdue.n_segments),
              "ari_default_vs_overdue": round(float(adjusted_rand_score(a, b)), 4),
              "overdue_dropped_by_preparation": overdue.segmenter.preprocessor_.report_["dropped"].get("overdue_ratio"),
              "overdue_prior": overdue.segmenter.overdue_prior_.to_dict(),
              "seconds": round(time.perf_counter() - started, 1)}
    markdown = (f"# demo population, {customers:,} customers seed 0: default definition against "
                "features=rfm,affinity,overdue\n\n"
                + "\n".join(f"- {k}: {v}" for k, v in record.items() if k != "machine") + "\n")
    paths = record_named("quality-overdue-demo50k" if customers == 50_000 else f"quality-overdue-demo{customers}",
                         record, markdown)
    print(paths[1].read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Measure every family without and with the overdue ratio; record the results."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality.overdue", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("small", "default"), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, default="raw",
                        help="how the ratio is computed (raw: the sixth pass; shrunk: segwise's, with the interval prior)")
    parser.add_argument("--demo", type=int, default=None, metavar="CUSTOMERS",
                        help="instead: the demo population at CUSTOMERS (50000 as segwise demo), default "
                             "definition against features=rfm,affinity,overdue")
    args = parser.parse_args(argv)
    if args.demo is not None:
        return demo_check(args.demo)
    started = time.perf_counter()
    with threadpool_limits(1):
        rows = [_measure_logged(fam, args.size, args.seed, args.variant) for fam in FAMILIES]
    summary = {half: {key: _summary(rows, half, key) for key in ("without", "with")} for half in ("A", "B")}
    record = {"size": args.size, "variant": args.variant, "date": date.today().isoformat(), "seed": args.seed, "machine": describe_machine(),
              "seconds": round(time.perf_counter() - started, 1), "families": rows, "summary": summary}
    # The raw variant keeps the sixth pass's record name.
    name = f"quality-overdue-{args.size}" + ("" if args.variant == "raw" else f"-{args.variant}")
    paths = record_named(name, record, render(record))
    print(paths[1].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
