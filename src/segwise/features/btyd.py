"""Buy-till-you-die models: the customer summary, BG/NBD purchases and Gamma-Gamma spend.

The summary of the literature (Fader, Hardie and Lee 2005) describes each customer
observed up to the day before ``as_of`` by

* ``frequency``: repeat purchase days (distinct days with a purchase, minus one),
* ``recency``: days from the first to the last purchase day (0 without repeats),
* ``T``: days from the first purchase day to the last observed day (``as_of`` - 1),
* ``monetary_value``: mean spend per repeat purchase day (0 without repeats).

`BetaGeoModel` fits the BG/NBD model of purchase counts (purchases at a Gamma-mixed
Poisson rate, a Beta-mixed chance of dropping out after each purchase) and
`GammaGammaModel` the Gamma-Gamma model of spend per purchase, both by maximum
likelihood with scipy (L-BFGS-B on log-parameters with analytic gradients, then a
Newton polish onto the gradient's root). The likelihoods are written out here rather
than taken from ``lifetimes`` (unmaintained, needs autograd, fits take minutes at a
million customers) or PyMC-Marketing (a
probabilistic-programming stack for a four-parameter maximum-likelihood fit); see
docs/value.md for the measurements behind that choice.

Speed: the log-likelihood terms that depend on one customer quantity only (gamma
functions of ``frequency``, logarithms of ``T`` and ``recency``) are computed once per
distinct value and gathered, so an evaluation at a million customers costs a few
array passes.

scipy is imported inside the functions that evaluate or fit a model, not at the top:
importing `segwise.features` (every command that builds features, and the family
registry) then costs no scipy import (~0.3 s) unless the value family actually fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pandas as pd

from segwise.errors import InputError

__all__ = [
    "summary_table",
    "bgnbd_log_likelihood",
    "gamma_gamma_log_likelihood",
    "BetaGeoModel",
    "GammaGammaModel",
    "discounted_clv",
    "DEFAULT_MARGIN",
    "DEFAULT_DISCOUNT_RATE",
    "MIN_REPEAT_CUSTOMERS",
]

#: Share of revenue that is profit. 1.0 makes the CLV a revenue value: segwise cannot
#: know a business's margin, so it does not invent one (set ``--margin 0.3`` for profit).
DEFAULT_MARGIN = 1.0
#: Yearly discount rate for future purchases (a common cost of capital); applied monthly.
DEFAULT_DISCOUNT_RATE = 0.10
#: Fewer customers with a repeat purchase than this and the models are not fitted:
#: the dropout and spend distributions would rest on a handful of people.
MIN_REPEAT_CUSTOMERS = 20

_MONTHS = 12
#: Customers in the subsample whose fit gives the starting point of a large fit.
_WARM_START_CUSTOMERS = 50_000
#: Upper bound of the shape parameters (r, a, b; p, q) during the fit. A shape that
#: grows without limit is a mixing distribution losing its spread (every customer
#: alike in that respect): the likelihood then flattens out towards a finite limit and
#: the optimiser would stop wherever rounding noise leaves it (p anywhere from 1e6 to
#: 3e7 on the same 10M-line data perturbed by 1e-11). At the bound the predictions
#: are close to the limit model's (expected spend within 3e-4 relative of p = 1e7's at
#: 10M lines), and the fit is reproducible: the shape sits exactly on the bound and
#: the other parameters are the well-defined optimum given it.
SHAPE_LIMIT = 1e5
#: Lower bound of the BG/NBD's a during the fit. a -> 0 (with b fixed) puts all of the
#: dropout probability's mass at 0: nobody drops out, and the BG/NBD becomes the NBD
#: model, a well-defined limit whose likelihood no longer depends on a or b. Data where
#: customers keep buying to the end of the history run there (a 2e-7, b 1e5 on an
#: invoice log without churn); predictions at the floor equal the limit's to 1e-9
#: relative there, and a fit on the floor is reported (``at_floor_``) instead of left
#: wherever the flat likelihood stopped the optimiser.
DROPOUT_FLOOR = 1e-6


# --------------------------------------------------------------------------- summary


def summary_table(purchases: ibis.Table, as_of: Any) -> ibis.Table:
    """The buy-till-you-die summary of every customer with a purchase before ``as_of``.

    Parameters
    ----------
    purchases : ibis.Table
        Purchase lines (no returns) with ``customer_id``, ``ts`` and ``amount``; lines
        on or after ``as_of`` are left out here.
    as_of : date
        Observation date (exclusive): the last observed day is ``as_of`` - 1 day, so
        the summary equals lifetimes' ``summary_data_from_transaction_data`` with
        ``observation_period_end`` = ``as_of`` - 1 day and ``freq="D"``.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``frequency``, ``recency``, ``T`` (days, float64) and
        ``monetary_value`` (mean spend of the repeat purchase days; 0 without repeats).
    """
    as_of_date = ibis.literal(as_of).cast("date")
    lines = purchases.filter(purchases.ts < as_of_date.cast("timestamp"))
    days = lines.group_by(["customer_id", lines.ts.date().name("day")]).aggregate(spend=lines.amount.sum())
    per = days.group_by("customer_id").aggregate(
        n_days=days.count(),
        first_day=days.day.min(),
        last_day=days.day.max(),
        total=days.spend.sum(),
        first_spend=days.spend.argmin(days.day),
    )
    frequency = (per.n_days - 1).cast("float64")
    return per.select(
        "customer_id",
        frequency=frequency,
        recency=per.last_day.delta(per.first_day, unit="day").cast("float64"),
        T=(as_of_date.delta(per.first_day, unit="day") - 1).cast("float64"),
        monetary_value=ibis.ifelse(per.n_days > 1, (per.total - per.first_spend) / frequency, 0.0),
    )


# --------------------------------------------------------------------------- helpers


def _arrays(**columns: Any) -> dict[str, np.ndarray]:
    out = {name: np.asarray(values, dtype="float64") for name, values in columns.items()}
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise InputError(f"the summary columns {', '.join(out)} have different lengths: {sorted(lengths)}")
    for name, values in out.items():
        if not np.all(np.isfinite(values)):
            raise InputError(f"the summary column {name!r} has missing or infinite values")
        if np.any(values < 0):
            raise InputError(f"the summary column {name!r} has negative values: check as_of and the date column")
    return out


def _check_summary(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    if np.any(recency > T):
        raise InputError(
            "recency is larger than the customer's age T for "
            f"{int(np.sum(recency > T))} customers: check as_of and the date column"
        )
    if np.any((frequency == 0) & (recency > 0)):
        raise InputError("customers without repeat purchases must have recency 0: check the summary")
    if np.any(frequency != np.round(frequency)):
        raise InputError("frequency counts repeat purchase days and must be a whole number")


def _gather(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and the index of each element into them."""
    distinct, index = np.unique(values, return_inverse=True)
    return distinct, index.reshape(values.shape)


