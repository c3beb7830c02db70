"""The segment report: one self-contained interactive HTML file per run.

``build_report(run_dir)`` reads the outputs of a run (``run.json``,
``profiles.json``, ``assignments.parquet``, ``features.parquet``,
``model.segwise``; it never refits) and writes ``run_dir/report.html``: a header
about the data and the run, one card per segment, actionability warnings and
economics, the profile heatmap, a map of the customers, distributions of the key
features, the sections of the method and of validation when the run has their
data, and how the number of segments was chosen.

The package is split along what each part does:

- `segwise.report.rundir`: reading a run directory;
- `segwise.report.data`: computing every section (the map's projection and
  sampling, percentiles, formatted numbers) and the run.json shapes of the core
  sections;
- `segwise.report.method_data`, `segwise.report.validation_data`: the sections
  that appear when their data exists (method details; validation, stability,
  drift, alignment, tracking, economics, actionability), with the run.json shapes each expects;
- `segwise.report.figures`: the plotly figures (plotly imported lazily);
- `segwise.report.render`: the Jinja template (package data), inline styles and
  plotly.js embedded once;
- `segwise.report.format`, `segwise.report.palette`: numbers for people, one
  colour per segment.

The file needs no network to open, and stays under `MAX_REPORT_BYTES` whatever the
number of customers: the map draws at most 20,000 of them (sampled within each
segment) and every other figure grows only with the number of segments and
features.
"""

from segwise.report.build import MAX_REPORT_BYTES, REPORT_FILENAME, ReportResult, build_report, render_report

__all__ = ["build_report", "render_report", "ReportResult", "REPORT_FILENAME", "MAX_REPORT_BYTES"]
