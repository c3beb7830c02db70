"""Plotly figures of the report, drawn from the computed sections (`segwise.report.data`).

Nothing is computed here beyond what drawing needs; plotly is imported only when a
figure is made. Every figure uses the report's segment colours, a white
background and the page's font, and leaves its width to the page (the figures
are responsive). Figure ids (the keys of `build_figures`) are the ids of the
elements the template draws them in.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from segwise.report.palette import DIVERGING, SEQUENTIAL

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from segwise.report.data import ReportData

__all__ = ["build_figures", "FONT"]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_INK = "#1f2933"
_GRID = "#e5e8ec"
_ACCENT = "#c2410c"


def _go():
    import plotly.graph_objects as go

    return go


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    layout = {
        # "none" keeps plotly.py's default template (several kB per figure) out of the file.
        "template": "none",
        "height": height,
        "autosize": True,
        "font": {"family": FONT, "size": 13, "color": _INK},
        "margin": {"l": 60, "r": 20, "t": 36, "b": 48},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hoverlabel": {"font": {"family": FONT}},
        "legend": {"orientation": "h", "y": -0.2},
    }
    layout.update(extra)
    return layout


def _axis(title: str = "", **extra: Any) -> dict[str, Any]:
    axis = {"title": {"text": title}, "gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": "#c9ced6",
            "automargin": True}
    axis.update(extra)
    return axis


def build_figures(data: "ReportData") -> dict[str, "go.Figure"]:
    """Every figure the report's sections call for, by element id."""
    figures: dict[str, Any] = {}
    if data.heatmap:
        figures["fig-heatmap"] = heatmap_figure(data.heatmap)
    if data.map:
        figures["fig-map"] = map_figure(data.map, data.currency)
    for dist in data.distributions:
        figures[f"fig-distribution-{dist['column']}"] = distribution_figure(dist, data.currency)
    if data.selection:
        for panel in data.selection["panels"]:
            figures[f"fig-selection-{panel['metric']}"] = selection_figure(panel, data.selection)
    methods = data.methods
    if "hierarchical" in methods:
        figures["fig-dendrogram"] = dendrogram_figure(methods["hierarchical"])
    if "density" in methods and methods["density"]["rows"]:
        figures["fig-density"] = density_figure(methods["density"])
    if "mixture" in methods:
        figures["fig-mixture-overlap"] = overlap_figure(methods["mixture"])
        figures["fig-mixture-confidence"] = confidence_figure(methods["mixture"])
    if "som" in methods:
        som = methods["som"]
        figures["fig-som-umatrix"] = umatrix_figure(som)
        if som["nodes"]:
            figures["fig-som-nodes"] = som_nodes_figure(som)
        if som["planes"]:
            figures["fig-som-planes"] = component_planes_figure(som)
    if "multiview" in methods and methods["multiview"]["matrix"]:
        figures["fig-multiview"] = multiview_figure(methods["multiview"]["matrix"])
    if "autoencoder" in methods:
        figures["fig-autoencoder"] = loss_figure(methods["autoencoder"])
    if data.validation and data.validation["bars"]:
        figures["fig-validation-silhouette"] = silhouette_figure(data.validation)
    if data.stability:
        figures["fig-stability"] = stability_figure(data.stability)
    if data.drift:
        if data.drift["features"]:
            figures["fig-drift-features"] = drift_features_figure(data.drift)
        if data.drift["shares"]:
            figures["fig-drift-shares"] = drift_shares_figure(data.drift)
    if data.tracking:
        if data.tracking["matrix"]:
            figures["fig-transitions"] = transitions_figure(data.tracking["matrix"])
        if data.tracking["shares"]:
            figures["fig-shares"] = shares_figure(data.tracking["shares"])
    return figures


# --------------------------------------------------------------------------- core sections