def _group_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the given columns: their values, each element's row index, row counts.

    Customers with the same summary have the same likelihood and predictions, and at
    day resolution many do (every one-time buyer of the same day), so the models
    work on distinct rows with weights.
    """
    frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(columns)})
    grouped = frame.groupby(list(frame.columns), sort=False)
    index = grouped.ngroup().to_numpy()
    first = grouped.head(1)
    levels = [first[c].to_numpy() for c in frame.columns]
    counts = np.bincount(index, minlength=len(first)).astype("float64")
    return levels, index, counts


#: From this argument on, `_log_gamma_ratio` uses Stirling's series (truncation error below 1e-17).
_STIRLING_FROM = 100.0


def _log_gamma_ratio(z, q) -> np.ndarray:
    """log Gamma(z + q) - log Gamma(z) for z > 0, q >= 0, without cancellation at large z.

    The plain difference of two ``gammaln`` of size z log z loses its last digits
    (1e-9 at z = 5e5): near a shape limit that rounding noise is larger than the
    likelihood differences the optimiser compares, so it stopped at a random point.
    Stirling's series written as a difference keeps full precision.
    """
    from scipy import special

    z, q = np.broadcast_arrays(np.asarray(z, dtype="float64"), np.asarray(q, dtype="float64"))
    out = np.empty(z.shape)
    large = z >= _STIRLING_FROM
    small = ~large
    out[small] = special.gammaln(z[small] + q[small]) - special.gammaln(z[small])
    zl, ql = z[large], q[large]
    w = zl + ql
    # (w - 1/2) log w - w - [(z - 1/2) log z - z] = (z - 1/2) log1p(q / z) + q log w - q
    main = (zl - 0.5) * np.log1p(ql / zl) + ql * np.log(w) - ql

    def series(u):
        inv2 = 1.0 / (u * u)
        return (1.0 / 12 - inv2 * (1.0 / 360 - inv2 / 1260)) / u

    out[large] = main + series(w) - series(zl)
    return out


@dataclass
class _BGData:
    """The summary laid out for fast likelihood evaluations (see the module docstring)."""

    x_levels: np.ndarray
    x_index: np.ndarray
    T_levels: np.ndarray
    T_index: np.ndarray
    tx_levels: np.ndarray
    tx_index: np.ndarray
    repeat: np.ndarray
    x: np.ndarray
    weights: np.ndarray

    @classmethod
    def build(cls, frequency, recency, T, weights=None) -> "_BGData":
        if weights is None:
            (frequency, recency, T), _, weights = _group_rows(frequency, recency, T)
        x_levels, x_index = _gather(frequency)
        T_levels, T_index = _gather(T)
        tx_levels, tx_index = _gather(recency)
        w = np.asarray(weights, dtype="float64")
        return cls(x_levels, x_index, T_levels, T_index, tx_levels, tx_index, frequency > 0, frequency, w)

    def subsample(self, n: int, seed: int = 0) -> "_BGData":
        """About ``n`` customers drawn at random (rows kept with their share of the weight)."""
        rng = np.random.default_rng(seed)
        keep_weights = rng.binomial(self.weights.astype("int64"), min(1.0, n / self.weights.sum())).astype("float64")
        keep = keep_weights > 0
        return _BGData(self.x_levels, self.x_index[keep], self.T_levels, self.T_index[keep], self.tx_levels,
                       self.tx_index[keep], self.repeat[keep], self.x[keep], keep_weights[keep])


def _bg_terms(params: np.ndarray, d: _BGData, gradient: bool):
    from scipy import special

    r, alpha, a, b = params
    x = d.x_levels
    # Terms depending on the frequency only: one value per distinct frequency.
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = _log_gamma_ratio(b, x) - _log_gamma_ratio(a + b, x)
    log_a_term = np.log(a) - np.log(b + np.maximum(x, 1) - 1)
    log_T = np.log(alpha + d.T_levels)[d.T_index]
    log_tx = np.log(alpha + d.tx_levels)[d.tx_index]
    rx = (r + x)[d.x_index]
    a3 = -rx * log_T
    # A4 only exists for repeat customers; for the others it is -inf (weight 0 below).
    a4 = np.where(d.repeat, log_a_term[d.x_index] - rx * log_tx, -np.inf)
    # log(e^A3 + e^A4) without overflow.
    both = np.logaddexp(a3, a4)
    ll = (a1 + a2)[d.x_index] + both
    if not gradient:
        return ll, None
    w4 = np.exp(a4 - both)
    w3 = 1.0 - w4
    inv_T = (1.0 / (alpha + d.T_levels))[d.T_index]
    inv_tx = (1.0 / (alpha + d.tx_levels))[d.tx_index]
    dig_rx = special.digamma(r + x)[d.x_index]
    dig_bx = special.digamma(b + x)[d.x_index]
    dig_abx = special.digamma(a + b + x)[d.x_index]
    dig_ab, dig_a_b = special.digamma(a + b), special.digamma(b)
    g_r = dig_rx - special.digamma(r) + np.log(alpha) - w3 * log_T - w4 * log_tx
    g_alpha = r / alpha - rx * (w3 * inv_T + w4 * inv_tx)
    g_a = dig_ab - dig_abx + w4 / a
    g_b = dig_ab + dig_bx - dig_a_b - dig_abx - w4 / (b + np.maximum(d.x, 1) - 1)
    return ll, (g_r, g_alpha, g_a, g_b)


def bgnbd_log_likelihood(params, frequency, recency, T) -> np.ndarray:
    """Log-likelihood of each customer's summary under BG/NBD (Fader, Hardie and Lee 2005, eq. 6).

    Parameters
    ----------
    params : sequence of 4 floats
        ``r``, ``alpha``, ``a``, ``b`` (``alpha`` in the time unit of the summary).
    frequency, recency, T : array-like
        Repeat purchases, time of the last purchase and age, one entry per customer.

    Returns
    -------
    numpy.ndarray
        One log-likelihood per customer.
    """
    s = _arrays(frequency=frequency, recency=recency, T=T)
    _check_summary(s["frequency"], s["recency"], s["T"])
    params = np.asarray(params, dtype="float64")
    if params.shape != (4,) or np.any(params <= 0):
        raise InputError(f"BG/NBD parameters r, alpha, a, b must be four positive numbers; got {params.tolist()}")
    data = _BGData.build(s["frequency"], s["recency"], s["T"], weights=np.ones_like(s["frequency"]))
    return _bg_terms(params, data, gradient=False)[0]


def gamma_gamma_log_likelihood(params, frequency, monetary_value) -> np.ndarray:
    """Log-likelihood of each repeat customer's mean spend under the Gamma-Gamma model.

    The density of the mean ``m`` of ``x`` purchases (Fader, Hardie and Lee 2005b):
    ``Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q * m^(px-1) * x^(px) / (v + m x)^(px+q)``.

    Parameters
    ----------
    params : sequence of 3 floats
        ``p``, ``q``, ``v``.
    frequency, monetary_value : array-like
        Repeat purchases (at least one) and their mean spend (positive).

    Returns
    -------
    numpy.ndarray
        One log-likelihood per customer.
    """
    s = _arrays(frequency=frequency, monetary_value=monetary_value)
    if np.any(s["frequency"] < 1) or np.any(s["monetary_value"] <= 0):
        raise InputError("the Gamma-Gamma likelihood needs customers with a repeat purchase and a positive mean spend")
    params = np.asarray(params, dtype="float64")
    if params.shape != (3,) or np.any(params <= 0):
        raise InputError(f"Gamma-Gamma parameters p, q, v must be three positive numbers; got {params.tolist()}")
    data = _GGData.build(s["frequency"], s["monetary_value"], np.ones_like(s["frequency"]))
    return _gg_terms(params, data, gradient=False)[0]


@dataclass
class _GGData:
    """Repeat customers' spend laid out for fast evaluations: gamma functions per distinct frequency."""

    x_levels: np.ndarray
    x_index: np.ndarray
    x: np.ndarray
    m: np.ndarray
    log_m: np.ndarray
    log_x: np.ndarray
    weights: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, m: np.ndarray, weights: np.ndarray) -> "_GGData":
        x_levels, x_index = _gather(x)
        return cls(x_levels, x_index, x, m, np.log(m), np.log(x), weights)

    def subsample(self, n: int, seed: int = 0) -> "_GGData":
        rng = np.random.default_rng(seed)
        keep = rng.random(len(self.x)) < n / len(self.x)
        return _GGData(self.x_levels, self.x_index[keep], self.x[keep], self.m[keep], self.log_m[keep],
                       self.log_x[keep], self.weights[keep])


