"""Which order shares join the default definition of segments: the reliability gate.

By default segments are defined by the ``rfm`` and ``affinity`` families. Types
that differ in *when* or *how* they order (channel, time of day, weekend,
season) are invisible to those columns, and adding every engagement or
seasonality share would let shares that are mostly sampling noise (one order
makes a weekend share 0 or 1) split the segments. The gate keeps a share column
only when its customers differ far more than sampling explains:

- the candidates are the per-order shares of the `GATED_FAMILIES`
  (a customer's share of orders by channel, weekend, part of day, quarter, and
  the share of orders returned or cancelled when the log has returns),
  whose sampling error is binomial in the number of orders;
- each candidate's *reliability* (`segwise.features.shrink`: the share of its
  observed variance that lies between customers rather than in sampling) must
  reach `MIN_GATE_RELIABILITY`;
- a kept share is shrunk toward the population by the number of orders it rests
  on before it is prepared (`segwise.features.shrink`).

The ``category_mix`` shares (the share of a customer's orders that include each
category) were measured as candidates and are not: on the development half A
the demo population's category shares pass the gate (reliability 0.59 to 0.67:
its types do differ in categories, mixed with the RFM differences) and with them
its ARI falls from 0.96 to 0.72 (k 10 for 8); the held-out ``affinity_only``
family, whose types differ only in categories, would rise from 0.01 to 0.75
(docs/quality.md). They describe the segments, are shrunk when chosen with
``--features`` and are pointed out when reliable (`segwise.features.shrink`);
when the default definition finds only weak structure they are tried as a
widening of it (`WIDENING_FAMILIES`, `widening_candidates`).

Trend ratios (``purchase_rate_change``) and the journey family's category
shares are not candidates: their reliability measures recency or category
counts, not a per-order habit, and is high on populations where they define
nothing.

The threshold was set on the development half of ``bench.quality``'s families
and reported on the held-out half (docs/quality.md): engagement and season
shares reach 0.75 to 1.0 where they define the types, and stay below 0.4 on
families where they do not (the demo population, the buy-till-you-die families,
the population without clusters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd

from segwise.features.shrink import SHARE_UNITS, reliable_unused_shares, share_reliability

__all__ = ["GATED_FAMILIES", "MIN_GATE_RELIABILITY", "ShareGate", "gate_shares", "WIDENING_FAMILIES",
           "widening_candidates", "MIN_DEFINING_RELIABILITY", "SamplingCheck", "check_sampling"]

#: Families whose per-order shares are candidates of the gate.
GATED_FAMILIES = ("engagement", "seasonality", "returns")

#: Units of per-order shares (a count of orders over all orders).
ORDER_SHARE_UNITS = ("share 0-1",)

#: Reliability a share needs to join the default definition.
MIN_GATE_RELIABILITY = 0.5


@dataclass
class ShareGate:
    """The gate's decision: shares kept, shares left out, and every candidate's reliability."""

    kept: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    reliability: dict[str, float] = field(default_factory=dict)
    threshold: float = MIN_GATE_RELIABILITY

    def to_dict(self) -> dict[str, object]:
        """For run.json: what was kept, what was left out, and why."""
        return {"rule": f"order shares join the definition when their reliability >= {self.threshold}",
                "kept": list(self.kept), "left_out": list(self.left_out),
                "reliability": {c: round(v, 3) for c, v in self.reliability.items()}}

    def notes(self) -> list[str]:
        """Sentences for the run's notes (run.json, CLI): what joined the definition, what was checked and left out."""
        out = []
        if self.kept:
            listed = ", ".join(f"{c} ({self.reliability[c]:.2f})" for c in self.kept)
            out.append(f"{listed} join the definition: customers differ in them far more than sampling explains "
                       f"(reliability >= {self.threshold}); they are shrunk toward the population by their "
                       "number of orders")
        if self.left_out:
            top = sorted(self.left_out, key=lambda c: self.reliability[c], reverse=True)[:3]
            listed = ", ".join(f"{c} {self.reliability[c]:.2f}" for c in top)
            out.append(f"{len(self.left_out)} order share(s) checked and left out of the definition: reliability "
                       f"below {self.threshold}, mostly sampling noise (highest: {listed})")
        return out


def gate_candidates(frame: pd.DataFrame, docs: Mapping[str, object], used: Sequence[str] = ()) -> list[str]:
    """Per-order share columns of the `GATED_FAMILIES` in ``frame`` and not in ``used``."""
    return [c for c, d in docs.items()
            if c in frame.columns and c not in used and getattr(d, "family", None) in GATED_FAMILIES
            and getattr(d, "unit", None) in ORDER_SHARE_UNITS and getattr(d, "unit", None) in SHARE_UNITS
            and pd.api.types.is_numeric_dtype(frame[c])]


def gate_shares(frame: pd.DataFrame, docs: Mapping[str, object], used: Sequence[str] = (),
                count_column: str = "n_orders", threshold: float = MIN_GATE_RELIABILITY) -> ShareGate:
    """Decide which candidate shares join the definition (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        The customer feature table.
    docs : mapping of str to FeatureColumn
        Documentation of the columns (family and unit).
    used : sequence of str
        Columns already defining the segments (not candidates).
    count_column : str
        Each customer's number of orders; without it nothing is gated in.
    threshold : float
        Reliability a share needs.

    Returns
    -------
    ShareGate
    """
    gate = ShareGate(threshold=threshold)
    if count_column not in frame.columns:
        return gate
    candidates = gate_candidates(frame, docs, used)
    if not candidates:
        return gate
    gate.reliability = share_reliability(frame, docs, candidates, count_column)
    for column in candidates:
        (gate.kept if gate.reliability[column] >= threshold else gate.left_out).append(column)
    return gate


