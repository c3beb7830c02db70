"""run.json payloads of other methods and validation steps, in the shapes documented in
`segwise.report.method_data` and `segwise.report.data`, built for a given run.

The dendrogram comes from a real scipy tree, truncated the way a hierarchical
method records it; the other payloads use the run's real segment ids and sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import linkage

from segwise.report.rundir import read_run_dir

PLAYBOOK_KEY_SEGMENT = 1


def segment_ids(run: dict[str, Any]) -> list[int]:
    return [s["segment_id"] for s in run["segments"]]


def dendrogram_payload(n_points: int = 80, n_merges: int = 12, seed: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """Top ``n_merges`` merges of a Ward tree of random points, and the full linkage matrix."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(5, 2))
    points = centres[rng.integers(0, 5, n_points)] + rng.normal(size=(n_points, 2))
    Z = linkage(points, "ward")
    m = n_points
    top = Z[m - 1 - n_merges:]
    created = set(range(m + (m - 1 - n_merges), 2 * m - 1))
    sizes = np.concatenate([np.ones(m), Z[:, 3]])
    truncated = {str(int(c)): float(sizes[int(c)]) for row in top for c in row[:2] if int(c) not in created}
    tree = {"n_leaves": m, "merges": [[int(a), int(b), float(h), float(s)] for a, b, h, s in top],
            "truncated": truncated}
    return tree, Z


def hierarchical_run(run: dict[str, Any]) -> dict[str, Any]:
    tree, _ = dendrogram_payload()
    return {"method": "hierarchical", "method_details": {
        "linkage": "ward", "tree": "exact", "dendrogram": tree,
        "levels": [{"n_segments": 3, "groups": 3, "mapping": []}],
    }}


def density_run(run: dict[str, Any]) -> tuple[dict[str, Any], dict[int, str]]:
    """DBSCAN details: the last segment is the Outliers group, the smallest other one a micro-segment."""
    segments = {s["segment_id"]: s for s in run["segments"]}
    outliers = max(segments)
    micro = min((s for s in segments if s != outliers), key=lambda s: segments[s]["customers"])
    details = {
        "parameters": {"eps": 0.8, "min_samples": 12},
        "n_clusters": len(segments) - 1,
        "noise_share": segments[outliers]["share_customers"],
        "micro_share": 0.05,
        "micro_segments": [{"segment_id": micro, "customers": segments[micro]["customers"],
                            "share_customers": segments[micro]["share_customers"]}],
        "outliers": {"segment_id": outliers, "customers": segments[outliers]["customers"]},
    }
    return {"method": "dbscan", "method_details": details, "selection": None}, {outliers: "Outliers"}


def mixture_run(run: dict[str, Any]) -> dict[str, Any]:
    ids = segment_ids(run)
    candidates = []
    for covariance, offset in (("full", 0.0), ("diag", 150.0)):
        for k in range(2, 7):
            candidates.append({"k": k, "covariance_type": covariance, "bic": 10_000.0 - 900 * k + 60 * k ** 2 + offset,
                               "silhouette": 0.3 + 0.01 * k})
    return {"method": "gmm", "method_details": {
        "covariance_type": "full", "bic": 7_000.0, "mean_max_probability": 0.91,
        "multi_segment": {"threshold": 0.3, "customers": 57, "share": 57 / run["n_customers"],
                          "pairs": [{"segment_ids": [ids[0], ids[1]], "customers": 40},
                                    {"segment_ids": [ids[1], ids[2]], "customers": 17}]},
    }, "selection": {"candidates": candidates, "chosen": len(ids), "knee": None,
                     "rule": "the lowest BIC over every k and covariance type",
                     "reason": f"k={len(ids)} with full covariance has the lowest BIC"}}


