"""`SegmentationResult.save` writes the report with the other outputs, atomically."""

from __future__ import annotations

import json

import pytest

import segwise.runs as runs
from segwise.outputs import STAGING_PREFIX
from segwise.runs import OUTPUT_FILES


def test_save_writes_the_report_built_from_the_saved_outputs(kmeans_run):
    run = json.loads((kmeans_run.path / "run.json").read_text())
    html = (kmeans_run.path / "report.html").read_text(encoding="utf-8")
    assert run["outputs"] == [*OUTPUT_FILES, "report.html"]
    assert f"from run {run['run_id']}" in html  # built from this run's run.json, not a stale one
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_save_without_report(kmeans_run, tmp_path):
    paths = kmeans_run.result.save(tmp_path, store=False, report=False)
    assert "report.html" not in paths and not (tmp_path / "report.html").exists()
    assert "report.html" not in json.loads((tmp_path / "run.json").read_text())["outputs"]


def test_a_failing_report_leaves_the_previous_outputs(kmeans_run, tmp_path, monkeypatch):
    kmeans_run.result.save(tmp_path, store=False, report=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    class Broken(Exception):
        pass

    def broken(run_dir):
        raise Broken(f"cannot build the report of {run_dir}")

    monkeypatch.setattr(runs, "render_report", broken)
    with pytest.raises(Broken):
        kmeans_run.result.save(tmp_path, store=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert not list(tmp_path.glob(STAGING_PREFIX + "*"))
