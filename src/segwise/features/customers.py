"""Derived features of a customer attribute table, found from the columns themselves.

A customer table often spreads one quantity over several columns (spend per
product group, purchases per channel) and states facts indirectly (a birth year,
children and teenagers at home). Clustering the raw columns lets the largest
spend column decide everything; the derived columns say what the columns mean:

- **totals and shares of a column group**: three or more numeric columns whose
  names share their first word (``spend_fresh``, ``spend_meat``, ...; ``MntWines``,
  ``MntFish`` ...) get ``total_<word>`` and, per column, its share of the total;
- **age** from a birth-year column (a numeric column whose name has the words
  birth / born / yob), in years at the reference date;
- **children at home** from the numeric columns counting kids, children, babies or
  teenagers (a word of the name is one of those, or one of those glued to "home":
  ``kids_home``, ``Kidhome``, ``Teenhome``).

Detection uses only column names (split into words) and kinds, never a data
set's own names, so the same table always derives the same columns. The plan
(`derive_plan`) is computed from the spec's attribute names and kinds; the values
(`apply_plan`) from the attribute frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Mapping

import numpy as np
import pandas as pd

from segwise.features.base import FeatureColumn
from segwise.schema import name_tokens

__all__ = ["DerivedColumn", "derive_plan", "apply_plan", "concept_words"]

#: Words that mark a birth-year column and a count of children at home.
BIRTH_WORDS = {"birth", "born", "yob", "birthyear"}
CHILD_WORDS = {"kid", "kids", "child", "children", "teen", "teens", "teenager", "teenagers", "baby", "babies"}
#: A name's word that is a child word glued to "home" counts children too: names glued
#: without a case change or separator (``Kidhome``, ``Teenhome``, ``childrenathome``)
#: are one word, while ``kidney`` is not a count of children.
CHILD_GLUED = re.compile(rf"(?:{'|'.join(sorted(CHILD_WORDS, key=len, reverse=True))})(?:at)?(?:home|house|household)")

#: Fewest columns that make a group with totals and shares.
MIN_GROUP = 3


@dataclass(frozen=True)
class DerivedColumn:
    """One derived column: what it is computed from and how."""

    name: str
    how: str  # "total", "share", "age" or "sum"
    sources: tuple[str, ...]
    doc: FeatureColumn


def _words(name: str) -> list[str]:
    return name_tokens(name) or [name.lower()]


def _plain(words: list[str]) -> str:
    return "_".join(words)


def concept_words(name: str) -> set[str]:
    """The words of a column's name, with the words derivation reads as one concept made one:
    birth words are "age" (``Year_Birth``, derived ``age``), child words "children"
    (``Kidhome``, ``teens_home``, derived ``children_at_home``)."""
    concepts = set()
    for word in _words(name):
        if word in BIRTH_WORDS:
            concepts.add("age")
        elif word in CHILD_WORDS or CHILD_GLUED.fullmatch(word):
            concepts.add("children")
        else:
            concepts.add(word)
    return concepts


def derive_plan(kinds: Mapping[str, str]) -> list[DerivedColumn]:
    """The derived columns for attributes of these kinds (``numeric``, ``date``, ``categorical``)."""
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    plan: list[DerivedColumn] = []
    taken = set(kinds)
    groups: dict[str, list[str]] = {}
    for column in numeric:
        words = _words(column)
        if len(words) >= 2:
            groups.setdefault(words[0], []).append(column)
    for word, members in groups.items():
        if len(members) < MIN_GROUP:
            continue
        total = f"total_{word}"
        if total in taken:
            continue
        taken.add(total)
        plan.append(DerivedColumn(total, "total", tuple(members), FeatureColumn(
            total, "attributes", "as given", f"Sum of the {len(members)} '{word}' columns "
            f"({', '.join(members)}).", log_scale=True)))
        for column in members:
            share = f"{_plain(_words(column)[1:])}_share_of_{word}"
            if share in taken:
                continue
            taken.add(share)
            plan.append(DerivedColumn(share, "share", (column, *members), FeatureColumn(
                share, "attributes", "share 0-1", f"{column} as a share of total_{word} (0 when the total is 0).")))
    births = [c for c in numeric if BIRTH_WORDS.intersection(_words(c)) or "birth" in c.lower()]
    dates = [c for c, k in kinds.items() if k == "date"]
    if len(births) == 1 and "age" not in taken:
        taken.add("age")
        plan.append(DerivedColumn("age", "age", (births[0], *dates), FeatureColumn(
            "age", "attributes", "years", f"Age in years from {births[0]}, at the as_of date (without one, "
            "at the latest date of the table's date columns).")))
    children = [c for c in numeric if "children" in concept_words(c)]
    if children and "children_at_home" not in taken:
        plan.append(DerivedColumn("children_at_home", "sum", tuple(children), FeatureColumn(
            "children_at_home", "attributes", "people", f"Sum of {', '.join(children)}.")))
    return plan


def apply_plan(attrs: pd.DataFrame, plan: list[DerivedColumn], as_of: date | None) -> pd.DataFrame:
    """The derived columns' values for the customers of ``attrs`` (same index)."""
    out: dict[str, pd.Series] = {}
    for item in plan:
        if item.how in ("total", "sum"):
            out[item.name] = attrs[list(item.sources)].astype("float64").sum(axis=1, min_count=1)
        elif item.how == "share":
            column, members = item.sources[0], list(item.sources[1:])
            total = attrs[members].astype("float64").clip(lower=0).sum(axis=1)
            values = attrs[column].astype("float64").clip(lower=0)
            out[item.name] = (values / total.where(total > 0)).fillna(0.0)
        elif item.how == "age":
            birth, dates = item.sources[0], list(item.sources[1:])
            if as_of is not None:
                year = as_of.year
            elif dates:
                latest = max(pd.to_datetime(attrs[d]).max() for d in dates)
                year = latest.year if pd.notna(latest) else None
            else:
                year = None
            if year is None:
                continue
            out[item.name] = (year - attrs[birth].astype("float64")).where(lambda a: (a >= 0) & (a < 130))
    frame = pd.DataFrame(out, index=attrs.index)
    return frame.replace([np.inf, -np.inf], np.nan)