def _gg_terms(params: np.ndarray, d: _GGData, gradient: bool):
    from scipy import special

    p, q, v = params
    px_levels = p * d.x_levels
    px = px_levels[d.x_index]
    xm = d.x * d.m
    log_xm_v = np.log(xm + v)
    # (px - 1) log m + px log x - px log(xm + v) written as -px log1p(v / xm) - log m:
    # at a large p (little spend variation within customers) the three terms are each
    # about p and cancel to order 1, and their rounding noise would swamp the
    # likelihood differences the optimiser follows.
    shrink = np.log1p(v / xm)
    ll = (_log_gamma_ratio(px_levels, q)[d.x_index] - special.gammaln(q)
          + q * (np.log(v) - log_xm_v) - d.log_m - px * shrink)
    if not gradient:
        return ll, None
    dig_pxq = special.digamma(px_levels + q)
    g_p = d.x * ((dig_pxq - special.digamma(px_levels))[d.x_index] - shrink)
    g_q = dig_pxq[d.x_index] - special.digamma(q) + np.log(v) - log_xm_v
    g_v = q / v - (px + q) / (d.x * d.m + v)
    return ll, (g_p, g_q, g_v)


# --------------------------------------------------------------------------- fitting


def _maximize(terms, n_params: int, weights: np.ndarray, x0: np.ndarray, tol: float, max_iter: int,
              shapes: tuple[int, ...] = (), coordinates: np.ndarray | None = None,
              floors: dict[int, float] | None = None):
    """Maximise the weighted mean log-likelihood over log-parameters with L-BFGS-B.

    The parameters at positions ``shapes`` are bounded above by `SHAPE_LIMIT`, those
    in ``floors`` (position: lower bound) below.
    ``coordinates`` (a square matrix A, default the identity) has the optimiser work on
    u with log-parameters = A u, so that a ridge of the likelihood can lie along an
    axis; the rows of the shapes and of the floors must be unit rows. The result's ``x``
    and the returned objective are in log-parameters whatever the coordinates.
    """
    from scipy import optimize

    upper = math.log(SHAPE_LIMIT)
    matrix = np.eye(n_params) if coordinates is None else np.asarray(coordinates, dtype="float64")
    lower = {i: math.log(v) for i, v in (floors or {}).items()}
    bounds = [(lower.get(i), upper if i in shapes else None) for i in range(n_params)]
    x0 = np.clip(x0, [lower.get(i, -np.inf) for i in range(n_params)],
                 [upper if i in shapes else np.inf for i in range(n_params)])

    total = float(weights.sum())

    def objective(log_params):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            params = np.exp(log_params)
            ll, grads = terms(params)
            # Plain sums, not np.dot: a BLAS call spins up threads that cost more than the sum.
            value = -float((weights * ll).sum()) / total
            # Chain rule: d/d log(theta) = theta * d/d theta.
            grad = np.array([-float((weights * g).sum()) / total * th for g, th in zip(grads, params)])
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros(n_params)  # step back from a region where the model breaks down
        return value, grad

    def in_coordinates(u):
        value, grad = objective(matrix @ u)
        return value, matrix.T @ grad

    result = optimize.minimize(
        in_coordinates, np.linalg.solve(matrix, x0), jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-8, "maxcor": 20},
    )
    on_bound = _limit_indices(result.x, shapes) + _floor_indices(result.x, floors)
    free = [i for i in range(n_params) if i not in on_bound]
    result.x = matrix @ _polish(in_coordinates, result.x, free, upper, shapes, lower)
    return result, objective


