"""Profile cards: one page per segment that a marketer can act on.

A card holds the segment's name (the playbook's display name when there is one),
description, customers and share, and figures computed from the run's feature
table:

- **lifetime value proxy**: mean ``monetary_total`` (net spend to ``as_of``) per customer;
- **orders per customer**: mean ``n_orders``;
- **retention proxy**: share of customers who bought again (``n_orders >= 2``): in
  a non-contractual business, the repeat-purchase rate is the usual stand-in for
  retention;
- **median categories bought**: median ``n_categories``;
- **primary channel**: the channel with the largest mean share of the segment's
  orders (``share_channel_*`` columns);
- **strategic value tier**: from the value index, the segment's spend per customer
  over everyone's: ``high`` at 1.5 or more, ``low`` below 0.67, else ``medium``;
- **predicted customer value** (when the run has the ``value`` family): mean and
  total ``clv_365d`` (predicted value over the next 365 days), median ``p_alive``
  and mean expected purchases in the next 90 and 365 days. Without the family
  (its models could not be fitted, or it was not chosen) these are None and the
  cards leave the rows out rather than show a spend-based stand-in;

plus its key characteristics (the profile's traits) and the playbook's tactics
and next-best-action rules. Figures that need a column the run does not have
(e.g. a run on customer attributes alone) are None and shown as "n/a".

`build_cards` computes cards from data; `load_cards` from a run directory;
`cards_markdown` and `cards_html` render them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from segwise.errors import InputError
from segwise.playbook import Playbook, SegmentPlay
from segwise.profile import Profiles

__all__ = ["SegmentCard", "build_cards", "load_cards", "cards_markdown", "cards_html", "cards_json", "value_tier",
           "HIGH_VALUE_INDEX", "LOW_VALUE_INDEX"]

#: Value index (segment spend per customer / everyone's) from which a segment is "high" value.
HIGH_VALUE_INDEX = 1.5
#: Value index below which a segment is "low" value.
LOW_VALUE_INDEX = 0.67


@dataclass
class SegmentCard:
    """Everything on one segment's card (see the module docstring for each figure)."""

    segment_id: int
    name: str
    display_name: str
    description: str
    customers: int
    share_customers: float
    share_revenue: float | None
    ltv_proxy: float | None
    orders_per_customer: float | None
    retention_proxy: float | None
    median_categories: float | None
    primary_channel: str | None
    primary_channel_share: float | None
    value_index: float | None
    value_tier: str | None
    clv_mean: float | None = None
    clv_total: float | None = None
    p_alive_median: float | None = None
    expected_purchases_90d_mean: float | None = None
    expected_purchases_365d_mean: float | None = None
    key_characteristics: list[str] = field(default_factory=list)
    play: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def value_tier(value_index: float | None) -> str | None:
    """``high``, ``medium`` or ``low`` from a value index (None without one)."""
    if value_index is None or not np.isfinite(value_index):
        return None
    if value_index >= HIGH_VALUE_INDEX:
        return "high"
    if value_index < LOW_VALUE_INDEX:
        return "low"
    return "medium"


def _mean(values: pd.Series | None) -> float | None:
    if values is None or values.notna().sum() == 0:
        return None
    return float(values.mean())


def _statistic(rows: pd.DataFrame, column: str, how: str) -> float | None:
    """``how`` ("mean", "sum", "median") of a column over the segment's rows; None without the column."""
    if column not in rows or rows[column].notna().sum() == 0:
        return None
    return float(getattr(rows[column], how)())


