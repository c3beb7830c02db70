"""Playbooks: what the business does with each segment.

A playbook is a TOML file with one table per segment, keyed by the segment's name
(or its id as a string)::

    version = 1

    [segments."At Risk"]
    display_name = "Win back"
    description = "Used to buy often; has not bought for months."
    retention_tactics = ["Personal win-back offer", "Ask what went wrong"]
    growth_tactics = ["Re-introduce the categories they bought"]
    channels = ["email", "sms"]
    cadence = "two touches in three weeks, then stop"
    price_sensitivity = "medium"          # low, medium or high
    success_metrics = ["share reactivated within 60 days"]

    [[segments."At Risk".actions]]        # next-best-action rules, first match wins
    when = ["recency_days > 180", "n_orders >= 3"]
    action = "Call: personal win-back offer"
    channel = "phone"

    [[segments."At Risk".actions]]        # no conditions: everyone else in the segment
    action = "Win-back e-mail with a time-limited voucher"

A condition is ``FEATURE OP VALUE`` with ``OP`` one of ``< <= > >= == !=``; the
value is a number, or quoted text for a categorical column. A feature whose name
is not a plain identifier is written in backticks (```Annual Income (k$)` > 60``).
A customer whose feature is missing does not meet a condition on it.

`parse_playbook` checks the file's own structure (unknown keys, wrong types, bad
conditions); `Playbook.bind` checks it against a model (unknown segment names or
ids, unknown feature names, text compared with numbers) and resolves segment ids.
Every problem is an `InputError` naming the file, the segment and the key, with
the fix. `segwise.playbook_starter.starter_playbook` writes a first playbook
from a model's profiles (``segwise playbook init``).
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from segwise.errors import InputError, ModelError
from segwise.prepare import _is_missing

__all__ = [
    "Condition", "ActionRule", "SegmentPlay", "Playbook", "parse_playbook", "load_playbook",
    "PRICE_SENSITIVITIES", "SEGMENT_KEYS", "PLAYBOOK_VERSION",
]

PLAYBOOK_VERSION = 1
PRICE_SENSITIVITIES = ("low", "medium", "high")
_TOP_KEYS = ("version", "segments")
_TEXT_KEYS = ("display_name", "description", "cadence", "price_sensitivity")
_LIST_KEYS = ("retention_tactics", "growth_tactics", "channels", "success_metrics")
#: Keys a segment's table may hold.
SEGMENT_KEYS = (*_TEXT_KEYS, *_LIST_KEYS, "actions")
_RULE_KEYS = ("when", "action", "channel")
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_CONDITION = re.compile(
    r"^\s*(?:`(?P<quoted>[^`]+)`|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>.+?)\s*$"
)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def _as_number(value: Any) -> float:
    """The value as a number, NaN when missing or not numeric (as ``pd.to_numeric(errors="coerce")``)."""
    if _is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Condition:
    """``feature op value``: one condition of a next-best-action rule."""

    feature: str
    op: str
    value: float | str

    @classmethod
    def parse(cls, text: str, *, where: str) -> "Condition":
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise InputError(
                f"{where}: cannot read the condition {text!r}; write FEATURE OP VALUE with OP one of "
                f"{' '.join(_OPERATORS)}, e.g. \"recency_days > 90\" or \"top_category = 'shoes'\" "
                "(feature names that are not plain identifiers go in backticks)"
            )
        feature = match.group("quoted") or match.group("plain")
        raw = match.group("value")
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            value: float | str = raw[1:-1]
        else:
            try:
                value = float(raw)
            except ValueError:
                raise InputError(
                    f"{where}: the value {raw!r} in {text!r} is neither a number nor quoted text; "
                    f"put text in quotes ({feature} == '{raw}')"
                ) from None
            if not math.isfinite(value):
                raise InputError(f"{where}: the value in {text!r} must be a finite number")
        if isinstance(value, str) and match.group("op") not in ("==", "!="):
            raise InputError(f"{where}: text can only be compared with == or != (in {text!r})")
        return cls(feature=feature, op=match.group("op"), value=value)

    def text(self) -> str:
        feature = self.feature if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.feature) else f"`{self.feature}`"
        value = f"'{self.value}'" if isinstance(self.value, str) else f"{self.value:g}"
        return f"{feature} {self.op} {value}"

    def holds(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows of ``frame`` meeting the condition (missing: False)."""
        column = frame[self.feature]
        if isinstance(self.value, str):
            values = column.astype("object")
            present = values.notna().to_numpy()
            equal = (values.astype(str) == self.value).to_numpy()
            return present & (equal if self.op == "==" else ~equal)
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            result = {
                "<": numbers < self.value, "<=": numbers <= self.value, ">": numbers > self.value,
                ">=": numbers >= self.value, "==": numbers == self.value, "!=": numbers != self.value,
            }[self.op]
        return result & ~np.isnan(numbers)

    def holds_value(self, value: Any) -> bool:
        """Whether one customer's ``value`` of the feature meets the condition, read as `holds`
        reads a one-row column: text compared as text (missing meets neither ``==`` nor ``!=``),
        numbers as numbers (missing, or text that is not a number, meets nothing)."""
        if isinstance(self.value, str):
            if _is_missing(value):
                return False
            equal = str(value) == self.value
            return equal if self.op == "==" else not equal
        number = _as_number(value)
        return not math.isnan(number) and _COMPARE[self.op](number, self.value)


