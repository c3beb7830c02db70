"""Report sections that appear when a run's method recorded their data (run.json ``method_details``).

Each function reads one part of ``run.json`` in the shape written below, and returns
the section's data (numbers formatted for people) or None when the part is absent.
A section is recognised by its data, not by the method's name, so any method that
records the same keys gets the same section; a method whose results sit under
``"chosen_details"`` (the automatic choice of method) is read the same way.

Segment references: wherever a shape says ``segment_id``, a ``segment_name`` may
come with it; when it does not, the name (and revenue share) is taken from
``profiles.json``. ``segment_ids`` lists pair with ``segment_names`` the same way.

run.json ``"method_details"`` (a method's ``details_``, via the Segmenter)
------------------------------------------------------------------------------
**Hierarchical** (the ``dendrogram`` key)::

    "dendrogram": {"n_leaves": int,                     # leaves of the full tree
                   "merges": [[left, right, height, size], ...],   # the top merges, in merge order
                   "truncated": {"<node id>": size, ...}},  # nodes below the top merges
    "levels": [int | {"n_segments": int, ...}, ...],     # optional: other cut levels
    "cut_heights": {"<k>": height, ...}                  # optional: where the tree is cut for k

Node ids follow scipy: below ``n_leaves`` a leaf, otherwise the node made by merge
``id - n_leaves`` of the full tree. Without ``cut_heights`` the cut for ``k``
segments is drawn half-way between the merge that leaves ``k`` groups and the
next one. The run's own ``n_segments`` is always one of the cut levels.

**Density** (DBSCAN / HDBSCAN; the ``outliers`` or ``micro_segments`` key)::

    "outliers": {"segment_id": int, "customers": int} | null,
    "micro_segments": [{"segment_id": int, "customers": int, "share_customers": float,
                        "share_revenue": float (optional)}],
    "micro_share": float,          # optional: the size below which a segment is "micro"
    "noise_share": float           # optional

**Gaussian mixture** (the ``multi_segment`` key)::

    "multi_segment": {"threshold": float, "customers": int, "share": float,
                      "pairs": [{"segment_ids": [int, int], "customers": int}]},
    "mean_max_probability": float  # optional

**Self-organising map** (the ``u_matrix`` key)::

    "u_matrix": [[float]] (rows x cols),
    "hits": [[int]] (rows x cols, optional),
    "node_segments": [[int]] (rows x cols, segment id of each node, optional),
    "component_planes": {"<feature>": [[float]]} or [[[float]]] in the order of
                        run.json "prepared_columns" (or of "component_names"),
    "quantization_error": float, "topographic_error": float   # optional

**Multi-view** (the ``crosstab`` key)::

    "views": {"<view>": {"method": str, "n_segments": int,
                         "segment_names": {"<view segment id>": str} (optional)}},
    "crosstab": [{"view_segments": [int, ...] (one per view, in "views" order),
                  "customers": int, "share": float, "segment_id": int (optional)}]

**Autoencoder** (the ``loss_curve`` key): ``"loss_curve": [float]`` (one per epoch).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from segwise.profile import feature_label
from segwise.report.format import fmt_int, fmt_number, fmt_pct, is_missing
from segwise.report.palette import OUTLIER_COLOUR
from segwise.report.rundir import RunFiles

__all__ = [
    "SECTION_BUILDERS", "method_sections", "method_details", "hierarchical_section", "density_section", "mixture_section", "som_section",
    "multiview_section", "autoencoder_section", "segment_name",
]

#: At most this many component planes are drawn (the first ones, in column order).
MAX_COMPONENT_PLANES = 12
#: Report section -> how it is built from (method details, run files, colours). A method names the
#: sections its ``details_`` feed (``report_sections`` in `segwise.cluster`); a section appears when
#: the run's details hold its data, so a method choosing among others (auto) or combining them
#: (two_stage) shows the sections of the methods it ran.
SECTION_BUILDERS: dict[str, Any] = {
    "hierarchical": lambda details, files, colours: hierarchical_section(details, files.run),
    "density": lambda details, files, colours: density_section(details, files, colours),
    "mixture": lambda details, files, colours: mixture_section(details, files, colours),
    "som": lambda details, files, colours: som_section(details, files.run, colours),
    "multiview": lambda details, files, colours: multiview_section(details, files.profiles.names),
    "autoencoder": lambda details, files, colours: autoencoder_section(details),
}


def method_sections(files: RunFiles, colours: Mapping[int, str]) -> dict[str, dict[str, Any]]:
    """The sections declared by the methods that the run's method details have data for, by name."""
    from segwise.cluster import METHODS

    declared = {section for method in METHODS.values() for section in method.report_sections}
    details = method_details(files.run)
    sections = {}
    for key, build in SECTION_BUILDERS.items():
        if key not in declared:
            continue
        section = build(details, files, colours)
        if section is not None:
            sections[key] = section
    return sections


