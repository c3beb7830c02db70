"""Starter playbooks: a first playbook for a model, written from its segment profiles.

`starter_playbook` gives every segment its archetype's usual play (see
`segwise.naming.ARCHETYPES`; segments named from their traits get a generic one):
tactics, channels, cadence, price sensitivity, success metrics, and
next-best-action rules whose thresholds come from the segment's own medians. The
text parses and binds to the model as it is; it is a starting point to edit
(``segwise playbook init``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from segwise.playbook import PLAYBOOK_VERSION, SEGMENT_KEYS, Condition

__all__ = ["starter_playbook"]


@dataclass(frozen=True)
class _Play:
    description: str
    retention: tuple[str, ...]
    growth: tuple[str, ...]
    channels: tuple[str, ...]
    cadence: str
    price_sensitivity: str
    metrics: tuple[str, ...]
    #: (conditions as (feature, op, statistic of the segment), action, channel)
    rules: tuple[tuple[tuple[tuple[str, str, str], ...], str, str], ...] = field(default=())


#: Starting points per archetype (see `segwise.naming.ARCHETYPES`): a marketer's
#: usual play for customers of that kind, to be edited.
_PLAYS: dict[str, _Play] = {
    "Champions": _Play(
        "Your best customers: recent, frequent and high-spending.",
        ("Recognise them: VIP tier, early access, thank-you notes", "Protect service quality; fast issue handling"),
        ("Ask for referrals and reviews", "Preview new ranges before launch"),
        ("email", "app"), "weekly, content-led", "low",
        ("retention rate of the segment", "revenue per customer", "referrals per customer"),
        (((("recency_days", ">", "p75"),), "Personal check-in from the VIP team", "phone"),
         ((), "Early access to the next collection", "email")),
    ),
    "Loyal Regulars": _Play(
        "Frequent, recent buyers who do not need discounts.",
        ("Loyalty points and member-only perks", "Remind them before their usual repurchase time"),
        ("Cross-sell categories they have not tried", "Bundle offers that raise the basket"),
        ("email", "app"), "every one to two weeks", "low",
        ("repeat purchase rate", "categories per customer", "average order value"),
        (((("n_categories", "<=", "median"),), "Recommend a complementary category", "email"),
         ((), "Members' perk with the next order", "app")),
    ),
    "Big Spenders": _Play(
        "Large baskets but infrequent orders.",
        ("Concierge service and easy returns", "Personal thank-you after each large order"),
        ("Nudge a second order sooner: curated picks within a month", "Premium and limited ranges"),
        ("email", "direct mail"), "monthly, curated", "low",
        ("orders per customer", "time to second order", "revenue per customer"),
        (((("recency_days", ">", "median"),), "Curated premium selection to prompt the next order", "email"),
         ((), "Invitation to a premium range preview", "direct mail")),
    ),
    "New Customers": _Play(
        "Recently acquired; the second order decides whether they stay.",
        ("Onboarding series: brand, service, how to get value", "Make the first delivery and return effortless"),
        ("Second-order incentive within 30 days", "Recommend products based on the first order"),
        ("email", "app"), "three onboarding messages in the first month", "medium",
        ("second-order rate within 60 days", "time to second order"),
        (((("n_orders", "<=", "1"),), "Second-order voucher, valid 30 days", "email"),
         ((), "Welcome series: how to get the most from the shop", "email")),
    ),
    "At Risk": _Play(
        "Used to buy repeatedly; has not bought for a while.",
        ("Win-back offer tied to what they used to buy", "Ask what went wrong (short survey)"),
        ("Show what is new in their favourite categories",),
        ("email", "sms"), "two or three touches in three weeks, then pause", "medium",
        ("reactivation rate within 60 days", "revenue per reactivated customer"),
        (((("recency_days", ">", "p75"), ("n_orders", ">=", "median")),
          "Personal win-back offer on their favourite category", "email"),
         ((), "We miss you: what is new since your last visit", "email")),
    ),
    "Can't Lose Them": _Play(
        "Valuable customers drifting away.",
        ("Personal outreach from a senior contact", "Strong, personal win-back offer"),
        ("Invite them to give feedback on ranges",),
        ("phone", "email"), "personal, within two weeks", "medium",
        ("reactivation rate", "revenue retained"),
        (((("monetary_total", ">=", "median"),), "Personal call with a tailored offer", "phone"),
         ((), "Personal e-mail with a tailored offer", "email")),
    ),
    "Hibernating": _Play(
        "Long inactive and low value.",
        ("Low-cost reactivation campaign; stop if no response",),
        ("Seasonal best-sellers",),
        ("email",), "monthly at most", "high",
        ("reactivation rate", "cost per reactivated customer", "unsubscribe rate"),
        (((("recency_days", "<=", "median"),), "Seasonal best-sellers with a modest discount", "email"),
         ((), "Keep in the low-frequency newsletter only", "email")),
    ),
    "Lost": _Play(
        "Gone for a long time after very few orders.",
        ("One final win-back attempt, then suppress to save cost",),
        (),
        ("email",), "one attempt per quarter", "high",
        ("reactivation rate", "cost per reactivated customer"),
        (((), "Last-chance offer, then suppress from campaigns", "email"),),
    ),
    "Deal Hunters": _Play(
        "Active repeat buyers who mostly buy on discount.",
        ("Keep them engaged with planned sale calendars", "Loyalty points instead of blanket discounts"),
        ("Move them to full price with bundles and value messaging",),
        ("email", "app"), "around sale events", "high",
        ("share of full-price orders", "margin per customer"),
        (((("discount_share", ">=", "p75"),), "Points-based offer instead of a discount", "app"),
         ((), "Bundle offer at full price", "email")),
    ),
    "Promo One-Timers": _Play(
        "Bought once, on a promotion.",
        ("Welcome them as customers, not as deal seekers",),
        ("Second order with a small, conditional incentive", "Show full-price best-sellers"),
        ("email",), "two messages in the first month", "high",
        ("second-order rate", "share of second orders at full price"),
        (((), "Second-order incentive on a minimum basket", "email"),),
    ),
    "Category Specialists": _Play(
        "Repeat buyers who stay within one category.",
        ("Be their expert store for that category: new arrivals, guides",),
        ("Introduce one adjacent category at a time",),
        ("email",), "every two weeks, category-specific", "medium",
        ("categories per customer", "revenue per customer"),
        (((("top_category_share", ">=", "median"),), "Adjacent-category recommendation", "email"),
         ((), "New arrivals in their category", "email")),
    ),
    "Broad Explorers": _Play(
        "Buy across many categories without being very frequent.",
        ("Personalised discovery newsletters",),
        ("Bundles across categories", "Increase frequency with replenishment reminders"),
        ("email", "app"), "every two weeks", "medium",
        ("orders per customer", "average order value"),
        (((), "Personalised discovery picks across categories", "email"),),
    ),
    "Promising": _Play(
        "Recent buyers with a few orders: could become loyal.",
        ("Make the next orders easy: saved baskets, reminders",),
        ("Introduce the loyalty programme", "Recommend based on past orders"),
        ("email", "app"), "every two weeks", "medium",
        ("orders per customer", "share becoming regulars within six months"),
        (((), "Invitation to the loyalty programme", "email"),),
    ),
    "Occasional Buyers": _Play(
        "Buy now and then.",
        ("Stay top of mind at seasonal moments",),
        ("Reminders around their usual buying season",),
        ("email",), "monthly", "medium",
        ("orders per customer",),
        (((), "Seasonal reminder with best-sellers", "email"),),
    ),
}

_GENERIC = _Play(
    "Segment described by its traits (see the profile).",
    ("Define what keeping this segment means, then test one retention offer",),
    ("Test one growth offer built on the segment's strongest trait",),
    ("email",), "monthly", "medium",
    ("retention rate of the segment", "revenue per customer"),
)


def _statistic(profile: Any, feature: str, statistic: str) -> float | None:
    """A threshold for a starter rule: a number, or the segment's median/quartile estimate."""
    if re.fullmatch(r"-?\d+(\.\d+)?", statistic):
        return float(statistic)
    median = profile.medians.get(feature)
    mean = profile.means.get(feature)
    if median is None or not np.isfinite(median):
        return None
    if statistic == "median":
        value = median
    elif statistic == "p75" and mean is not None and np.isfinite(mean):
        # Profiles keep means and medians only; for the right-skewed durations and
        # amounts these rules use, the larger of the two is a fair upper-half cut.
        value = max(median, mean)
    else:
        value = median
    return float(f"{value:.3g}") if abs(value) < 1000 else float(round(value))


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def starter_playbook(model: Any) -> str:
    """A first playbook for a model, as TOML text: one table per segment.

    Each segment gets its archetype's usual play (see `_PLAYS`; segments named
    from their traits get a generic one), its size and traits as a comment, and
    next-best-action rules with thresholds taken from the segment's own medians.
    The text parses and binds to ``model`` as it is; it is meant to be edited.
    """
    profiles = model.profiles
    available = set(model.segmenter.profile_columns_)
    metadata = model.metadata
    lines = [
        "# segwise playbook: what to do with each segment. Edit it, then store it in the model with",
        "#   segwise run DATA --playbook playbook.toml     (or show it with: segwise cards RUN_DIR --playbook FILE)",
        f"# Started by `segwise playbook init` from model {metadata.get('model_id', '?')} "
        f"(as of {metadata.get('as_of') or '?'}).",
        "# Segments are keyed by name (or id, as \"0\"). Keys: " + ", ".join(SEGMENT_KEYS) + ".",
        "# Next-best-action rules: the first rule whose conditions all hold applies;",
        "# conditions are FEATURE OP VALUE with OP one of < <= > >= == != on the customer's features.",
        "",
        f"version = {PLAYBOOK_VERSION}",
    ]
    for profile in profiles:
        play = _PLAYS.get(profile.archetype or profile.name, _GENERIC)
        traits = "; ".join(t["text"] for t in profile.traits[:3])
        revenue = "" if profile.share_revenue is None else f", {profile.share_revenue:.1%} of revenue"
        description = play.description if play is not _GENERIC else (
            f"{traits[:1].upper()}{traits[1:]}." if traits else play.description
        )
        lines += [
            "",
            f"[segments.{_toml_string(profile.name)}]",
            f"# segment {profile.segment_id}: {profile.n_customers:,} customers ({profile.share_customers:.1%})"
            f"{revenue}" + (f"; {traits}" if traits else ""),
            f"display_name = {_toml_string(profile.name)}",
            f"description = {_toml_string(description)}",
            f"retention_tactics = {_toml_list(play.retention)}",
            f"growth_tactics = {_toml_list(play.growth)}",
            f"channels = {_toml_list(play.channels)}",
            f"cadence = {_toml_string(play.cadence)}",
            f"price_sensitivity = {_toml_string(play.price_sensitivity)}",
            f"success_metrics = {_toml_list(play.metrics)}",
        ]
        for conditions, action, channel in play.rules:
            when = []
            for feature, op, statistic in conditions:
                threshold = _statistic(profile, feature, statistic) if feature in available else None
                if threshold is None:
                    break
                when.append(Condition(feature, op, threshold).text())
            else:
                lines += [
                    "",
                    f"[[segments.{_toml_string(profile.name)}.actions]]",
                    f"when = {_toml_list(when)}",
                    f"action = {_toml_string(action)}",
                    f"channel = {_toml_string(channel)}",
                ]
    return "\n".join(lines) + "\n"