def heatmap_figure(heatmap: dict[str, Any]) -> "go.Figure":
    """Features (rows) x segments (columns), z-scores on a diverging scale centred on 0."""
    go = _go()
    z = np.array([[np.nan if v is None else v for v in row] for row in heatmap["z"]], dtype=np.float64).T
    text = [["" if not math.isfinite(v) else f"{v:+.1f}" for v in row] for row in z]
    hover = np.array(heatmap["hover"], dtype=object).T
    labels = [("\u25cf " if d else "") + label for label, d in zip(heatmap["labels"], heatmap["defining"])]
    limit = 3.0
    figure = go.Figure(go.Heatmap(
        z=z, x=heatmap["segment_names"], y=labels, text=text, texttemplate="%{text}", customdata=hover,
        colorscale=DIVERGING, zmid=0, zmin=-limit, zmax=limit, xgap=2, ygap=2,
        colorbar={"title": {"text": "z-score"}, "thickness": 12},
        hovertemplate="<b>%{x}</b><br>%{y}<br>z = %{z:+.2f}<br>%{customdata}<extra></extra>",
    ))
    figure.update_layout(**_layout(
        height=max(260, 26 * len(labels) + 140),
        xaxis=_axis(side="top", tickangle=-20),
        yaxis=_axis(autorange="reversed"),
        margin={"l": 60, "r": 20, "t": 80, "b": 20},
    ))
    return figure


def map_figure(section: dict[str, Any], currency: str | None) -> "go.Figure":
    """Customers on the first two principal components, one trace (and colour) per segment."""
    go = _go()
    lines = []
    for i, item in enumerate(section["hover"]):
        prefix = (currency or "") if item["money"] else ""
        lines.append(f"{item['label']}: {prefix}%{{customdata[{i}]:{item['format']}}}")
    template = "<b>%{fullData.name}</b><br>" + "<br>".join(lines) + "<extra></extra>"
    figure = go.Figure()
    for trace in section["traces"]:
        figure.add_trace(go.Scatter(
            x=trace["x"], y=trace["y"], customdata=trace["custom"], mode="markers", name=trace["name"],
            marker={"color": trace["colour"], "size": 5, "opacity": 0.65, "line": {"width": 0}},
            hovertemplate=template,
        ))
    figure.update_layout(**_layout(
        height=560,
        xaxis=_axis(section["axis_titles"][0], zeroline=False, showticklabels=False),
        yaxis=_axis(section["axis_titles"][1], zeroline=False, showticklabels=False),
        legend={"orientation": "h", "y": -0.12, "itemsizing": "constant"},
        hovermode="closest",
    ))
    return figure


def distribution_figure(dist: dict[str, Any], currency: str | None) -> "go.Figure":
    """Box plots (5th-95th percentile whiskers) of one feature, one box per segment."""
    go = _go()
    figure = go.Figure()
    for box in dist["boxes"]:
        figure.add_trace(go.Box(
            y=[box["name"]], q1=[box["q1"]], median=[box["median"]], q3=[box["q3"]],
            lowerfence=[box["p5"]], upperfence=[box["p95"]], mean=[box["mean"]], orientation="h",
            name=box["name"], marker={"color": box["colour"]}, line={"color": box["colour"]},
            fillcolor=_transparent(box["colour"], 0.35), showlegend=False, boxpoints=False,
        ))
    title = dist["label"] + (" (log scale)" if dist["log"] else "")
    tick_prefix = (currency or "") if dist["money"] else ""
    figure.update_layout(**_layout(
        height=max(220, 34 * len(dist["boxes"]) + 90),
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        xaxis=_axis(type="log" if dist["log"] else "linear", tickprefix=tick_prefix, hoverformat=dist["format"],
                    **(_log_ticks(min(b["p5"] for b in dist["boxes"]), max(b["p95"] for b in dist["boxes"]))
                       if dist["log"] else {})),
        yaxis=_axis(autorange="reversed"),
        margin={"l": 60, "r": 20, "t": 44, "b": 36},
    ))
    return figure


