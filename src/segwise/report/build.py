"""Building ``report.html`` from a run directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from segwise.outputs import recover
from segwise.persist import atomic_write_bytes
from segwise.report.data import MAX_MAP_POINTS, ReportData, collect_report_data
from segwise.report.rundir import RunFiles, read_run_dir

__all__ = ["build_report", "render_report", "render_run_files", "ReportResult", "REPORT_FILENAME", "MAX_REPORT_BYTES"]

#: The report's file name in a run directory.
REPORT_FILENAME = "report.html"
#: The size a report stays under, whatever the number of customers (plotly.js is
#: about 4.8 MB of it; the map is capped at `MAX_MAP_POINTS` customers and every
#: other figure grows with the number of segments and features only).
MAX_REPORT_BYTES = 8 * 1024 * 1024


@dataclass
class ReportResult:
    """A written report: where, how large, how long it took and what it shows."""

    path: Path
    size_bytes: int
    seconds: float
    sections: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def _render(files: RunFiles, *, currency: str | None, max_points: int,
            random_state: int) -> tuple[str, ReportData, list[str]]:
    from segwise.report.figures import build_figures
    from segwise.report.render import render_html

    data = collect_report_data(files, currency=currency, max_points=max_points, random_state=random_state)
    figures = build_figures(data)
    return render_html(data, figures), data, list(figures)


def render_run_files(files: RunFiles, *, currency: str | None = None, max_points: int = MAX_MAP_POINTS,
                     random_state: int = 0) -> str:
    """The report of a run's outputs already in memory (`segwise.report.rundir.run_files_in_memory`).

    Parameters as in `render_report`; the HTML is the same as `render_report` of the
    directory those outputs are written to.
    """
    return _render(files, currency=currency, max_points=max_points, random_state=random_state)[0]


def render_report(run_dir: str | Path, *, currency: str | None = None, max_points: int = MAX_MAP_POINTS,
                  random_state: int = 0) -> str:
    """The report of the run in ``run_dir`` as HTML text (nothing is written).

    Parameters
    ----------
    run_dir : path
        A directory written by ``segwise run`` (or `SegmentationResult.save`).
    currency : str, optional
        Put in front of money amounts (``"€"``, ``"USD "``).
    max_points : int
        Most customers drawn on the map of segments.
    random_state : int
        Seed of the map's sample.
    """
    return render_run_files(read_run_dir(run_dir), currency=currency, max_points=max_points,
                            random_state=random_state)


def build_report(run_dir: str | Path, out: str | Path | None = None, *, currency: str | None = None,
                 max_points: int = MAX_MAP_POINTS, random_state: int = 0) -> ReportResult:
    """Write the report of the run in ``run_dir`` (to ``run_dir/report.html`` unless ``out`` is given).

    The run's outputs are only read: nothing is refitted. The file is written
    atomically (temporary name, then renamed). Parameters as in `render_report`.

    Returns
    -------
    ReportResult
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    recover(run_dir)
    html, data, figures = _render(read_run_dir(run_dir), currency=currency, max_points=max_points,
                                  random_state=random_state)
    path = Path(out) if out is not None else run_dir / REPORT_FILENAME
    payload = html.encode("utf-8")
    atomic_write_bytes(path, payload)
    return ReportResult(path=path, size_bytes=len(payload), seconds=time.perf_counter() - started,
                        sections=section_ids(data), figures=figures)


def section_ids(data: ReportData) -> list[str]:
    """Element ids of the sections a report shows, in page order."""
    present = [
        ("section-header", True),
        ("section-segments", bool(data.cards)),
        ("section-actionability", data.actionability is not None),
        ("section-economics", data.economics is not None),
        ("section-profile", data.heatmap is not None),
        ("section-map", data.map is not None),
        ("section-distributions", bool(data.distributions)),
        ("section-hierarchical", "hierarchical" in data.methods),
        ("section-density", "density" in data.methods),
        ("section-mixture", "mixture" in data.methods),
        ("section-som", "som" in data.methods),
        ("section-multiview", "multiview" in data.methods),
        ("section-autoencoder", "autoencoder" in data.methods),
        ("section-validation", data.validation is not None),
        ("section-stability", data.stability is not None),
        ("section-drift", data.drift is not None),
        ("section-alignment", data.alignment is not None),
        ("section-tracking", data.tracking is not None),
        ("section-selection", data.selection is not None),
    ]
    return [name for name, shown in present if shown]
