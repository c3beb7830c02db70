"""A/B statistics: hand-computed values, agreement with statsmodels, CI coverage, Holm, SRM, power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from segwise.errors import InputError
from segwise.experiment_stats import (
    choose_mean_method, conversion_lift, holm, mde_conversion, mde_mean, mean_lift, plan_conversion, plan_mean,
    srm_check,
)

Z975 = 1.959963984540054
Z80 = 0.8416212335729143


# --------------------------------------------------------------------------- conversion


def test_conversion_lift_matches_the_hand_computation():
    # 130 of 1,000 treated customers converted, 100 of 1,000 controls.
    result = conversion_lift(130, 1000, 100, 1000)
    assert result["control_rate"] == 0.1 and result["treatment_rate"] == 0.13
    assert result["absolute_lift"] == pytest.approx(0.03)
    assert result["relative_lift"] == pytest.approx(0.3)
    # Pooled z: p = 0.115, se = sqrt(0.115 * 0.885 * 2 / 1000) = 0.0142671
    assert result["z"] == pytest.approx(0.03 / math.sqrt(0.115 * 0.885 * 0.002), rel=1e-9)
    assert result["z"] == pytest.approx(2.10274, abs=1e-5)
    assert result["p_value"] == pytest.approx(0.0354885, abs=1e-6)
    # Wald (unpooled): se = sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000) = 0.0142513
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert result["absolute_ci"] == pytest.approx([0.03 - Z975 * se, 0.03 + Z975 * se], rel=1e-9)
    assert result["absolute_ci"] == pytest.approx([0.0020679, 0.0579321], abs=1e-7)
    # Katz: log(1.3) +- z * sqrt(1/130 - 1/1000 + 1/100 - 1/1000)
    se_log = math.sqrt(1 / 130 - 1 / 1000 + 1 / 100 - 1 / 1000)
    expected = [math.exp(math.log(1.3) - Z975 * se_log) - 1, math.exp(math.log(1.3) + Z975 * se_log) - 1]
    assert result["relative_ci"] == pytest.approx(expected, rel=1e-9)
    assert result["method"]["test"] == "two-proportion z-test (pooled standard error)"


def test_conversion_lift_without_variation_or_conversions():
    none = conversion_lift(0, 500, 0, 400)
    assert none["p_value"] == 1.0 and none["absolute_ci"] is None and "same outcome" in none["note"]
    only_treatment = conversion_lift(6, 500, 0, 400)
    assert only_treatment["relative_lift"] is None and only_treatment["relative_ci"] is None
    assert only_treatment["absolute_ci"][0] < 0.012 < only_treatment["absolute_ci"][1]


def test_conversion_ci_covers_the_true_effect_at_about_the_nominal_rate():
    rng = np.random.default_rng(2024)
    p_control, p_treatment, n = 0.20, 0.25, 600
    covered_abs = covered_rel = 0
    trials = 400
    for _ in range(trials):
        xc, xt = rng.binomial(n, p_control), rng.binomial(n, p_treatment)
        result = conversion_lift(xt, n, xc, n)
        lo, hi = result["absolute_ci"]
        covered_abs += lo <= p_treatment - p_control <= hi
        lo, hi = result["relative_ci"]
        covered_rel += lo <= p_treatment / p_control - 1 <= hi
    assert 0.92 <= covered_abs / trials <= 0.98
    assert 0.92 <= covered_rel / trials <= 0.98


# --------------------------------------------------------------------------- means


def test_welch_matches_the_hand_computation_and_statsmodels():
    t, c = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 4.0, 5.0, 9.0])
    result = mean_lift(t, c, method="welch")
    se2 = t.var(ddof=1) / 4 + c.var(ddof=1) / 5              # 1.6667/4 + 7.3/5
    df = se2**2 / ((t.var(ddof=1) / 4) ** 2 / 3 + (c.var(ddof=1) / 5) ** 2 / 4)
    assert df == pytest.approx(5.9615, abs=1e-4)
    assert result["df"] == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * math.sqrt(se2)
    assert result["absolute_lift"] == pytest.approx(-2.1)
    assert result["absolute_ci"] == pytest.approx([-2.1 - half, -2.1 + half])
    compare = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    assert result["absolute_ci"] == pytest.approx(list(compare.tconfint_diff(usevar="unequal")))
    assert result["p_value"] == pytest.approx(compare.ttest_ind(usevar="unequal")[1])
    assert result["method"]["test"] == "Welch's t-test"


def _revenue(rng, n, conversion, mu, sigma):
    return np.where(rng.random(n) < conversion, rng.lognormal(mu, sigma, n), 0.0)


def test_welch_agrees_with_statsmodels_on_simulated_revenue_with_a_known_effect():
    rng = np.random.default_rng(7)
    c, t = _revenue(rng, 20_000, 0.30, 3.0, 0.8), _revenue(rng, 20_000, 0.33, 3.0, 0.8)
    result = mean_lift(t, c, method="welch")
    compare = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    assert result["absolute_ci"] == pytest.approx(list(compare.tconfint_diff(usevar="unequal")), rel=1e-9)
    assert result["p_value"] == pytest.approx(compare.ttest_ind(usevar="unequal")[1], rel=1e-6)
    true_lift = (0.33 - 0.30) * math.exp(3.0 + 0.8**2 / 2)
    assert result["absolute_ci"][0] <= true_lift <= result["absolute_ci"][1]
    assert result["p_value"] < 0.05


@pytest.mark.parametrize("method", ["welch", pytest.param("bootstrap", marks=pytest.mark.slow)])
def test_revenue_ci_covers_the_true_effect_at_about_the_nominal_rate(method):
    rng = np.random.default_rng(11)
    n, trials = 800, 200
    mean_c = 0.30 * math.exp(2.0 + 0.5)
    mean_t = 0.36 * math.exp(2.0 + 0.5)
    covered = covered_rel = 0
    for i in range(trials):
        c, t = _revenue(rng, n, 0.30, 2.0, 1.0), _revenue(rng, n, 0.36, 2.0, 1.0)
        result = mean_lift(t, c, method=method, n_resamples=999, random_state=i)
        covered += result["absolute_ci"][0] <= mean_t - mean_c <= result["absolute_ci"][1]
        covered_rel += result["relative_ci"][0] <= mean_t / mean_c - 1 <= result["relative_ci"][1]
    assert 0.90 <= covered / trials <= 0.99
    assert 0.90 <= covered_rel / trials <= 0.99


def test_bootstrap_p_value_agrees_with_its_interval_and_is_reproducible():
    rng = np.random.default_rng(3)
    c, t = _revenue(rng, 300, 0.2, 3, 1.5), _revenue(rng, 300, 0.3, 3, 1.5)
    first = mean_lift(t, c, method="bootstrap", random_state=5)
    assert first == mean_lift(t, c, method="bootstrap", random_state=5)
    excludes_zero = first["absolute_ci"][0] > 0 or first["absolute_ci"][1] < 0
    assert excludes_zero == (first["p_value"] < 0.05)
    assert first["method"]["test"].startswith("percentile bootstrap")


def test_auto_uses_cochrans_rule_for_skewed_revenue():
    rng = np.random.default_rng(0)
    skewed = rng.lognormal(3, 2.0, 400)
    assert choose_mean_method(skewed, skewed)[0] == "bootstrap"
    assert "Cochran" in choose_mean_method(skewed, skewed)[1]
    normal = rng.normal(50, 10, 400)
    assert choose_mean_method(normal, normal)[0] == "welch"
    assert mean_lift(skewed[:200], skewed[200:], n_resamples=200)["method"]["test"].startswith("percentile")
    with pytest.raises(InputError, match="The 'method' parameter of mean_lift must be"):
        mean_lift(normal, normal, method="magic")


# --------------------------------------------------------------------------- Holm, SRM, power


def test_holm_matches_the_hand_computation_and_statsmodels():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx([0.03, 0.06, 0.06, 0.02, None])
    p_values = np.random.default_rng(1).uniform(0, 0.2, 9)
    assert holm(list(p_values)) == pytest.approx(list(multipletests(p_values, method="holm")[1]))
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def test_srm_flags_a_broken_split_and_passes_a_healthy_one():
    healthy = srm_check(5000, 5200, 0.5)
    # chi2 = 2 * 100^2 / 5100; p = 2 * (1 - Phi(sqrt(chi2)))
    assert healthy["chi2"] == pytest.approx(2 * 100**2 / 5100)
    assert healthy["p_value"] == pytest.approx(2 * (1 - stats.norm.cdf(math.sqrt(2 * 100**2 / 5100))))
    assert not healthy["mismatch"]
    broken = srm_check(5000, 5400, 0.5)
    assert broken["mismatch"] and broken["p_value"] < 0.001
    assert not srm_check(8000, 2000, 0.2)["mismatch"]
    assert srm_check(8000, 2000, 0.5)["mismatch"]


def test_mde_and_sample_sizes_match_the_normal_approximation():
    # Equal arms of 1,000 at a 10% baseline: h = (z_.975 + z_.8) * sqrt(2 / 1000).
    h = (Z975 + Z80) * math.sqrt(2 / 1000)
    mde = mde_conversion(0.10, 1000, 1000)
    assert mde["cohens_h"] == pytest.approx(h, rel=1e-4)
    target = math.sin(math.asin(math.sqrt(0.10)) + h / 2) ** 2
    assert mde["absolute"] == pytest.approx(target - 0.10, rel=1e-3)
    assert mde["relative"] == pytest.approx((target - 0.10) / 0.10, rel=1e-3)
    # Planning the same effect back gives about 1,000 per arm.
    plan = plan_conversion(0.10, absolute_mde=mde["absolute"])
    assert abs(plan["n_treatment"] - 1000) <= 1 and plan["n_control"] == plan["n_treatment"]
    # 10% -> 12%: n = (z_a + z_b)^2 * 2 / h^2 per arm.
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    plan = plan_conversion(0.10, relative_mde=0.2)
    assert plan["n_treatment"] == math.ceil((Z975 + Z80) ** 2 * 2 / h**2)
    assert plan["n_total"] == 2 * plan["n_treatment"]
    # Unequal split: control = treatment * (1 - share) / share.
    unequal = plan_conversion(0.10, relative_mde=0.2, treatment_share=0.2)
    assert unequal["n_control"] == pytest.approx(4 * unequal["n_treatment"], abs=4)
    # Means: d = mde / sd; t power needs slightly more than the normal formula.
    plan = plan_mean(50.0, 100.0, absolute_mde=5.0)
    normal_n = (Z975 + Z80) ** 2 * 2 / 0.05**2
    assert normal_n <= plan["n_treatment"] <= normal_n + 3
    detectable = mde_mean(50.0, 100.0, plan["n_treatment"], plan["n_control"])
    assert detectable["absolute"] == pytest.approx(5.0, rel=1e-3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(baseline_rate=1.2, relative_mde=0.1), "the baseline rate must be in (0, 1)"),
    (dict(baseline_rate=0.1), "give exactly one of absolute_mde and relative_mde"),
    (dict(baseline_rate=0.1, absolute_mde=0.95), "must be in (0, 1)"),
    (dict(baseline_rate=0.1, relative_mde=0.1, treatment_share=1.0), "the treatment share must be in (0, 1)"),
    (dict(baseline_rate=0.1, relative_mde=0.1, power=1.5), "power must be in (0, 1)"),
])
def test_planning_rejects_impossible_inputs(kwargs, message):
    with pytest.raises(InputError) as info:
        plan_conversion(**kwargs)
    assert message in str(info.value)