#: Newton steps of `_polish` at most (from L-BFGS-B's stop it needs two to four).
_POLISH_STEPS = 20


def _polish(fun, u: np.ndarray, free: list[int], upper: float, shapes: tuple[int, ...],
            lower: dict[int, float] | None = None) -> np.ndarray:
    """Newton steps on the free coordinates from L-BFGS-B's stop to where the gradient vanishes.

    L-BFGS-B stops when the objective no longer falls by ``ftol``: on a flat optimum that
    point is set by rounding noise in the objective, so inputs that differ in their last
    digit (another engine's summation order) moved the parameters by 1e-6 relative. The
    root of the analytic gradient is determined far more tightly (noise over curvature),
    so each fit is polished onto it. The Hessian is taken once by central differences of
    the gradient; its error only slows convergence, it does not move the root. A step is
    kept while it shrinks the gradient and leaves every shape within its bounds.
    """
    if not free:
        return u
    idx = np.asarray(free)

    def gradient(point):
        return fun(point)[1][idx]

    hess = _gradient_hessian(lambda point: fun(point)[1], u, idx)
    if not np.all(np.isfinite(hess)) or np.any(np.linalg.eigvalsh(hess) <= 0):
        return u  # not at a strict interior optimum: leave L-BFGS-B's answer alone
    best, best_grad = u, gradient(u)
    for _ in range(_POLISH_STEPS):
        candidate = best.copy()
        candidate[idx] -= np.linalg.solve(hess, best_grad)
        if any(candidate[i] > upper for i in shapes) or any(candidate[i] < v for i, v in (lower or {}).items()):
            break
        grad = gradient(candidate)
        if not np.linalg.norm(grad) < np.linalg.norm(best_grad):
            break
        best, best_grad = candidate, grad
    return best


