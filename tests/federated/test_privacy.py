import math

import pytest

from segwise.errors import InputError
from segwise.federated.privacy import (
    BUDGET_SHARES, Accountant, PrivacyBudgetExceeded, PrivacyPlan, epsilon_for_rho, gaussian_sigma,
    rho_for_epsilon,
)


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 8.0])
@pytest.mark.parametrize("delta", [1e-5, 1e-9])
def test_rho_and_epsilon_convert_both_ways(epsilon, delta):
    assert epsilon_for_rho(rho_for_epsilon(epsilon, delta), delta) == pytest.approx(epsilon, rel=1e-12)


def test_every_planned_release_spends_exactly_the_budget():
    plan = PrivacyPlan(epsilon=1.0, iterations=4)
    accountant = Accountant(plan)
    for release in plan.releases():
        accountant.charge(release, sensitivity=2.0)
    assert accountant.epsilon_spent == pytest.approx(1.0, rel=1e-12)
    assert sum(BUDGET_SHARES.values()) == pytest.approx(1.0)
    with pytest.raises(PrivacyBudgetExceeded, match="allows 4 'lloyd' release"):
        accountant.charge("lloyd", sensitivity=2.0)


def test_gaussian_sigma_is_sensitivity_over_root_two_rho():
    assert gaussian_sigma(3.0, 0.5) == pytest.approx(3.0)
    plan = PrivacyPlan(epsilon=1.0, delta=1e-6, iterations=6)
    assert plan.rho("lloyd") == pytest.approx(plan.total_rho * 0.1)
    assert plan.total_rho == pytest.approx((math.sqrt(math.log(1e6) + 1) - math.sqrt(math.log(1e6))) ** 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon": 0.0}, "The 'dp_epsilon' parameter must be a float in the range (0, inf). Got 0.0 instead."),
    ({"epsilon": 1.0, "delta": 1.0}, "The 'dp_delta' parameter must be a float in the range (0, 1). Got 1.0 instead."),
    ({"epsilon": 1.0, "iterations": 0},
     "The 'dp_iterations' parameter must be an int in the range [1, inf). Got 0 instead."),
])
def test_plan_parameters_are_checked(kwargs, message):
    with pytest.raises(InputError) as info:
        PrivacyPlan(**kwargs)
    assert str(info.value) == message