def build_cards(
    assignments: pd.DataFrame,
    features: pd.DataFrame,
    profiles: Profiles,
    playbook: Playbook | None = None,
) -> list[SegmentCard]:
    """One card per segment, in segment-id order.

    Parameters
    ----------
    assignments : DataFrame
        ``customer_id`` and ``segment_id`` per customer.
    features : DataFrame
        The run's feature table (``customer_id`` column or index).
    profiles : Profiles
        The run's profiles (names, descriptions, traits).
    playbook : Playbook, optional
        A bound playbook; its display names, descriptions and tactics go on the cards.
    """
    frame = features.set_index("customer_id") if "customer_id" in features.columns else features
    frame = frame.set_axis(frame.index.astype(str))
    segment_of = pd.Series(assignments["segment_id"].to_numpy(), index=assignments["customer_id"].astype(str))
    missing = segment_of.index.difference(frame.index)
    if len(missing):
        raise InputError(
            f"{len(missing)} assigned customers have no row in the feature table; the run directory is "
            "inconsistent (run `segwise run` again)"
        )
    frame = frame.reindex(segment_of.index)
    channels = [c for c in frame.columns if c.startswith("share_channel_")]
    spend = frame["monetary_total"] if "monetary_total" in frame else None
    overall_spend = _mean(spend)
    cards = []
    for profile in profiles:
        rows = frame[(segment_of == profile.segment_id).to_numpy()]
        ltv = _mean(rows["monetary_total"]) if spend is not None else None
        orders = rows["n_orders"] if "n_orders" in rows else None
        if ltv is not None and overall_spend:
            value_index = ltv / overall_spend
        elif profile.share_revenue is not None and profile.share_customers > 0:
            value_index = profile.share_revenue / profile.share_customers
        else:
            value_index = None
        channel, channel_share = None, None
        if channels and len(rows):
            shares = rows[channels].mean()
            if shares.notna().any():
                best = shares.idxmax()
                channel, channel_share = best[len("share_channel_"):], float(shares[best])
        play: SegmentPlay | None = playbook.for_segment(profile.segment_id) if playbook is not None else None
        categories = rows["n_categories"] if "n_categories" in rows else None
        cards.append(SegmentCard(
            segment_id=profile.segment_id,
            name=profile.name,
            display_name=(play.display_name if play is not None and play.display_name else profile.name),
            description=(play.description if play is not None and play.description else profile.description),
            customers=int(len(rows)),
            share_customers=float(len(rows) / len(frame)) if len(frame) else 0.0,
            share_revenue=profile.share_revenue,
            ltv_proxy=ltv,
            orders_per_customer=_mean(orders),
            retention_proxy=(float((orders.dropna() >= 2).mean()) if orders is not None and orders.notna().any()
                             else None),
            median_categories=(float(categories.median()) if categories is not None and categories.notna().any()
                               else None),
            primary_channel=channel,
            primary_channel_share=channel_share,
            value_index=value_index,
            value_tier=value_tier(value_index),
            clv_mean=_statistic(rows, "clv_365d", "mean"),
            clv_total=_statistic(rows, "clv_365d", "sum"),
            p_alive_median=_statistic(rows, "p_alive", "median"),
            expected_purchases_90d_mean=_statistic(rows, "expected_purchases_90d", "mean"),
            expected_purchases_365d_mean=_statistic(rows, "expected_purchases_365d", "mean"),
            key_characteristics=[t["text"] for t in profile.traits],
            play=play.to_dict() if play is not None else None,
        ))
    return cards


def load_cards(run_dir: str | Path, playbook: Playbook | str | Path | None = None) -> list[SegmentCard]:
    """Cards of a saved run; the playbook is the one given, else the model's."""
    from segwise.runs import load_run
    from segwise.playbook import load_playbook

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    features_path = run_dir / "features.parquet"
    if not features_path.exists():
        raise InputError(f"{run_dir}: no features.parquet; run `segwise run` again to write it")
    features = pd.read_parquet(features_path)
    model = run["model"]
    if playbook is not None and not isinstance(playbook, Playbook):
        playbook = load_playbook(playbook, model)
    elif isinstance(playbook, Playbook) and not playbook.bound:
        playbook = playbook.bind_model(model)
    return build_cards(run["assignments"], features, run["profiles"], playbook or model.playbook)


# --------------------------------------------------------------------------- rendering


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _facts(card: SegmentCard) -> list[tuple[str, str]]:
    """(label, value) rows shared by both formats."""
    revenue = "" if card.share_revenue is None else f", {_share(card.share_revenue)} of revenue"
    channel = "n/a" if card.primary_channel is None else (
        f"{card.primary_channel} ({_share(card.primary_channel_share)} of orders)"
    )
    tier = "n/a" if card.value_tier is None else f"{card.value_tier} (value index {card.value_index:.2f})"
    facts = [
        ("Customers", f"{card.customers:,} ({_share(card.share_customers)} of all{revenue})"),
        ("Lifetime value proxy (spend per customer)", _money(card.ltv_proxy)),
    ]
    if card.clv_mean is not None:
        # Only from the value family's models: a run without them shows no prediction at all.
        facts += [
            ("Predicted CLV, next 365 days (per customer)", _money(card.clv_mean)),
            ("Predicted CLV, next 365 days (segment total)", _money(card.clv_total)),
            ("Median P(alive)", _share(card.p_alive_median)),
            ("Expected purchases per customer (90 / 365 days)",
             f"{_number(card.expected_purchases_90d_mean, 2)} / {_number(card.expected_purchases_365d_mean, 2)}"),
        ]
    return facts + [
        ("Orders per customer", _number(card.orders_per_customer)),
        ("Retention proxy (share buying again)", _share(card.retention_proxy)),
        ("Median categories bought", _number(card.median_categories, 0)),
        ("Primary channel", channel),
        ("Strategic value tier", tier),
    ]


_PLAY_LISTS = (("retention_tactics", "Retention tactics"), ("growth_tactics", "Growth tactics"),
               ("channels", "Channels"), ("success_metrics", "Success metrics"))


def _md(text: str) -> str:
    for ch in "\\`*_[]<>|#":
        text = text.replace(ch, "\\" + ch)
    return text


