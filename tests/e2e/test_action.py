"""Acting on segments through the real ``segwise`` script: playbook, cards, ab, export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import psycopg
import pytest

import segwise
import segwise.store

from ..test_export import Receiver
from .conftest import Jobs, assert_bad_input, assert_ok, run_segwise


@pytest.fixture(scope="module")
def root(tmp_path_factory, trained):
    """A working directory with two copies of the shared training run (``out``, ``out2``) and its order log."""
    root = tmp_path_factory.mktemp("action")
    shutil.copytree(trained.out, root / "out")
    shutil.copytree(trained.out, root / "out2")
    shutil.copy(trained.data, root / trained.data.name)
    return root


@pytest.fixture(scope="module")
def playbook(root):
    """``segwise playbook init out`` (the starter playbook of the training model)."""
    result = assert_ok(run_segwise("playbook", "init", "out", "--out", "playbook.toml", cwd=root))
    return result


@pytest.fixture(scope="module")
def runs(root, trained, playbook):
    """Two more runs at once: one storing the playbook, one re-segmenting ``out2`` for the change feed."""
    data = trained.data.name
    return Jobs({
        "with_playbook": (["run", data, "--out", "withpb", "--playbook", "playbook.toml"], root),
        "resegment": (["run", data, "--out", "out2", "--segments", "3"], root),
    })


# --------------------------------------------------------------------------- playbook and cards


def test_playbook_init_writes_a_valid_starter_for_every_segment(root, playbook):
    model = segwise.load_model(root / "out" / "model.segwise")
    assert f"playbook for {len(model.names)} segments written to playbook.toml" in playbook.out
    text = (root / "playbook.toml").read_text()
    for name in model.names.values():
        assert f'[segments."{name}"]' in text
    check = assert_ok(run_segwise("playbook", "check", "playbook.toml", "out/model.segwise", cwd=root))
    assert f"valid for this model ({len(model.names)} of {len(model.names)} segments)" in check.out
    again = run_segwise("playbook", "init", "out", "--out", "playbook.toml", cwd=root)
    assert_bad_input(again, "playbook.toml: the file exists; choose another --out or pass --force")


def test_playbook_errors_are_reported_as_bad_input(root, playbook):
    (root / "bad.toml").write_text('[segments."Champs"]\nretention_tactics = ["x"]\n')
    result = run_segwise("playbook", "check", "bad.toml", "out", cwd=root)
    assert_bad_input(result, "bad.toml: [segments.\"Champs\"]: the model has no segment named 'Champs'")
    (root / "bad_feature.toml").write_text(
        (root / "playbook.toml").read_text().replace("recency_days", "recency", 1))
    result = run_segwise("playbook", "check", "bad_feature.toml", "out", cwd=root)
    assert_bad_input(result, "unknown feature 'recency'", "did you mean 'recency_days'?")
    result = run_segwise("run", "orders.parquet", "--out", "never", "--playbook", "bad.toml", cwd=root)
    assert_bad_input(result, "the model has no segment named 'Champs'")
    assert not (root / "never" / "run.json").exists()


def test_run_with_a_playbook_stores_it_and_cards_and_actions_use_it(root, runs):
    assert_ok(runs["with_playbook"])
    model = segwise.load_model(root / "withpb" / "model.segwise")
    assert model.playbook is not None and len(model.playbook) == len(model.names)
    assert json.loads((root / "withpb" / "run.json").read_text())["playbook"]["source"] == "playbook.toml"

    cards = assert_ok(run_segwise("cards", "withpb", cwd=root))
    assert cards.stdout.startswith("# Segment cards")
    for segment_id, name in model.names.items():
        assert f"## {segment_id}. {name}" in cards.stdout
        play = model.playbook.for_segment(segment_id)
        assert f"**Retention tactics**: {'; '.join(play.retention_tactics)}" in cards.stdout
    assert cards.stdout.count("- **Lifetime value proxy (spend per customer)**: ") == len(model.names)

    html = assert_ok(run_segwise("cards", "withpb", "--format", "html", cwd=root))
    assert f"{len(model.names)} segment cards written to withpb/cards.html" in html.out
    page = (root / "withpb" / "cards.html").read_text()
    assert page.count('<section class="card"') == len(model.names) and "Retention tactics" in page

    actions = assert_ok(run_segwise("playbook", "actions", "withpb", "--out", "actions.csv", cwd=root))
    table = pd.read_csv(root / "actions.csv", dtype={"customer_id": str})
    assignments = pd.read_parquet(root / "withpb" / "assignments.parquet")
    assert len(table) == len(assignments) and table["action"].notna().all()
    assert list(table.columns) == ["customer_id", "segment_id", "segment_name", "action", "channel", "rule"]
    assert f"{len(table):,} of {len(table):,} customers have a next-best action" in actions.out


def test_cards_without_a_playbook_and_bad_formats(root):
    cards = assert_ok(run_segwise("cards", "out", "--format", "json", cwd=root))
    data = json.loads(cards.stdout)
    assert all(card["play"] is None for card in data)
    assert_bad_input(run_segwise("cards", "out", "--format", "pdf", cwd=root), "--format must be md, html or json")


# --------------------------------------------------------------------------- A/B tests


def _outcomes(split: pd.DataFrame, uplift: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rate = np.where(split["arm"] == "treatment", 0.10 + uplift, 0.10)
    converted = rng.random(len(split)) < rate
    return pd.DataFrame({"customer_id": split["customer_id"], "converted": converted,
                         "revenue": np.where(converted, rng.lognormal(3.5, 1.0, len(split)), 0.0)})


def test_ab_split_is_reproducible_balanced_and_recorded(root, trained):
    first = assert_ok(run_segwise("ab", "split", "out", "--name", "spring", "--out", "split.csv", cwd=root))
    copy = (root / "split.csv").read_bytes()
    again = assert_ok(run_segwise("ab", "split", "out", "--name", "spring", "--out", "split.csv", cwd=root))
    assert (root / "split.csv").read_bytes() == copy
    assert "split recorded in out/segwise.duckdb" in first.out
    assert "already recorded in out/segwise.duckdb (same split)" in again.out
    split = pd.read_csv(root / "split.csv", dtype={"customer_id": str})
    assert list(split.columns) == ["customer_id", "segment_id", "segment_name", "arm"]
    assert len(split) == len(pd.read_parquet(trained.out / "assignments.parquet"))
    for _, arms in split.groupby("segment_id"):
        assert abs((arms["arm"] == "treatment").sum() - len(arms) / 2) <= 0.5
    other = run_segwise("ab", "split", "out", "--name", "spring", "--treatment-share", "0.3", "--out", "x.csv",
                        cwd=root)
    assert_bad_input(other, "an experiment named 'spring' already exists with other settings", "choose another --name")
    assert not (root / "x.csv").exists()
    with segwise.store.RunStore(root / "out" / "segwise.duckdb", read_only=True) as store:
        meta, stored = store.experiment("spring")
    assert meta["n_customers"] == len(split) and len(stored) == len(split)
    partial = assert_ok(run_segwise("ab", "split", "out", "--name", "top", "--segments", "0,1",
                                    "--treatment-share", "0.2", "--out", "top.parquet", cwd=root))
    assert set(pd.read_parquet(root / "top.parquet")["segment_id"]) == {0, 1}
    assert "experiment top" in partial.out
    assert_bad_input(run_segwise("ab", "split", "out", "--name", "z", "--segments", "42", "--out", "z.csv", cwd=root),
                     "--segments: no segment '42'")


def test_ab_analyze_reports_lift_and_flags_a_broken_split(root):
    if not (root / "split.csv").exists():
        assert_ok(run_segwise("ab", "split", "out", "--name", "spring", "--out", "split.csv", cwd=root))
    split = pd.read_csv(root / "split.csv", dtype={"customer_id": str})
    _outcomes(split, 0.08).to_csv(root / "outcomes.csv", index=False)
    result = assert_ok(run_segwise("ab", "analyze", "split.csv", "outcomes.csv", "--out", "result.json", cwd=root))
    report = json.loads((root / "result.json").read_text())
    assert report["metric"] == "converted" and report["method"]["test"].startswith("two-proportion z-test")
    assert not report["srm"]["mismatch"] and "sample-ratio mismatch" not in result.err
    overall = report["overall"]
    assert overall["n_control"] + overall["n_treatment"] == len(split)
    assert overall["absolute_ci"][0] <= 0.08 <= overall["absolute_ci"][1]
    assert all("p_value_holm" in s for s in report["segments"])
    assert "result written to result.json" in result.out
    assert f"{overall['n_control']:,}" in result.out and f"{overall['n_treatment']:,}" in result.out

    revenue = assert_ok(run_segwise("ab", "analyze", "split.csv", "outcomes.csv", "--metric", "revenue",
                                    "--revenue-method", "bootstrap", "--out", "revenue.json", cwd=root))
    assert json.loads((root / "revenue.json").read_text())["method"]["test"].startswith("percentile bootstrap")
    assert "percentile bootstrap" in revenue.out

    # A broken split: half of the treatment arm of the largest segment went missing.
    largest = split["segment_id"].value_counts().idxmax()
    treated = split.index[(split["segment_id"] == largest) & (split["arm"] == "treatment")]
    split.drop(treated[: len(treated) // 2]).to_csv(root / "broken.csv", index=False)
    broken = assert_ok(run_segwise("ab", "analyze", "broken.csv", "outcomes.csv", "--out", "broken.json", cwd=root))
    assert f"sample-ratio mismatch (segments {largest})" in broken.err
    assert json.loads((root / "broken.json").read_text())["srm"]["segments_flagged"] == [largest]


def test_ab_analyze_reads_outcomes_from_a_transaction_log(root, trained):
    if not (root / "split.csv").exists():
        assert_ok(run_segwise("ab", "split", "out", "--name", "spring", "--out", "split.csv", cwd=root))
    result = assert_ok(run_segwise("ab", "analyze", "split.csv", trained.data.name, "--since", "2024-12-01",
                                   "--metric", "revenue", "--out", "from_log.json", cwd=root))
    report = json.loads((root / "from_log.json").read_text())
    orders = pd.read_parquet(trained.data)
    recent = orders[(orders["ordered_at"] >= "2024-12-01") & orders["customer_id"].notna()]
    buyers = set(recent.loc[~recent["order_id"].str.startswith("C"), "customer_id"].astype(str))
    conversions = report["overall"]["control"]["conversions"] + report["overall"]["treatment"]["conversions"]
    assert conversions == len(buyers)
    assert "orders from 2024-12-01" in report["outcomes_source"]
    assert "result written to from_log.json" in result.out


def test_ab_plan_and_its_errors(root):
    plan = assert_ok(run_segwise("ab", "plan", "out", "--baseline-rate", "0.05", "--relative-mde", "0.2",
                                 "--out", "plan.json", cwd=root))
    data = json.loads((root / "plan.json").read_text())
    assert data["n_treatment"] == data["n_control"] and data["n_total"] > 10_000
    assert f"{data['n_total']:,} customers" in plan.out
    assert all(not s["enough"] for s in data["segments"])
    assert_bad_input(run_segwise("ab", "plan", "--baseline-rate", "0.05", cwd=root), "give the effect to detect")
    assert_bad_input(run_segwise("ab", "plan", "--baseline-rate", "2", "--mde", "0.1", cwd=root),
                     "the baseline rate must be in (0, 1)")


# --------------------------------------------------------------------------- export


def test_export_to_files_duckdb_and_a_change_feed(root, runs):
    assert_ok(runs["resegment"])
    result = assert_ok(run_segwise("export", "out2", "--to", "seg.csv", "--to", "seg.parquet", "--to", "crm.duckdb",
                                   "--to", "changes.jsonl", cwd=root))
    current = pd.read_parquet(root / "out2" / "assignments.parquet")
    exported = pd.read_csv(root / "seg.csv", dtype={"customer_id": str})
    assert list(exported.columns) == ["customer_id", "segment_id", "segment_name", "confidence", "model_version",
                                      "as_of", "updated_at"]
    assert len(exported) == len(current) and len(pd.read_parquet(root / "seg.parquet")) == len(current)
    assert f"{len(current):,} customers upserted into crm.duckdb table segwise_segments: {len(current):,} inserted" \
        in result.out
    # The change feed compares with the run before in out2/segwise.duckdb: the training run.
    with segwise.store.RunStore(root / "out2" / "segwise.duckdb", read_only=True) as store:
        runs_table = store.runs()
        previous = store.assignments(runs_table["run_id"].iloc[0])
    merged = previous.merge(current, on="customer_id", suffixes=("_before", "_after"))
    moved = int((merged["segment_id_before"] != merged["segment_id_after"]).sum())
    events = [json.loads(line) for line in (root / "changes.jsonl").read_text().splitlines()]
    assert len(events) == moved > 0
    assert {e["type"] for e in events} == {"segment.changed"}
    assert {e["previous_run_id"] for e in events} == {runs_table["run_id"].iloc[0]}
    assert f"{moved:,} changed" in result.out
    again = assert_ok(run_segwise("export", "out2", "--to", "crm.duckdb", "--to", "changes2.jsonl", cwd=root))
    assert f"0 inserted, 0 updated, {len(current):,} unchanged" in again.out
    assert (root / "changes2.jsonl").read_text() == (root / "changes.jsonl").read_text(), "same events, same ids"


def test_export_to_postgresql(root, postgres_url):
    first = assert_ok(run_segwise("export", "out", "--to", postgres_url, "--table", "crm_segments", cwd=root))
    n = len(pd.read_parquet(root / "out" / "assignments.parquet"))
    assert f"{n:,} customers upserted into {postgres_url} table crm_segments: {n:,} inserted" in first.out
    second = assert_ok(run_segwise("export", "out", "--to", postgres_url, "--table", "crm_segments", cwd=root))
    assert f"0 inserted, 0 updated, {n:,} unchanged" in second.out
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM crm_segments").fetchone() == (n,)
    bad = run_segwise("export", "out", "--to", postgres_url.replace("postgres@", "postgres:pw@").rsplit(":", 1)[0]
                      + ":1/postgres", "--timeout", "2", cwd=root)
    assert_bad_input(bad, "cannot connect to PostgreSQL")
    assert "pw@" not in bad.stderr


def test_export_to_a_webhook_retries_an_injected_failure(root):
    with Receiver([503]) as receiver:
        # out's store holds only this run: every customer has entered.
        result = assert_ok(run_segwise("export", "out", "--to", receiver.url, "--batch-size", "100", cwd=root))
    statuses = [r["status"] for r in receiver.requests]
    assert statuses[0] == 503 and statuses[1:] and set(statuses[1:]) == {200}
    assert receiver.requests[0]["headers"]["Idempotency-Key"] == receiver.requests[1]["headers"]["Idempotency-Key"]
    delivered = sum(len(r["body"]["events"]) for r in receiver.requests[1:])
    assert delivered == len(pd.read_parquet(root / "out" / "assignments.parquet"))
    assert {e["type"] for r in receiver.requests for e in r["body"]["events"]} == {"segment.entered"}
    assert f"{delivered:,} change events delivered to {receiver.url} in {len(statuses) - 1} request(s) (1 retried)" \
        in result.out


def test_export_rejects_unknown_targets(root):
    assert_bad_input(run_segwise("export", "out", "--to", "segments.xlsx", cwd=root), "--to 'segments.xlsx': unknown "
                     "target")