def selection_figure(panel: dict[str, Any], selection: dict[str, Any]) -> "go.Figure":
    """One score against the number of segments, the chosen number (and the knee) marked."""
    go = _go()
    figure = go.Figure()
    chosen = selection["chosen"]
    palette = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f"]
    for i, series in enumerate(panel["series"]):
        figure.add_trace(go.Scatter(
            x=series["k"], y=series["values"], mode="lines+markers", name=series["group"] or panel["title"],
            line={"color": palette[i % len(palette)], "width": 2}, marker={"size": 7},
            showlegend=len(panel["series"]) > 1,
            hovertemplate="k = %{x}<br>%{y:,.4~g}<extra>" + (series["group"] or "") + "</extra>",
        ))
        if chosen in series["k"]:
            figure.add_trace(go.Scatter(
                x=[chosen], y=[series["values"][series["k"].index(chosen)]], mode="markers", showlegend=False,
                marker={"size": 14, "color": _ACCENT, "symbol": "circle-open", "line": {"width": 3}},
                hovertemplate="chosen: k = %{x}<extra></extra>",
            ))
    figure.add_vline(x=chosen, line={"color": _ACCENT, "dash": "dot", "width": 1.5})
    knee = selection.get("knee")
    if panel["metric"] == "inertia" and knee is not None and panel["series"]:
        series = panel["series"][0]
        if knee in series["k"]:
            figure.add_annotation(x=knee, y=series["values"][series["k"].index(knee)], text=f"knee (k={knee})",
                                  showarrow=True, arrowhead=2, ax=40, ay=-40, font={"color": _INK})
    better = {"higher": " \u2191 higher is better", "lower": " \u2193 lower is better"}.get(panel["better"] or "", "")
    figure.update_layout(**_layout(
        height=280,
        title={"text": panel["title"] + f"<span style='font-size:12px;color:#6b7280'>{better}</span>", "x": 0,
               "xanchor": "left", "font": {"size": 15}},
        xaxis=_axis("number of segments (k)", dtick=1),
        yaxis=_axis(),
        margin={"l": 60, "r": 20, "t": 44, "b": 48},
    ))
    return figure


# --------------------------------------------------------------------------- method sections


def dendrogram_figure(section: dict[str, Any]) -> "go.Figure":
    """The top of the tree; dashed lines where it is cut into segments."""
    go = _go()
    xs: list[float | None] = []
    ys: list[float | None] = []
    for icoord, dcoord in zip(section["icoord"], section["dcoord"]):
        xs += list(icoord) + [None]
        ys += list(dcoord) + [None]
    figure = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#475569", "width": 1.5},
                                  hoverinfo="skip", showlegend=False))
    for cut in section["cuts"]:
        colour = _ACCENT if cut["chosen"] else "#64748b"
        figure.add_hline(y=cut["height"], line={"color": colour, "dash": "dash", "width": 2 if cut["chosen"] else 1},
                         annotation_text=f"{cut['k']} segments", annotation_position="top right",
                         annotation_font={"color": colour})
    figure.update_layout(**_layout(
        height=420,
        xaxis=_axis("customers under each branch", tickmode="array", tickvals=section["leaf_positions"],
                    ticktext=section["leaf_labels"], tickangle=-60, showgrid=False, zeroline=False),
        yaxis=_axis("merge height (distance)", zeroline=False),
        margin={"l": 60, "r": 20, "t": 24, "b": 90},
    ))
    return figure


def density_figure(section: dict[str, Any]) -> "go.Figure":
    """Share of customers (light) and of revenue (solid) of the micro-segments and the outliers."""
    go = _go()
    rows = section["rows"]
    names = [r["name"] for r in rows]
    figure = go.Figure()
    figure.add_trace(go.Bar(
        y=names, x=[r["share_customers_value"] for r in rows], orientation="h", name="share of customers",
        marker={"color": [_transparent(r["colour"], 0.35) for r in rows], "line": {"color": [r["colour"] for r in rows],
                                                                                     "width": 1}},
        hovertemplate="%{y}<br>%{x:.2%} of customers<extra></extra>",
    ))
    figure.add_trace(go.Bar(
        y=names, x=[r["share_revenue_value"] for r in rows], orientation="h", name="share of revenue",
        marker={"color": [r["colour"] for r in rows]},
        hovertemplate="%{y}<br>%{x:.2%} of revenue<extra></extra>",
    ))
    figure.update_layout(**_layout(
        height=max(220, 56 * len(rows) + 100), barmode="group",
        xaxis=_axis("share", tickformat=".1%"), yaxis=_axis(autorange="reversed"),
    ))
    return figure


