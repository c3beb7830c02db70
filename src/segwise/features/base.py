"""The feature-family contract and registry.

A feature family is a function of a `FeatureContext` (the cleaned lines and orders
before ``as_of``, as Ibis tables) returning an Ibis table with one row per customer
and a ``customer_id`` column. Families are written once with Ibis so the same
definition compiles for DuckDB and for Spark. Each family documents every column
it makes: its unit and what it means to a marketer.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Callable

import ibis

__all__ = ["FeatureColumn", "FeatureFamily", "FeatureContext", "FeatureSpec", "FAMILIES", "register_family"]


@dataclass(frozen=True)
class FeatureColumn:
    """Documentation of one feature column.

    ``kind`` is ``"numeric"`` or ``"categorical"``; ``higher_is`` says how a marketer
    reads a high value (``"better"``, ``"worse"`` or ``"neutral"``), used when
    ordering and naming segments. ``log_scale`` marks durations, counts and amounts
    whose differences matter in proportion (7 vs 14 days like 70 vs 140): preparation
    log-transforms them whatever their measured skewness. ``defines`` is False for a
    column that describes segments but stays out of the default definition because
    other columns of its family already determine it (tenure = recency + active span);
    naming it in ``features`` still uses it. ``reliability_from`` names the per-order
    shares (a family, or the column itself) whose reliability says whether the column
    measures the customers or only the sampling of their few orders: a default defining
    column whose shares vary no more than sampling explains leaves the definition
    (`segwise.features.selection.check_sampling`).
    """

    name: str
    family: str
    unit: str
    description: str
    kind: str = "numeric"
    higher_is: str = "neutral"
    log_scale: bool = False
    defines: bool = True
    reliability_from: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class FeatureSpec:
    """Everything needed to compute the same features again on new data.

    It is learned from the training data (e.g. which channels exist) and stored in
    the model file, so assignment computes exactly the columns the model knows.
    """

    families: list[str]
    channel_levels: list[str] = field(default_factory=list)
    #: Product categories with a share column each (``category_mix``); a model stored
    #: before they existed has none.
    category_levels: list[str] = field(default_factory=list)
    has_category: bool = False
    has_discount: bool = False
    has_time_of_day: bool = False
    #: The training log has returns or cancellations (the ``returns`` family applies);
    #: a model stored before the family existed has False.
    has_returns: bool = False
    has_transactions: bool = True
    attributes: dict[str, str] = field(default_factory=dict)
    #: Customer attributes read from the order log: feature name -> source column
    #: (`segwise.features.attributes`).
    log_attributes: dict[str, str] = field(default_factory=dict)
    #: Models fitted at training that some families predict with (e.g. ``value``: the
    #: BG/NBD and Gamma-Gamma parameters), so new customers are scored, not refitted.
    models: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls(**data)


@dataclass
class FeatureContext:
    """What a family computes from.

    Attributes
    ----------
    lines : ibis.Table
        Cleaned lines dated before ``as_of`` (purchases and returns), with an
        ``order_key`` column (order id, or purchase time without order ids).
    purchases : ibis.Table
        The lines that are not returns.
    orders : ibis.Table
        One row per customer and order: ``customer_id``, ``order_ts`` (first line
        time), ``order_value`` (sum of purchase lines), ``discount`` (any line
        discounted, when known), ``channel`` (when known), ``has_category`` (any
        purchase line has a category, when the log has categories).
    as_of : date
    spec : FeatureSpec
    store : callable, optional
        Computes an intermediate table once and returns it as a table to read
        (the build drops it afterwards). A family with several windows or joins over
        line-sized tables stores its stages, so that each runs as its own query
        within the engine's memory limit; without it the stage stays inline.
    """

    lines: ibis.Table
    purchases: ibis.Table
    orders: ibis.Table
    as_of: date
    spec: FeatureSpec
    store: Callable[[ibis.Table], ibis.Table] | None = None

    def stage(self, expr: ibis.Table) -> ibis.Table:
        """``expr`` computed once and stored (see ``store``), or ``expr`` itself without a store."""
        return expr if self.store is None else self.store(expr)

    @property
    def as_of_date(self) -> ibis.Expr:
        return ibis.literal(self.as_of)

    @property
    def as_of_ts(self) -> ibis.Expr:
        return ibis.literal(self.as_of).cast("timestamp")


@dataclass(frozen=True)
class FeatureFamily:
    """A registered family: its name, its compute function and its columns."""

    name: str
    compute: Callable[[FeatureContext], ibis.Table]
    columns: Callable[[FeatureSpec], list[FeatureColumn]]
    applies: Callable[[FeatureSpec], bool]
    description: str
    #: Optional step after the Ibis part is fetched: ``finish(frame, spec, fit)`` adds
    #: columns a model computes in memory (e.g. ``value``) and returns what it fitted;
    #: a ``"notes"`` list in that record goes to the feature table's notes.
    finish: Callable[..., dict[str, Any]] | None = None


FAMILIES: dict[str, FeatureFamily] = {}


def register_family(
    name: str,
    *,
    columns: Callable[[FeatureSpec], list[FeatureColumn]],
    applies: Callable[[FeatureSpec], bool] = lambda spec: spec.has_transactions,
    description: str,
    finish: Callable[..., dict[str, Any]] | None = None,
) -> Callable[[Callable[[FeatureContext], ibis.Table]], Callable[[FeatureContext], ibis.Table]]:
    """Register a feature family (decorator for its compute function)."""

    def decorator(compute):
        FAMILIES[name] = FeatureFamily(name, compute, columns, applies, description, finish)
        return compute

    return decorator


def level_column_name(prefix: str, level: str) -> str:
    """A safe column name for one level of a categorical (e.g. a channel)."""
    slug = re.sub(r"[^0-9a-z]+", "_", level.lower()).strip("_") or "blank"
    return f"{prefix}_{slug}"