def method_details(run: Mapping[str, Any]) -> dict[str, Any]:
    """``run.json`` ``method_details``, with those of a chosen method merged in."""
    details = dict(run.get("method_details") or {})
    chosen = details.get("chosen_details")
    if isinstance(chosen, dict):
        details = {**chosen, **{k: v for k, v in details.items() if k != "chosen_details"}}
    return details


def segment_name(item: Mapping[str, Any], names: Mapping[int, str]) -> str:
    """The name of the segment an item refers to: its own ``segment_name``, else the profiles'."""
    if item.get("segment_name"):
        return str(item["segment_name"])
    segment_id = item.get("segment_id")
    return names.get(int(segment_id), f"segment {segment_id}") if segment_id is not None else "?"


# --------------------------------------------------------------------------- hierarchical


def _cut_levels(details: Mapping[str, Any], run: Mapping[str, Any]) -> list[int]:
    levels = set()
    for level in details.get("levels") or []:
        value = level.get("n_segments") if isinstance(level, dict) else level
        if value is not None:
            levels.add(int(value))
    if run.get("n_segments"):
        levels.add(int(run["n_segments"]))
    levels.update(int(k) for k in (details.get("cut_heights") or {}))
    return sorted(levels)


def hierarchical_section(details: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The top of the tree as dendrogram line segments, with the cut levels."""
    tree = details.get("dendrogram")
    if not tree or not tree.get("merges"):
        return None
    from scipy.cluster.hierarchy import dendrogram

    merges = [list(m) for m in tree["merges"]]
    n_leaves = int(tree["n_leaves"])
    truncated = {int(k): float(v) for k, v in (tree.get("truncated") or {}).items()}
    first_created = n_leaves + (n_leaves - 1 - len(merges))
    # The truncated nodes become the leaves of a small tree, the top merges its merges.
    leaf_ids = sorted(truncated)
    remap = {node: i for i, node in enumerate(leaf_ids)}
    for i in range(len(merges)):
        remap[first_created + i] = len(leaf_ids) + i
    if len(leaf_ids) != len(merges) + 1:
        return None
    # scipy counts the leaves under each node; here the leaves are the truncated nodes.
    counts = [1.0] * len(leaf_ids)
    rows = []
    try:
        for a, b, height, _ in merges:
            left, right = remap[int(a)], remap[int(b)]
            counts.append(counts[left] + counts[right])
            rows.append([left, right, float(height), counts[-1]])
    except (KeyError, IndexError):
        return None
    Z = np.array(rows, dtype=np.float64)
    sizes = [truncated[node] for node in leaf_ids]
    tree_plot = dendrogram(Z, no_plot=True, labels=[fmt_int(s) for s in sizes])
    heights = sorted(float(m[2]) for m in merges)
    cut_heights = {int(k): float(v) for k, v in (details.get("cut_heights") or {}).items() if not is_missing(v)}
    cuts = []
    for k in _cut_levels(details, run):
        if k in cut_heights:
            height = cut_heights[k]
        elif 2 <= k <= len(heights):
            # k groups exist between the (k-1)-th and the k-th merge from the top.
            height = (heights[-(k - 1)] + heights[-k]) / 2
        elif k == len(heights) + 1:
            height = heights[0] / 2
        else:
            continue
        cuts.append({"k": k, "height": height, "chosen": k == run.get("n_segments")})
    return {
        "icoord": tree_plot["icoord"],
        "dcoord": tree_plot["dcoord"],
        "leaf_labels": tree_plot["ivl"],
        "leaf_positions": [5 + 10 * i for i in range(len(tree_plot["ivl"]))],
        "cuts": cuts,
        "linkage": details.get("linkage"),
        "n_leaves": n_leaves,
        "shown_leaves": len(leaf_ids),
        "tree": details.get("tree"),
    }


# --------------------------------------------------------------------------- density


def density_section(details: Mapping[str, Any], files: RunFiles, colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Outliers and micro-segments, with their share of customers and of revenue."""
    if "micro_segments" not in details and "outliers" not in details:
        return None
    profiles = {p.segment_id: p for p in files.profiles}
    names = files.profiles.names
    rows = []

    def row(item: Mapping[str, Any], kind: str) -> dict[str, Any]:
        segment_id = item.get("segment_id")
        profile = profiles.get(int(segment_id)) if segment_id is not None else None
        share_customers = item.get("share_customers", profile.share_customers if profile else None)
        share_revenue = item.get("share_revenue", profile.share_revenue if profile else None)
        customers = item.get("customers", profile.n_customers if profile else None)
        lift = (share_revenue / share_customers if not is_missing(share_revenue) and share_customers else None)
        return {
            "kind": kind, "segment_id": segment_id, "name": segment_name(item, names),
            "colour": OUTLIER_COLOUR if kind == "Outliers" else colours.get(int(segment_id), OUTLIER_COLOUR),
            "customers": fmt_int(customers), "share_customers": fmt_pct(share_customers, 2),
            "share_revenue": fmt_pct(share_revenue, 2), "revenue_per_share": None if lift is None else f"{fmt_number(lift, 2)}x",
            "share_customers_value": None if is_missing(share_customers) else float(share_customers),
            "share_revenue_value": None if is_missing(share_revenue) else float(share_revenue),
        }

    for item in details.get("micro_segments") or []:
        if item.get("segment_id") is not None:
            rows.append(row(item, "Micro-segment"))
    outliers = details.get("outliers")
    if outliers and outliers.get("segment_id") is not None:
        rows.append(row(outliers, "Outliers"))
    micro_share = details.get("micro_share")
    return {
        "rows": rows,
        "micro_share": None if is_missing(micro_share) else fmt_pct(micro_share, 1),
        "noise_share": None if is_missing(details.get("noise_share")) else fmt_pct(details["noise_share"], 1),
        "n_micro": sum(r["kind"] == "Micro-segment" for r in rows),
    }


# --------------------------------------------------------------------------- mixture


def mixture_section(details: Mapping[str, Any], files: RunFiles, colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Customers who belong to several segments, which segments overlap, and the confidence spread."""
    multi = details.get("multi_segment")
    if not multi:
        return None
    names = files.profiles.names
    ids = sorted(names)
    position = {segment_id: i for i, segment_id in enumerate(ids)}
    overlap = [[0] * len(ids) for _ in ids]
    pairs = []
    for pair in multi.get("pairs") or []:
        a, b = (int(x) for x in pair["segment_ids"][:2])
        if a in position and b in position:
            overlap[position[a]][position[b]] = overlap[position[b]][position[a]] = int(pair["customers"])
            pairs.append({"a": names[a], "b": names[b], "customers": fmt_int(pair["customers"])})
    confidence = files.assignments["confidence"].to_numpy(dtype=np.float64)
    labels = files.assignments["segment_id"].to_numpy()
    edges = np.linspace(0.0, 1.0, 21)
    histograms = []
    for segment_id in ids:
        counts, _ = np.histogram(np.clip(confidence[labels == segment_id], 0, 1), bins=edges)
        histograms.append({"name": names[segment_id], "colour": colours[segment_id], "counts": counts.tolist()})
    return {
        "threshold": fmt_pct(multi.get("threshold"), 0),
        "customers": fmt_int(multi.get("customers")),
        "share": fmt_pct(multi.get("share")),
        "mean_max_probability": None if is_missing(details.get("mean_max_probability"))
        else fmt_pct(details["mean_max_probability"]),
        "names": [names[i] for i in ids],
        "overlap": overlap,
        "pairs": pairs[:10],
        "bin_centres": ((edges[:-1] + edges[1:]) / 2).round(3).tolist(),
        "histograms": histograms,
    }


# --------------------------------------------------------------------------- SOM


def _grid(value: Any) -> list[list[float | None]] | None:
    if value is None:
        return None
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        return None
    return [[None if not np.isfinite(v) else round(float(v), 5) for v in row] for row in array]


def som_section(details: Mapping[str, Any], run: Mapping[str, Any], colours: Mapping[int, str]) -> dict[str, Any] | None:
    """U-matrix, the segment of every node and the component planes of a self-organising map."""
    u_matrix = _grid(details.get("u_matrix"))
    if u_matrix is None:
        return None
    planes_raw = details.get("component_planes") or {}
    if isinstance(planes_raw, dict):
        named = list(planes_raw.items())
    else:
        names = details.get("component_names") or run.get("prepared_columns") or []
        named = [(names[i] if i < len(names) else f"feature {i + 1}", plane) for i, plane in enumerate(planes_raw)]
    planes = [{"feature": name, "label": feature_label(str(name)), "grid": _grid(plane)}
              for name, plane in named[:MAX_COMPONENT_PLANES]]
    planes = [p for p in planes if p["grid"] is not None]
    nodes = None
    node_segments = details.get("node_segments")
    segment_of_cluster = details.get("segment_of_cluster")
    if node_segments is None and details.get("node_cluster") is not None and segment_of_cluster:
        # A real SOM run records the cluster of each node; run.json maps clusters to segment ids.
        node_segments = np.asarray(segment_of_cluster, dtype=np.int64)[np.asarray(details["node_cluster"])].tolist()
    if node_segments is not None:
        seg = np.asarray(node_segments, dtype=np.int64)
        hits = np.asarray(details.get("hits"), dtype=np.float64) if details.get("hits") is not None else np.ones(seg.shape)
        rows, cols = np.indices(seg.shape)
        nodes = {
            "row": rows.ravel().tolist(), "col": cols.ravel().tolist(), "segment": seg.ravel().tolist(),
            "hits": hits.ravel().tolist(),
            "colour": [colours.get(int(s), OUTLIER_COLOUR) for s in seg.ravel()],
        }
    return {
        "u_matrix": u_matrix,
        "shape": [len(u_matrix), len(u_matrix[0]) if u_matrix else 0],
        "planes": planes,
        "n_planes": len(named),
        "nodes": nodes,
        "quantization_error": fmt_number(details.get("quantization_error")),
        "topographic_error": fmt_pct(details.get("topographic_error")),
    }


# --------------------------------------------------------------------------- multi-view


def multiview_section(details: Mapping[str, Any], names: Mapping[int, str]) -> dict[str, Any] | None:
    """How the segments of the views combine: crosstab of the first two views and the combined cells."""
    crosstab = details.get("crosstab")
    views = details.get("views") or {}
    if not crosstab or not views:
        return None
    view_names = list(views)

    def label(view: str, value: int) -> str:
        given = (views[view].get("segment_names") or {}) if isinstance(views[view], dict) else {}
        return str(given.get(str(value), given.get(value, f"{view} {value}")))

    cells = []
    total = sum(int(c["customers"]) for c in crosstab) or 1
    for cell in sorted(crosstab, key=lambda c: -int(c["customers"])):
        parts = [label(view_names[i], v) for i, v in enumerate(cell["view_segments"]) if i < len(view_names)]
        segment_id = cell.get("segment_id")
        cells.append({
            "parts": parts, "customers": fmt_int(cell["customers"]),
            "share": fmt_pct(cell.get("share", int(cell["customers"]) / total)),
            "segment": names.get(int(segment_id), "") if segment_id is not None else "",
        })
    matrix = None
    if len(view_names) >= 2:
        first, second = view_names[0], view_names[1]
        rows = sorted({int(c["view_segments"][0]) for c in crosstab})
        cols = sorted({int(c["view_segments"][1]) for c in crosstab})
        counts = np.zeros((len(rows), len(cols)), dtype=np.int64)
        for cell in crosstab:
            counts[rows.index(int(cell["view_segments"][0])), cols.index(int(cell["view_segments"][1]))] += int(
                cell["customers"])
        matrix = {
            "rows": [label(first, r) for r in rows], "cols": [label(second, c) for c in cols],
            "row_view": first, "col_view": second, "counts": counts.tolist(),
            "text": [[fmt_int(v) for v in row] for row in counts],
        }
    return {
        "views": [{"name": v, "method": (views[v] or {}).get("method", ""), "n_segments": (views[v] or {}).get("n_segments")}
                  for v in view_names],
        "matrix": matrix,
        "cells": cells[:20],
        "n_cells": len(cells),
    }


# --------------------------------------------------------------------------- autoencoder


def autoencoder_section(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """Reconstruction loss per training epoch."""
    curve = details.get("loss_curve")
    if not curve:
        return None
    values = [float(v) for v in curve]
    return {"epochs": list(range(1, len(values) + 1)), "loss": values, "final": fmt_number(values[-1])}
