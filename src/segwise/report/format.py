"""Numbers formatted for people: thousands separators, money, percentages, days.

Every function takes ``None`` or NaN and returns an en dash, so a measure the data
cannot give shows as missing rather than as "nan". They are the Jinja filters of
the report template and the hover formats of its figures.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "MISSING", "is_missing", "fmt_int", "fmt_number", "fmt_money", "fmt_pct", "fmt_days", "fmt_signed",
    "fmt_metric", "plotly_number_format", "FILTERS",
]

#: What a missing value looks like.
MISSING = "\u2013"


def is_missing(value: Any) -> bool:
    """True for None, NaN and infinities."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def fmt_int(value: Any) -> str:
    """``1234567`` -> ``"1,234,567"``."""
    if is_missing(value):
        return MISSING
    return f"{round(float(value)):,}"


def fmt_number(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits and thousands separators (``12,345``, ``0.0123``)."""
    if is_missing(value):
        return MISSING
    value = float(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def fmt_money(value: Any, currency: str | None = None) -> str:
    """Money: ``12.50``, ``12,345``, ``1.23M``.

    Below 100 two decimals (a basket of 12.50), up to a million whole units with
    separators, above that millions (``1.23M``) or billions (``4.5B``). ``currency``
    (a symbol or code such as ``"€"`` or ``"EUR "``) is put in front.
    """
    if is_missing(value):
        return MISSING
    value = float(value)
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size >= 1e9:
        text = f"{size / 1e9:,.2f}B"
    elif size >= 1e6:
        text = f"{size / 1e6:,.2f}M"
    elif size >= 100:
        text = f"{size:,.0f}"
    else:
        text = f"{size:,.2f}"
    return f"{sign}{currency or ''}{text}"


def fmt_pct(value: Any, decimals: int = 1) -> str:
    """A share in [0, 1] as a percentage: ``0.1234`` -> ``"12.3%"``; tiny non-zero shares as ``"<0.1%"``."""
    if is_missing(value):
        return MISSING
    value = float(value)
    smallest = 10 ** (-decimals) / 100
    if 0 < abs(value) < smallest:
        return f"<{smallest * 100:.{decimals}f}%" if value > 0 else f">-{smallest * 100:.{decimals}f}%"
    return f"{value * 100:,.{decimals}f}%"


def fmt_days(value: Any) -> str:
    """``34.2`` -> ``"34 days"``, ``1`` -> ``"1 day"``."""
    if is_missing(value):
        return MISSING
    days = round(float(value))
    return f"{days:,} day{'' if days == 1 else 's'}"


def fmt_signed(value: Any, decimals: int = 1) -> str:
    """A signed number (z-scores): ``+1.2``, ``-0.4``."""
    if is_missing(value):
        return MISSING
    return f"{float(value):+,.{decimals}f}"


def fmt_metric(value: Any, unit: str, currency: str | None = None) -> str:
    """A feature value formatted by its unit (from the feature documentation)."""
    unit = unit or ""
    if unit.startswith("currency"):
        return fmt_money(value, currency)
    if unit.startswith("share"):
        return fmt_pct(value)
    if unit == "days":
        return fmt_days(value)
    if unit in ("orders", "categories"):
        if is_missing(value) or float(value).is_integer() or abs(float(value)) >= 10:
            return fmt_int(value)
        return fmt_number(value, 2)
    return fmt_number(value)


def plotly_number_format(unit: str) -> str:
    """The d3 format plotly uses in hover labels for a value of ``unit``."""
    unit = unit or ""
    if unit.startswith("currency"):
        return ",.2f"
    if unit.startswith("share"):
        return ".1%"
    if unit in ("days", "orders", "categories"):
        return ",.0f"
    return ",.3~g"


#: Jinja filters of the report template.
FILTERS = {
    "int": fmt_int,
    "number": fmt_number,
    "money": fmt_money,
    "pct": fmt_pct,
    "days": fmt_days,
    "signed": fmt_signed,
    "metric": fmt_metric,
}
