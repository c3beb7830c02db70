"""Numbers for people."""

import math

import pytest

from segwise.report.format import (
    MISSING, fmt_days, fmt_int, fmt_metric, fmt_money, fmt_number, fmt_pct, fmt_signed, plotly_number_format,
)


@pytest.mark.parametrize("value, expected", [
    (0, "0"), (7, "7"), (1234, "1,234"), (1_234_567.4, "1,234,567"), (2.5, "2"), (-3_000, "-3,000"),
])
def test_int_has_thousands_separators(value, expected):
    assert fmt_int(value) == expected


@pytest.mark.parametrize("value, currency, expected", [
    (12.5, None, "12.50"), (99.999, None, "100.00"), (123.4, None, "123"), (12_345.6, "€", "€12,346"),
    (1_234_567, "$", "$1.23M"), (4_500_000_000, None, "4.50B"), (-250.0, "£", "-£250"), (0, None, "0.00"),
])
def test_money(value, currency, expected):
    assert fmt_money(value, currency) == expected


@pytest.mark.parametrize("value, expected", [
    (0.1234, "12.3%"), (1, "100.0%"), (0, "0.0%"), (0.0004, "<0.1%"), (-0.0004, ">-0.1%"), (0.2, "20.0%"),
])
def test_percentages(value, expected):
    assert fmt_pct(value) == expected


def test_percentage_decimals():
    assert fmt_pct(0.12345, 2) == "12.35%"
    assert fmt_pct(0.00004, 2) == "<0.01%"


@pytest.mark.parametrize("value, expected", [(1, "1 day"), (0, "0 days"), (34.4, "34 days"), (1500, "1,500 days")])
def test_days(value, expected):
    assert fmt_days(value) == expected


@pytest.mark.parametrize("value, expected", [(0.012345, "0.0123"), (12345.678, "12,346"), (3.14159, "3.14"), (0, "0")])
def test_significant_digits(value, expected):
    assert fmt_number(value) == expected


@pytest.mark.parametrize("missing", [None, float("nan"), math.inf, "text"])
def test_missing_values_show_as_a_dash(missing):
    for formatter in (fmt_int, fmt_money, fmt_pct, fmt_days, fmt_number, fmt_signed):
        assert formatter(missing) == MISSING


def test_signed():
    assert fmt_signed(1.234) == "+1.2"
    assert fmt_signed(-0.04) == "-0.0"


@pytest.mark.parametrize("value, unit, expected", [
    (1234.5, "currency", "€1,234"), (45.1, "currency per order", "€45.10"), (0.25, "share 0-1", "25.0%"),
    (12.2, "days", "12 days"), (3.0, "orders", "3"), (2.5, "orders", "2.5"), (14.6, "orders", "15"),
    (1.07, "bits", "1.07"),
])
def test_metric_follows_the_unit(value, unit, expected):
    assert fmt_metric(value, unit, "€") == expected


def test_plotly_formats():
    assert plotly_number_format("currency") == ",.2f"
    assert plotly_number_format("share 0-1") == ".1%"
    assert plotly_number_format("days") == ",.0f"
    assert plotly_number_format("bits") == ",.3~g"