#: Families whose reliable shares are tried when the default definition finds weak
#: structure (`widening_candidates`; the rule is `segwise.cluster.select.prefer_widened`).
#: The category shares are not gate candidates (on the demo population they are
#: reliable and mixed with its RFM types, and cost it 0.96 to 0.72), but where the
#: rfm and affinity columns find only a continuum, reliable category shares may be
#: the structure itself (types that differ only in which categories they buy).
#: Journey trends were measured and left out: on journey_only they raise the ARI but
#: not the structure margin, and on bgnbd_overlap they lower both (docs/quality.md).
WIDENING_FAMILIES = ("category_mix",)


def widening_candidates(frame: pd.DataFrame, docs: Mapping[str, object], used: Sequence[str],
                        count_column: str = "n_orders") -> dict[str, float]:
    """Shares of the `WIDENING_FAMILIES` outside ``used`` that pass the reliability threshold, with their reliability.

    The threshold is the hint's (`segwise.features.shrink.HINT_RELIABILITY`, equal
    to `MIN_GATE_RELIABILITY`): customers differ in them far more than sampling explains.
    """
    reliable = reliable_unused_shares(frame, docs, list(used), count_column)
    return {c: r for c, r in reliable.items() if getattr(docs[c], "family", None) in WIDENING_FAMILIES}


#: Reliability the evidence of a default defining column (`FeatureColumn.reliability_from`)
#: needs for the column to stay in the definition. A low bar, unlike the gate's: the
#: column is in the default because types often differ in it, and it leaves only when
#: its customers differ in essentially nothing but sampling.
MIN_DEFINING_RELIABILITY = 0.1


@dataclass
class SamplingCheck:
    """Default defining columns left out because their evidence is sampling noise.

    ``left_out`` maps each such column to the evidence it rests on (a family or a
    column, `FeatureColumn.reliability_from`); ``evidence`` maps each evidence checked to
    its reliability (the largest over a family's shares).
    """

    left_out: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, float] = field(default_factory=dict)
    threshold: float = MIN_DEFINING_RELIABILITY

    def notes(self) -> list[str]:
        """One sentence per evidence that sent columns out of the definition."""
        out = []
        for source in dict.fromkeys(self.left_out.values()):
            columns = [c for c, s in self.left_out.items() if s == source]
            what = f"customers' {source} shares vary" if columns != [source] else "customers vary in it"
            out.append(f"{', '.join(columns)} left out of the definition: {what} no more than the sampling of their "
                       f"orders explains (reliability {self.evidence[source]:.2f}, below {self.threshold}); "
                       f"{'they describe' if len(columns) > 1 else 'it describes'} the segments")
        return out


def check_sampling(frame: pd.DataFrame, docs: Mapping[str, object], chosen: Sequence[str],
                   count_column: str = "n_orders", threshold: float = MIN_DEFINING_RELIABILITY) -> SamplingCheck:
    """Which of the ``chosen`` columns measure only the sampling of few orders.

    A column whose documentation names evidence (``reliability_from``: a family whose
    per-order shares, or a per-order share column itself) leaves when that evidence's
    reliability (`segwise.features.shrink.ShareShrinkage`; the largest over a family's
    shares) is below ``threshold``: customers then differ in, say, which categories they
    buy no more than drawing every order from one population mix would make them, and the
    column's spread (one-order customers have one category, an entropy of 0) only repeats
    their number of orders. A column whose evidence is not in ``frame`` stays.

    Parameters
    ----------
    frame : DataFrame
        The customer feature table.
    docs : mapping of str to FeatureColumn
        Documentation of the columns.
    chosen : sequence of str
        The default definition's columns.
    count_column : str
        Each customer's number of orders; without it nothing is left out.
    threshold : float
        Reliability the evidence needs.

    Returns
    -------
    SamplingCheck
    """
    check = SamplingCheck(threshold=threshold)
    if count_column not in frame.columns:
        return check
    evidence_of = {c: getattr(docs.get(c), "reliability_from", "") for c in chosen}
    sources: dict[str, list[str]] = {}
    for source in dict.fromkeys(s for s in evidence_of.values() if s):
        if source in frame.columns and source in docs:
            shares = [source]
        else:
            shares = [c for c, d in docs.items() if c in frame.columns and getattr(d, "family", None) == source]
        shares = [c for c in shares if getattr(docs[c], "unit", None) in ORDER_SHARE_UNITS
                  and pd.api.types.is_numeric_dtype(frame[c])]
        if shares:
            sources[source] = shares
    if not sources:
        return check
    every = list(dict.fromkeys(c for shares in sources.values() for c in shares))
    reliability = share_reliability(frame, docs, every, count_column)
    for source, shares in sources.items():
        check.evidence[source] = max(reliability[c] for c in shares)
    check.left_out = {c: s for c, s in evidence_of.items() if s in check.evidence and check.evidence[s] < threshold}
    return check
