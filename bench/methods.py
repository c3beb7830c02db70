"""Benchmark: every segmentation method's fit and assign time at a given number of customers.

For each size, a synthetic population is generated (seeded) and its feature table
built once (cached under ``--cache``); then, for every method, the time of

- ``fit``: `segwise.Segmenter(method=NAME).fit(features)` (preparation, clustering
  with the method's own choice of k or density, ordering, profiles, names);
- ``assign``: ``segmenter.assign(features)`` of every customer (segment, name,
  confidence), as ``segwise assign`` does after computing features;

plus the adjusted Rand index against the planted behaviour types (a sanity check,
not a target: density, mixture and composite methods are not meant to reproduce
them), the number of segments and the peak resident memory of the process.
``--kinds cli`` runs ``segwise run --method NAME`` end to end (load, features,
segment, save) on the population's files and records its wall time.

Each method runs in its own subprocess (so one method's memory does not count for
the next, and a crash is recorded instead of ending the benchmark), with one
BLAS/OpenMP thread per process unless ``--threads`` says otherwise.

Usage::

    python bench/methods.py --sizes 100000,1000000 --out bench/results/methods.json
    python bench/methods.py --sizes 100000 --kinds python,cli --methods kmeans,dbscan
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import busy_share_since, machine_busy_seconds  # noqa: E402
from bench.results import describe_machine  # noqa: E402

METHODS = ("kmeans", "hierarchical", "dbscan", "hdbscan", "gmm", "som", "kprototypes", "two_stage", "multiview",
           "autoencoder", "auto")

#: Methods given the customer table too: k-prototypes needs its categorical columns.
WITH_CUSTOMERS = {"kprototypes"}


def _population_files(n: int, cache: Path, seed: int = 0) -> dict[str, Path]:
    """orders/customers Parquet files and the truth of a synthetic population (generated once)."""
    directory = cache / f"pop-{n}-{seed}"
    paths = {"orders": directory / "orders.parquet", "customers": directory / "customers.parquet",
             "truth": directory / "truth.parquet"}
    if not all(p.exists() for p in paths.values()):
        import segwise

        population = segwise.generate_population(n, seed=seed)
        directory.mkdir(parents=True, exist_ok=True)
        population.write(directory, "parquet")
    return paths


def _features(n: int, cache: Path, with_customers: bool):
    import pandas as pd

    import segwise
    from segwise.features import FeatureTable

    paths = _population_files(n, cache)
    name = "features-customers" if with_customers else "features"
    file = paths["orders"].parent / f"{name}.parquet"
    meta = paths["orders"].parent / f"{name}.json"
    if not file.exists():
        tx = segwise.load_transactions(str(paths["orders"]))
        customers = segwise.load_customers(str(paths["customers"])) if with_customers else None
        table = segwise.build_features(tx, customers=customers)
        table.frame.to_parquet(file)
        meta.write_text(json.dumps({"columns": {c: d.to_dict() for c, d in table.columns.items()},
                                    "as_of": str(table.as_of), "spec": table.spec.to_dict()}))
    frame = pd.read_parquet(file)
    info = json.loads(meta.read_text())
    from segwise.features import FeatureSpec
    from segwise.features.base import FeatureColumn

    table = FeatureTable(frame=frame, columns={c: FeatureColumn(**d) for c, d in info["columns"].items()},
                         as_of=pd.Timestamp(info["as_of"]).date(), spec=FeatureSpec.from_dict(info["spec"]))
    truth = pd.read_parquet(paths["truth"]).set_index("customer_id")["behaviour_type"]
    return table, truth.reindex(frame.index.astype(str)).to_numpy()


def _peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (``VmHWM``).

    Not ``ru_maxrss``: Linux keeps that across ``execve``, so a child started by a
    parent that had built a large feature table would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_one(method: str, n: int, cache: Path) -> dict:
    """Fit and assign one method in this process (called in a subprocess by `main`)."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    import segwise

    table, truth = _features(n, cache, method in WITH_CUSTOMERS)
    started = time.perf_counter()
    segmenter = segwise.Segmenter(method=method, random_state=0).fit(table)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assigned = segmenter.assign(table)
    assign_seconds = time.perf_counter() - started
    details = segmenter.method_details_
    notes = {}
    for key in ("tree", "fit_sample_size", "sampled", "kmodes_fit_sample_size", "train_sample_size", "chosen"):
        if key in details:
            notes[key] = details[key]
    return {
        "method": method, "n_customers": int(len(table.frame)), "fit_seconds": round(fit_seconds, 2),
        "assign_seconds": round(assign_seconds, 2), "n_segments": int(segmenter.n_segments_),
        "ari_vs_planted_types": round(float(adjusted_rand_score(truth, segmenter.labels_)), 4),
        "assign_equals_fit": round(float(np.mean(assigned["segment_id"].to_numpy() == segmenter.labels_)), 5),
        "peak_rss_mb": round(_peak_rss_bytes() / 2**20, 1),
        "notes": notes,
    }


