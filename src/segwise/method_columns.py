"""Method parameters that name feature columns, resolved to prepared-column positions.

The methods (`segwise.cluster`) see only a prepared matrix; the Segmenter knows the
feature table and its families. A method's parameters that name features
(k-prototypes' ``categorical``, two-stage's ``first_features``, multi-view's
``views``; declared in its ``column_params``) are given as family names, column
names or patterns (``share_channel_*``); `column_references` finds the columns
they name (which then define the segments) and `resolve_column_params` turns them
into positions in the prepared matrix.
"""

from __future__ import annotations

import fnmatch
import numbers
from typing import Any, Mapping, Sequence

from segwise.errors import InputError

__all__ = ["column_references", "resolve_column_params", "source_columns"]


def _expand(items: Sequence[Any], families: Mapping[str, list[str]], columns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, numbers.Integral):
            continue
        item = str(item)
        if item in families:
            out += families[item]
        elif item in columns:
            out.append(item)
        elif any(ch in item for ch in "*?["):
            out += [c for c in columns if fnmatch.fnmatchcase(c, item)]
    return list(dict.fromkeys(out))


def _as_names(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def column_references(method_cls, method_params: Mapping[str, Any], families: Mapping[str, list[str]],
                      columns: Sequence[str]) -> tuple[dict[str, tuple[str, Any, bool]], list[str], list[str]]:
    """The column parameters of a method, the feature columns they name, and notes.

    Returns ``(specs, referenced, notes)``: ``specs[param] = (kind, value, given)``
    where ``given`` says whether the user set it (else it is the method's default).
    """
    specs: dict[str, tuple[str, Any, bool]] = {}
    defaults = getattr(method_cls, "default_column_params", {})
    for param, kind in method_cls.column_params.items():
        if method_params.get(param) is not None:
            specs[param] = (kind, method_params[param], True)
        elif param in defaults:
            specs[param] = (kind, defaults[param], False)
    referenced: list[str] = []
    notes: list[str] = []
    for param, (kind, value, given) in specs.items():
        groups = value.items() if kind == "groups" else [(param, value)]
        for group, names in groups:
            found = _expand(_as_names(names), families, columns)
            if not found and not all(isinstance(v, numbers.Integral) for v in _as_names(names)):
                if given:
                    raise InputError(
                        f"{param}: {group!r} names no feature column ({', '.join(map(str, _as_names(names)))}); "
                        f"known families: {', '.join(families) or 'none'}; columns: {', '.join(columns)}"
                    )
                notes.append(f"{param} {group!r} left out: the features have none of {', '.join(map(str, _as_names(names)))}")
            referenced += found
    return specs, list(dict.fromkeys(referenced)), notes


def source_columns(prepared_names: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The feature column each prepared column comes from (``region=North`` -> ``region``)."""
    base = []
    for name in prepared_names:
        root = name.split("=")[0]
        if root.endswith("_missing") and root not in columns:
            root = root[: -len("_missing")]
        base.append(root)
    return base


def resolve_column_params(specs: Mapping[str, tuple[str, Any, bool]], prepared_names: Sequence[str],
                          families: Mapping[str, list[str]], columns: Sequence[str]) -> dict[str, Any]:
    """Column parameters as prepared-column positions (integers pass through)."""
    base = source_columns(prepared_names, columns)

    def positions(names: Any) -> list[int]:
        items = _as_names(names)
        wanted = set(_expand(items, families, columns))
        out = [i for i, b in enumerate(base) if b in wanted]
        out += [int(v) for v in items if isinstance(v, numbers.Integral)]
        return sorted(set(out))

    resolved: dict[str, Any] = {}
    for param, (kind, value, given) in specs.items():
        if kind == "groups":
            groups = {}
            for group, names in value.items():
                index = positions(names)
                if index:
                    groups[group] = index
                elif given:
                    raise InputError(f"{param}: {group!r} has no usable prepared column (all dropped in preparation)")
            if not groups:
                raise InputError(f"{param}: none of the groups has a usable feature column")
            resolved[param] = groups
        else:
            index = positions(value)
            if not index and given:
                raise InputError(f"{param}: no usable prepared column for {', '.join(map(str, _as_names(value)))}")
            resolved[param] = index or None
    return resolved
