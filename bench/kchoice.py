"""Benchmark: is segwise's fast choice of k the choice an exhaustive computation makes?

Usage::

    .venv/bin/python -m bench.kchoice --size 10m        # 884,728 customers, 50k reference sample
    .venv/bin/python -m bench.kchoice --size quick

segwise chooses the number of segments over 2..12 fast: k-means candidates fitted
in float32 on at most 100,000 customers with few initialisations, the silhouette on
a fixed sample of 10,000 (`segwise.cluster.select`). The reference is what one would do
with time to spare, on a seeded sample of 50,000 customers of the same prepared
data: scikit-learn k-means in float64 with 10 initialisations for every k, and the
exact silhouette of all 50,000 (`sklearn.metrics.silhouette_score`, no sampling).
Both choose by the same rule (`segwise.cluster.select.CHOICE_RULE`). The benchmark records
both silhouette curves, both choices, and the time of segwise's choice on all
customers (``Segmenter.fit``, which includes preparing, refitting the chosen k on
everyone, profiles and names).

Results go to ``bench/results/kchoice-<size>-<date>-<machine>.{json,md}``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from bench.datasets import ensure_dataset, load_feature_table
from bench.results import describe_machine, machine_sentence, record_named, result_parser
from bench.sizes import SIZES

#: Customers in the exhaustive reference (the issue's "exhaustive computation on a 50k sample").
REFERENCE_SAMPLE = 50_000
#: k-means initialisations of the reference, per k.
REFERENCE_N_INIT = 10


def exhaustive_choice(prepared: np.ndarray, k_range: tuple[int, int], random_state: int = 0) -> dict[str, Any]:
    """Choose k on ``prepared`` the slow way: float64 k-means, 10 initialisations, exact silhouette.

    Returns
    -------
    dict
        ``candidates`` (k, inertia, silhouette), ``chosen``, ``reason`` and ``seconds``.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from segwise.cluster.select import _choose, knee_point

    started = time.perf_counter()
    candidates = []
    for k in range(k_range[0], k_range[1] + 1):
        model = KMeans(n_clusters=k, n_init=REFERENCE_N_INIT, random_state=random_state).fit(prepared)
        candidates.append({"k": k, "inertia": float(model.inertia_),
                           "silhouette": float(silhouette_score(prepared, model.labels_))})
    knee = knee_point([c["k"] for c in candidates], [c["inertia"] for c in candidates])
    chosen, reason = _choose(candidates, knee)
    return {"candidates": candidates, "chosen": chosen, "reason": reason,
            "seconds": round(time.perf_counter() - started, 1)}


def compare_choices(features, reference_sample: int = REFERENCE_SAMPLE, random_state: int = 0) -> dict[str, Any]:
    """Fit segwise's automatic k on ``features`` and the exhaustive reference on a sample of it."""
    import segwise
    from segwise.validate import sample_indices

    started = time.perf_counter()
    segmenter = segwise.Segmenter(random_state=random_state).fit(features)
    fit_seconds = time.perf_counter() - started
    selection = segmenter.selection_
    k_range = tuple(segmenter.k_range)
    prepared = np.asarray(segmenter.preprocessor_.transform(features.frame), dtype=np.float64)
    rows = sample_indices(len(prepared), reference_sample, random_state + 100)
    reference = exhaustive_choice(prepared[rows], k_range, random_state)
    return {
        "customers": len(features.frame),
        "reference_sample": int(len(rows)),
        "segwise": {"chosen": int(segmenter.n_segments_), "fit_seconds": round(fit_seconds, 1),
                    "reason": selection.reason,
                    "candidates": [{key: c[key] for key in ("k", "inertia", "silhouette", "fit_sample_size",
                                                            "silhouette_sample_size")}
                                   for c in selection.candidates]},
        "exhaustive": reference,
        "same_choice": int(segmenter.n_segments_) == reference["chosen"],
    }


def _markdown(record: dict[str, Any]) -> str:
    ours, reference = record["segwise"], record["exhaustive"]
    first = ours["candidates"][0]
    lines = [
        f"# Choice of k: segwise against an exhaustive computation, {record['size']} "
        f"({record['customers']:,} customers)",
        "",
        f"Measured {record['started']} on {machine_sentence(record['machine'])}.",
        "",
        f"- segwise (`Segmenter.fit`, {record['customers']:,} customers, {ours['fit_seconds']} s in all): "
        f"candidates fitted on {first['fit_sample_size']:,} customers, silhouette on "
        f"{first['silhouette_sample_size']:,}: **k = {ours['chosen']}** ({ours['reason']}).",
        f"- exhaustive ({record['reference_sample']:,} customers, float64 k-means with {REFERENCE_N_INIT} "
        f"initialisations, exact silhouette of all of them, {reference['seconds']} s): "
        f"**k = {reference['chosen']}** ({reference['reason']}).",
        f"- same choice: **{'yes' if record['same_choice'] else 'no'}**",
        "",
        "| k | silhouette, segwise | silhouette, exhaustive |",
        "|---|---|---|",
    ]
    exhaustive_by_k = {c["k"]: c for c in reference["candidates"]}
    for candidate in ours["candidates"]:
        lines.append(f"| {candidate['k']} | {candidate['silhouette']:.4f} | "
                     f"{exhaustive_by_k[candidate['k']]['silhouette']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = result_parser(__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=REFERENCE_SAMPLE, help="customers in the exhaustive reference")
    args = parser.parse_args(argv)
    dataset = ensure_dataset(SIZES[args.size])
    machine = describe_machine()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"size": args.size, "machine": machine, "started": started,
              **compare_choices(load_feature_table(dataset.directory), args.sample)}
    print(_markdown(record))
    if not args.no_record:
        record_named(f"kchoice-{args.size}", record, _markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