def run_cli(method: str, n: int, cache: Path) -> dict:
    """``segwise run --method NAME`` on the population files; wall time and exit code."""
    paths = _population_files(n, cache)
    segwise_bin = Path(sys.executable).parent / "segwise"
    with tempfile.TemporaryDirectory(prefix="segwise-bench-") as out:
        args = [str(segwise_bin), "run", str(paths["orders"]), "--method", method, "--out", out, "--no-store"]
        if method in WITH_CUSTOMERS:
            args[3:3] = ["--customers", str(paths["customers"])]
        started = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        run = json.loads((Path(out) / "run.json").read_text()) if proc.returncode == 0 else {}
    return {"method": method, "n_customers": n, "cli_seconds": round(seconds, 1), "exit_code": proc.returncode,
            "n_segments": run.get("n_segments"), "stage_seconds": run.get("timings"),
            "error": proc.stderr.strip()[-500:] if proc.returncode else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="Comma-separated numbers of customers.")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--kinds", default="python",
                        help="python (fit + assign in Python) and/or cli (`segwise run --method NAME` end to end).")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "segwise-bench-cache"))
    parser.add_argument("--threads", default="1", help="OMP/BLAS threads per method process.")
    parser.add_argument("--out", default=None, help="JSON file to append the results to.")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--one-cli", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    # One method in this process: the result goes to a file (DuckDB may draw progress bars on stdout).
    if args.one:
        Path(args.result_file).write_text(json.dumps(run_one(args.one[0], int(args.one[1]), cache)))
        return 0
    if args.one_cli:
        Path(args.result_file).write_text(json.dumps(run_cli(args.one_cli[0], int(args.one_cli[1]), cache)))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=args.threads, OPENBLAS_NUM_THREADS=args.threads,
               MKL_NUM_THREADS=args.threads)
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        for with_customers in (False, True):
            _features(n, cache, with_customers)  # built once, outside the timings
        for method in args.methods.split(","):
            kinds = args.kinds.split(",")
            for flag in (["--one"] if "python" in kinds else []) + (["--one-cli"] if "cli" in kinds else []):
                result_file = cache / "result.json"
                result_file.unlink(missing_ok=True)
                busy_before, started = machine_busy_seconds(), time.perf_counter()
                proc = subprocess.run([sys.executable, __file__, flag, method, str(n), "--cache", str(cache),
                                       "--result-file", str(result_file)], capture_output=True, text=True, env=env)
                busy_share = busy_share_since(busy_before, time.perf_counter() - started)
                if proc.returncode == 0:
                    record = json.loads(result_file.read_text())
                else:
                    record = {"method": method, "n_customers": n, "kind": flag, "failed": True,
                              "error": proc.stderr.strip()[-800:]}
                record["kind"] = "cli" if flag == "--one-cli" else "python"
                # Share of both CPUs busy during the run, this method's process included.
                record["machine_busy_share"] = busy_share
                print(json.dumps(record), flush=True)
                results.append(record)
    if args.out:
        out = Path(args.out)
        existing = json.loads(out.read_text()) if out.exists() else []
        existing.append({
            "benchmark": "methods", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": describe_machine(), "threads_per_process": args.threads,
            "note": ("machine_busy_share is the share of the CPUs busy during each run, the method's own "
                     "process included: with one thread per process, much above 0.5 means other work shared "
                     "the machine"),
            "results": results,
        })
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(existing, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
