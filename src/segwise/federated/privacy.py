"""Differential privacy for federated segmentation: Gaussian mechanism, zCDP accounting.

Every statistic a silo releases under ``dp_epsilon`` is a sum over its customers of a
vector whose Euclidean norm is bounded (features clipped to per-feature bounds, one
histogram bin per feature, one segment per customer): the Gaussian mechanism adds
``N(0, sigma^2)`` to every entry with ``sigma = sensitivity / sqrt(2 rho)``, which is
``rho``-zero-concentrated DP (zCDP, Bun & Steinke 2016) for adding or removing one
customer. zCDP composes by adding the ``rho`` of every release; the total converts to
``(epsilon, delta)``-DP by ``epsilon = rho + 2 sqrt(rho ln(1/delta))``.

The budget: the configured ``(epsilon, delta)`` fixes the total ``rho``, split by
`BUDGET_SHARES` over the releases of a run (preparation statistics, transformed
moments, initial candidates, every Lloyd iteration, segment profiles). Each silo keeps
its own `Accountant`, computes its own noise and refuses a release beyond its budget;
a customer is in one silo only, so the run is ``(epsilon, delta)``-DP for every
customer (parallel composition). With every release made, the accounted epsilon
equals the configured one.

Written here rather than taken from a library because the accounting is three
formulas; diffprivlib accounts pure and approximate DP by sequential composition,
which would cost several times the noise over a dozen Lloyd iterations (and its 0.6.6
release does not import with scikit-learn 1.9). The central option is the same
mechanism run by one silo (``--silos 1``). Noise comes from numpy's generator:
floating-point sampling is not hardened against the attacks on the low-order bits of
noisy values (a known limitation of most DP libraries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segwise.errors import InputError, SegwiseError

__all__ = ["BUDGET_SHARES", "DEFAULT_DELTA", "PrivacyPlan", "Accountant", "rho_for_epsilon", "epsilon_for_rho",
           "gaussian_sigma", "PrivacyBudgetExceeded"]

#: Share of the total zCDP budget spent on each kind of release.
BUDGET_SHARES = {"prepare": 0.1, "transformed": 0.1, "candidates": 0.1, "lloyd": 0.6, "profile": 0.1}

#: delta of the (epsilon, delta) guarantee unless given (well below 1 / customers).
DEFAULT_DELTA = 1e-6


class PrivacyBudgetExceeded(SegwiseError, RuntimeError):
    """A release would spend more than the configured budget."""


def rho_for_epsilon(epsilon: float, delta: float) -> float:
    """The zCDP ``rho`` whose ``(epsilon, delta)`` conversion is exactly ``epsilon``."""
    log_term = math.log(1.0 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def epsilon_for_rho(rho: float, delta: float) -> float:
    """``epsilon`` of ``rho``-zCDP at ``delta``: ``rho + 2 sqrt(rho ln(1/delta))``."""
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def gaussian_sigma(sensitivity: float, rho: float) -> float:
    """Noise standard deviation of the Gaussian mechanism for L2 ``sensitivity`` at ``rho``-zCDP."""
    return float(sensitivity) / math.sqrt(2.0 * rho)


@dataclass(frozen=True)
class PrivacyPlan:
    """The configured budget and how it is split over the releases of one run.

    Parameters
    ----------
    epsilon, delta : float
        The ``(epsilon, delta)``-DP guarantee for every customer.
    iterations : int
        Lloyd iterations (always all run: stopping early on noisy centroids would
        leave budget unspent and decide on noise).
    """

    epsilon: float
    delta: float = DEFAULT_DELTA
    iterations: int = 6

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise InputError(f"The 'dp_epsilon' parameter must be a float in the range (0, inf). Got {self.epsilon!r} instead.")
        if not (isinstance(self.delta, (int, float)) and 0 < self.delta < 1):
            raise InputError(f"The 'dp_delta' parameter must be a float in the range (0, 1). Got {self.delta!r} instead.")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise InputError(
                f"The 'dp_iterations' parameter must be an int in the range [1, inf). Got {self.iterations!r} instead."
            )

    @property
    def total_rho(self) -> float:
        return rho_for_epsilon(self.epsilon, self.delta)

    def rho(self, release: str) -> float:
        """The ``rho`` of one release (``"lloyd"`` is one iteration)."""
        share = BUDGET_SHARES[release]
        if release == "lloyd":
            share /= self.iterations
        return self.total_rho * share

    def releases(self) -> list[str]:
        """Every release of a run, in order."""
        return ["prepare", "transformed", "candidates"] + ["lloyd"] * self.iterations + ["profile"]

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "delta": self.delta, "iterations": self.iterations,
                "mechanism": "gaussian", "accounting": "zCDP", "total_rho": self.total_rho,
                "shares": dict(BUDGET_SHARES)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrivacyPlan":
        return cls(epsilon=float(data["epsilon"]), delta=float(data["delta"]), iterations=int(data["iterations"]))


@dataclass
class Accountant:
    """Tracks the releases made under a `PrivacyPlan` and refuses to exceed it."""

    plan: PrivacyPlan
    spent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rho_spent(self) -> float:
        return float(sum(item["rho"] for item in self.spent))

    @property
    def epsilon_spent(self) -> float:
        return epsilon_for_rho(self.rho_spent, self.plan.delta) if self.spent else 0.0

    def charge(self, release: str, sensitivity: float, *, rho: float | None = None) -> float:
        """Record one release and return the noise sigma it must use."""
        rho = self.plan.rho(release) if rho is None else float(rho)
        used = sum(1 for item in self.spent if item["release"] == release)
        allowed = self.plan.releases().count(release)
        if used >= allowed or self.rho_spent + rho > self.plan.total_rho * (1 + 1e-9):
            raise PrivacyBudgetExceeded(
                f"the privacy budget (epsilon {self.plan.epsilon:g}) allows {allowed} {release!r} release(s); "
                "this one would exceed it"
            )
        sigma = gaussian_sigma(sensitivity, rho)
        self.spent.append({"release": release, "rho": rho, "sensitivity": float(sensitivity), "sigma": sigma})
        return sigma

    def summary(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "rho_spent": self.rho_spent, "epsilon_spent": self.epsilon_spent,
                "releases": list(self.spent)}


def add_noise(arrays: dict[str, np.ndarray], sigma: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gaussian noise of standard deviation ``sigma`` on every entry of every array."""
    return {name: np.asarray(a, dtype=np.float64) + rng.normal(0.0, sigma, np.shape(a)) for name, a in arrays.items()}
