"""The report's content, computed from a run directory: no plotting, no HTML.

`collect_report_data` turns the outputs of a run (`segwise.report.rundir`) into a
`ReportData`: every section as plain data with its numbers already formatted for
people. Sections whose data the run does not have are None (or empty), and the
report leaves them out. The sections computed here exist for every run; the ones
that depend on the method or on validation are in `segwise.report.method_data` and
`segwise.report.validation_data`.

What each section reads
-----------------------
**header**: ``run.json`` keys ``source``, ``as_of``, ``n_customers``, ``method``,
``n_segments``, ``created_at``, ``segwise_version``, ``cleaning`` (rule -> rows),
``input.transactions`` (``rows``, ``first_timestamp``, ``last_timestamp``,
``cleaning.input_rows``), ``features`` (``clustered_on``, ``described_by``,
``notes``); orders and revenue are the sums of ``n_orders`` and
``monetary_total`` in ``features.parquet``.

**cards**: ``profiles.json`` (size, shares, medians, traits, description; the mean
``clv_365d`` and median ``p_alive`` when the run has the value family) and, when
the model document carries a ``"playbook"``::

    {"segments": [{"key": "At Risk", "segment_id": 2 | null, "display_name": str | null,
                   "description": str | null, "retention_tactics": [str], "growth_tactics": [str],
                   "channels": [str], "cadence": str | null, "price_sensitivity": str | null,
                   "success_metrics": [str], "actions": [{"when": [str], "action": str, "channel": str | null}]}]}

An entry applies to the segment with its ``segment_id``, else to the segment whose
name (or id as text) is its ``key``.

**heatmap**: ``profiles.json`` z-scores (segment mean against the population, in
population standard deviations) of every numeric feature; the columns that define
the segments (``run.json`` ``features.clustered_on``) first.

**selection**: ``run.json`` ``"selection"``::

    {"candidates": [{"k": int, "inertia": float, "silhouette": float, "davies_bouldin": float,
                     "calinski_harabasz": float, "bic": float (optional), "stability": float (optional),
                     "covariance_type": str (optional: one line per type), "fit_sample_size": int (optional)}],
     "chosen": int, "knee": int | null, "rule": str, "reason": str}

and stability per k, when measured, from ``run.json`` ``"stability"`` ``"by_k"``:
``{"candidates": [{"k": int, "ari_mean": float}]}``. Metrics no candidate has are
left out.

**map**: the prepared features (the model's own `segwise.prepare.Preprocessor`
applied to ``features.parquet``), projected on their first two principal
components. At most ``max_points`` customers are drawn, sampled within each
segment (`stratified_sample`), so the file size does not grow with the number of
customers. Hover shows the segment and recency, orders and spend.

**distributions**: per segment, the 5th, 25th, 50th, 75th and 95th percentiles and
mean of the key features over *all* customers (box plots need only these, so the
size does not grow with the number of customers either); money on a log axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import numpy as np

from segwise._version import __version__
from segwise.data import CLEANING_RULES
from segwise.profile import SegmentProfile, feature_label
from segwise.report import validation_data as validation
from segwise.report.format import fmt_int, fmt_metric, fmt_money, fmt_pct, is_missing, plotly_number_format
from segwise.report.method_data import method_sections
from segwise.report.palette import segment_colours
from segwise.report.rundir import RunFiles
from segwise.cluster.silhouette import sample_indices

__all__ = ["ReportData", "collect_report_data", "stratified_sample", "METHOD_LABELS", "MAX_MAP_POINTS"]

#: Shown when the run does not name its data source.
MISSING_TEXT = "unknown"
#: Largest number of customers drawn on the map.
MAX_MAP_POINTS = 20_000
#: Customers the map's principal components are fitted on (a uniform sample).
PCA_FIT_SAMPLE = 50_000
#: Every segment keeps at least this many points on the map (or all it has).
MIN_POINTS_PER_SEGMENT = 200
#: At most this many features in the profile heatmap (the most distinctive).
MAX_HEATMAP_FEATURES = 30

METHOD_LABELS = {
    "kmeans": "k-means",
    "hierarchical": "hierarchical clustering",
    "dbscan": "DBSCAN (density-based)",
    "hdbscan": "HDBSCAN (density-based)",
    "gmm": "Gaussian mixture",
    "som": "self-organising map",
    "kprototypes": "k-prototypes",
    "two_stage": "two-stage segmentation",
    "multiview": "multi-view segmentation",
    "autoencoder": "autoencoder + k-means",
    "auto": "automatic choice of method",
}

#: Key metrics of a segment card: column, label, how the median reads.
KEY_METRICS = (
    ("recency_days", "Last purchase", "{} ago"),
    ("n_orders", "Orders", "{}"),
    ("monetary_total", "Total spend", "{}"),
    ("monetary_avg", "Average order", "{}"),
    ("tenure_days", "Customer for", "{}"),
)
#: Features whose distributions are shown, when the run has them.
DISTRIBUTION_COLUMNS = ("monetary_total", "n_orders", "recency_days", "monetary_avg", "tenure_days")
#: Features shown when hovering over a customer on the map.
HOVER_COLUMNS = ("recency_days", "n_orders", "monetary_total")

_SELECTION_METRICS = (
    ("inertia", "Inertia (within-segment spread)", None, "the bend (knee) marks where more segments stop paying"),
    ("silhouette", "Silhouette", "higher", "how much closer customers are to their own segment than to the next"),
    ("davies_bouldin", "Davies-Bouldin", "lower", "average similarity of each segment to its closest one"),
    ("calinski_harabasz", "Calinski-Harabasz", "higher", "separation between segments relative to spread within"),
    ("bic", "BIC", "lower", "fit of the mixture, penalised for its number of parameters"),
    ("stability", "Stability (bootstrap)", "higher", "agreement of refits on resampled customers"),
)


@dataclass
class ReportData:
    """Everything the report shows, section by section (None: the run has no data for it)."""

    title: str
    generated_at: str
    currency: str | None
    segments: list[dict[str, Any]]
    header: dict[str, Any]
    cards: list[dict[str, Any]]
    heatmap: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None
    map: dict[str, Any] | None = None
    distributions: list[dict[str, Any]] = field(default_factory=list)
    economics: dict[str, Any] | None = None
    actionability: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    alignment: dict[str, Any] | None = None
    tracking: dict[str, Any] | None = None
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def colours(self) -> dict[int, str]:
        return {s["segment_id"]: s["colour"] for s in self.segments}


def collect_report_data(
    files: RunFiles,
    *,
    currency: str | None = None,
    max_points: int = MAX_MAP_POINTS,
    random_state: int = 0,
) -> ReportData:
    """Compute every section of the report from a run's outputs.

    Parameters
    ----------
    files : RunFiles
        The run directory, read by `segwise.report.rundir.read_run_dir`.
    currency : str, optional
        Symbol or code put in front of money (``"€"``, ``"USD "``); none by default,
        because a transaction log does not say its currency.
    max_points : int
        Most customers drawn on the map.
    random_state : int
        Seed of the map's sample.
    """
    run = files.run
    colours = segment_colours((p.segment_id, p.name) for p in files.profiles)
    segments = [
        {"segment_id": p.segment_id, "name": p.name, "colour": colours[p.segment_id],
         "customers": p.n_customers, "share_customers": p.share_customers}
        for p in files.profiles
    ]
    names = files.profiles.names
    return ReportData(
        title=f"Customer segments of {_short_source(run.get('source'))}",
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        currency=currency,
        segments=segments,
        header=header_section(files, currency),
        cards=card_section(files, colours, currency),
        heatmap=heatmap_section(files),
        selection=selection_section(run),
        map=map_section(files, colours, max_points=max_points, random_state=random_state),
        distributions=distribution_section(files, colours),
        methods=method_sections(files, colours),
        validation=validation.validation_section(run.get("validation"), names, colours),
        stability=validation.stability_section(run.get("stability"), names, colours),
        drift=validation.drift_section(run.get("drift"), names, colours),
        alignment=validation.alignment_section(run.get("alignment"), names, colours),
        tracking=validation.tracking_section(run.get("tracking"), files, colours),
        economics=validation.economics_section(run.get("economics"), names, colours, currency),
        actionability=validation.actionability_section(run.get("actionability"), names, colours),
    )


def _short_source(source: Any) -> str:
    text = str(source or "your data")
    return text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or text


# --------------------------------------------------------------------------- header


def _date_part(value: Any) -> str | None:
    if not value or str(value) in ("None", "NaT"):
        return None
    return str(value)[:10]


def header_section(files: RunFiles, currency: str | None) -> dict[str, Any]:
    """Facts about the data and the run, and the rows each cleaning rule matched."""
    run = files.run
    transactions = (run.get("input") or {}).get("transactions") or {}
    customers_input = (run.get("input") or {}).get("customers") or {}
    features = files.features
    facts = [("Data source", str(run.get("source") or customers_input.get("source") or MISSING_TEXT))]
    if run.get("as_of"):
        facts.append(("As of", str(run["as_of"])))
    facts.append(("Customers", fmt_int(run.get("n_customers", len(files.assignments)))))
    if "n_orders" in features.columns:
        facts.append(("Orders", fmt_int(np.nansum(features["n_orders"].to_numpy(dtype=np.float64, na_value=np.nan)))))
    if transactions.get("rows") is not None:
        facts.append(("Order lines (after cleaning)", fmt_int(transactions["rows"])))
    first, last = _date_part(transactions.get("first_timestamp")), _date_part(transactions.get("last_timestamp"))
    if first and last:
        span = (date.fromisoformat(last) - date.fromisoformat(first)).days
        facts.append(("Period covered", f"{first} to {last} ({fmt_int(span)} days)"))
    if "monetary_total" in features.columns:
        revenue = np.nansum(features["monetary_total"].to_numpy(dtype=np.float64, na_value=np.nan))
        facts.append(("Revenue (net)", fmt_money(revenue, currency)))
    method = str(run.get("method") or files.model.metadata.get("method") or "")
    facts.append(("Method", METHOD_LABELS.get(method, method)))
    facts.append(("Segments", fmt_int(run.get("n_segments", len(files.profiles)))))
    cleaning_rules = (transactions.get("cleaning") or {}).get("rules") or {}
    counts = {**cleaning_rules, **(run.get("cleaning") or {})}
    cleaning = [
        {"rule": rule, "description": CLEANING_RULES.get(rule, rule.replace("_", " ")), "rows": fmt_int(count),
         "matched": bool(count)}
        for rule, count in counts.items()
    ]
    feature_info = run.get("features") or {}
    return {
        "facts": [{"label": label, "value": value} for label, value in facts],
        "input_rows": _optional(fmt_int, (transactions.get("cleaning") or {}).get("input_rows")),
        "cleaning": cleaning,
        "clustered_on": [feature_label(c) for c in feature_info.get("clustered_on", [])],
        "n_described": len(feature_info.get("described_by", [])),
        # The list of defining features above already says what this note says.
        "notes": [n for n in feature_info.get("notes", []) if not n.startswith("segments are defined by")],
        "created_at": str(run.get("created_at") or ""),
        "run_id": str(run.get("run_id") or ""),
        "segwise_version": str(run.get("segwise_version") or __version__),
        "random_state": (run.get("parameters") or {}).get("random_state"),
    }



def _optional(formatter, value: Any) -> str | None:
    """``formatter(value)``, or None when the value is missing (the template then leaves it out)."""
    return None if is_missing(value) else formatter(value)


# --------------------------------------------------------------------------- cards


def _plays_by_segment(playbook: dict[str, Any] | None, profiles) -> dict[int, dict[str, Any]]:
    if not playbook:
        return {}
    by_name = {p.name: p.segment_id for p in profiles}
    by_name.update({str(p.segment_id): p.segment_id for p in profiles})
    plays: dict[int, dict[str, Any]] = {}
    for entry in playbook.get("segments", []) or []:
        segment_id = entry.get("segment_id")
        if segment_id is None:
            segment_id = by_name.get(str(entry.get("key")))
        if segment_id is not None:
            plays[int(segment_id)] = entry
    return plays


def _play_view(entry: dict[str, Any]) -> dict[str, Any]:
    lists = [
        ("Retention", entry.get("retention_tactics") or []),
        ("Growth", entry.get("growth_tactics") or []),
        ("Success metrics", entry.get("success_metrics") or []),
    ]
    facts = [(label, value) for label, value in (
        ("Channels", ", ".join(entry.get("channels") or [])),
        ("Cadence", entry.get("cadence") or ""),
        ("Price sensitivity", entry.get("price_sensitivity") or ""),
    ) if value]
    actions = [
        {"when": " and ".join(rule.get("when") or []) or "everyone else", "action": rule.get("action", ""),
         "channel": rule.get("channel") or ""}
        for rule in entry.get("actions") or []
    ]
    return {
        "display_name": entry.get("display_name") or "",
        "description": entry.get("description") or "",
        "lists": [(label, list(items)) for label, items in lists if items],
        "facts": facts,
        "actions": actions,
    }


def _card_metrics(profile: SegmentProfile, units: dict[str, str], currency: str | None) -> list[dict[str, str]]:
    metrics = []
    for column, label, template in KEY_METRICS:
        value = profile.medians.get(column)
        if column not in profile.medians or is_missing(value):
            continue
        metrics.append({"label": label, "value": template.format(fmt_metric(value, units.get(column, ""), currency))})
    if metrics:
        return metrics
    # No RFM columns (a customer attribute table): the strongest traits' medians.
    for trait in profile.traits[:4]:
        column = trait["feature"]
        metrics.append({"label": feature_label(column).capitalize(),
                        "value": fmt_metric(profile.medians.get(column), units.get(column, ""), currency)})
    return metrics


def _card_value(profile: SegmentProfile, currency: str | None) -> dict[str, str] | None:
    """Predicted value of the segment from the value family's columns; None when the run has none.

    The total is the segment mean times its customers (the profiles hold means, and
    every customer has a prediction when the family is there).
    """
    clv = profile.means.get("clv_365d")
    if is_missing(clv):
        return None
    p_alive = profile.medians.get("p_alive")
    return {
        "clv_mean": fmt_money(clv, currency),
        "clv_total": fmt_money(float(clv) * profile.n_customers, currency),
        "p_alive_median": None if is_missing(p_alive) else fmt_pct(p_alive),
    }


def card_section(files: RunFiles, colours: dict[int, str], currency: str | None) -> list[dict[str, Any]]:
    """One card per segment: name, size, revenue, key metrics (medians), traits, playbook."""
    plays = _plays_by_segment(files.playbook, files.profiles)
    units = dict(files.profiles.units)
    cards = []
    for profile in files.profiles:
        play = plays.get(profile.segment_id)
        cards.append({
            "segment_id": profile.segment_id,
            "name": profile.name,
            "colour": colours[profile.segment_id],
            "description": profile.description,
            "archetype": profile.archetype,
            "customers": fmt_int(profile.n_customers),
            "share_customers": fmt_pct(profile.share_customers),
            "share_revenue": None if profile.share_revenue is None else fmt_pct(profile.share_revenue),
            "share_customers_value": float(profile.share_customers),
            "share_revenue_value": None if is_missing(profile.share_revenue) else float(profile.share_revenue),
            "metrics": _card_metrics(profile, units, currency),
            "value": _card_value(profile, currency),
            "traits": [{"text": t["text"], "direction": t["direction"]} for t in profile.traits[:4]],
            "play": _play_view(play) if play else None,
        })
    return cards


# --------------------------------------------------------------------------- heatmap


def heatmap_section(files: RunFiles) -> dict[str, Any] | None:
    """Segments x features z-scores, the defining features first."""
    z = files.profiles.zscores_frame()
    if z.empty:
        return None
    z = z.astype(np.float64)
    z = z.loc[:, z.notna().any(axis=0)]
    defining = list((files.run.get("features") or {}).get("clustered_on", []))
    order = [c for c in defining if c in z.columns] + [c for c in z.columns if c not in defining]
    z = z[order]
    if z.shape[1] > MAX_HEATMAP_FEATURES:
        strongest = set(z.abs().max(axis=0).sort_values(ascending=False).index[:MAX_HEATMAP_FEATURES])
        z = z[[c for c in z.columns if c in strongest]]
    if z.shape[1] == 0:
        return None
    means = files.profiles.means_frame().reindex(index=z.index, columns=z.columns)
    population = files.profiles.population_means
    units = files.profiles.units
    names = files.profiles.names
    return {
        "features": list(z.columns),
        "labels": [feature_label(c) for c in z.columns],
        "defining": [c in defining for c in z.columns],
        "segment_ids": [int(i) for i in z.index],
        "segment_names": [names[int(i)] for i in z.index],
        "z": [[None if is_missing(v) else round(float(v), 3) for v in row] for row in z.to_numpy()],
        "hover": [
            [f"{fmt_metric(means.iat[i, j], units.get(c, ''))} vs {fmt_metric(population.get(c), units.get(c, ''))}"
             for j, c in enumerate(z.columns)]
            for i in range(len(z.index))
        ],
        "n_hidden": int(files.profiles.zscores_frame().shape[1] - z.shape[1]),
    }


# --------------------------------------------------------------------------- choosing k


def _finite(value: Any) -> bool:
    return not is_missing(value)


def selection_section(run: dict[str, Any]) -> dict[str, Any] | None:
    """How the number of segments was chosen: every candidate's scores and the reason."""
    selection = run.get("selection") or {}
    candidates = [dict(c) for c in selection.get("candidates") or [] if "k" in c]
    if not candidates:
        return None
    by_k = ((run.get("stability") or {}).get("by_k") or {}).get("candidates") or []
    stability = {int(c["k"]): c.get("ari_mean") for c in by_k if "k" in c}
    if stability:
        for candidate in candidates:
            candidate.setdefault("stability", stability.get(int(candidate["k"])))
    panels = []
    for metric, title, better, meaning in _SELECTION_METRICS:
        groups: dict[str, list[tuple[int, float]]] = {}
        for candidate in candidates:
            if _finite(candidate.get(metric)):
                group = str(candidate.get("covariance_type") or "")
                groups.setdefault(group, []).append((int(candidate["k"]), float(candidate[metric])))
        if not groups:
            continue
        series = []
        for group, points in groups.items():
            points.sort()
            series.append({"group": group, "k": [p[0] for p in points], "values": [p[1] for p in points]})
        panels.append({"metric": metric, "title": title, "better": better, "meaning": meaning, "series": series})
    sampled = [c.get("fit_sample_size") for c in candidates if c.get("fit_sample_size")]
    n_customers = run.get("n_customers")
    note = None
    if sampled and n_customers and max(sampled) < n_customers:
        note = (f"candidates were fitted and scored on a random sample of {fmt_int(max(sampled))} customers; "
                "the chosen number was then fitted on everyone")
    return {
        "panels": panels,
        "chosen": selection.get("chosen", run.get("n_segments")),
        "knee": selection.get("knee"),
        "reason": selection.get("reason") or "",
        "rule": selection.get("rule") or "",
        "note": note,
        "ks": sorted({int(c["k"]) for c in candidates}),
    }