def som_details(run: dict[str, Any]) -> dict[str, Any]:
    rows, cols = 4, 6
    ids = segment_ids(run)
    rng = np.random.default_rng(3)
    node_segments = np.array([ids[(r * cols + c) * len(ids) // (rows * cols)] for r in range(rows) for c in range(cols)])
    planes = [rng.normal(size=(rows, cols)).round(4).tolist() for _ in run["prepared_columns"]]
    return {
        "map_shape": [rows, cols], "quantization_error": 0.42, "topographic_error": 0.031,
        "u_matrix": rng.uniform(0.1, 1.0, size=(rows, cols)).round(4).tolist(),
        "hits": rng.integers(0, 90, size=(rows, cols)).tolist(),
        "node_segments": node_segments.reshape(rows, cols).tolist(),
        "component_planes": planes,
    }


def multiview_details() -> dict[str, Any]:
    views = {
        "value": {"method": "kmeans", "n_segments": 2, "segment_names": {"0": "High value", "1": "Low value"}},
        "channel": {"method": "kmeans", "n_segments": 3,
                    "segment_names": {"0": "Web first", "1": "Store first", "2": "App first"}},
    }
    crosstab = [
        {"view_segments": [0, 0], "customers": 300, "share": 0.2, "kept": True, "segment_id": 0},
        {"view_segments": [0, 1], "customers": 150, "share": 0.1, "kept": True, "segment_id": 1},
        {"view_segments": [1, 0], "customers": 600, "share": 0.4, "kept": True, "segment_id": 2},
        {"view_segments": [1, 2], "customers": 450, "share": 0.3, "kept": True, "segment_id": 3},
    ]
    return {"views": views, "crosstab": crosstab}


def validation_payload(run_dir: Path) -> dict[str, Any]:
    """The run's real quality measures (scikit-learn on its prepared features), in the shape of issue 4."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples

    files = read_run_dir(run_dir)
    prepared = files.model.segmenter.preprocessor_.transform(files.features)
    labels = files.assignments["segment_id"].to_numpy()
    values = silhouette_samples(prepared, labels)
    ids = [int(s) for s in np.unique(labels)]
    return {
        "n_customers": len(labels), "n_segments": len(ids), "space": "prepared features",
        "silhouette": float(values.mean()), "silhouette_ci": [float(values.mean()) - 0.01, float(values.mean()) + 0.01],
        "silhouette_sample_size": len(labels), "silhouette_bootstrap": 200, "confidence": 0.95,
        "per_segment_silhouette": {str(s): float(values[labels == s].mean()) for s in ids},
        "per_segment_sampled": {str(s): int((labels == s).sum()) for s in ids},
        "davies_bouldin": float(davies_bouldin_score(prepared, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(prepared, labels)), "bic": None, "log_likelihood": None,
    }


def alignment_payload(run: dict[str, Any]) -> dict[str, Any]:
    """The last segment is new (its nearest previous one too far); previous segment 9 vanished."""
    segments = run["segments"]
    matches = []
    for i, s in enumerate(segments):
        kept = i < len(segments) - 1
        match = {"segment_id": s["segment_id"], "segment_name": s["segment_name"], "new_model_segment_id": i,
                 "previous_segment_id": s["segment_id"] if kept else None,
                 "previous_name": s["segment_name"] if kept else None,
                 "distance": 0.1 * (i + 1), "limit": 1.5, "status": "kept" if kept else "new"}
        if not kept:
            match.update(distance=2.25, nearest_previous_segment_id=9, nearest_previous_name="Lapsed bargain hunters")
        matches.append(match)
    return {"previous_model_id": "model-2024-q2", "method": "centroid", "match_ratio": 0.5, "matches": matches,
            "new_segments": [{"segment_id": segments[-1]["segment_id"], "segment_name": segments[-1]["segment_name"]}],
            "vanished_segments": [{"segment_id": 9, "segment_name": "Lapsed bargain hunters"}],
            "segment_id_high_water": 9, "rule": "segments matched one-to-one on centroid distance"}


def stability_payload(run: dict[str, Any]) -> dict[str, Any]:
    ids = segment_ids(run)
    per_segment = {str(s): round(0.95 - 0.08 * i, 3) for i, s in enumerate(ids)}
    return {
        "B": 20, "ari_mean": 0.87, "ari_ci": [0.8, 0.93], "threshold": 0.6,
        "per_segment": per_segment,
        "per_segment_ci": {k: [round(v - 0.05, 3), round(min(v + 0.04, 1.0), 3)] for k, v in per_segment.items()},
        "unstable": [s for s in ids if per_segment[str(s)] < 0.6],
        "by_k": {"candidates": [{"k": c["k"], "ari_mean": 0.9 - 0.02 * c["k"]}
                                for c in run["selection"]["candidates"]]},
    }


def drift_payload(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "training_as_of": run["as_of"],
        "features": {"recency_days": {"psi": 0.31, "level": "significant"},
                     "n_orders": {"psi": 0.12, "level": "moderate"},
                     "monetary_total": {"psi": 0.02, "level": "stable"}},
        "segment_share_psi": 0.08,
        "segment_shares": {str(s["segment_id"]): {"training": s["share_customers"],
                                                  "current": s["share_customers"] * (1.1 if i % 2 else 0.9)}
                           for i, s in enumerate(run["segments"])},
        "retrain_recommended": True,
        "reasons": ["recency_days shifted (PSI 0.310 > 0.25)"],
        "thresholds": {"moderate": 0.1, "significant": 0.25, "epsilon": 0.0001},
    }


def tracking_payload(run: dict[str, Any]) -> dict[str, Any]:
    """Two periods between three dates: customers move between the first two segments."""
    a, b = run["segments"][0], run["segments"][1]
    segment = {"a": a, "b": b}
    transitions = []
    for start, end, moves in (
        ("2024-03-31", "2024-06-30", {("a", "a"): 5, ("a", "b"): 5, ("b", "b"): 10, (None, "a"): 2, ("b", None): 3}),
        ("2024-06-30", "2024-09-30", {("a", "a"): 6, ("a", "b"): 2, ("b", "a"): 4, ("b", "b"): 8, (None, "b"): 5,
                                      ("a", None): 2}),
    ):
        for frm in ("a", "b", None):
            row_total = sum(v for (f, _), v in moves.items() if f == frm)
            for to in ("a", "b", None):
                if frm is None and to is None:
                    continue
                count = moves.get((frm, to), 0)
                transitions.append({
                    "period_start": start, "period_end": end,
                    "from_segment_id": None if frm is None else segment[frm]["segment_id"],
                    "from_segment": "new" if frm is None else segment[frm]["segment_name"],
                    "to_segment_id": None if to is None else segment[to]["segment_id"],
                    "to_segment": "gone" if to is None else segment[to]["segment_name"],
                    "customers": count, "row_share": count / row_total if row_total else 0.0,
                })
    shares = [{"as_of": day, "segment_id": s["segment_id"], "segment_name": s["segment_name"], "customers": n,
               "share": n / 30} for day, counts in (("2024-03-31", (10, 20)), ("2024-06-30", (7, 23)),
                                                    ("2024-09-30", (10, 20)))
              for s, n in zip((a, b), counts)]
    return {"transitions": transitions, "shares": shares, "temporal_ari": {"2024-09-30": 0.42}}


def economics_payload(run: dict[str, Any]) -> dict[str, Any]:
    rows = [{"segment_id": s["segment_id"], "segment_name": s["segment_name"], "customers": s["customers"],
             "share_customers": s["share_customers"], "revenue": 1000.0 * (i + 1), "share_revenue": s["share_revenue"],
             "average_order_value": 52.5 + i, "orders_per_customer": 3.25, "share_active": 0.5,
             "retention_proxy": None} for i, s in enumerate(run["segments"])]
    return {"as_of": run["as_of"], "period_days": 90, "segments": rows,
            "total": {"customers": run["n_customers"], "share_customers": 1.0, "revenue": 1000.0 * len(rows) * 2,
                      "share_revenue": 1.0, "average_order_value": 55.0, "orders_per_customer": 3.25,
                      "share_active": 0.5, "retention_proxy": None},
            "definitions": {"share_active": "share of customers whose last purchase is at most {p} days before as_of"}}


def actionability_payload(run: dict[str, Any]) -> dict[str, Any]:
    ids = segment_ids(run)
    return {"actionable": False, "min_share": 0.01, "min_difference": 0.5, "rule": "too small: below 1% of customers",
            "flags": [{"kind": "too_small", "segment_ids": [ids[-1]], "detail": "holds 0.80% of customers",
                       "suggestion": "merge it into its most similar segment"},
                      {"kind": "too_similar", "segment_ids": [ids[0], ids[1]], "detail": "differ by at most 0.40 sd",
                       "suggestion": "segment again with fewer segments"}]}


def playbook_payload(run: dict[str, Any]) -> dict[str, Any]:
    keyed = run["segments"][PLAYBOOK_KEY_SEGMENT]
    return {"version": 1, "source": "playbook.toml", "bound": True, "segments": [
        {"key": str(run["segments"][0]["segment_name"]), "segment_id": run["segments"][0]["segment_id"],
         "display_name": "VIP club", "description": "Our best customers.", "retention_tactics": ["Early access"],
         "growth_tactics": [], "channels": ["email", "app"], "cadence": "weekly", "price_sensitivity": "low",
         "success_metrics": ["repeat rate"],
         "actions": [{"when": ["recency_days > 30"], "action": "Personal call", "channel": "phone"},
                     {"when": [], "action": "Thank-you note"}]},
        {"key": keyed["segment_name"], "segment_id": None, "display_name": None, "description": None,
         "retention_tactics": ["Win-back voucher <10%>"], "growth_tactics": [], "channels": [], "cadence": None,
         "price_sensitivity": None, "success_metrics": [], "actions": []},
    ]}


def everything_run(run: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Every optional section at once (SOM, multi-view and autoencoder details together)."""
    details = {**som_details(run), **multiview_details(), "loss_curve": [1.2, 0.8, 0.55, 0.41, 0.36, 0.35]}
    return {"method_details": details, "validation": validation_payload(run_dir), "stability": stability_payload(run),
            "drift": drift_payload(run), "alignment": alignment_payload(run), "tracking": tracking_payload(run),
            "economics": economics_payload(run), "actionability": actionability_payload(run)}
