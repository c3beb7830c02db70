"""Parsers of option values that are not plain types (lists, KEY=VALUE, 'auto' or a number)."""

from __future__ import annotations

from typing import Optional

from segwise.errors import InputError

__all__ = ["split_list", "parse_segments", "parse_weights"]


def split_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def parse_segments(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
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