def cards_markdown(cards: Sequence[SegmentCard], *, title: str = "Segment cards") -> str:
    """The cards as one Markdown document."""
    lines = [f"# {_md(title)}", ""]
    for card in cards:
        heading = _md(card.display_name)
        if card.display_name != card.name:
            heading += f" ({_md(card.name)})"
        lines += [f"## {card.segment_id}. {heading}", "", _md(card.description), ""]
        lines += [f"- **{label}**: {_md(value)}" for label, value in _facts(card)]
        lines.append("")
        if card.key_characteristics:
            lines += ["**Key characteristics**", ""]
            lines += [f"- {_md(text)}" for text in card.key_characteristics] + [""]
        play = card.play
        if play is None:
            lines += ["*No playbook entry: add one with `segwise playbook init`.*", ""]
            continue
        for key, label in _PLAY_LISTS:
            if play[key]:
                lines += [f"**{label}**: " + "; ".join(_md(v) for v in play[key]), ""]
        extras = [f"cadence: {_md(play['cadence'])}" if play["cadence"] else None,
                  f"price sensitivity: {play['price_sensitivity']}" if play["price_sensitivity"] else None]
        if any(extras):
            lines += ["**Contact**: " + "; ".join(e for e in extras if e), ""]
        if play["actions"]:
            lines += ["**Next-best actions** (first match wins)", ""]
            for number, rule in enumerate(play["actions"], 1):
                when = " and ".join(f"`{c}`" for c in rule["when"]) or "everyone else"
                via = f" via {_md(rule['channel'])}" if rule.get("channel") else ""
                lines.append(f"{number}. {when}: {_md(rule['action'])}{via}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; background: #f5f6f8; color: #1d2330; }
h1 { font-size: 1.6rem; margin-bottom: 1.5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(26rem, 1fr)); gap: 1.25rem; }
.card { background: #fff; border-radius: 10px; padding: 1.25rem 1.5rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.card h2 { font-size: 1.2rem; margin: 0 0 .25rem; }
.card .model-name { color: #5b6475; font-size: .9rem; }
.tier { display: inline-block; font-size: .75rem; font-weight: 600; padding: .15rem .5rem; border-radius: 999px; margin-left: .4rem; vertical-align: middle; }
.tier-high { background: #d7f5df; color: #17603a; } .tier-medium { background: #fdf0cf; color: #7a5a00; }
.tier-low { background: #e9ebef; color: #4a5262; } .tier-na { background: #e9ebef; color: #4a5262; }
.description { margin: .5rem 0 1rem; }
table.facts { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
table.facts th { text-align: left; font-weight: 500; color: #5b6475; padding: .2rem .5rem .2rem 0; width: 55%; }
table.facts td { padding: .2rem 0; }
h3 { font-size: .95rem; margin: 1rem 0 .35rem; }
ul, ol { margin: 0; padding-left: 1.2rem; } code { background: #eef0f4; padding: 0 .25rem; border-radius: 3px; }
.empty { color: #5b6475; font-style: italic; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<div class="cards">
{% for card in cards %}
<section class="card" id="segment-{{ card.segment_id }}">
<h2>{{ card.segment_id }}. {{ card.display_name }}<span class="tier tier-{{ card.value_tier or 'na' }}">{{ (card.value_tier or 'n/a') ~ ' value' }}</span></h2>
{% if card.display_name != card.name %}<div class="model-name">model name: {{ card.name }}</div>{% endif %}
<p class="description">{{ card.description }}</p>
<table class="facts">
{% for label, value in facts[loop.index0] %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% if card.key_characteristics %}<h3>Key characteristics</h3>
<ul>{% for text in card.key_characteristics %}<li>{{ text }}</li>{% endfor %}</ul>{% endif %}
{% if card.play %}
{% for key, label in play_lists %}{% if card.play[key] %}<h3>{{ label }}</h3>
<ul>{% for item in card.play[key] %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}{% endfor %}
{% if card.play.cadence or card.play.price_sensitivity %}<h3>Contact</h3><ul>
{% if card.play.cadence %}<li>cadence: {{ card.play.cadence }}</li>{% endif %}
{% if card.play.price_sensitivity %}<li>price sensitivity: {{ card.play.price_sensitivity }}</li>{% endif %}</ul>{% endif %}
{% if card.play.actions %}<h3>Next-best actions (first match wins)</h3><ol>
{% for rule in card.play.actions %}<li>{% if rule.when %}{% for c in rule.when %}<code>{{ c }}</code>{% if not loop.last %} and {% endif %}{% endfor %}{% else %}everyone else{% endif %}: {{ rule.action }}{% if rule.get('channel') %} via {{ rule.channel }}{% endif %}</li>
{% endfor %}</ol>{% endif %}
{% else %}<p class="empty">No playbook entry: add one with <code>segwise playbook init</code>.</p>{% endif %}
</section>
{% endfor %}
</div>
</body>
</html>
"""


def cards_html(cards: Sequence[SegmentCard], *, title: str = "Segment cards") -> str:
    """The cards as one self-contained HTML page (no scripts, no external files)."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(_HTML)
    return template.render(title=title, cards=[c.to_dict() for c in cards], facts=[_facts(c) for c in cards],
                           play_lists=_PLAY_LISTS)


def cards_json(cards: Sequence[SegmentCard]) -> str:
    """The cards as JSON (what the report and API can consume)."""
    from segwise.profile import _clean_json

    return json.dumps(_clean_json([c.to_dict() for c in cards]), indent=2, allow_nan=False)
