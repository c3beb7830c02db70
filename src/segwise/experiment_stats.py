"""The statistics of A/B tests: lift with confidence intervals, tests, Holm, MDE, power, SRM.

Every function returns plain JSON-able dicts and names its method in the result,
so a reader of ``result.json`` knows exactly what was computed.

Conversion (a yes/no outcome)
    Two-proportion z-test with the pooled standard error (statsmodels
    ``proportions_ztest``) for the p-value; Wald interval with the unpooled
    standard error for the absolute lift; Katz log interval of the risk ratio for
    the relative lift (statsmodels ``confint_proportions_2indep``).

Revenue per customer (a skewed amount, zero for non-buyers)
    Welch's t-test (scipy ``ttest_ind(equal_var=False)``) with its interval for the
    difference of means, and a delta-method interval of the log ratio of means for
    the relative lift; or, when the data are too skewed for the sample size, a
    percentile bootstrap (scipy ``bootstrap``), whose p-value inverts the
    percentile interval (so p < alpha exactly when the interval excludes zero).
    ``method="auto"`` uses Welch when every arm meets Cochran's rule of thumb for
    the normality of a mean, n > 25 g1^2 (g1: sample skewness), else the bootstrap.

Planning
    Minimum detectable effects and sample sizes come from statsmodels'
    ``NormalIndPower`` on Cohen's h (proportions) and ``TTestIndPower`` on Cohen's d
    (means); p-values across segments are adjusted with Holm's step-down method
    (statsmodels ``multipletests``); the sample-ratio mismatch check is scipy's
    chi-square goodness-of-fit test of the arm counts against the planned split.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

from segwise.errors import InputError

__all__ = [
    "conversion_lift", "mean_lift", "holm", "srm_check", "mde_conversion", "mde_mean", "plan_conversion",
    "plan_mean", "SRM_P_THRESHOLD", "choose_mean_method",
]

#: A split whose arm counts have a chi-square p-value below this is flagged (the
#: customary SRM threshold: a healthy split trips it once in a thousand tests).
SRM_P_THRESHOLD = 0.001

_CONVERSION_METHOD = {
    "test": "two-proportion z-test (pooled standard error)",
    "ci": "Wald interval (unpooled standard error)",
    "relative_ci": "Katz log interval of the risk ratio",
}


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def _interval(low: float, high: float) -> list[float] | None:
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return [float(low), float(high)]


def conversion_lift(conversions_treatment: int, n_treatment: int, conversions_control: int, n_control: int, *,
                    alpha: float = 0.05) -> dict[str, Any]:
    """Lift of the treatment's conversion rate over the control's.

    Returns
    -------
    dict
        ``control_rate``, ``treatment_rate``, ``absolute_lift`` (treatment minus
        control, in rate points), ``absolute_ci``, ``relative_lift`` (absolute lift
        over the control rate), ``relative_ci``, ``z``, ``p_value`` and ``method``.
        Intervals are None where undefined (no conversions in an arm, or no
        variation at all).
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    xt, nt, xc, nc = int(conversions_treatment), int(n_treatment), int(conversions_control), int(n_control)
    if nt < 1 or nc < 1:
        raise InputError("both arms need at least one customer")
    pt, pc = xt / nt, xc / nc
    out: dict[str, Any] = {
        "control_rate": pc, "treatment_rate": pt, "absolute_lift": pt - pc,
        "relative_lift": (pt - pc) / pc if pc > 0 else None, "method": dict(_CONVERSION_METHOD),
    }
    pooled = (xt + xc) / (nt + nc)
    if pooled in (0.0, 1.0):
        # Every customer behaved the same: no variation, nothing to test.
        out.update(absolute_ci=None, relative_ci=None, z=0.0, p_value=1.0,
                   note="every customer in both arms has the same outcome")
        return out
    z, p_value = proportions_ztest([xt, xc], [nt, nc])
    if 0 < pt < 1 or 0 < pc < 1:
        low, high = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff", alpha=alpha)
        out["absolute_ci"] = _interval(low, high)
    else:
        out["absolute_ci"] = None
    if xt > 0 and xc > 0:
        low, high = confint_proportions_2indep(xt, nt, xc, nc, method="log", compare="ratio", alpha=alpha)
        out["relative_ci"] = _interval(low - 1, high - 1)
    else:
        out["relative_ci"] = None
    out.update(z=float(z), p_value=float(p_value))
    return out