def _limit_indices(log_params: np.ndarray, shapes: tuple[int, ...]) -> list[int]:
    """Positions of the shape parameters that ended on `SHAPE_LIMIT`."""
    upper = math.log(SHAPE_LIMIT)
    return [i for i in shapes if log_params[i] >= upper - 1e-6]


def _floor_indices(log_params: np.ndarray, floors: dict[int, float] | None) -> list[int]:
    """Positions of the parameters that ended on their lower bound (``floors``: position: bound)."""
    return [i for i, v in (floors or {}).items() if log_params[i] <= math.log(v) + 1e-6]


def _at_limit(names: tuple[str, ...], log_params: np.ndarray, shapes: tuple[int, ...]) -> list[str]:
    """The shape parameters that ended on `SHAPE_LIMIT` (the fit is their limit model)."""
    return [names[i] for i in _limit_indices(log_params, shapes)]


def _gradient_hessian(gradient, point: np.ndarray, indices) -> np.ndarray:
    """Symmetrised Hessian over ``indices`` by central differences of ``gradient`` (step 1e-5, relative above 1)."""
    indices = np.asarray(indices)
    hess = np.empty((len(indices), len(indices)))
    for row, i in enumerate(indices):
        step = 1e-5 * max(1.0, abs(point[i]))
        up, down = point.copy(), point.copy()
        up[i] += step
        down[i] -= step
        hess[row] = (gradient(up)[indices] - gradient(down)[indices]) / (2 * step)
    return (hess + hess.T) / 2


def _standard_errors(objective, log_opt: np.ndarray, n: float) -> list[float | None]:
    """Standard errors of the parameters from a finite-difference Hessian of the mean log-likelihood."""
    k = len(log_opt)
    # The objective is a mean; the information matrix is a sum.
    hess = _gradient_hessian(lambda point: objective(point)[1], log_opt, range(k)) * n
    try:
        cov_log = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return [None] * k
    var_log = np.diag(cov_log)
    # Delta method: se(theta) = theta * se(log theta).
    return [float(math.exp(lp) * math.sqrt(vl)) if vl > 0 else None for lp, vl in zip(log_opt, var_log)]


