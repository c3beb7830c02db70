"""Assembling the HTML file: Jinja template, inline styles, plotly.js once, figure data.

The page is one file that needs no network: the stylesheet is inlined, plotly.js
is embedded once in a ``<script>`` element, and every figure's data and layout
sit in one JSON block that a few lines of script hand to ``Plotly.newPlot``. When
every figure is drawn the ``<body>`` gets ``data-figures-drawn="N"``.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import jinja2

    from segwise.report.data import ReportData

__all__ = ["render_html", "TEMPLATE"]

#: The page template (package data under ``segwise/report/templates``).
TEMPLATE = "report.html.j2"
_STYLESHEET = "report.css"


@functools.lru_cache(maxsize=1)
def _environment() -> "jinja2.Environment":
    import jinja2

    from segwise.report.format import FILTERS

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segwise.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def _script_json(text: str) -> str:
    """JSON that cannot end a ``<script>`` element early (``<``, ``>``, ``&`` escaped inside strings)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figures_json(figures: dict[str, Any]) -> str:
    """One JSON object: element id -> ``{"data": [...], "layout": {...}}``."""
    import plotly.io as pio

    parts = [f"{json.dumps(fig_id)}:{pio.to_json(figure, validate=False, pretty=False)}"
             for fig_id, figure in figures.items()]
    return "{" + ",".join(parts) + "}"


def render_html(data: "ReportData", figures: dict[str, Any]) -> str:
    """The complete report page."""
    import plotly
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    env = _environment()
    stylesheet = env.loader.get_source(env, _STYLESHEET)[0]
    return env.get_template(TEMPLATE).render(
        data=data,
        figures=set(figures),
        n_figures=len(figures),
        stylesheet=Markup(stylesheet),
        figure_json=Markup(_script_json(figures_json(figures))),
        plotly_js=Markup(get_plotlyjs()),
        plotly_version=plotly.__version__,
    )