def choose_mean_method(*samples: np.ndarray) -> tuple[str, str]:
    """``("welch", why)`` when every sample meets Cochran's rule n > 25 g1^2, else ``("bootstrap", why)``."""
    for values in samples:
        n = len(values)
        if n < 3 or np.ptp(values) == 0:
            continue
        skew = float(stats.skew(values))
        if n <= 25 * skew**2:
            return "bootstrap", (
                f"skewness {skew:.1f} with {n:,} customers in an arm fails Cochran's rule n > 25 g1^2 "
                f"(needs more than {math.ceil(25 * skew**2):,}): the t interval would be unreliable"
            )
    return "welch", "every arm meets Cochran's rule n > 25 g1^2: the mean is close to normal"


def _percentile_p_value(distribution: np.ndarray) -> float:
    below = np.count_nonzero(distribution <= 0)
    above = np.count_nonzero(distribution >= 0)
    return float(min(1.0, 2 * (min(below, above) + 1) / (len(distribution) + 1)))


def mean_lift(values_treatment: Sequence[float], values_control: Sequence[float], *, alpha: float = 0.05,
              method: str = "auto", n_resamples: int = 2000, random_state: int | None = 0) -> dict[str, Any]:
    """Lift of the treatment's mean (e.g. revenue per customer) over the control's.

    Parameters
    ----------
    values_treatment, values_control : array-like
        One value per customer (zero for customers who did not buy).
    method : {"auto", "welch", "bootstrap"}
    n_resamples : int
        Bootstrap resamples.
    random_state : int, optional
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``control_mean``, ``treatment_mean``, ``absolute_lift``, ``absolute_ci``,
        ``relative_lift``, ``relative_ci``, ``p_value``, ``method`` (names of the
        test and intervals) and ``method_reason``.
    """
    if method not in ("auto", "welch", "bootstrap"):
        raise InputError(f"The 'method' parameter of mean_lift must be 'auto', 'welch' or 'bootstrap'. "
                         f"Got {method!r} instead.")
    t = np.asarray(values_treatment, dtype=np.float64)
    c = np.asarray(values_control, dtype=np.float64)
    if len(t) < 2 or len(c) < 2:
        raise InputError("both arms need at least two customers")
    mt, mc = float(t.mean()), float(c.mean())
    reason = f"chosen: {method}"
    if method == "auto":
        method, reason = choose_mean_method(t, c)
    out: dict[str, Any] = {
        "control_mean": mc, "treatment_mean": mt, "absolute_lift": mt - mc,
        "relative_lift": (mt - mc) / mc if mc > 0 else None, "method_reason": reason,
    }
    if np.ptp(np.concatenate([t, c])) == 0:
        out.update(absolute_ci=None, relative_ci=None, p_value=1.0, method={"test": "none"},
                   note="every customer in both arms has the same value")
        return out
    if method == "welch":
        result = stats.ttest_ind(t, c, equal_var=False)
        ci = result.confidence_interval(1 - alpha)
        out.update(
            absolute_ci=_interval(ci.low, ci.high), t=float(result.statistic), df=float(result.df),
            p_value=float(result.pvalue),
            method={"test": "Welch's t-test", "ci": "Welch t interval of the difference of means",
                    "relative_ci": "delta-method interval of the log ratio of means"},
        )
        if mt > 0 and mc > 0:
            # No library offers an interval for a ratio of two independent means; the
            # delta method on the log scale is the standard one.
            se = math.sqrt(t.var(ddof=1) / (len(t) * mt**2) + c.var(ddof=1) / (len(c) * mc**2))
            log_ratio = math.log(mt / mc)
            out["relative_ci"] = _interval(math.exp(log_ratio - _z(alpha) * se) - 1,
                                           math.exp(log_ratio + _z(alpha) * se) - 1)
        else:
            out["relative_ci"] = None
        return out

    def difference(treatment, control, axis=-1):
        return treatment.mean(axis=axis) - control.mean(axis=axis)

    def ratio(treatment, control, axis=-1):
        with np.errstate(divide="ignore", invalid="ignore"):
            return treatment.mean(axis=axis) / control.mean(axis=axis) - 1

    # Keep each batch near 4 million values so large arms do not exhaust memory.
    batch = max(1, min(n_resamples, 4_000_000 // (len(t) + len(c))))
    common = dict(n_resamples=n_resamples, vectorized=True, method="percentile", confidence_level=1 - alpha,
                  batch=batch)
    diff = stats.bootstrap((t, c), difference, rng=np.random.default_rng(random_state), **common)
    out.update(
        absolute_ci=_interval(diff.confidence_interval.low, diff.confidence_interval.high),
        p_value=_percentile_p_value(diff.bootstrap_distribution),
        n_resamples=int(n_resamples),
        method={"test": "percentile bootstrap (p-value by inverting the interval)",
                "ci": "percentile bootstrap interval of the difference of means",
                "relative_ci": "percentile bootstrap interval of the ratio of means"},
    )
    if mc > 0 and c.min() >= 0:
        rel = stats.bootstrap((t, c), ratio, rng=np.random.default_rng(random_state), **common)
        out["relative_ci"] = _interval(rel.confidence_interval.low, rel.confidence_interval.high)
    else:
        out["relative_ci"] = None
    return out


def holm(p_values: Sequence[float | None], *, alpha: float = 0.05) -> list[float | None]:
    """Holm-adjusted p-values (None stays None: segments that could not be tested)."""
    from statsmodels.stats.multitest import multipletests

    present = [i for i, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    if present:
        _, corrected, _, _ = multipletests([p_values[i] for i in present], alpha=alpha, method="holm")
        for i, value in zip(present, corrected):
            adjusted[i] = float(value)
    return adjusted


def srm_check(n_control: int, n_treatment: int, treatment_share: float, *,
              threshold: float = SRM_P_THRESHOLD) -> dict[str, Any]:
    """Sample-ratio mismatch: do the arm counts fit the planned treatment share?"""
    total = n_control + n_treatment
    out: dict[str, Any] = {
        "n_control": int(n_control), "n_treatment": int(n_treatment), "expected_treatment_share": treatment_share,
        "observed_treatment_share": n_treatment / total if total else None, "threshold": threshold,
        "method": "chi-square goodness of fit",
    }
    if total == 0:
        out.update(chi2=None, p_value=None, mismatch=False)
        return out
    expected = [total * (1 - treatment_share), total * treatment_share]
    chi2, p_value = stats.chisquare([n_control, n_treatment], f_exp=expected)
    out.update(chi2=float(chi2), p_value=float(p_value), mismatch=bool(p_value < threshold))
    return out


def _check_power_args(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise InputError(f"power must be in (0, 1), got {power}")


def mde_conversion(baseline_rate: float, n_treatment: int, n_control: int, *, alpha: float = 0.05,
                   power: float = 0.8) -> dict[str, Any]:
    """Smallest increase of a conversion rate the achieved sizes detect with ``power``."""
    from statsmodels.stats.power import NormalIndPower

    _check_power_args(alpha, power)
    if n_treatment < 1 or n_control < 1 or not 0 < baseline_rate < 1:
        return {"absolute": None, "relative": None, "method": "Cohen's h, normal power (statsmodels)"}
    h = NormalIndPower().solve_power(effect_size=None, nobs1=n_treatment, ratio=n_control / n_treatment,
                                     alpha=alpha, power=power)
    angle = math.asin(math.sqrt(baseline_rate)) + float(h) / 2
    target = 1.0 if angle >= math.pi / 2 else math.sin(angle) ** 2
    absolute = target - baseline_rate
    return {"absolute": absolute, "relative": absolute / baseline_rate, "cohens_h": float(h),
            "method": "Cohen's h, normal power (statsmodels)"}


def mde_mean(baseline_mean: float, sd: float, n_treatment: int, n_control: int, *, alpha: float = 0.05,
             power: float = 0.8) -> dict[str, Any]:
    """Smallest increase of a mean the achieved sizes detect with ``power``."""
    from statsmodels.stats.power import TTestIndPower

    _check_power_args(alpha, power)
    if n_treatment < 2 or n_control < 2 or not sd > 0:
        return {"absolute": None, "relative": None, "method": "Cohen's d, t power (statsmodels)"}
    d = TTestIndPower().solve_power(effect_size=None, nobs1=n_treatment, ratio=n_control / n_treatment,
                                    alpha=alpha, power=power)
    absolute = float(d) * sd
    return {"absolute": absolute, "relative": absolute / baseline_mean if baseline_mean > 0 else None,
            "cohens_d": float(d), "method": "Cohen's d, t power (statsmodels)"}


def _split_sizes(nobs_treatment: float, treatment_share: float) -> dict[str, int]:
    n_treatment = math.ceil(nobs_treatment - 1e-9)
    n_control = math.ceil(nobs_treatment * (1 - treatment_share) / treatment_share - 1e-9)
    return {"n_treatment": n_treatment, "n_control": n_control, "n_total": n_treatment + n_control}


def _planned_effect(baseline: float, absolute_mde: float | None, relative_mde: float | None,
                    treatment_share: float, alpha: float, power: float) -> float:
    """The absolute effect to plan for, after checking the planning arguments."""
    _check_power_args(alpha, power)
    if (absolute_mde is None) == (relative_mde is None):
        raise InputError("give exactly one of absolute_mde and relative_mde")
    if not 0 < treatment_share < 1:
        raise InputError(f"the treatment share must be in (0, 1), got {treatment_share}")
    return absolute_mde if absolute_mde is not None else baseline * relative_mde


def plan_conversion(baseline_rate: float, *, absolute_mde: float | None = None, relative_mde: float | None = None,
                    treatment_share: float = 0.5, alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """Customers needed to detect a conversion-rate increase (absolute or relative)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    if not 0 < baseline_rate < 1:
        raise InputError(f"the baseline rate must be in (0, 1), got {baseline_rate}")
    absolute = _planned_effect(baseline_rate, absolute_mde, relative_mde, treatment_share, alpha, power)
    target = baseline_rate + absolute
    if not 0 < target < 1 or absolute == 0:
        raise InputError(f"the target rate {target:g} (baseline plus effect) must be in (0, 1) and differ "
                         "from the baseline")
    h = abs(float(proportion_effectsize(target, baseline_rate)))
    nobs = NormalIndPower().solve_power(effect_size=h, nobs1=None, ratio=(1 - treatment_share) / treatment_share,
                                        alpha=alpha, power=power)
    return {
        "metric": "conversion rate", "baseline": baseline_rate, "target": target, "absolute_mde": absolute,
        "relative_mde": absolute / baseline_rate, "cohens_h": h, "alpha": alpha, "power": power,
        "treatment_share": treatment_share, **_split_sizes(float(nobs), treatment_share),
        "method": "Cohen's h, normal power (statsmodels NormalIndPower)",
    }


def plan_mean(baseline_mean: float, sd: float, *, absolute_mde: float | None = None,
              relative_mde: float | None = None, treatment_share: float = 0.5, alpha: float = 0.05,
              power: float = 0.8) -> dict[str, Any]:
    """Customers needed to detect an increase of a mean such as revenue per customer."""
    from statsmodels.stats.power import TTestIndPower

    if not sd > 0:
        raise InputError(f"the standard deviation must be positive, got {sd}")
    absolute = _planned_effect(baseline_mean, absolute_mde, relative_mde, treatment_share, alpha, power)
    if absolute == 0:
        raise InputError("the effect to detect must not be zero")
    d = abs(absolute) / sd
    nobs = TTestIndPower().solve_power(effect_size=d, nobs1=None, ratio=(1 - treatment_share) / treatment_share,
                                       alpha=alpha, power=power)
    return {
        "metric": "mean per customer", "baseline": baseline_mean, "sd": sd, "target": baseline_mean + absolute,
        "absolute_mde": absolute, "relative_mde": absolute / baseline_mean if baseline_mean else None,
        "cohens_d": d, "alpha": alpha, "power": power, "treatment_share": treatment_share,
        **_split_sizes(float(nobs), treatment_share), "method": "Cohen's d, t power (statsmodels TTestIndPower)",
    }
