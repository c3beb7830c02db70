"""The served model in process: probabilities of soft methods, playbook actions, atomic reloads."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from segwise.errors import ModelError
from segwise.playbook import parse_playbook
from segwise.serve.settings import Settings
from segwise.serve.state import ModelHolder, ReloadFailed, ServedModel

from .server import Server, run_coroutine
from .soft_method import METHOD, soft_copy


def test_soft_method_probabilities_follow_segment_ids(model_a):
    soft = soft_copy(model_a.model)
    rows = [i["features"] for i in model_a.feature_rows(50)]
    hard, result = model_a.model.assign_rows(rows), soft.assign_rows(rows)
    assert (result.segment_id == hard.segment_id).all()
    assert result.probabilities.shape == (50, soft.segmenter.n_segments_)
    assert result.probabilities.sum(axis=1) == pytest.approx(np.ones(50))
    # Column i is segment id i: the most probable segment is the assigned one.
    assert (result.probabilities.argmax(axis=1) == result.segment_id).all()
    served = ServedModel.from_model(soft, Settings())
    assert served.has_probabilities and served.info["has_probabilities"]
    assert not ServedModel.from_model(model_a.model, Settings()).has_probabilities


def test_playbook_rules_give_each_customer_the_actions_that_hold(model_a, tmp_path):
    names = model_a.model.names
    text = f"""
version = 1

[[segments."0".actions]]
when = "recency_days > 180"
action = "win-back e-mail"
channel = "email"

[[segments."0".actions]]
action = "thank-you call"

[[segments."{names[1]}".actions]]
when = ["n_orders >= 3", "recency_days <= 30"]
action = "loyalty points"
"""
    model = dataclasses.replace(model_a.model, playbook=parse_playbook(text).bind_model(model_a.model))
    path = tmp_path / "with-playbook.segwise"
    model.save(path)
    served = ServedModel.load(path, Settings())  # the playbook travels in the model file
    assert served.info["has_playbook"] is True
    assert served.actions(0, {"recency_days": 400}) == ["win-back e-mail", "thank-you call"]
    assert served.actions(0, {"recency_days": 3}) == ["thank-you call"]
    assert served.actions(0, {}) == ["thank-you call"]  # a missing feature never meets a condition
    assert served.actions(1, {"n_orders": 5, "recency_days": 10}) == ["loyalty points"]
    assert served.actions(1, {"n_orders": 2, "recency_days": 10}) == []
    assert served.actions(2, {"recency_days": 400}) == []  # no play for segment 2
    assert ServedModel.load(model_a.path, Settings()).actions(0, {"recency_days": 400}) is None


def test_holder_swaps_atomically_and_keeps_the_old_model_on_failure(model_a, model_b, tmp_path):
    path = tmp_path / "served.segwise"
    shutil.copyfile(model_a.path, path)
    holder = ModelHolder(path, Settings())
    first = holder.load()
    in_flight = holder.current  # what a request being answered holds
    shutil.copyfile(model_b.path, path)
    previous, new = run_coroutine(holder.reload())
    assert previous is first and holder.current is new
    assert new.version == model_b.model.file_sha256
    # The request that started before the swap finishes on the old model, unchanged.
    row = model_a.feature_rows(1)[0]["features"]
    assert in_flight.version == model_a.model.file_sha256
    assert int(in_flight.model.assign_rows([row]).segment_id[0]) == model_a.assignments.iloc[0]["segment_id"]
    path.write_bytes(b"junk")
    with pytest.raises(ReloadFailed, match="not a segwise model file"):
        run_coroutine(holder.reload())
    assert holder.current is new


def test_a_model_that_cannot_assign_is_not_served(model_a, tmp_path):
    from segwise.persist import model_bytes, read_model_file

    document, arrays, _ = read_model_file(model_a.path)
    arrays["clusterer/cluster_centers"] = arrays["clusterer/cluster_centers"][:, :2]
    path = tmp_path / "bad.segwise"
    path.write_bytes(model_bytes(document, arrays, segwise_version="0.1.0", created_at="x"))
    with pytest.raises(ModelError, match=r"bad.segwise: the model cannot be served \(ValueError: "):
        ServedModel.load(path, Settings())


@pytest.mark.slow
def test_soft_method_probabilities_over_http(model_a, tmp_path):
    soft = soft_copy(model_a.model)
    path = tmp_path / "soft.segwise"
    soft.save(path)
    launcher = [sys.executable, str(Path(__file__).with_name("soft_method.py")), "serve"]
    server = Server([path], tmp_path / "server.log", command=launcher).wait_ready()
    try:
        with server.client() as http:
            assert http.get("/v1/model").json()["method"] == METHOD
            assert http.get("/v1/model").json()["has_probabilities"] is True
            for item in model_a.feature_rows(10):
                body = http.post("/v1/assign", json=item).json()
                assert len(body["probabilities"]) == soft.segmenter.n_segments_
                assert sum(body["probabilities"]) == pytest.approx(1.0)
                assert int(np.argmax(body["probabilities"])) == body["segment_id"]
                assert body["segment_id"] == model_a.assignments.loc[item["customer_id"], "segment_id"]
    finally:
        server.stop()
