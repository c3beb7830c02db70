"""Parsers of option values that are not plain types (lists, KEY=VALUE, 'auto' or a number)."""

from __future__ import annotations

import json
from typing import Any, Optional

from segwise.errors import InputError

__all__ = ["split_list", "parse_segments", "parse_weights", "parse_counts", "parse_method_params", "PARSERS"]


def split_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def parse_segments(value: str) -> int | str | tuple[int, int]:
    if value.strip().lower() == "auto":
        return "auto"
    if ".." in value:  # a range: auto within it (segwise.cluster.select.resolve_n_segments)
        from segwise.cluster.select import resolve_n_segments

        return resolve_n_segments(value)[1]
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"--segments must be 'auto' or a whole number, got {value!r}") from None
    if n < 1:
        raise InputError(f"--segments must be at least 1, got {n}")
    return n


def parse_weights(values: Optional[list[str]]) -> Optional[dict[str, float]]:
    if not values:
        return None
    weights = {}
    for item in values:
        name, sep, number = item.partition("=")
        try:
            weights[name.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--weight takes NAME=NUMBER (e.g. recency_days=2), got {item!r}")
    return weights


def parse_counts(option: str, text: str) -> list[int]:
    """Whole numbers of at least 1 separated by commas (``4,12``)."""
    try:
        counts = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} takes whole numbers separated by commas (e.g. 4,12), got {text!r}") from None
    if not counts or min(counts) < 1:
        raise InputError(f"{option} takes numbers of segments of at least 1 (e.g. 4,12), got {text!r}")
    return counts


#: How the text of a method parameter's own option is read, by the parameter's declared type
#: (`segwise.cluster.base.MethodParam`).
PARSERS = {"counts": parse_counts}


def parse_method_params(values: Optional[list[str]]) -> dict[str, Any]:
    """``--method-param KEY=VALUE`` items: VALUE read as JSON when it parses, else as text."""
    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--method-param takes KEY=VALUE (e.g. linkage=average or eps=0.8), got {item!r}")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text.strip()
    return params
