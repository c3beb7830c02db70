"""Buy-till-you-die models: likelihoods by hand, the published CDNOW estimates, lifetimes parity.

Reference numbers and their sources:

- Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way", Marketing Science
  24(2): BG/NBD on the 2,357-customer CDNOW sample, 39 weeks, in weeks: r=0.243,
  alpha=4.414, a=0.793, b=2.426, log-likelihood -9582.4.
- lifetimes 0.11.3 (``bench/value.py reference``, recorded in
  bench/results/value_reference.json): on the CDNOW master log summarised with
  ``summary_data_from_transaction_data(..., observation_period_end="1998-06-30", freq="D")``,
  ``BetaGeoFitter()`` gives the parameters in `LIFETIMES_MASTER_BGNBD` and
  ``GammaGammaFitter()`` (repeat customers with positive spend) `LIFETIMES_MASTER_GG`.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy import optimize

from segwise.data import load_transactions
from segwise.errors import InputError
from segwise.features import btyd
from segwise.features.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    bgnbd_log_likelihood,
    discounted_clv,
    gamma_gamma_log_likelihood,
    summary_table,
)
from segwise.features.value import fit_value_models, limit_notes, value_options

DATA = Path(__file__).resolve().parents[1] / "data" / "cdnow"
# shared/ sits beside the checkout (in CI too); /work/shared when the checkout is a worktree.
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data/cdnow")

FHL_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
LIFETIMES_MASTER_BGNBD = {"r": 0.26712777455768094, "alpha": 41.90544762266701, "a": 0.4835169148279938,
                          "b": 2.11160810258319}
LIFETIMES_MASTER_GG = {"p": 5.0860441072487905, "q": 3.9951207390118997, "v": 21.25223764487248}


@pytest.fixture(scope="module")
def sample_summary() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_customers_summary.csv")


# ----------------------------------------------------------------------------- likelihoods by hand


def test_bgnbd_log_likelihood_matches_hand_computed_values():
    # x = 0: L = (alpha / (alpha + T))^r = (2 / 8)^0.5 = 1/2.
    assert bgnbd_log_likelihood([0.5, 2.0, 0.7, 1.5], [0], [0], [6]) == pytest.approx([math.log(0.5)], rel=1e-12)
    # r = alpha = a = b = 1, x = 1, t_x = 2, T = 6:
    # A1 = G(2) 1^1 / G(1) = 1; A2 = G(2) G(2) / (G(1) G(3)) = 1/2; A3 = (1 + 6)^-2;
    # A4 = a / (b + x - 1) (1 + 2)^-2 = 1/9; L = 1/2 (1/49 + 1/9) = 29/441.
    expected = 29 / 441
    assert bgnbd_log_likelihood([1, 1, 1, 1], [1], [2], [6]) == pytest.approx([math.log(expected)], rel=1e-12)


def test_gamma_gamma_log_likelihood_matches_hand_computed_values():
    # p=1, q=2, v=1, x=1, m=1: G(3)/(G(1)G(2)) * 1^2 * 1^0 * 1^1 / 2^3 = 1/4.
    # p=1, q=1, v=2, x=2, m=1/2: G(3)/(G(2)G(1)) * 2 * (1/2)^1 * 2^2 / 3^3 = 8/27.
    assert gamma_gamma_log_likelihood([1, 2, 1], [1], [1.0]) == pytest.approx([math.log(1 / 4)], rel=1e-12)
    assert gamma_gamma_log_likelihood([1, 1, 2], [2], [0.5]) == pytest.approx([math.log(8 / 27)], rel=1e-12)


def test_analytic_gradients_match_finite_differences(sample_summary):
    s = sample_summary
    bg = btyd._BGData.build(s["frequency"].to_numpy(float), s["recency"].to_numpy(float), s["T"].to_numpy(float))
    gg = btyd._GGData.build(np.array([1.0, 2, 5]), np.array([10.0, 3.5, 20]), np.ones(3))
    for terms, point in ((lambda p: btyd._bg_terms(p, bg, True), [0.3, 5.0, 0.8, 2.5]),
                         (lambda p: btyd._gg_terms(p, gg, True), [2.0, 3.0, 15.0])):
        def value(p, terms=terms):
            return float(terms(p)[0].sum())

        def grad(p, terms=terms):
            return np.array([g.sum() for g in terms(p)[1]])

        assert optimize.check_grad(value, grad, np.array(point)) < 1e-4 * np.abs(grad(np.array(point))).max()


# ----------------------------------------------------------------------------- the published estimates


def test_bgnbd_reproduces_fader_hardie_lee_on_the_cdnow_sample(sample_summary):
    s = sample_summary
    model = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
    assert model.converged_
    assert {k: round(v, 3) for k, v in model.params_.items()} == FHL_2005
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    # lifetimes 0.11.3 on the same file: customer 1's purchases in the next 39 weeks and P(alive).
    first = s.iloc[:1]
    assert model.expected_purchases(39, first["frequency"], first["recency"], first["T"])[0] == pytest.approx(
        1.22591042, rel=1e-5)
    assert model.p_alive(first["frequency"], first["recency"], first["T"])[0] == pytest.approx(0.72660914, rel=1e-5)
    assert model.expected_purchases_new_customer(39) == pytest.approx(1.19501623, rel=1e-5)


@pytest.mark.skipif(not (SHARED / "CDNOW_sample.txt").exists(), reason="the CDNOW sample log is not available")
def test_the_sample_summary_built_from_the_log_gives_the_published_estimates():
    log = pd.read_csv(SHARED / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer", "date", "cds", "dollars"], dtype=str)
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    log["dollars"] = log["dollars"].astype(float)
    tx = load_transactions(log[["customer", "date", "dollars"]], customer_id_col="customer",
                           timestamp_col="date", amount_col="dollars")
    table = tx.table
    # 39 weeks of calibration: purchases up to 1997-09-30 inclusive.
    s = tx.engine.fetch_df(summary_table(table.filter(~table.is_return), dt.date(1997, 10, 1)))
    assert len(s) == 2357
    model = BetaGeoModel().fit(s["frequency"], s["recency"] / 7, s["T"] / 7)
    assert {k: round(v, 3) for k, v in model.params_.items()} == FHL_2005


# ----------------------------------------------------------------------------- CDNOW master vs lifetimes


@pytest.fixture(scope="module")
def master_summary() -> pd.DataFrame:
    if not (SHARED / "CDNOW_master.txt").exists():
        pytest.skip("the CDNOW master log is not available")
    tx = load_transactions(str(SHARED / "CDNOW_master.txt"))
    table = tx.table
    return tx.engine.fetch_df(summary_table(table.filter(~table.is_return), dt.date(1998, 7, 1)))


def test_master_summary_totals_match_lifetimes(master_summary):
    s = master_summary
    # Totals of lifetimes' summary of the same file (bench/results/value_reference.json).
    assert len(s) == 23_570
    assert int(s["frequency"].sum()) == 44_021
    assert int(s["recency"].sum()) == 3_178_932
    assert int(s["T"].sum()) == 11_834_346
    assert s["monetary_value"].sum() == pytest.approx(414_282.3844, abs=1e-3)


def test_master_parameters_match_lifetimes(master_summary):
    s = master_summary
    bg = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
    for name, value in LIFETIMES_MASTER_BGNBD.items():
        assert bg.params_[name] == pytest.approx(value, rel=1e-3), name
    gg = GammaGammaModel().fit(s["frequency"], s["monetary_value"])
    for name, value in LIFETIMES_MASTER_GG.items():
        assert gg.params_[name] == pytest.approx(value, rel=1e-3), name
    assert gg.n_customers_ == int(((s["frequency"] > 0) & (s["monetary_value"] > 0)).sum())


def test_master_summary_equals_lifetimes_exactly(master_summary):
    utils = pytest.importorskip("lifetimes.utils")
    log = pd.read_csv(SHARED / "CDNOW_master.txt", sep=r"\s+", dtype={"customer_id": str, "date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    ref = utils.summary_data_from_transaction_data(log, "customer_id", "date", monetary_value_col="dollar_value",
                                                   observation_period_end="1998-06-30", freq="D").sort_index()
    ours = master_summary.set_index("customer_id").sort_index()
    assert list(ours.index) == list(ref.index)
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(), ref[column].to_numpy())
    # Sums of cents in another order: equal to the last few bits.
    np.testing.assert_allclose(ours["monetary_value"], ref["monetary_value"], rtol=1e-12, atol=1e-9)


# ----------------------------------------------------------------------------- predictions


def test_predictions_are_sane(sample_summary):
    s = sample_summary
    bg = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
    alive = bg.p_alive(s["frequency"], s["recency"], s["T"])
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(alive[s["frequency"].to_numpy() == 0] == 1)
    e10, e52 = bg.expected_purchases_at([10, 52], s["frequency"], s["recency"], s["T"])
    assert np.all(e10 >= 0) and np.all(e52 > e10)


def _hyp2f1_series(a: float, b: float, c: float, z: float) -> float:
    """2F1 by its power series (|z| < 1): a reference that shares no code with the model."""
    term, total, n = 1.0, 1.0, 0
    while abs(term) > 1e-15 * max(1.0, abs(total)):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        n += 1
    return total


def test_predictions_are_finite_when_the_dropout_mixture_is_u_shaped():
    # A BG/NBD fit of an invoice log whose customers keep buying through the window
    # (segwise run on it, 2,998 customers): a + b < 1, so 2F1's third argument a + b - 1 is
    # negative for one-purchase customers and the function itself is negative for most
    # of them. Its log was NaN, and the value family was left out of the run.
    bg = BetaGeoModel()
    bg.r_, bg.alpha_, bg.a_, bg.b_ = 1.795871082237638, 123.06438634395893, 0.00022866694402863685, 0.04207805035664361
    rng = np.random.default_rng(11)
    n = 500
    x = np.where(rng.random(n) < 0.3, 0.0, rng.integers(1, 25, n).astype(float))
    T = rng.integers(2, 371, n).astype(float)
    tx = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0)
    e90, e365 = bg.expected_purchases_at([90, 365], x, tx, T)
    assert np.all(np.isfinite(e90)) and np.all(np.isfinite(e365)) and np.all(e365 > e90) and np.all(e90 > 0)
    r, alpha, a, b = bg.r_, bg.alpha_, bg.a_, bg.b_
    negative = 0
    for i in range(n):
        hyp = _hyp2f1_series(r + x[i], b + x[i], a + b + x[i] - 1, 365 / (alpha + T[i] + 365))
        negative += hyp < 0
        numerator = (a + b + x[i] - 1) / (a - 1) * (1 - hyp * ((alpha + T[i]) / (alpha + T[i] + 365)) ** (r + x[i]))
        odds = (x[i] > 0) * a / (b + x[i] - 1) * ((alpha + T[i]) / (alpha + tx[i])) ** (r + x[i])
        assert e365[i] == pytest.approx(numerator / (1 + odds), rel=1e-9)
    assert negative > 50  # the case the log could not take is well represented
    new = bg.expected_purchases_new_customer(365)
    reference = (a + b - 1) / (a - 1) * (1 - _hyp2f1_series(r, b, a + b - 1, 365 / (alpha + 365))
                                         * (alpha / (alpha + 365)) ** r)
    assert math.isfinite(new) and new == pytest.approx(reference, rel=1e-9)
    # The CLV sums the same expectations month by month.
    gg = GammaGammaModel()
    gg.p_, gg.q_, gg.v_ = 2.59, 2.04, 35.6
    m = np.where(x > 0, rng.gamma(4, 10, n), 0.0)
    assert np.all(np.isfinite(discounted_clv(bg, gg, x, tx, T, m)))


def test_customers_who_never_drop_out_give_the_no_dropout_limit_not_an_error():
    # An NBD population (gamma-distributed purchase rates, nobody drops out): BG/NBD's a
    # runs to 0, the limit where the model is the NBD. The fit stops on DROPOUT_FLOOR,
    # is kept and says so, where before the family was left out as "degenerate".
    rng = np.random.default_rng(0)
    n = 3_000
    T = rng.integers(30, 730, n).astype(float)
    rate = rng.gamma(0.8, 1 / 20.0, n)
    frequency = rng.poisson(rate * T).astype(float)
    recency = np.minimum(np.round(np.where(frequency > 0, T * rng.beta(frequency + 1, 1.0), 0.0)), T)
    frequency = np.where(recency > 0, frequency, 0.0)
    summary = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                            "monetary_value": np.where(frequency > 0, rng.gamma(4, 10, n), 0.0)})
    record = fit_value_models(summary, value_options())
    diagnostics = record["diagnostics"]["bgnbd"]
    assert diagnostics["at_floor"] == ["a"] and record["bgnbd"]["a"] == pytest.approx(btyd.DROPOUT_FLOOR)
    assert diagnostics["standard_errors"]["a"] is None and diagnostics["standard_errors"]["b"] is None
    # The purchase-rate mixture is the one drawn (r 0.8, alpha 20 days).
    assert record["bgnbd"]["r"] == pytest.approx(0.8, rel=0.1)
    assert record["bgnbd"]["alpha"] == pytest.approx(20.0, rel=0.1)
    assert any("not seen to stop buying" in note for note in limit_notes(record["diagnostics"]))
    # Predictions are the NBD's: a customer without repeat purchases expects r t / (alpha + T).
    bg = BetaGeoModel()
    bg.r_, bg.alpha_, bg.a_, bg.b_ = (record["bgnbd"][k] for k in ("r", "alpha", "a", "b"))
    none = frequency == 0
    expected = bg.expected_purchases(90, frequency[none], recency[none], T[none])
    np.testing.assert_allclose(expected, bg.r_ * 90 / (bg.alpha_ + T[none]), rtol=1e-5)
    assert bg.p_alive(frequency, recency, T).min() > 0.999


def test_predictions_are_finite_when_every_customer_buys_at_one_rate():
    # A fit where purchase rates are alike (r at SHAPE_LIMIT, alpha to match: a log whose
    # customers all buy about five times in two years). scipy's 2F1 and its Euler form are
    # both NaN at a = r + x = 1e5, z ~ 6e-6; the power series gives the value, and the
    # predictions are the Poisson limit's: rate r / alpha, nobody dropping out.
    bg = BetaGeoModel()
    bg.r_, bg.alpha_, bg.a_, bg.b_ = btyd.SHAPE_LIMIT, 14207644.557802858, 9.067961306695431e-06, 10678.54185977941
    x = np.array([0.0, 1, 3, 5, 11])
    T = np.array([30.0, 200, 474, 656, 700])
    tx = np.array([0.0, 150, 385, 589, 690])
    e90, e365 = bg.expected_purchases_at([90, 365], x, tx, T)
    rate = bg.r_ / bg.alpha_
    np.testing.assert_allclose(e90, rate * 90, rtol=1e-3)
    np.testing.assert_allclose(e365, rate * 365, rtol=1e-3)
    a, b, c, z = bg.r_ + 5, bg.b_ + 5, bg.a_ + bg.b_ + 4, 90 / (bg.alpha_ + 656 + 90)
    sign, log_abs = btyd._hyp2f1_power_series(np.array([a]), np.array([b]), np.array([c]), np.array([z]))
    assert sign[0] * math.exp(log_abs[0]) == pytest.approx(_hyp2f1_series(a, b, c, z), rel=1e-12)


def test_clv_discounting_and_margin():
    rng = np.random.default_rng(3)
    n = 400
    x = rng.poisson(2, n).astype(float)
    T = rng.integers(30, 400, n).astype(float)
    rec = np.where(x > 0, np.floor(rng.uniform(0.1, 1, n) * T), 0.0)
    m = np.where(x > 0, rng.gamma(4, 10, n), 0.0)
    bg = BetaGeoModel().fit(x, rec, T)
    gg = GammaGammaModel().fit(x, m)
    undiscounted = discounted_clv(bg, gg, x, rec, T, m, discount_rate=0.0)
    # Without discounting, the CLV is expected purchases in 365 days times expected spend.
    np.testing.assert_allclose(undiscounted, bg.expected_purchases(365, x, rec, T) * gg.expected_spend(x, m))
    discounted = discounted_clv(bg, gg, x, rec, T, m, discount_rate=0.1, margin=0.3)
    assert np.all(discounted < 0.3 * undiscounted) and np.all(discounted > 0.3 * undiscounted / 1.1)
    with pytest.raises(InputError, match="margin"):
        discounted_clv(bg, gg, x, rec, T, m, margin=30)


def test_too_few_repeat_customers_is_an_input_error():
    with pytest.raises(InputError, match="repeat purchase"):
        BetaGeoModel().fit([0, 0, 1], [0, 0, 3], [5, 6, 7])
    with pytest.raises(InputError, match="larger than the customer's age"):
        bgnbd_log_likelihood([1, 1, 1, 1], [1], [9], [6])


# ----------------------------------------------------------------------------- summary vs plain Python


@st.composite
def purchase_logs(draw) -> pd.DataFrame:
    """1-15 purchases of 1-4 customers, several a day possible, some of amount 0."""
    rows = []
    for _ in range(draw(st.integers(1, 15))):
        customer = draw(st.sampled_from(["C1", "C2", "C3", "C4"]))
        day = draw(st.dates(dt.date(2024, 1, 1), dt.date(2024, 3, 31)))
        ts = dt.datetime.combine(day, dt.time(draw(st.integers(0, 23))))
        rows.append((customer, ts, draw(st.integers(0, 10_000)) / 100))
    return pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])


def plain_summary(log: pd.DataFrame, as_of: dt.date) -> dict[str, tuple[float, float, float, float]]:
    days: dict[str, dict[dt.date, float]] = {}
    for customer, ts, amount in log.itertuples(index=False):
        if ts.date() < as_of:
            days.setdefault(customer, {})
            days[customer][ts.date()] = days[customer].get(ts.date(), 0.0) + amount
    out = {}
    for customer, spend in days.items():
        ordered = sorted(spend)
        repeat = [spend[d] for d in ordered[1:]]
        out[customer] = (
            float(len(ordered) - 1), float((ordered[-1] - ordered[0]).days),
            float((as_of - ordered[0]).days - 1), sum(repeat) / len(repeat) if repeat else 0.0,
        )
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=purchase_logs(), as_of=st.dates(dt.date(2024, 1, 2), dt.date(2024, 4, 2)))
def test_summary_equals_a_plain_computation(log, as_of):
    tx = load_transactions(log)
    table = tx.table
    got = tx.engine.fetch_df(summary_table(table.filter(~table.is_return), as_of))
    expected = plain_summary(log, as_of)
    assert set(got["customer_id"]) == set(expected)
    for row in got.itertuples(index=False):
        assert (row.frequency, row.recency, row.T) == expected[row.customer_id][:3]
        assert row.monetary_value == pytest.approx(expected[row.customer_id][3], abs=1e-9)