def overlap_figure(section: dict[str, Any]) -> "go.Figure":
    """Customers likely to belong to both of two segments."""
    go = _go()
    counts = np.array(section["overlap"], dtype=np.float64)
    figure = go.Figure(go.Heatmap(
        z=counts, x=section["names"], y=section["names"], colorscale=SEQUENTIAL, xgap=2, ygap=2,
        text=[[f"{int(v):,}" if v else "" for v in row] for row in counts], texttemplate="%{text}",
        colorbar={"title": {"text": "customers"}, "thickness": 12},
        hovertemplate="%{y} and %{x}<br>%{z:,} customers<extra></extra>",
    ))
    figure.update_layout(**_layout(
        height=max(300, 34 * len(section["names"]) + 140),
        xaxis=_axis(tickangle=-30), yaxis=_axis(autorange="reversed"),
    ))
    return figure


def confidence_figure(section: dict[str, Any]) -> "go.Figure":
    """How sure each assignment is: stacked histogram of the membership probability."""
    go = _go()
    figure = go.Figure()
    for histogram in section["histograms"]:
        figure.add_trace(go.Bar(
            x=section["bin_centres"], y=histogram["counts"], name=histogram["name"],
            marker={"color": histogram["colour"]},
            hovertemplate=histogram["name"] + "<br>probability %{x:.0%}: %{y:,} customers<extra></extra>",
        ))
    figure.update_layout(**_layout(
        height=320, barmode="stack", bargap=0.05,
        xaxis=_axis("probability of the assigned segment", tickformat=".0%", range=[0, 1]),
        yaxis=_axis("customers"),
    ))
    return figure


