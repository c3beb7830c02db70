"""Benchmark: bootstrap stability (B refits of the whole pipeline) on a synthetic population.

    .venv/bin/python bench/stability.py --customers 1000000 --bootstrap 20 --n-jobs 2

Builds the features of a synthetic population once (not part of the stability
time), fits the default `Segmenter` (automatic number of segments), computes the
validation report, then `bootstrap_stability` with B refits. Writes one JSON record
per run to bench/results/stability-<customers>-<date>.json: machine, load average
before and after (the machine may be shared), seconds of every stage, peak memory
(resident set of this process and of its workers) and the stability found.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# Run as a script (python bench/NAME.py): the repository root makes `bench` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results import describe_machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _peak_rss_mib() -> dict:
    return {
        "this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "largest_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import segwise
    from segwise.stability import bootstrap_stability
    from segwise.validate import validation_report

    record: dict = {
        "benchmark": "bootstrap stability",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "load_average_before": os.getloadavg(),
        "customers_requested": args.customers,
        "B": args.bootstrap,
        "n_jobs": args.n_jobs,
        "seed": args.seed,
        "segwise_version": segwise.__version__,
        "seconds": {},
    }
    seconds = record["seconds"]

    started = time.perf_counter()
    population = segwise.generate_population(args.customers, seed=args.seed)
    transactions = segwise.load_transactions(population.orders)
    features = segwise.build_features(transactions)
    seconds["data_and_features"] = round(time.perf_counter() - started, 1)
    record["customers"] = len(features.frame)
    record["order_lines"] = population.orders.num_rows

    started = time.perf_counter()
    segmenter = segwise.Segmenter(random_state=args.seed).fit(features)
    seconds["reference_fit"] = round(time.perf_counter() - started, 1)
    record["n_segments"] = segmenter.n_segments_

    started = time.perf_counter()
    prepared = segmenter.preprocessor_.transform(features.frame)
    validation = validation_report(prepared, segmenter.labels_, clusterer=segmenter.clusterer_)
    seconds["validation_report"] = round(time.perf_counter() - started, 1)
    record["validation"] = {k: validation[k] for k in ("silhouette", "silhouette_ci", "silhouette_sample_size",
                                                       "davies_bouldin", "calinski_harabasz")}
    del prepared

    started = time.perf_counter()
    result = bootstrap_stability(segmenter, features, n_bootstrap=args.bootstrap, random_state=args.seed,
                                 n_jobs=args.n_jobs)
    seconds["bootstrap_stability"] = round(time.perf_counter() - started, 1)
    seconds["per_refit"] = round(seconds["bootstrap_stability"] / args.bootstrap, 1)
    stability = result.to_dict()
    record["stability"] = {k: stability[k] for k in ("ari_mean", "ari_ci", "ari_all_mean", "per_segment",
                                                     "unstable", "n_segments")}
    record["peak_rss_mib"] = _peak_rss_mib()
    record["load_average_after"] = os.getloadavg()

    out = args.out or RESULTS / f"stability-{args.customers}-{record['date'][:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    json.dump(record, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return record


if __name__ == "__main__":
    main()
