"""The documentation says what the code does."""

import re
import subprocess
import sys
from pathlib import Path

from segwise.cli import app, cli_reference_markdown
from segwise.data import CLEANING_RULES
from segwise.features import reference_markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_feature_reference_is_generated_from_the_code():
    assert (ROOT / "docs" / "features.md").read_text() == reference_markdown()


def test_quick_start_is_exactly_the_two_commands():
    quick = README.split("## Quick start", 1)[1].split("```", 2)[1]
    assert quick.strip().splitlines() == ["make demo", "make test"]


def test_cli_reference_is_generated_from_the_commands():
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference_markdown()


def test_every_command_appears_in_the_readme():
    import typer.main

    for name, command in typer.main.get_command(app).commands.items():
        assert f"segwise {name}" in README, name
        for sub in getattr(command, "commands", {}):
            assert f"segwise {name} {sub}" in README, f"{name} {sub}"


def test_every_cleaning_rule_is_in_the_readme():
    words = {
        "missing_customer_id": "without a customer id", "missing_timestamp": "without a date",
        "invalid_amount": "infinite amounts", "non_positive_price": "unit prices of zero or below",
        "zero_amount": "amounts of exactly zero", "duplicate_line": "identical", "cancellation": "cancellations",
        "after_as_of": "on or after `as_of`", "rare_category": "rarer categories are kept as 'other'",
    }
    assert set(words) == set(CLEANING_RULES)
    text = " ".join(README.split())
    for rule, phrase in words.items():
        assert phrase in text, rule


def test_help_runs():
    script = Path(sys.executable).parent / "segwise"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for name in ("run", "features", "assign", "synth", "demo"):
        assert re.search(rf"\b{name}\b", result.stdout)


def test_every_guarantee_names_tests_that_exist():
    section = README.split("## What segwise guarantees", 1)[1].split("\n## ", 1)[0]
    bullets = [b for b in re.split(r"\n- ", section)[1:]]
    assert len(bullets) >= 8
    for bullet in bullets:
        references = re.findall(r"(tests/[\w/]+\.py)::(\w+)", bullet)
        assert references, f"a guarantee names no test: {bullet[:80]!r}"
        for path, name in references:
            source = (ROOT / path).read_text()
            assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{path}::{name} does not exist"