def umatrix_figure(section: dict[str, Any]) -> "go.Figure":
    """U-matrix: mean distance of each map node to its neighbours (light = border between groups)."""
    go = _go()
    figure = go.Figure(go.Heatmap(
        z=section["u_matrix"], colorscale="Greys", reversescale=True, xgap=1, ygap=1,
        colorbar={"title": {"text": "distance"}, "thickness": 12},
        hovertemplate="node (%{y}, %{x})<br>distance to neighbours %{z:.3f}<extra></extra>",
    ))
    figure.update_layout(**_layout(
        height=380, xaxis=_axis(showgrid=False, zeroline=False, constrain="domain"),
        yaxis=_axis(showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x"),
    ))
    return figure


def som_nodes_figure(section: dict[str, Any]) -> "go.Figure":
    """Segment of every map node; marker area proportional to the customers it holds."""
    go = _go()
    nodes = section["nodes"]
    hits = np.asarray(nodes["hits"], dtype=np.float64)
    size = 6 + 22 * np.sqrt(hits / hits.max()) if hits.max() > 0 else np.full(len(hits), 10.0)
    figure = go.Figure(go.Scatter(
        x=nodes["col"], y=nodes["row"], mode="markers", customdata=np.column_stack([nodes["segment"], hits]),
        marker={"color": nodes["colour"], "size": size, "line": {"width": 0}},
        hovertemplate="node (%{y}, %{x})<br>segment %{customdata[0]}<br>%{customdata[1]:,} customers<extra></extra>",
        showlegend=False,
    ))
    figure.update_layout(**_layout(
        height=380, xaxis=_axis(showgrid=False, zeroline=False, showticklabels=False),
        yaxis=_axis(showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x", showticklabels=False),
    ))
    return figure


def component_planes_figure(section: dict[str, Any]) -> "go.Figure":
    """One small heatmap per feature: its mean value on each node of the map."""
    go = _go()
    from plotly.subplots import make_subplots

    planes = section["planes"]
    cols = min(4, len(planes))
    rows = math.ceil(len(planes) / cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=[p["label"] for p in planes],
                           horizontal_spacing=0.04, vertical_spacing=0.12)
    for i, plane in enumerate(planes):
        figure.add_trace(go.Heatmap(
            z=plane["grid"], colorscale="Viridis", showscale=False,
            hovertemplate=plane["label"] + "<br>node (%{y}, %{x}): %{z:.2f}<extra></extra>",
        ), row=i // cols + 1, col=i % cols + 1)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    figure.update_layout(**_layout(height=200 * rows + 40, margin={"l": 10, "r": 10, "t": 40, "b": 10}))
    figure.update_annotations(font={"size": 12})
    return figure


def multiview_figure(matrix: dict[str, Any]) -> "go.Figure":
    """Customers in each pair of segments of the first two views."""
    go = _go()
    figure = go.Figure(go.Heatmap(
        z=matrix["counts"], x=matrix["cols"], y=matrix["rows"], text=matrix["text"], texttemplate="%{text}",
        colorscale=SEQUENTIAL, xgap=2, ygap=2, colorbar={"title": {"text": "customers"}, "thickness": 12},
        hovertemplate="%{y} and %{x}<br>%{z:,} customers<extra></extra>",
    ))
    figure.update_layout(**_layout(
        height=max(300, 40 * len(matrix["rows"]) + 140),
        xaxis=_axis(matrix["col_view"] + " view", tickangle=-20), yaxis=_axis(matrix["row_view"] + " view",
                                                                               autorange="reversed"),
    ))
    return figure


def loss_figure(section: dict[str, Any]) -> "go.Figure":
    """Reconstruction loss of the autoencoder per epoch."""
    go = _go()
    figure = go.Figure(go.Scatter(x=section["epochs"], y=section["loss"], mode="lines+markers",
                                  line={"color": "#4e79a7"}, marker={"size": 4},
                                  hovertemplate="epoch %{x}<br>loss %{y:.4g}<extra></extra>"))
    figure.update_layout(**_layout(height=300, xaxis=_axis("epoch"), yaxis=_axis("reconstruction loss")))
    return figure


# --------------------------------------------------------------------------- validation


def silhouette_figure(section: dict[str, Any]) -> "go.Figure":
    """Mean silhouette of each segment's sampled customers, the overall mean marked."""
    go = _go()
    bars = section["bars"]
    figure = go.Figure(go.Bar(
        y=[b["name"] for b in bars], x=[b["silhouette"] for b in bars], orientation="h",
        customdata=[b["sampled"] for b in bars], marker={"color": [b["colour"] for b in bars]},
        hovertemplate="%{y}<br>mean silhouette %{x:.2f}<br>%{customdata:,} customers sampled<extra></extra>",
        showlegend=False,
    ))
    if section["overall"] is not None:
        figure.add_vline(x=section["overall"], line={"color": _ACCENT, "dash": "dash"},
                         annotation_text=f"all customers {section['overall']:.2f}", annotation_position="top")
    low = min(0.0, *(b["silhouette"] for b in bars))
    figure.update_layout(**_layout(
        height=max(240, 36 * len(bars) + 100),
        xaxis=_axis("mean silhouette (-1 to 1; higher: better separated)", range=[low - 0.05, 1.0]),
        yaxis=_axis(autorange="reversed"),
    ))
    return figure


def stability_figure(section: dict[str, Any]) -> "go.Figure":
    """Mean best-match Jaccard of each segment over the bootstrap refits, with its interval."""
    go = _go()
    bars = section["bars"]
    has_ci = all(b["low"] is not None and b["high"] is not None for b in bars)
    error = None
    if has_ci:
        error = {"type": "data", "symmetric": False, "color": _INK, "thickness": 1.2,
                 "array": [b["high"] - b["jaccard"] for b in bars],
                 "arrayminus": [b["jaccard"] - b["low"] for b in bars]}
    figure = go.Figure(go.Bar(
        y=[b["name"] for b in bars], x=[b["jaccard"] for b in bars], orientation="h", error_x=error,
        marker={"color": [b["colour"] for b in bars],
                "pattern": {"shape": ["/" if b["unstable"] else "" for b in bars], "fgcolor": "white"}},
        hovertemplate="%{y}<br>Jaccard %{x:.2f}<extra></extra>", showlegend=False,
    ))
    figure.add_vline(x=section["threshold"], line={"color": _ACCENT, "dash": "dash"},
                     annotation_text=f"unstable below {section['threshold']:.2f}", annotation_position="top")
    figure.update_layout(**_layout(
        height=max(240, 36 * len(bars) + 100),
        xaxis=_axis("mean Jaccard similarity with the best-matching segment of each refit", range=[0, 1.02]),
        yaxis=_axis(autorange="reversed"),
    ))
    return figure


def drift_features_figure(section: dict[str, Any]) -> "go.Figure":
    """Population stability index of each feature against the training data."""
    go = _go()
    features = section["features"]

    def colour(psi: float) -> str:
        return "#b91c1c" if psi > section["significant"] else "#d97706" if psi > section["moderate"] else "#15803d"

    figure = go.Figure(go.Bar(
        y=[f["label"] for f in features], x=[f["psi"] for f in features], orientation="h",
        marker={"color": [colour(f["psi"]) for f in features]}, showlegend=False,
        hovertemplate="%{y}<br>PSI %{x:.3f}<extra></extra>",
    ))
    figure.add_vline(x=section["moderate"], line={"color": "#d97706", "dash": "dot"},
                     annotation_text="moderate", annotation_position="top")
    figure.add_vline(x=section["significant"], line={"color": "#b91c1c", "dash": "dash"},
                     annotation_text="significant", annotation_position="top")
    figure.update_layout(**_layout(
        height=max(240, 26 * len(features) + 100),
        xaxis=_axis("population stability index (PSI)"), yaxis=_axis(autorange="reversed"),
    ))
    return figure


def drift_shares_figure(section: dict[str, Any]) -> "go.Figure":
    """Segment shares at training (light) and now (solid)."""
    go = _go()
    shares = section["shares"]
    names = [s["name"] for s in shares]
    figure = go.Figure([
        go.Bar(x=names, y=[s["training"] for s in shares], name="at training",
               marker={"color": [_transparent(s["colour"], 0.35) for s in shares]},
               hovertemplate="%{x}<br>%{y:.1%} at training<extra></extra>"),
        go.Bar(x=names, y=[s["current"] for s in shares], name="now", marker={"color": [s["colour"] for s in shares]},
               hovertemplate="%{x}<br>%{y:.1%} now<extra></extra>"),
    ])
    figure.update_layout(**_layout(height=320, barmode="group", xaxis=_axis(tickangle=-20),
                                   yaxis=_axis("share of customers", tickformat=".0%")))
    return figure


def transitions_figure(matrix: dict[str, Any]) -> "go.Figure":
    """Where the customers of each segment went: row shares between two dates."""
    go = _go()
    figure = go.Figure(go.Heatmap(
        z=matrix["share"], x=matrix["cols"], y=matrix["rows"], text=matrix["text"], texttemplate="%{text}",
        colorscale=SEQUENTIAL, zmin=0, zmax=1, xgap=2, ygap=2,
        colorbar={"title": {"text": "share of row"}, "thickness": 12, "tickformat": ".0%"},
        hovertemplate="from %{y} to %{x}<br>%{z:.1%} of the row<extra></extra>",
    ))
    figure.update_layout(**_layout(
        height=max(320, 36 * len(matrix["rows"]) + 160),
        xaxis=_axis("segment at the end of the period", side="top", tickangle=-20),
        yaxis=_axis("segment at the start", autorange="reversed"),
        margin={"l": 60, "r": 20, "t": 110, "b": 20},
    ))
    return figure


def shares_figure(section: dict[str, Any]) -> "go.Figure":
    """Share of customers in each segment at every snapshot date."""
    go = _go()
    figure = go.Figure([
        go.Scatter(x=line["as_of"], y=line["share"], mode="lines+markers", name=line["name"],
                   line={"color": line["colour"], "width": 2},
                   hovertemplate=line["name"] + "<br>%{x}: %{y:.1%}<extra></extra>")
        for line in section["lines"]
    ])
    figure.update_layout(**_layout(height=340, xaxis=_axis("as of", type="category"),
                                   yaxis=_axis("share of customers", tickformat=".0%", rangemode="tozero")))
    return figure


def _log_ticks(low: float, high: float) -> dict[str, Any]:
    """Ticks at 1, 2, 5, 10, 20, 50... covering [low, high], labelled 1, 2, 5, 10... 1k, 2k."""
    values = []
    exponent = math.floor(math.log10(low)) if low > 0 else 0
    while True:
        for step in (1, 2, 5):
            value = step * 10.0 ** exponent
            if value > high * 1.5:
                return {"tickmode": "array", "tickvals": values, "ticktext": [_short_number(v) for v in values]}
            if value >= low / 1.5:
                values.append(value)
        exponent += 1


def _short_number(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _transparent(colour: str, alpha: float) -> str:
    """``#rrggbb`` as an ``rgba()`` colour with opacity ``alpha``."""
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