class BetaGeoModel:
    """BG/NBD model of repeat purchases, fitted by maximum likelihood.

    Parameters
    ----------
    tol : float, default 1e-14
        Relative tolerance on the mean log-likelihood for L-BFGS-B.
    max_iter : int, default 2000
        Iteration limit of the optimiser.

    Attributes
    ----------
    r_, alpha_, a_, b_ : float
        Fitted parameters; ``alpha_`` is in the time unit of the data (days for segwise).
    log_likelihood_ : float
        Total log-likelihood at the optimum.
    n_customers_, n_repeat_customers_ : int
    converged_ : bool
    n_iter_ : int
    standard_errors_ : dict
        None for a parameter at its limit (``at_limit_``) or where the information matrix is singular.
    at_limit_ : list of str
        Shape parameters that ended on `SHAPE_LIMIT`: that part of the model is its
        no-spread limit (see `SHAPE_LIMIT`).
    at_floor_ : list of str
        ``["a"]`` when a ended on `DROPOUT_FLOOR`: nobody is seen to drop out, and the
        predictions are the no-dropout (NBD) limit's; b then hardly moves the likelihood.
    """

    param_names = ("r", "alpha", "a", "b")
    _shapes = (0, 2, 3)
    _floors = {2: DROPOUT_FLOOR}

    def __init__(self, tol: float = 1e-14, max_iter: int = 2000):
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, frequency, recency, T, weights=None) -> "BetaGeoModel":
        """Fit to per-customer summaries (see `summary_table`)."""
        s = _arrays(frequency=frequency, recency=recency, T=T)
        _check_summary(s["frequency"], s["recency"], s["T"])
        n_repeat = int(np.sum(s["frequency"] > 0))
        if n_repeat < MIN_REPEAT_CUSTOMERS:
            raise InputError(
                f"only {n_repeat} of {len(s['frequency'])} customers have a repeat purchase; the BG/NBD model "
                f"needs at least {MIN_REPEAT_CUSTOMERS} (use a longer history, or a later as_of or --calibration-end)"
            )
        if float(np.max(s["T"])) <= 0:
            raise InputError("every customer's first purchase is on the last observed day: there is no history to fit")
        # Time is rescaled so that the oldest customer has age 1: the optimiser then
        # works on parameters of similar magnitude whatever the time unit.
        scale = 1.0 / float(np.max(s["T"]))
        data = _BGData.build(s["frequency"], s["recency"] * scale, s["T"] * scale, weights)
        start = np.zeros(4)
        if weights is None and data.weights.sum() > 4 * _WARM_START_CUSTOMERS:
            # A fit on a random subsample lands near the optimum for a fraction of the
            # cost; the full data then need only a few iterations from there.
            sample = data.subsample(_WARM_START_CUSTOMERS)
            start = _maximize(lambda params: _bg_terms(params, sample, gradient=True), 4, sample.weights, start,
                              1e-8, self.max_iter, self._shapes, floors=self._floors)[0].x
        result, objective = _maximize(
            lambda params: _bg_terms(params, data, gradient=True), 4, data.weights, start, self.tol, self.max_iter,
            self._shapes, floors=self._floors,
        )
        self.at_limit_ = _at_limit(self.param_names, result.x, self._shapes)
        self.at_floor_ = [self.param_names[i] for i in _floor_indices(result.x, self._floors)]
        r, alpha, a, b = np.exp(result.x)
        self.r_, self.alpha_, self.a_, self.b_ = float(r), float(alpha / scale), float(a), float(b)
        # The likelihood is a density in time: report it in the data's own unit (days).
        days = _BGData.build(s["frequency"], s["recency"], s["T"], weights)
        self.log_likelihood_ = float((days.weights * _bg_terms(np.array([r, alpha / scale, a, b]), days,
                                                                  gradient=False)[0]).sum())
        self.converged_ = bool(result.success)
        self.n_iter_ = int(result.nit)
        self.n_customers_ = int(len(s["frequency"]))
        self.n_repeat_customers_ = n_repeat
        errors = _standard_errors(objective, result.x, float(data.weights.sum()))
        # On the floor, a's error is undefined and b's meaningless (the likelihood is flat in it).
        unidentified = set(self.at_limit_) | ({"a", "b"} if self.at_floor_ else set())
        errors = [None if name in unidentified else e for name, e in zip(self.param_names, errors)]
        if errors[1] is not None:
            errors[1] /= scale
        self.standard_errors_ = dict(zip(self.param_names, errors))
        self.message_ = str(result.message)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "r_"):
            raise RuntimeError("This BetaGeoModel is not fitted yet: call fit first.")

    @property
    def params_(self) -> dict[str, float]:
        self._check_fitted()
        return {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}

    def _log_dropout_odds(self, x, tx, T):
        """log of (a / (b + x - 1)) ((alpha + T) / (alpha + t_x))^(r + x), for repeat customers."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        return (np.log(a) - np.log(b + np.maximum(x, 1) - 1)
                + (r + x) * (np.log(alpha + T) - np.log(alpha + tx)))

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """Probability that each customer is still active at the end of the observation."""
        self._check_fitted()
        s = _arrays(frequency=frequency, recency=recency, T=T)
        x = s["frequency"]
        with np.errstate(over="ignore"):
            odds = np.exp(self._log_dropout_odds(x, s["recency"], s["T"]))
        return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)

    def expected_purchases(self, t: float, frequency, recency, T) -> np.ndarray:
        """Expected purchases of each customer in the next ``t`` time units (FHL 2005, eq. 10)."""
        return self.expected_purchases_at([t], frequency, recency, T)[0]

    def expected_purchases_at(self, times, frequency, recency, T) -> list[np.ndarray]:
        """`expected_purchases` for several horizons at once (the customer grouping is shared)."""
        self._check_fitted()
        s = _arrays(frequency=frequency, recency=recency, T=T)
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        # Customers with the same summary get the same prediction: compute once per distinct row.
        (x, tx, age), index, _ = _group_rows(s["frequency"], s["recency"], s["T"])
        with np.errstate(over="ignore"):
            denominator = 1.0 + np.where(x > 0, np.exp(self._log_dropout_odds(x, tx, age)), 0.0)
        # The hypergeometric term depends on (frequency, T) only.
        (px, pT), pair_index, _ = _group_rows(x, age)
        out = []
        for t in times:
            if t == 0:
                out.append(np.zeros(len(index)))
                continue
            sign, log_h = _signed_log_hyp2f1(r + px, b + px, a + b + px - 1, t / (alpha + pT + t))
            log_ratio = (r + px) * (np.log(alpha + pT) - np.log(alpha + pT + t))
            numerator = (a + b + px - 1) / (a - 1) * _one_minus_signed_exp(sign, log_h + log_ratio)
            out.append((numerator[pair_index] / denominator)[index])
        return out

    def expected_purchases_new_customer(self, t: float) -> float:
        """Expected purchases in ``t`` time units of a customer who has just made a first purchase."""
        self._check_fitted()
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        sign, log_h = _signed_log_hyp2f1(np.array([r]), np.array([b]), np.array([a + b - 1]),
                                         np.array([t / (alpha + t)]))
        log_term = log_h + r * math.log(alpha / (alpha + t))
        return float((a + b - 1) / (a - 1) * _one_minus_signed_exp(sign, log_term)[0])


def _signed_log_hyp2f1(a, b, c, z) -> tuple[np.ndarray, np.ndarray]:
    """Sign and log of the absolute value of the Gauss hypergeometric 2F1(a, b; c; z), 0 <= z < 1.

    The BG/NBD's third argument is a + b + x - 1, negative for a customer without repeat
    purchases when a + b < 1 (a U-shaped dropout mixture: most customers never drop out,
    a few do at once), and 2F1 is then often negative: a log of the value itself would be
    NaN. Where the series overflows (large a and b with z near 1), Euler's transformation
    2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z) gives the same value;
    its power of 1 - z is positive, so the sign is the second function's.
    """
    from scipy import special

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        value = special.hyp2f1(a, b, c, z)
        sign, log_abs = np.sign(value), np.log(np.abs(value))
        overflow = ~np.isfinite(value)
        if np.any(overflow):
            a, b, c, z = (np.broadcast_to(v, value.shape)[overflow] for v in (a, b, c, z))
            alt = special.hyp2f1(c - a, c - b, c, z)
            alt_sign, alt_log = np.sign(alt), np.log(np.abs(alt)) + (c - a - b) * np.log1p(-z)
            # Very large a and b (a rate mixture at its no-spread limit: r = 1e5) with z
            # near 0 defeat both evaluations (NaN); the power series converges there.
            failed = ~np.isfinite(alt_log)
            if np.any(failed):
                alt_sign[failed], alt_log[failed] = _hyp2f1_power_series(a[failed], b[failed], c[failed], z[failed])
            sign[overflow], log_abs[overflow] = alt_sign, alt_log
        return sign, log_abs


#: Terms of `_hyp2f1_power_series` at most.
_SERIES_TERMS = 100_000


def _hyp2f1_power_series(a, b, c, z) -> tuple[np.ndarray, np.ndarray]:
    """Sign and log|2F1(a, b; c; z)| summed term by term (|z| < 1), scaled to stay finite.

    Terms t_{n+1} = t_n (a + n)(b + n) / ((c + n)(n + 1)) z, summed until they are
    decreasing and below 1e-17 of the sum; NaN where `_SERIES_TERMS` do not get there.
    """
    log_term, term_sign = np.zeros_like(z), np.ones_like(z)
    top, total = np.zeros_like(z), np.ones_like(z)  # the sum is total * exp(top)
    converged = np.zeros(z.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for n in range(_SERIES_TERMS):
            ratio = (a + n) * (b + n) / ((c + n) * (n + 1)) * z
            term_sign = term_sign * np.sign(ratio)
            log_term = log_term + np.log(np.abs(ratio))
            new_top = np.maximum(top, log_term)
            total = total * np.exp(top - new_top) + term_sign * np.exp(log_term - new_top)
            top = new_top
            converged |= (np.abs(ratio) < 1) & (log_term - top - np.log(np.abs(total)) < math.log(1e-17))
            if converged.all():
                break
        log_abs = np.where(converged, top + np.log(np.abs(total)), np.nan)
    return np.sign(total), log_abs


def _one_minus_signed_exp(sign: np.ndarray, log_abs: np.ndarray) -> np.ndarray:
    """1 - sign * exp(log_abs), without cancellation when the term is positive and near 1."""
    with np.errstate(over="ignore"):
        return np.where(sign >= 0, -np.expm1(log_abs), 1.0 + np.exp(log_abs))


#: The Gamma-Gamma fit works on (log p, log q, log pv): customers' mean spends are
#: p / nu with nu ~ Gamma(q, v), so p v (with q) fixes their distribution and the
#: likelihood has a long ridge along log p - log v when spend varies little within a
#: customer. On log v itself the optimiser crawled along that ridge and stopped at a
#: point that 1e-11 noise moved (p 5.19e4 to 5.20e4 at 10M lines); along an axis it
#: reaches the optimum (or the shape limit) in a few steps.
_GG_COORDINATES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])


class GammaGammaModel:
    """Gamma-Gamma model of the mean spend per purchase, fitted by maximum likelihood.

    Fitted on customers with at least one repeat purchase and a positive mean repeat
    spend (the model's support); predictions exist for every customer.

    Parameters
    ----------
    tol : float, default 1e-14
    max_iter : int, default 2000

    Attributes
    ----------
    p_, q_, v_ : float
    log_likelihood_ : float
    n_customers_ : int
        Customers the model was fitted on.
    converged_ : bool
    n_iter_ : int
    standard_errors_ : dict
        None for a parameter at its limit (``at_limit_``) or where the information matrix is singular.
    at_limit_ : list of str
        Shape parameters that ended on `SHAPE_LIMIT`: that part of the model is its
        no-spread limit (see `SHAPE_LIMIT`).
    """

    param_names = ("p", "q", "v")
    _shapes = (0, 1)

    def __init__(self, tol: float = 1e-14, max_iter: int = 2000):
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, frequency, monetary_value, weights=None) -> "GammaGammaModel":
        """Fit to the repeat customers among per-customer summaries."""
        s = _arrays(frequency=frequency, monetary_value=monetary_value)
        keep = (s["frequency"] > 0) & (s["monetary_value"] > 0)
        if int(keep.sum()) < MIN_REPEAT_CUSTOMERS:
            raise InputError(
                f"only {int(keep.sum())} customers have a repeat purchase with positive spend; the Gamma-Gamma model "
                f"needs at least {MIN_REPEAT_CUSTOMERS}"
            )
        x, m = s["frequency"][keep], s["monetary_value"][keep]
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")[keep]
        # Spend is rescaled to a mean of 1 for the optimiser; v carries the currency unit.
        scale = 1.0 / float(np.mean(m))
        data = _GGData.build(x, m * scale, w)
        start = np.zeros(3)
        if weights is None and len(x) > 4 * _WARM_START_CUSTOMERS:
            sample = data.subsample(_WARM_START_CUSTOMERS)
            start = _maximize(lambda params: _gg_terms(params, sample, gradient=True), 3, sample.weights, start,
                              1e-8, self.max_iter, self._shapes, _GG_COORDINATES)[0].x
        result, objective = _maximize(
            lambda params: _gg_terms(params, data, gradient=True), 3, w, start, self.tol, self.max_iter, self._shapes,
            _GG_COORDINATES,
        )
        self.at_limit_ = _at_limit(self.param_names, result.x, self._shapes)
        p, q, v = np.exp(result.x)
        self.p_, self.q_, self.v_ = float(p), float(q), float(v / scale)
        # The likelihood is a density of spend: report it in the currency unit.
        in_currency = _GGData.build(x, m, w)
        self.log_likelihood_ = float((w * _gg_terms(np.array([p, q, v / scale]), in_currency, gradient=False)[0]).sum())
        self.converged_ = bool(result.success)
        self.n_iter_ = int(result.nit)
        self.n_customers_ = int(keep.sum())
        errors = _standard_errors(objective, result.x, float(w.sum()))
        errors = [None if name in self.at_limit_ else e for name, e in zip(self.param_names, errors)]
        if errors[2] is not None:
            errors[2] /= scale
        self.standard_errors_ = dict(zip(self.param_names, errors))
        self.message_ = str(result.message)
        return self

    @property
    def params_(self) -> dict[str, float]:
        if not hasattr(self, "p_"):
            raise RuntimeError("This GammaGammaModel is not fitted yet: call fit first.")
        return {"p": self.p_, "q": self.q_, "v": self.v_}

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """Expected spend per future purchase given each customer's repeat purchases and their mean.

        Customers without repeat purchases get the population mean ``p v / (q - 1)``.
        """
        p, q, v = self.params_.values()
        s = _arrays(frequency=frequency, monetary_value=monetary_value)
        x = s["frequency"]
        m = np.where(x > 0, s["monetary_value"], 0.0)
        return p * (v + x * m) / (p * x + q - 1)


def discounted_clv(
    bgnbd: BetaGeoModel,
    gamma_gamma: GammaGammaModel,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    horizon_days: float = 365.0,
    margin: float = DEFAULT_MARGIN,
    discount_rate: float = DEFAULT_DISCOUNT_RATE,
) -> np.ndarray:
    """Discounted customer lifetime value over ``horizon_days`` (summary in days).

    The horizon is cut into months (365/12 days); the purchases expected in month k
    times the expected spend per purchase times ``margin`` are discounted by
    ``(1 + discount_rate) ** (k / 12)`` (``discount_rate`` is yearly).
    """
    if not 0 < margin <= 1:
        raise InputError(f"the margin must be a share of revenue in (0, 1]; got {margin}")
    if not 0 <= discount_rate < 10:
        raise InputError(f"the discount rate is a yearly rate such as 0.1; got {discount_rate}")
    spend = gamma_gamma.expected_spend(frequency, monetary_value)
    month = 365.0 / _MONTHS
    n_steps = max(1, int(math.ceil(horizon_days / month - 1e-9)))
    times = [min(k * month, horizon_days) for k in range(1, n_steps + 1)]
    cumulative = bgnbd.expected_purchases_at(times, frequency, recency, T)
    total = np.zeros(len(spend))
    previous = np.zeros(len(spend))
    for t, current in zip(times, cumulative):
        total += (current - previous) / (1.0 + discount_rate) ** (t / 365.0)
        previous = current
    return margin * spend * total
