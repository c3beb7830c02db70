"""`Playbook.actions_for` (one value per condition, no pandas) gives the actions the column-wise
`Condition.holds` gives on a one-row frame."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from segwise.playbook import Condition, parse_playbook
from segwise.playbook_starter import starter_playbook
from segwise.serve.settings import Settings
from segwise.serve.state import ServedModel

VALUES = [None, float("nan"), pd.NA, 0.0, -1.5, 3, 7.25, 90.0, 365.0, 1e9, True, False, "12", "north", "", "7.25",
          np.float64(2.5), np.int64(4)]


@pytest.mark.parametrize("condition", [
    "x < 7.25", "x <= 7.25", "x > 3", "x >= 3", "x == 3", "x != 3", "x == 0", "x != 0", "x > -2",
    "x == 'north'", "x != 'north'", "x == ''", "x != '12'", "x == 'True'", "x == '7.25'",
])
def test_one_value_reads_as_a_one_row_column(condition):
    parsed = Condition.parse(condition, where="test")
    for value in VALUES:
        expected = bool(parsed.holds(pd.DataFrame({"x": [value]}))[0])
        assert parsed.holds_value(value) == expected, (condition, value)


def test_served_actions_equal_the_playbook_on_random_customers(model_a):
    model = model_a.model
    playbook = parse_playbook(starter_playbook(model)).bind_model(model)
    plays = {i: playbook.for_segment(i) for i in range(int(model.segmenter.n_segments_))}
    plays = {i: play for i, play in plays.items() if play is not None}
    assert any(rule.when for play in plays.values() for rule in play.actions)  # rules with conditions
    rng = random.Random(0)
    frame = model_a.features
    compared = 0
    for i in range(300):
        features = {c: frame[c].iloc[i % len(frame)] for c in playbook.rule_features}
        for column in rng.sample(list(features), k=min(2, len(features))):
            features[column] = rng.choice([None, math.nan, features[column] * rng.uniform(0, 3), "x"])
        row = pd.DataFrame({name: [features.get(name)] for name in playbook.rule_features})
        for segment_id, play in plays.items():
            by_frame = [rule.action for rule in play.actions if all(bool(c.holds(row)[0]) for c in rule.when)]
            assert playbook.actions_for(segment_id, features) == by_frame
            compared += 1
    assert compared >= 300


def test_the_served_model_answers_with_the_rules(model_a):
    model = model_a.model
    model.playbook = parse_playbook(starter_playbook(model)).bind_model(model)
    try:
        served = ServedModel.from_model(model, Settings())
        features = {c: model_a.features[c].iloc[0] for c in model.playbook.rule_features}
        for segment_id in range(len(served.names)):
            assert served.actions(segment_id, features) == model.playbook.actions_for(segment_id, features)
    finally:
        model.playbook = None
