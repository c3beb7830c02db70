"""The value models give the same decision and parameters on inputs that differ by rounding noise.

At 10M lines (bench/data/10m) DuckDB's parallel sums moved monetary values by ~1e-15
relative between two runs, and the Gamma-Gamma shape p, whose likelihood keeps rising
towards p = infinity there (each customer's spend hardly varies), stopped anywhere
between 1e6 and 3e7: the family was fitted in one run and left out in the next (see
bench/results/issue21-profiling-2026-12-04.md, "value fit at 10M"). The population
below is built to sit on that edge: every customer spends the same amount on each
purchase day, so the Gamma-Gamma maximum is at its no-spread limit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.data import load_transactions
from segwise.errors import InputError
from segwise.features import btyd, build_features
from segwise.features.value import fit_value_models, limit_notes, predict_value, value_options

CUSTOMERS = 20_000


def _population(seed: int = 7, customers: int = CUSTOMERS) -> pd.DataFrame:
    """BG/NBD customers whose spend per purchase day is constant within each customer."""
    rng = np.random.default_rng(seed)
    T = rng.integers(30, 730, customers).astype("float64")
    rate = rng.gamma(0.8, 1 / 20.0, customers)  # purchase days per day
    lifetime = rng.exponential(400.0, customers)
    observed = np.minimum(T, lifetime)
    frequency = rng.poisson(rate * observed).astype("float64")
    recency = np.where(frequency > 0, observed * rng.beta(frequency + 1, 1.0), 0.0)
    recency = np.minimum(np.round(recency), T)
    frequency = np.where(recency > 0, frequency, 0.0)
    # Inverse-gamma mean spend between customers, no variation within, and a spread between
    # customers that grows a little with their purchase days: a finite p would have it shrink
    # (the mean of more purchases varies less), so the maximum is at p = infinity for every
    # seed (exact inverse-gamma spend, c = 0, puts it there for about two seeds in three).
    spend = 50.0 * rng.gamma(3.0, 1.0, customers) ** -(1 + 0.05 * np.log1p(frequency))
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                         "monetary_value": np.where(frequency > 0, spend, 0.0)})


def _perturbed(summary: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The summary with monetary values moved by ~1e-11 relative (more than DuckDB's summation order does)."""
    noise = np.random.default_rng(seed).standard_normal(len(summary))
    return summary.assign(monetary_value=summary["monetary_value"] * (1 + 1e-11 * noise))


def _fit(summary: pd.DataFrame) -> dict | str:
    try:
        return fit_value_models(summary, value_options())
    except InputError as error:
        return str(error)


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return _population()


def test_the_population_sits_at_the_gamma_gamma_no_spread_limit(population):
    record = fit_value_models(population, value_options())
    assert record["diagnostics"]["gamma_gamma"]["at_limit"] == ["p"]
    assert record["gamma_gamma"]["p"] == pytest.approx(btyd.SHAPE_LIMIT)
    assert record["diagnostics"]["gamma_gamma"]["standard_errors"]["p"] is None
    assert record["diagnostics"]["gamma_gamma"]["converged"]
    # At the limit a repeat customer's expected spend is their own mean spend.
    repeat = population[population["frequency"] > 0].head(50)
    gg = btyd.GammaGammaModel()
    gg.p_, gg.q_, gg.v_ = (record["gamma_gamma"][k] for k in ("p", "q", "v"))
    spend = gg.expected_spend(repeat["frequency"], repeat["monetary_value"])
    np.testing.assert_allclose(spend, repeat["monetary_value"], rtol=1e-4)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rounding_noise_changes_neither_the_decision_nor_the_parameters(population, seed):
    reference, perturbed = _fit(population), _fit(_perturbed(population, seed))
    assert isinstance(reference, dict) and isinstance(perturbed, dict), (reference, perturbed)
    for model in ("bgnbd", "gamma_gamma"):
        for name, value in reference[model].items():
            if name != "time_unit":
                assert perturbed[model][name] == pytest.approx(value, rel=1e-6), (model, name)
    columns = predict_value(population, reference), predict_value(population, perturbed)
    np.testing.assert_allclose(columns[1].to_numpy(), columns[0].to_numpy(), rtol=1e-6)