@dataclass(frozen=True)
class ActionRule:
    """A next-best action and the conditions (all must hold) under which it applies."""

    action: str
    when: tuple[Condition, ...] = ()
    channel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"when": [c.text() for c in self.when], "action": self.action}
        if self.channel is not None:
            out["channel"] = self.channel
        return out


@dataclass(frozen=True)
class SegmentPlay:
    """The playbook entry of one segment.

    ``key`` is how the file names the segment (a name, or an id as text);
    ``segment_id`` is set once the playbook is bound to a model.
    """

    key: str
    display_name: str | None = None
    description: str | None = None
    retention_tactics: tuple[str, ...] = ()
    growth_tactics: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    cadence: str | None = None
    price_sensitivity: str | None = None
    success_metrics: tuple[str, ...] = ()
    actions: tuple[ActionRule, ...] = ()
    segment_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "segment_id": self.segment_id, "display_name": self.display_name,
            "description": self.description, "retention_tactics": list(self.retention_tactics),
            "growth_tactics": list(self.growth_tactics), "channels": list(self.channels), "cadence": self.cadence,
            "price_sensitivity": self.price_sensitivity, "success_metrics": list(self.success_metrics),
            "actions": [r.to_dict() for r in self.actions],
        }


@dataclass(frozen=True)
class Playbook:
    """Segment plays parsed from a playbook file (see the module docstring).

    Attributes
    ----------
    segments : tuple of SegmentPlay
        In file order.
    source : str
        Where it came from (file name), used in messages.
    bound : bool
        True once `bind` has checked it against a model and resolved segment ids.
    """

    segments: tuple[SegmentPlay, ...] = ()
    source: str = "playbook"
    bound: bool = False

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def rule_features(self) -> list[str]:
        """Every feature the next-best-action rules read, in first-use order."""
        seen: dict[str, None] = {}
        for play in self.segments:
            for rule in play.actions:
                for condition in rule.when:
                    seen.setdefault(condition.feature, None)
        return list(seen)

    def for_segment(self, segment_id: int) -> SegmentPlay | None:
        """The play of a segment (by id) or None; the playbook must be bound."""
        self._check_bound()
        for play in self.segments:
            if play.segment_id == int(segment_id):
                return play
        return None

    def _check_bound(self) -> None:
        if not self.bound:
            raise ModelError(f"{self.source}: the playbook is not bound to a model yet; call bind(...) first")

    # ------------------------------------------------------------------ validation against a model

    def bind(self, segment_names: Mapping[int, str], features: Mapping[str, str]) -> "Playbook":
        """Check the playbook against a model and resolve every segment key to an id.

        Parameters
        ----------
        segment_names : mapping of int to str
            The model's segment ids and names.
        features : mapping of str to str
            Every feature column the model knows, with its kind (``"numeric"`` or
            ``"categorical"``).

        Returns
        -------
        Playbook
            A bound copy (``segment_id`` set on every play).

        Raises
        ------
        InputError
            Unknown segment names or ids, a segment named twice, unknown feature
            names in rules, or text compared with a numeric feature (and numbers
            with a categorical one).
        """
        by_name = {name: int(i) for i, name in segment_names.items()}
        listing = ", ".join(f"{i} {name!r}" for i, name in sorted(segment_names.items()))
        resolved: list[SegmentPlay] = []
        owner: dict[int, str] = {}
        for play in self.segments:
            key = play.key
            if key in by_name:
                segment_id = by_name[key]
            elif re.fullmatch(r"\d+", key) and int(key) in segment_names:
                segment_id = int(key)
            else:
                lowered = {name.lower(): name for name in by_name}
                hint = (f" (did you mean {lowered[key.lower()]!r}?)" if key.lower() in lowered
                        else _suggest(key, by_name))
                raise InputError(
                    f"{self.source}: [segments.{json.dumps(key)}]: the model has no segment named {key!r}{hint}. "
                    f"Its segments are {listing}; key each table by one of these names or ids."
                )
            if segment_id in owner:
                raise InputError(
                    f"{self.source}: segment {segment_id} ({segment_names[segment_id]!r}) has two tables, "
                    f"[segments.{json.dumps(owner[segment_id])}] and [segments.{json.dumps(key)}]; merge them"
                )
            owner[segment_id] = key
            for number, rule in enumerate(play.actions, 1):
                where = f"{self.source}: [segments.{json.dumps(key)}] action {number}"
                for condition in rule.when:
                    kind = features.get(condition.feature)
                    if kind is None:
                        raise InputError(
                            f"{where}: unknown feature {condition.feature!r} in {condition.text()!r}"
                            f"{_suggest(condition.feature, features)}. Rules can use the model's features: "
                            f"{', '.join(sorted(features))}."
                        )
                    if kind == "categorical" and not isinstance(condition.value, str):
                        raise InputError(
                            f"{where}: {condition.feature!r} is categorical; compare it with quoted text "
                            f"using == or != (in {condition.text()!r})"
                        )
                    if kind != "categorical" and isinstance(condition.value, str):
                        raise InputError(
                            f"{where}: {condition.feature!r} is numeric; compare it with a number "
                            f"(in {condition.text()!r})"
                        )
            resolved.append(replace(play, segment_id=segment_id))
        return replace(self, segments=tuple(resolved), bound=True)

    def bind_model(self, model: Any) -> "Playbook":
        """`bind` against a `SegmentationModel` (its segment names and feature columns)."""
        segmenter = model.segmenter
        docs = segmenter.feature_docs_
        features = {c: docs.get(c, {}).get("kind", "numeric") for c in segmenter.profile_columns_}
        return self.bind(model.names, features)

    # ------------------------------------------------------------------ next-best actions

    def next_best_actions(self, assignments: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
        """The next-best action of every customer: the first rule of its segment that holds.

        Parameters
        ----------
        assignments : DataFrame
            ``customer_id`` and ``segment_id`` per customer.
        features : DataFrame
            Feature rows indexed by customer id (or with a ``customer_id`` column);
            it must hold every column in `rule_features`.

        Returns
        -------
        DataFrame
            ``customer_id``, ``segment_id``, ``action``, ``channel`` and ``rule``
            (the 1-based number of the rule within its segment); action, channel
            and rule are missing for customers no rule covers.
        """
        self._check_bound()
        frame = features.set_index("customer_id") if "customer_id" in features.columns else features
        missing = [c for c in self.rule_features if c not in frame.columns]
        if missing:
            raise InputError(
                f"{self.source}: the rules read {', '.join(map(repr, missing))}, which the feature table does "
                "not have; compute features with the model's definitions (features.parquet of the run)"
            )
        ids = assignments["customer_id"].astype(str).to_numpy()
        frame = frame.set_axis(frame.index.astype(str))
        unknown = pd.Index(ids).difference(frame.index)
        if len(unknown):
            raise InputError(
                f"{self.source}: {len(unknown)} assigned customers have no feature row; use the feature "
                "table these assignments were made from"
            )
        rows = frame.reindex(ids)
        segment = assignments["segment_id"].to_numpy(dtype=np.int64)
        action = np.full(len(ids), None, dtype=object)
        channel = np.full(len(ids), None, dtype=object)
        rule_number = np.zeros(len(ids), dtype=np.int64)
        for play in self.segments:
            open_ = segment == play.segment_id
            for number, rule in enumerate(play.actions, 1):
                hit = open_.copy()
                for condition in rule.when:
                    hit &= condition.holds(rows)
                action[hit] = rule.action
                channel[hit] = rule.channel
                rule_number[hit] = number
                open_ &= ~hit
        return pd.DataFrame({
            "customer_id": ids,
            "segment_id": segment,
            "action": pd.array(action, dtype="string"),
            "channel": pd.array(channel, dtype="string"),
            "rule": pd.Series(rule_number, dtype="Int64").mask(rule_number == 0).to_numpy(),
        })

    def actions_for(self, segment_id: int, features: Mapping[str, Any]) -> list[str]:
        """The actions for one customer of ``segment_id``: every rule of its segment that holds.

        The same rules as `next_best_actions`, for one customer at a time (the
        assignment service): the first action returned is that customer's next-best
        action. A feature the rules read but ``features`` lacks counts as missing, so
        the conditions on it do not hold.

        Parameters
        ----------
        segment_id : int
            The customer's segment.
        features : mapping
            The customer's feature values by column name.

        Returns
        -------
        list of str
            In rule order; empty when the segment has no play or no rule holds.
        """
        play = self.for_segment(segment_id)
        if play is None:
            return []
        # One value per condition, no one-row frame: this runs on every served assignment.
        return [rule.action for rule in play.actions
                if all(c.holds_value(features.get(c.feature)) for c in rule.when)]

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what the model file stores under ``"playbook"``)."""
        return {
            "version": PLAYBOOK_VERSION, "source": self.source, "bound": self.bound,
            "segments": [p.to_dict() for p in self.segments],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Playbook":
        """Rebuild from `to_dict` output; the structure is checked as for a file."""
        source = str(data.get("source", "playbook"))
        plays = []
        for entry in data.get("segments", []):
            body = {k: v for k, v in entry.items() if k not in ("key", "segment_id") and v is not None}
            play = _parse_play(str(entry["key"]), body, source)
            plays.append(replace(play, segment_id=entry.get("segment_id")))
        return cls(segments=tuple(plays), source=source, bound=bool(data.get("bound", False)))


# --------------------------------------------------------------------------- parsing


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: {key!r} must be text, got {_toml_type(value)}; write {key} = \"...\"")
    return value


def _text_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(
            f"{where}: {key!r} must be a list of text, got {_toml_type(value)}; write {key} = [\"...\", \"...\"]"
        )
    return tuple(value)


def _check_keys(raw: dict[str, Any], allowed: tuple[str, ...], problem: str, takes: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise InputError(f"{problem} {unknown[0]!r}{_suggest(unknown[0], allowed)}; {takes} {', '.join(allowed)}")


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _parse_rule(raw: Any, where: str) -> ActionRule:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: must be a table with 'action' and 'when'; use [[segments.\"NAME\".actions]]")
    _check_keys(raw, _RULE_KEYS, f"{where}: unknown key", "an action rule takes")
    if "action" not in raw:
        raise InputError(f"{where}: no 'action'; write action = \"what to do\"")
    action = _text(raw["action"], where, "action").strip()
    if not action:
        raise InputError(f"{where}: 'action' is empty; say what to do")
    when = raw.get("when", [])
    when_list = [when] if isinstance(when, str) else when
    if not isinstance(when_list, list) or not all(isinstance(w, str) for w in when_list):
        raise InputError(f"{where}: 'when' must be a list of conditions such as [\"recency_days > 90\"]")
    conditions = tuple(Condition.parse(w, where=where) for w in when_list)
    channel = _text(raw["channel"], where, "channel") if "channel" in raw else None
    return ActionRule(action=action, when=conditions, channel=channel)


def _parse_play(key: str, raw: Any, source: str) -> SegmentPlay:
    where = f"{source}: [segments.{json.dumps(key)}]"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: must be a table of settings, got {_toml_type(raw)}")
    _check_keys(raw, SEGMENT_KEYS, f"{where}: unknown key", "a segment takes")
    values: dict[str, Any] = {}
    for name in _TEXT_KEYS:
        if name in raw:
            values[name] = _text(raw[name], where, name)
    for name in _LIST_KEYS:
        if name in raw:
            values[name] = _text_list(raw[name], where, name)
    sensitivity = values.get("price_sensitivity")
    if sensitivity is not None and sensitivity not in PRICE_SENSITIVITIES:
        raise InputError(
            f"{where}: price_sensitivity must be one of {', '.join(PRICE_SENSITIVITIES)}, got {sensitivity!r}"
        )
    actions = raw.get("actions", [])
    if not isinstance(actions, list):
        raise InputError(f"{where}: 'actions' must be a list of tables; write [[segments.{json.dumps(key)}.actions]]")
    values["actions"] = tuple(_parse_rule(r, f"{where} action {i}") for i, r in enumerate(actions, 1))
    return SegmentPlay(key=key, **values)


def parse_playbook(text: str, *, source: str = "playbook") -> Playbook:
    """Parse playbook TOML text and check its structure (not yet against a model).

    Raises
    ------
    InputError
        Invalid TOML, unknown keys, wrong value types, malformed conditions.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc}); fix the file (see the TOML syntax at toml.io)") from None
    _check_keys(raw, _TOP_KEYS, f"{source}: unknown top-level key",
                "segment settings go under [segments.\"NAME\"]; a playbook holds")
    version = raw.get("version", PLAYBOOK_VERSION)
    if version != PLAYBOOK_VERSION:
        raise InputError(f"{source}: playbook version {version!r} is not supported; this segwise reads version 1")
    segments = raw.get("segments", {})
    if not isinstance(segments, dict) or not segments:
        raise InputError(f"{source}: no segments; add a table per segment, e.g. [segments.\"Champions\"]")
    plays = tuple(_parse_play(str(key), body, source) for key, body in segments.items())
    return Playbook(segments=plays, source=source)


def load_playbook(path: str | Path, model: Any = None) -> Playbook:
    """Read a playbook file; with a model, also `bind` it (checked against the model)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such playbook file; create one with `segwise playbook init MODEL`") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: a playbook must be UTF-8 text") from None
    playbook = parse_playbook(text, source=str(path))
    return playbook.bind_model(model) if model is not None else playbook
