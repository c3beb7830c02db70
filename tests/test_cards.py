"""Profile cards: figures checked by hand on a tiny table, rendering, and cards of a saved run."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from segwise.cards import build_cards, cards_html, cards_json, cards_markdown, load_cards, value_tier
from segwise.playbook import parse_playbook
from segwise.playbook_starter import starter_playbook
from segwise.profile import compute_profiles


@pytest.fixture
def tiny():
    features = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "monetary_total": [100.0, 300.0, 200.0, 10.0, 20.0, 30.0],
        "n_orders": [1.0, 3.0, 2.0, 1.0, 1.0, 4.0],
        "n_categories": [1.0, 3.0, 2.0, 1.0, 2.0, 1.0],
        "share_channel_web": [1.0, 0.5, 0.2, 0.0, 1.0, 0.25],
        "share_channel_app": [0.0, 0.5, 0.8, 1.0, 0.0, 0.75],
    })
    labels = np.array([0, 0, 0, 1, 1, 1])
    profiles = compute_profiles(features.set_index("customer_id"), labels)
    for profile, name in zip(profiles, ["Big Fans", "Small Fry"]):
        profile.name, profile.description = name, f"{name} described."
    # Shuffled rows: cards must join on customer id, not on position.
    assignments = pd.DataFrame({"customer_id": ["f", "a", "e", "b", "d", "c"], "segment_id": [1, 0, 1, 0, 1, 0]})
    return assignments, features, profiles


PLAYBOOK = """
[segments."Big Fans"]
display_name = "Top <VIP> & co"
description = "Keep them close."
retention_tactics = ["Thank-you notes"]
growth_tactics = ["Referrals"]
channels = ["email"]
cadence = "weekly"
price_sensitivity = "low"
success_metrics = ["repeat rate"]

[[segments."Big Fans".actions]]
when = ["n_orders >= 3"]
action = "Invite to the VIP club"
channel = "email"