# --------------------------------------------------------------------------- map


def stratified_sample(labels: np.ndarray, max_points: int, random_state: int | None = 0,
                      min_per_segment: int = MIN_POINTS_PER_SEGMENT) -> np.ndarray:
    """Sorted row indices of at most ``max_points`` rows, drawn within each segment.

    Each segment keeps ``min(its size, min_per_segment, max_points // k)`` rows, so
    small segments stay visible; the rest of the budget is shared in proportion to
    the segments' remaining sizes (largest remainders), so the sample has exactly
    ``max_points`` rows whenever there are more.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    floor = np.minimum(counts, min(min_per_segment, max_points // len(ids)))
    capacity = counts - floor
    remaining = max_points - int(floor.sum())
    share = capacity / capacity.sum() * remaining
    extra = np.floor(share).astype(np.int64)
    leftover = remaining - int(extra.sum())
    extra[np.argsort(-(share - extra), kind="stable")[:leftover]] += 1
    quota = floor + np.minimum(extra, capacity)
    rng = np.random.default_rng(random_state)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = [order[start + rng.choice(count, take, replace=False)]
              for start, count, take in zip(starts, counts, quota) if take]
    return np.sort(np.concatenate(chosen))


def _hover_columns(files: RunFiles) -> list[str]:
    columns = [c for c in HOVER_COLUMNS if c in files.features.columns]
    if columns:
        return columns
    z = files.profiles.zscores_frame()
    numeric = [c for c in z.columns if c in files.features.columns]
    return list(z[numeric].abs().max(axis=0).sort_values(ascending=False).index[:3]) if numeric else []


def map_section(files: RunFiles, colours: dict[int, str], *, max_points: int = MAX_MAP_POINTS,
                random_state: int = 0) -> dict[str, Any] | None:
    """Customers on the first two principal components of the prepared features."""
    from sklearn.decomposition import PCA

    labels = files.assignments["segment_id"].to_numpy()
    n = len(labels)
    preprocessor = files.model.segmenter.preprocessor_
    fit_rows = sample_indices(n, PCA_FIT_SAMPLE, random_state)
    fitted = preprocessor.transform(files.features.iloc[fit_rows])
    if fitted.shape[1] < 2 or n < 3:
        return None
    pca = PCA(n_components=2, svd_solver="full").fit(fitted)
    rows = stratified_sample(labels, max_points, random_state)
    xy = pca.transform(preprocessor.transform(files.features.iloc[rows])).astype(np.float32)
    hover = _hover_columns(files)
    units = files.profiles.units
    values = files.features.iloc[rows][hover].to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)
    names = files.profiles.names
    traces = []
    sampled_labels = labels[rows]
    for segment_id in sorted(names):
        mask = sampled_labels == segment_id
        if not mask.any():
            continue
        traces.append({
            "segment_id": int(segment_id), "name": names[segment_id], "colour": colours[int(segment_id)],
            "x": xy[mask, 0], "y": xy[mask, 1], "custom": values[mask],
        })
    explained = [float(v) for v in pca.explained_variance_ratio_]
    return {
        "traces": traces,
        "hover": [{"label": feature_label(c), "format": plotly_number_format(units.get(c, "")),
                   "money": units.get(c, "").startswith("currency")} for c in hover],
        "explained": explained,
        "axis_titles": [f"component {i + 1} ({fmt_pct(v, 0)} of the variation)" for i, v in enumerate(explained)],
        "shown": int(len(rows)),
        "total": int(n),
        "caption": (
            f"All {fmt_int(n)} customers." if len(rows) == n else
            f"{fmt_int(len(rows))} of {fmt_int(n)} customers, drawn at random within each segment "
            f"(every segment keeps at least {fmt_int(min(MIN_POINTS_PER_SEGMENT, max_points // max(len(names), 1)))} "
            "points, or all it has)."
        ),
    }


# --------------------------------------------------------------------------- distributions


def _distribution_columns(files: RunFiles) -> list[str]:
    columns = [c for c in DISTRIBUTION_COLUMNS if c in files.features.columns]
    if columns:
        return columns
    return _hover_columns(files)


def _box(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    p5, q1, median, q3, p95 = np.percentile(values, [5, 25, 50, 75, 95])
    return {"p5": float(p5), "q1": float(q1), "median": float(median), "q3": float(q3), "p95": float(p95),
            "mean": float(values.mean()), "n": int(values.size)}


def distribution_section(files: RunFiles, colours: dict[int, str]) -> list[dict[str, Any]]:
    """Percentiles of the key features per segment, over all customers.

    Money and order counts are drawn on a log axis, which shows skewed amounts
    best; values of zero or below cannot be on it, so there the percentiles are
    those of the positive values and the customers left out are counted per
    segment (a caption says so).
    """
    labels = files.assignments["segment_id"].to_numpy()
    names = files.profiles.names
    units = files.profiles.units
    order = np.argsort(labels, kind="stable")
    ids, starts = np.unique(labels[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    out = []
    for column in _distribution_columns(files):
        values = files.features[column].to_numpy(dtype=np.float64, na_value=np.nan)[order]
        unit = units.get(column, "")
        log = unit.startswith("currency") or unit == "orders"
        finite = np.isfinite(values)
        if log and not (finite & (values > 0)).any():
            log = False
        boxes, left_out = [], []
        for segment_id, start, end in zip(ids, starts, ends):
            block = values[start:end][finite[start:end]]
            shown = block[block > 0] if log else block
            box = _box(shown)
            if log and block.size > shown.size:
                left_out.append(f"{names[int(segment_id)]} {fmt_int(block.size - shown.size)}")
            if box is not None:
                boxes.append({"segment_id": int(segment_id), "name": names[int(segment_id)],
                              "colour": colours[int(segment_id)], **box})
        if not boxes:
            continue
        out.append({
            "column": column,
            "label": feature_label(column),
            "unit": unit,
            "log": log,
            "format": plotly_number_format(unit),
            "money": unit.startswith("currency"),
            "boxes": boxes,
            "caption": ("Customers at zero or below, who cannot be on the log scale: " + ", ".join(left_out) + ".")
            if left_out else "",
        })
    return out
