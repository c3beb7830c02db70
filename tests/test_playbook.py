"""Playbooks: parsing, validation against a model, next-best actions, starter playbooks, storage."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.errors import InputError, ModelError
from segwise.playbook import Condition, Playbook, load_playbook, parse_playbook
from segwise.playbook_starter import _PLAYS, starter_playbook

NAMES = {0: "Champions", 1: "At Risk", 2: "Hibernating"}
FEATURES = {"recency_days": "numeric", "n_orders": "numeric", "monetary_total": "numeric", "region": "categorical",
            "Annual Income (k$)": "numeric"}

GOOD = """
version = 1

[segments."Champions"]
display_name = "VIPs"
description = "Best customers."
retention_tactics = ["VIP tier"]
growth_tactics = ["Referrals"]
channels = ["email", "app"]
cadence = "weekly"
price_sensitivity = "low"
success_metrics = ["retention"]

[segments."2"]
description = "Asleep."

[segments."At Risk"]

[[segments."At Risk".actions]]
when = ["recency_days > 90", "n_orders >= 3"]
action = "Call them"
channel = "phone"

[[segments."At Risk".actions]]
when = "region == 'north'"
action = "Northern win-back"

[[segments."At Risk".actions]]
action = "Win-back e-mail"
"""


def bound(text: str = GOOD) -> Playbook:
    return parse_playbook(text, source="pb.toml").bind(NAMES, FEATURES)


# --------------------------------------------------------------------------- parsing


def test_a_valid_playbook_parses_with_every_field():
    playbook = bound()
    assert [p.key for p in playbook.segments] == ["Champions", "2", "At Risk"]
    assert [p.segment_id for p in playbook.segments] == [0, 2, 1]
    champions = playbook.for_segment(0)
    assert champions.display_name == "VIPs"
    assert champions.channels == ("email", "app")
    assert champions.price_sensitivity == "low"
    at_risk = playbook.for_segment(1)
    assert [r.action for r in at_risk.actions] == ["Call them", "Northern win-back", "Win-back e-mail"]
    assert at_risk.actions[0].when == (Condition("recency_days", ">", 90.0), Condition("n_orders", ">=", 3.0))
    assert at_risk.actions[1].when == (Condition("region", "==", "north"),)
    assert at_risk.actions[2].when == ()
    assert playbook.rule_features == ["recency_days", "n_orders", "region"]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("version = 1\nsegments = = 2\n", ["pb.toml: not valid TOML", "line 2"]),
        ('version = 1\n[segmnts."A"]\n', ["unknown top-level key 'segmnts'", "did you mean 'segments'?"]),
        ("version = 2\n[segments.A]\n", ["playbook version 2 is not supported"]),
        ("version = 1\n", ["no segments; add a table per segment"]),
        ('[segments."Champions"]\ntactics = ["x"]\n',
         ['[segments."Champions"]: unknown key \'tactics\'', "a segment takes display_name"]),
        ('[segments."Champions"]\nretention_tactic = ["x"]\n', ["did you mean 'retention_tactics'?"]),
        ('[segments."Champions"]\ndescription = 3\n', ["'description' must be text, got a number"]),
        ('[segments."Champions"]\nchannels = [1, 2]\n', ["'channels' must be a list of text"]),
        ('[segments."Champions"]\nprice_sensitivity = "very"\n',
         ["price_sensitivity must be one of low, medium, high, got 'very'"]),
        ('[segments."Champions"]\nactions = "call"\n', ["'actions' must be a list of tables"]),
        ('[[segments."Champions".actions]]\nwhen = ["recency_days > 3"]\n', ["action 1: no 'action'"]),
        ('[[segments."Champions".actions]]\naction = "x"\nif = ["a > 1"]\n', ["action 1: unknown key 'if'"]),
        ('[[segments."Champions".actions]]\naction = "x"\nwhen = ["recency_days about 3"]\n',
         ["cannot read the condition 'recency_days about 3'", "FEATURE OP VALUE"]),
        ('[[segments."Champions".actions]]\naction = "x"\nwhen = ["region == north"]\n',
         ["neither a number nor quoted text", "region == 'north'"]),
        ('[[segments."Champions".actions]]\naction = "x"\nwhen = ["region > \'a\'"]\n',
         ["text can only be compared with == or !="]),
        ('[[segments."Champions".actions]]\naction = "  "\n', ["'action' is empty"]),
    ],
)
def test_structural_errors_name_the_file_the_place_and_the_fix(text, fragments):
    with pytest.raises(InputError) as info:
        parse_playbook(text, source="pb.toml")
    message = str(info.value)
    assert message.startswith("pb.toml")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('[segments."Champs"]\n', ["[segments.\"Champs\"]: the model has no segment named 'Champs'",
                                   "did you mean 'Champions'?", "Its segments are 0 'Champions', 1 'At Risk', "
                                   "2 'Hibernating'"]),
        ('[segments."at risk"]\n', ["did you mean 'At Risk'?"]),
        ('[segments."7"]\n', ["no segment named '7'"]),
        ('[segments."Champions"]\n[segments."0"]\n',
         ["segment 0 ('Champions') has two tables", "merge them"]),
        ('[[segments."Champions".actions]]\naction = "x"\nwhen = ["recency_day > 3"]\n',
         ["action 1: unknown feature 'recency_day'", "did you mean 'recency_days'?", "Rules can use the model's "
          "features:"]),
        ('[[segments."Champions".actions]]\naction = "x"\nwhen = ["region == 3"]\n',
         ["'region' is categorical; compare it with quoted text"]),
        ('[[segments."Champions".actions]]\naction = "x"\nwhen = ["n_orders == \'3\'"]\n',
         ["'n_orders' is numeric; compare it with a number"]),
    ],
)
def test_errors_against_the_model_name_segments_and_features(text, fragments):
    playbook = parse_playbook(text, source="pb.toml")
    with pytest.raises(InputError) as info:
        playbook.bind(NAMES, FEATURES)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_backticks_name_features_that_are_not_identifiers():
    playbook = bound('[[segments."Champions".actions]]\naction = "x"\nwhen = ["`Annual Income (k$)` >= 60"]\n')
    condition = playbook.for_segment(0).actions[0].when[0]
    assert condition == Condition("Annual Income (k$)", ">=", 60.0)
    assert condition.text() == "`Annual Income (k$)` >= 60"


def test_an_unbound_playbook_refuses_lookups():
    with pytest.raises(ModelError, match="not bound to a model"):
        parse_playbook(GOOD, source="pb.toml").for_segment(0)


def test_load_playbook_reports_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such playbook file; create one with `segwise playbook init MODEL`"):
        load_playbook(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- next-best actions


def test_next_best_action_is_the_first_rule_that_holds():
    playbook = bound()
    assignments = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e", "f"], "segment_id": [1, 1, 1, 1, 0, 2]})
    features = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "recency_days": [120.0, 120.0, 30.0, np.nan, 5.0, 400.0],
        "n_orders": [5.0, 1.0, 9.0, 9.0, 20.0, 1.0],
        "region": ["south", "north", None, "north", "north", "north"],
    })
    actions = playbook.next_best_actions(assignments, features).set_index("customer_id")
    # a: both conditions hold; b: only region; c: region missing -> fallback;
    # d: recency missing fails rule 1, region matches rule 2; e, f: segments without rules.
    assert actions["action"].tolist()[:4] == ["Call them", "Northern win-back", "Win-back e-mail", "Northern win-back"]
    assert actions.loc["a", "channel"] == "phone"
    assert actions["rule"].tolist()[:4] == [1, 2, 3, 2]
    assert actions.loc[["e", "f"], "action"].isna().all()
    assert actions.loc[["e", "f"], "rule"].isna().all()


def test_next_best_actions_need_the_rule_features():
    assignments = pd.DataFrame({"customer_id": ["a"], "segment_id": [1]})
    with pytest.raises(InputError, match="the rules read 'n_orders', 'region', which the feature table does not"):
        bound().next_best_actions(assignments, pd.DataFrame({"customer_id": ["a"], "recency_days": [1.0]}))


# --------------------------------------------------------------------------- with a fitted model


def test_starter_playbook_parses_binds_and_covers_every_segment(small_run):
    result, _ = small_run
    text = starter_playbook(result.model)
    playbook = parse_playbook(text, source="starter").bind_model(result.model)
    assert sorted(p.segment_id for p in playbook.segments) == sorted(result.model.names)
    for play in playbook.segments:
        name = result.model.names[play.segment_id]
        assert f'[segments.{name!r}]'.replace("'", '"') in text
        assert play.retention_tactics and play.channels and play.success_metrics
        assert play.price_sensitivity in ("low", "medium", "high")
        assert play.actions, name
        assert play.actions[-1].when == (), "every starter play ends with a rule for everyone else"
    # Thresholds come from the segment's own profile (rounded to 3 significant digits),
    # except those the archetype's play fixes (e.g. New Customers: n_orders <= 1).
    fixed = {(feature, float(statistic)) for play in _PLAYS.values() for conditions, _, _ in play.rules
             for feature, _, statistic in conditions if re.fullmatch(r"-?\d+(\.\d+)?", statistic)}
    assert ("n_orders", 1.0) in fixed
    for play in playbook.segments:
        profile = result.profiles[play.segment_id]
        for rule in play.actions:
            for condition in rule.when:
                if (condition.feature, condition.value) in fixed:
                    continue
                median = profile.medians[condition.feature]
                assert condition.value >= float(f"{median:.3g}") - 1e-9
    actions = playbook.next_best_actions(result.assignments, result.features.frame)
    assert actions["action"].notna().all()


def test_playbook_is_stored_in_the_model_file_and_loaded_back(small_run, tmp_path):
    result, _ = small_run
    path = tmp_path / "playbook.toml"
    path.write_text(starter_playbook(result.model))
    model = result.model
    original = model.playbook
    try:
        model.playbook = load_playbook(path, model)
        model.save(tmp_path / "model.segwise")
    finally:
        model.playbook = original
    loaded = segwise.load_model(tmp_path / "model.segwise")
    assert loaded.playbook is not None and loaded.playbook.bound
    assert loaded.playbook.to_dict() == load_playbook(path, model).to_dict()
    first = loaded.playbook.segments[0]
    assert loaded.playbook.for_segment(first.segment_id).actions == first.actions


def test_segment_with_a_playbook_checks_it_and_records_it(small_population, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[segments."0"]\ndescription = "Top"\n[[segments."0".actions]]\naction = "Thank them"\n'
                    'when = ["n_orders >= 2"]\n')
    result = segwise.segment(small_population.orders, n_segments=3, random_state=0, playbook=good)
    assert result.model.playbook.for_segment(0).description == "Top"
    assert result.run["playbook"] == {"source": str(good), "segments": [0]}
    bad = tmp_path / "bad.toml"
    bad.write_text('[segments."Nobody Here"]\n')
    with pytest.raises(InputError, match="the model has no segment named 'Nobody Here'"):
        segwise.segment(small_population.orders, n_segments=3, random_state=0, playbook=bad)