[[segments."Big Fans".actions]]
action = "Send a thank-you"
"""


def bound_playbook(profiles):
    features = {"monetary_total": "numeric", "n_orders": "numeric", "n_categories": "numeric"}
    return parse_playbook(PLAYBOOK, source="pb.toml").bind(profiles.names, features)


def test_card_figures_match_hand_computed_values(tiny):
    assignments, features, profiles = tiny
    big, small = build_cards(assignments, features, profiles)
    assert (big.segment_id, big.name, big.display_name, big.customers) == (0, "Big Fans", "Big Fans", 3)
    assert big.share_customers == pytest.approx(0.5)
    assert big.share_revenue == pytest.approx(600 / 660)
    assert big.ltv_proxy == pytest.approx(200.0)              # (100 + 300 + 200) / 3
    assert big.orders_per_customer == pytest.approx(2.0)      # (1 + 3 + 2) / 3
    assert big.retention_proxy == pytest.approx(2 / 3)        # b and c bought again
    assert big.median_categories == 2.0
    assert big.primary_channel == "web" and big.primary_channel_share == pytest.approx(1.7 / 3)
    assert big.value_index == pytest.approx(200 / 110) and big.value_tier == "high"
    assert small.ltv_proxy == pytest.approx(20.0)
    assert small.orders_per_customer == pytest.approx(2.0)
    assert small.retention_proxy == pytest.approx(1 / 3)      # only f
    assert small.median_categories == 1.0
    assert small.primary_channel == "app" and small.primary_channel_share == pytest.approx(1.75 / 3)
    assert small.value_index == pytest.approx(20 / 110) and small.value_tier == "low"
    assert big.description == "Big Fans described." and big.play is None


@pytest.mark.parametrize("index, tier", [(None, None), (3.0, "high"), (1.5, "high"), (1.49, "medium"),
                                         (0.67, "medium"), (0.66, "low")])
def test_value_tier_thresholds(index, tier):
    assert value_tier(index) == tier


def test_cards_without_transaction_columns_say_not_available(tiny):
    assignments, features, profiles = tiny
    card = build_cards(assignments, features[["customer_id", "n_categories"]], profiles)[0]
    assert card.ltv_proxy is None and card.orders_per_customer is None and card.retention_proxy is None
    assert card.primary_channel is None
    markdown = cards_markdown([card])
    assert "- **Lifetime value proxy (spend per customer)**: n/a" in markdown
    assert "- **Primary channel**: n/a" in markdown


def test_markdown_cards_hold_figures_traits_and_the_playbook(tiny):
    assignments, features, profiles = tiny
    cards = build_cards(assignments, features, profiles, bound_playbook(profiles))
    text = cards_markdown(cards)
    assert "## 0. Top \\<VIP\\> & co (Big Fans)" in text
    assert "Keep them close." in text
    assert "- **Customers**: 3 (50.0% of all, 90.9% of revenue)" in text
    assert "- **Lifetime value proxy (spend per customer)**: 200" in text
    assert "- **Orders per customer**: 2.0" in text
    assert "- **Retention proxy (share buying again)**: 66.7%" in text
    assert "- **Median categories bought**: 2" in text
    assert "- **Primary channel**: web (56.7% of orders)" in text
    assert "- **Strategic value tier**: high (value index 1.82)" in text
    assert "**Retention tactics**: Thank-you notes" in text
    assert "**Contact**: cadence: weekly; price sensitivity: low" in text
    assert "1. `n_orders >= 3`: Invite to the VIP club via email" in text
    assert "2. everyone else: Send a thank-you" in text
    assert "## 1. Small Fry" in text and "*No playbook entry" in text
    for trait in profiles[0].traits:
        assert trait["text"].replace("_", "\\_") in text


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.chunks, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.chunks.append(data)


def test_html_cards_are_self_contained_and_escaped(tiny):
    assignments, features, profiles = tiny
    page = cards_html(build_cards(assignments, features, profiles, bound_playbook(profiles)))
    assert "Top &lt;VIP&gt; &amp; co" in page and "<VIP>" not in page
    parser = _Text()
    parser.feed(page)
    text = " ".join(" ".join(parser.chunks).split())
    assert "0. Top <VIP> & co" in text
    assert "Lifetime value proxy (spend per customer) 200" in text
    assert "Strategic value tier high (value index 1.82)" in text
    assert "n_orders >= 3 : Invite to the VIP club via email" in text
    assert parser.tags.count("section") == 2
    assert "script" not in parser.tags and "http" not in page.lower().replace("http-equiv", "")


def test_json_cards_round_trip(tiny):
    assignments, features, profiles = tiny
    data = json.loads(cards_json(build_cards(assignments, features, profiles)))
    assert [c["segment_id"] for c in data] == [0, 1]
    assert data[0]["ltv_proxy"] == pytest.approx(200.0)


def test_cards_of_a_saved_run_use_the_given_playbook(small_run, tmp_path):
    result, run_dir = small_run
    playbook_path = tmp_path / "pb.toml"
    playbook_path.write_text(starter_playbook(result.model))
    cards = load_cards(run_dir, playbook_path)
    assert [c.segment_id for c in cards] == sorted(result.model.names)
    assert sum(c.customers for c in cards) == len(result.assignments)
    frame = result.features.frame
    for card in cards:
        members = result.assignments.loc[result.assignments["segment_id"] == card.segment_id, "customer_id"]
        assert card.ltv_proxy == pytest.approx(frame.loc[members, "monetary_total"].mean())
        assert card.play is not None and card.play["retention_tactics"]
    assert all(c.play is None for c in load_cards(run_dir))


def test_cards_carry_predicted_value_when_the_run_has_it(tiny):
    assignments, features, profiles = tiny
    with_value = features.assign(
        clv_365d=[50.0, 150.0, 100.0, 1.0, 2.0, 6.0],
        p_alive=[0.9, 0.5, 0.7, 1.0, 0.2, 0.4],
        expected_purchases_90d=[0.3, 0.6, 0.9, 0.0, 0.1, 0.2],
        expected_purchases_365d=[1.0, 2.0, 3.0, 0.1, 0.2, 0.3],
    )
    big, small = build_cards(assignments, with_value, profiles)
    assert big.clv_mean == pytest.approx(100.0) and big.clv_total == pytest.approx(300.0)
    assert big.p_alive_median == pytest.approx(0.7)
    assert big.expected_purchases_90d_mean == pytest.approx(0.6)
    assert big.expected_purchases_365d_mean == pytest.approx(2.0)
    assert small.clv_mean == pytest.approx(3.0) and small.clv_total == pytest.approx(9.0)
    assert small.p_alive_median == pytest.approx(0.4)
    markdown = cards_markdown([big])
    assert "- **Predicted CLV, next 365 days (per customer)**: 100" in markdown
    assert "- **Predicted CLV, next 365 days (segment total)**: 300" in markdown
    assert "- **Median P(alive)**: 70.0%" in markdown
    assert "- **Expected purchases per customer (90 / 365 days)**: 0.60 / 2.00" in markdown
    assert "Median P(alive)" in cards_html([big, small])


def test_cards_without_the_value_family_show_no_prediction(tiny):
    assignments, features, profiles = tiny
    big = build_cards(assignments, features, profiles)[0]
    assert (big.clv_mean, big.clv_total, big.p_alive_median, big.expected_purchases_365d_mean) == (None,) * 4
    assert "Predicted CLV" not in cards_markdown([big]) and "P(alive)" not in cards_html([big])
    assert json.loads(cards_json([big]))[0]["clv_mean"] is None
