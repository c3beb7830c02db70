"""`SegmentationResult.save` writes the report with the other outputs, atomically."""

from __future__ import annotations

import json
import re

import pytest

import segwise
import segwise.runs as runs
from segwise.outputs import STAGING_PREFIX
from segwise.report import render_report
from segwise.runs import OUTPUT_FILES


def _made_at_any_time(html: str) -> str:
    """The page without the minute it was rendered at (the fixture's run may be minutes old)."""
    stamp = re.compile(r" on \d{4}-\d\d-\d\d \d\d:\d\d UTC from run ")
    assert len(stamp.findall(html)) == 1
    return stamp.sub(" on (time) from run ", html)


def test_save_writes_the_report_built_from_the_saved_outputs(kmeans_run):
    run = json.loads((kmeans_run.path / "run.json").read_text())
    html = (kmeans_run.path / "report.html").read_text(encoding="utf-8")
    assert run["outputs"] == [*OUTPUT_FILES, "report.html"]
    assert f"from run {run['run_id']}" in html  # built from this run's run.json, not a stale one
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_the_report_from_memory_is_the_report_of_the_saved_files(kmeans_run):
    """save builds the report from the objects it writes; read back from the files it is the same page."""
    html = (kmeans_run.path / "report.html").read_text(encoding="utf-8")
    assert _made_at_any_time(render_report(kmeans_run.path)) == _made_at_any_time(html)


def test_the_report_from_memory_with_customer_attributes_and_a_playbook(small_population, tmp_path):
    # Text columns of a customer table and a playbook are the parts whose types a file round trip could change.
    playbook = tmp_path / "playbook.toml"
    playbook.write_text('[segments."0"]\ndescription = "Top"\n[[segments."0".actions]]\naction = "Thank them"\n')
    result = segwise.segment(small_population.orders, customers=small_population.customers, n_segments=3,
                             random_state=0, playbook=playbook)
    assert not result.features.frame.select_dtypes(exclude="number").empty
    result.save(tmp_path / "run", store=False)
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Thank them" in html
    assert _made_at_any_time(render_report(tmp_path / "run")) == _made_at_any_time(html)


def test_save_without_report(kmeans_run, tmp_path):
    paths = kmeans_run.result.save(tmp_path, store=False, report=False)
    assert "report.html" not in paths and not (tmp_path / "report.html").exists()
    assert "report.html" not in json.loads((tmp_path / "run.json").read_text())["outputs"]


def test_a_failing_report_leaves_the_previous_outputs(kmeans_run, tmp_path, monkeypatch):
    kmeans_run.result.save(tmp_path, store=False, report=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    class Broken(Exception):
        pass

    def broken(files):
        raise Broken(f"cannot build the report of {files.path}")

    monkeypatch.setattr(runs, "render_run_files", broken)
    with pytest.raises(Broken):
        kmeans_run.result.save(tmp_path, store=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert not list(tmp_path.glob(STAGING_PREFIX + "*"))