def test_the_fit_is_deterministic(population):
    first, second = fit_value_models(population, value_options()), fit_value_models(population, value_options())
    assert first["bgnbd"] == second["bgnbd"] and first["gamma_gamma"] == second["gamma_gamma"]


def test_a_shape_collapsing_to_zero_is_still_left_out():
    # Spend per purchase that varies wildly within customers and not between them drives q to 0
    # (or below 1): the Gamma-Gamma mean is undefined and the family must be left out.
    rng = np.random.default_rng(3)
    summary = _population(11)
    repeat = summary["frequency"] > 0
    summary.loc[repeat, "monetary_value"] = rng.pareto(0.7, int(repeat.sum())) * 10 + 0.01
    with pytest.raises(InputError, match="q = |degenerate"):
        fit_value_models(summary, value_options())


@pytest.mark.parametrize("z", [0.5, 99.0, 100.0, 100.5, 5e5, 1e9, 1e12])
def test_log_gamma_ratio_is_exact_where_the_plain_difference_cancels(z):
    # log Gamma(z + 1) - log Gamma(z) = log z and log Gamma(z + 2) - log Gamma(z) = log z + log(z + 1).
    got = btyd._log_gamma_ratio(np.array([z, z, z]), np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(got, [0.0, np.log(z), np.log(z) + np.log1p(z)], rtol=1e-12, atol=1e-15)


def _spend_varying_within_customers(seed: int) -> pd.DataFrame:
    """A small population whose Gamma-Gamma optimum is interior (p and q finite) and flat."""
    summary = _population(seed, customers=400)
    factor = np.random.default_rng(seed).gamma(20.0, 1 / 20.0, len(summary))
    return summary.assign(monetary_value=summary["monetary_value"] * factor)


@pytest.mark.parametrize("seed", [0, 4])
def test_an_interior_optimum_is_the_same_whatever_the_summation_order(seed):
    # Spark and PostgreSQL sum each customer's spend in another order than DuckDB: the mean
    # spends differ in their last digit. L-BFGS-B alone stopped where the objective stopped
    # falling, which on this flat optimum moved p and v by 1.5e-6 relative (seed 4) and
    # the CLV by 1e-5; the Newton polish onto the gradient's root keeps them within 1e-10.
    summary = _spend_varying_within_customers(seed)
    reference = fit_value_models(summary, value_options())
    assert reference["diagnostics"]["gamma_gamma"]["at_limit"] == []
    expected = predict_value(summary, reference)
    for k in range(3):
        noise = np.random.default_rng(100 + k).standard_normal(len(summary))
        moved = summary.assign(monetary_value=summary["monetary_value"] * (1 + 1e-15 * noise))
        record = fit_value_models(moved, value_options())
        for model in ("bgnbd", "gamma_gamma"):
            for name, value in reference[model].items():
                if name != "time_unit":
                    assert record[model][name] == pytest.approx(value, rel=1e-10), (model, name)
        got = predict_value(moved, record)
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-10, atol=1e-12)


def test_a_fit_at_the_limit_is_told_in_the_notes(population):
    record = fit_value_models(population, value_options())
    (note,) = limit_notes(record["diagnostics"])
    assert "expected spend is their own mean (Gamma-Gamma p)" in note and "BG/NBD" not in note
    interior = fit_value_models(_spend_varying_within_customers(0), value_options())
    assert limit_notes(interior["diagnostics"]) == []


def test_the_limit_note_reaches_the_feature_table_once_at_training():
    # The demo generator's customers keep their spend per purchase: Gamma-Gamma p ends on its limit.
    orders = segwise.generate_population(1_500, seed=11).orders
    table = build_features(load_transactions(orders))
    assert table.models["value"]["diagnostics"]["gamma_gamma"]["at_limit"] == ["p"]
    assert [n for n in table.notes if "limit" in n] == limit_notes(table.models["value"]["diagnostics"])
    assert "notes" not in table.models["value"] and "notes" not in table.spec.models["value"]
    assigned = build_features(load_transactions(orders), spec=table.spec, as_of=table.as_of)
    assert not [n for n in assigned.notes if "limit" in n]
