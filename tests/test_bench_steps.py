"""Every benchmark step names a function that exists (bench/steps.py is data, checked here)."""

from __future__ import annotations

import importlib

import pytest

from bench.steps import STEPS
from bench.target_steps import METHOD_STEPS


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_step_target_is_importable(step):
    module, _, function = step.target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_every_method_target_of_issue_11_has_a_step():
    names = {step.name for step in STEPS}
    assert {f"segwise_method_{method}" for method in METHOD_STEPS} <= names
    assert {"segwise_stability", "segwise_assign"} <= names
