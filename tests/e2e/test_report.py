"""`segwise run` writes report.html, `segwise report` rebuilds it, `segwise demo` points to it."""

from __future__ import annotations

import json

import pytest

from ..report.browser import assert_drawn, open_report
from .conftest import Jobs, assert_bad_input, assert_ok, run_segwise

SECTIONS = ["section-header", "section-segments", "section-profile", "section-map", "section-distributions",
            "section-selection"]
FIGURES = ["fig-heatmap", "fig-map"] + [
    f"fig-distribution-{c}" for c in ("monetary_total", "n_orders", "recency_days", "monetary_avg", "tenure_days")
] + [f"fig-selection-{m}" for m in ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz")]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, trained):
    root = tmp_path_factory.mktemp("report")
    (root / "empty").mkdir()
    argv = {
        "no_report": ["run", trained.data, "--out", "plain", "--no-report", "--k-max", "5"],
        "demo": ["demo", "--customers", "1500", "--out", "demo"],
        "not_a_run": ["report", "empty"],
        "missing": ["report", "nowhere"],
        "few_points": ["report", trained.out, "--max-points", "10"],
    }
    return Jobs({name: (args, root) for name, args in argv.items()})


def test_run_writes_a_report_that_draws(trained, chromium, tmp_path):
    assert "report written to out/report.html (" in trained.result.out
    run = json.loads((trained.out / "run.json").read_text())
    assert "report.html" in run["outputs"]
    rendered = open_report(chromium, trained.out / "report.html", tmp_path / "report.png")
    assert_drawn(rendered, sections=SECTIONS, figures=FIGURES, run=run)
    for segment in run["segments"]:
        assert segment["segment_name"] in rendered.text


def test_no_report_then_segwise_report(jobs, chromium, tmp_path):
    result = assert_ok(jobs["no_report"])
    plain = result.cwd / "plain"
    assert not (plain / "report.html").exists()
    assert "report written" not in result.out
    rebuilt = assert_ok(run_segwise("report", "plain", cwd=result.cwd))
    assert "report written to plain/report.html (" in rebuilt.out
    other = assert_ok(run_segwise("report", "plain", "--out", "elsewhere/shop.html", "--currency", "EUR ",
                                  cwd=result.cwd))
    assert "report written to elsewhere/shop.html" in other.out
    rendered = open_report(chromium, result.cwd / "elsewhere" / "shop.html", tmp_path / "shop.png")
    assert_drawn(rendered, sections=SECTIONS, figures=FIGURES, run=json.loads((plain / "run.json").read_text()))
    assert "EUR " in rendered.text
    # Rebuilding reads the outputs only: they are unchanged.
    assert json.loads((plain / "run.json").read_text())["outputs"][-1] == "segwise.duckdb"


def test_demo_prints_the_report_path(jobs):
    result = assert_ok(jobs["demo"])
    assert "report written to demo/report.html (" in result.out
    assert (result.cwd / "demo" / "report.html").stat().st_size > 1_000_000


def test_report_of_something_that_is_not_a_run(jobs):
    assert_bad_input(jobs["not_a_run"], "empty: not a segwise run directory (no run.json); run `segwise run` first")
    assert_bad_input(jobs["missing"], "nowhere: no such run directory; give the --out directory of `segwise run`")
    assert_bad_input(jobs["few_points"], "--max-points must be at least 100, got 10")
