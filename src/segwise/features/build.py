"""Building the customer feature table (one row per customer) at an as_of date."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Sequence

import ibis
import numpy as np
import pandas as pd

from segwise.data import CustomerTable, Transactions
from segwise.errors import InputError
from segwise.features.base import FAMILIES, FeatureColumn, FeatureContext, FeatureSpec
from segwise.features.categories import learn_category_levels
from segwise.features.customers import apply_plan, derive_plan
from segwise.features.plan import FeaturePlan

__all__ = ["FeatureTable", "build_features", "parse_as_of", "learn_spec", "MAX_CHANNEL_LEVELS"]

log = logging.getLogger(__name__)

#: Channels beyond the most frequent ones get no share column of their own.
MAX_CHANNEL_LEVELS = 8


@dataclass
class FeatureTable:
    """The customer feature table.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per customer, indexed by ``customer_id`` (text).
    columns : dict of str to FeatureColumn
        Documentation of every column (family, unit, meaning, kind).
    as_of : date or None
        The observation date (None for a customer table without transactions).
    spec : FeatureSpec
        What is needed to compute the same columns on new data.
    excluded : dict
        Rows and customers left out at this step, by reason.
    """

    frame: pd.DataFrame
    columns: dict[str, FeatureColumn]
    as_of: date | None
    spec: FeatureSpec
    excluded: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: What families fitted (e.g. ``value``: parameters, log-likelihoods, diagnostics).
    models: dict[str, Any] = field(default_factory=dict)

    @property
    def numeric_columns(self) -> list[str]:
        return [c for c, col in self.columns.items() if col.kind == "numeric"]

    @property
    def categorical_columns(self) -> list[str]:
        return [c for c, col in self.columns.items() if col.kind == "categorical"]

    def families(self) -> dict[str, list[str]]:
        """Family name to its columns, in table order."""
        out: dict[str, list[str]] = {}
        for name, col in self.columns.items():
            out.setdefault(col.family, []).append(name)
        return out

    def summary(self) -> dict[str, Any]:
        """Facts recorded with the run."""
        return {
            "as_of": str(self.as_of) if self.as_of else None,
            "customers": int(len(self.frame)),
            "columns": {c: col.to_dict() for c, col in self.columns.items()},
            "excluded": dict(self.excluded),
            "notes": list(self.notes),
            "models": dict(self.models),
        }


def parse_as_of(value: str | date | datetime | None) -> date | None:
    """Turn ``"2024-12-31"``, a date or a datetime into a date (None stays None)."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"as_of {value!r} is not a date: use the form YYYY-MM-DD, e.g. 2024-12-31") from None


def learn_spec(
    transactions: Transactions | None,
    customers: CustomerTable | None,
    families: Sequence[str] | None = None,
) -> FeatureSpec:
    """Decide which families and levels apply to this data."""
    if transactions is None:
        spec = FeatureSpec(families=[], has_transactions=False)
    else:
        spec = FeatureSpec(
            families=[],
            has_category=transactions.has_category,
            has_discount=transactions.has_discount,
            has_time_of_day=transactions.has_time_of_day,
            has_returns=transactions.cleaning.rules.get("cancellation", 0) > 0,
        )
        if transactions.attribute_columns:
            from segwise.features.attributes import detect_log_attributes

            spec.log_attributes = detect_log_attributes(transactions)
        if transactions.has_channel:
            engine = transactions.engine
            rows = engine.execute(
                f"SELECT channel, count(*) AS n FROM {engine.quote(transactions.table_name)} "
                "WHERE channel IS NOT NULL AND NOT is_return GROUP BY 1 ORDER BY n DESC, channel "
                f"LIMIT {MAX_CHANNEL_LEVELS}"
            )
            spec.channel_levels = [r[0] for r in rows]
        if transactions.has_category:
            spec.category_levels = learn_category_levels(transactions)
    if customers is not None:
        spec.attributes = dict(customers.kinds)
    wanted = list(families) if families is not None else list(FAMILIES)
    unknown = [f for f in wanted if f not in FAMILIES and f != "attributes"]
    if unknown:
        raise InputError(
            f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
            f"families are: {', '.join(list(FAMILIES) + ['attributes'])}"
        )
    spec.families = [f for f in wanted if f in FAMILIES and FAMILIES[f].applies(spec)]
    if families is not None:
        skipped = [f for f in wanted if f in FAMILIES and f not in spec.families]
        if skipped:
            log.info("feature families without the columns they need: %s", ", ".join(skipped))
    return spec


def _documented_columns(spec: FeatureSpec) -> dict[str, FeatureColumn]:
    columns: dict[str, FeatureColumn] = {}
    for family in spec.families:
        for col in FAMILIES[family].columns(spec):
            columns[col.name] = col
    for item in derive_plan(spec.attributes):  # totals, shares, age (segwise.features.customers)
        columns[item.name] = item.doc
    for name, kind in spec.attributes.items():
        if kind == "date":
            col_name = f"days_since_{name}"
            columns[col_name] = FeatureColumn(
                col_name, "attributes", "days", f"Days from the customer's {name} to the as_of date."
            )
        else:
            columns[name] = FeatureColumn(
                name, "attributes", "as given" if kind == "numeric" else "category",
                f"Customer attribute {name!r} from the customer table.", kind=kind,
            )
    return columns


def build_features(
    transactions: Transactions | None = None,
    *,
    customers: CustomerTable | None = None,
    as_of: str | date | None = None,
    families: Sequence[str] | None = None,
    spec: FeatureSpec | None = None,
    margin: float | None = None,
    discount_rate: float | None = None,
) -> FeatureTable:
    """Compute the customer feature table at ``as_of``.

    Parameters
    ----------
    transactions : Transactions, optional
        A cleaned log from `segwise.load_transactions`.
    customers : CustomerTable, optional
        Attributes to join in (numeric and categorical; missing values stay
        missing). Alone, without transactions, the attributes are the features.
    as_of : str or date, optional
        Observation date: only rows dated before it count. Default: the day after
        the last transaction. Always recorded in the result.
    families : sequence of str, optional
        Families to compute (default: every family the data supports).
    spec : FeatureSpec, optional
        Compute exactly the columns of a fitted model (assignment of new data).
    margin, discount_rate : float, optional
        Of the ``value`` family's ``clv_365d``: the share of revenue that is profit
        (default 1.0) and the yearly discount rate (default 0.10).

    Returns
    -------
    FeatureTable
    """
    if transactions is None and customers is None:
        raise InputError("nothing to build features from: give a transaction log, a customer table, or both")
    learning = spec is None
    if spec is None:
        spec = learn_spec(transactions, customers, families)
        if "value" in spec.families:
            from segwise.features.value import value_options

            spec.models["value"] = value_options(margin, discount_rate)
    else:
        _check_spec_fits(spec, transactions, customers)
    excluded: dict[str, int] = {}
    notes: list[str] = []
    models: dict[str, Any] = {}
    as_of_date = parse_as_of(as_of)
    if transactions is not None and spec.has_transactions:
        if as_of_date is None:
            as_of_date = transactions.default_as_of()
        frame, excluded = _transaction_features(transactions, spec, as_of_date)
        models, finish_notes = _finish_families(frame, spec, learning)
        notes += finish_notes
    columns = _documented_columns(spec)
    if transactions is not None and spec.has_transactions:
        frame = frame.reindex(columns=["customer_id"] + [c for c in columns if columns[c].family != "attributes"])
        frame = frame.set_index("customer_id")
    else:
        frame = pd.DataFrame(index=customers.frame.index.copy())
    if customers is not None and spec.attributes:
        frame, attr_notes = _join_attributes(frame, customers, spec, as_of_date, has_transactions=spec.has_transactions)
        notes += attr_notes
    frame.index.name = "customer_id"
    frame = frame.sort_index()
    if len(frame) == 0:
        raise InputError(
            f"no customer has a purchase before as_of {as_of_date}: choose a later --as-of "
            "or check the data's dates"
        )
    return FeatureTable(frame=frame, columns=columns, as_of=as_of_date, spec=spec, excluded=excluded, notes=notes,
                        models=models)


def _finish_families(frame: pd.DataFrame, spec: FeatureSpec, learning: bool) -> tuple[dict[str, Any], list[str]]:
    """Run the in-memory step of families that have one (model fits); skip a family that cannot fit."""
    models: dict[str, Any] = {}
    notes: list[str] = []
    for family in list(spec.families):
        finish = FAMILIES[family].finish
        if finish is None:
            continue
        try:
            models[family] = finish(frame, spec, learning)
            notes.extend(models[family].pop("notes", ()))
        except InputError as exc:
            if not learning:
                raise
            # A model that the data cannot support leaves its family out; the rest stands.
            spec.families.remove(family)
            spec.models.pop(family, None)
            message = f"the {family} family is left out: {exc}"
            notes.append(message)
            models[family] = {"skipped": str(exc)}
            log.info(message)
    return models, notes


def _check_spec_fits(spec: FeatureSpec, transactions: Transactions | None, customers: CustomerTable | None) -> None:
    if spec.has_transactions and transactions is None:
        raise InputError("the model was trained on a transaction log: give one (a customer table alone is not enough)")
    if transactions is not None and spec.has_transactions:
        for needed, present, role in (
            (spec.has_category, transactions.has_category, "category"),
            (spec.has_discount, transactions.has_discount, "discount"),
        ):
            if needed and not present:
                raise InputError(
                    f"{transactions.source}: the model uses {role} features but this log has no "
                    f"{role} column; name it with --{role}-col"
                )
        if spec.channel_levels and not transactions.has_channel:
            raise InputError(
                f"{transactions.source}: the model uses channel features but this log has no "
                "channel column; name it with --channel-col"
            )
    if spec.attributes:
        if customers is None:
            raise InputError(
                "the model uses customer attributes "
                f"({', '.join(spec.attributes)}): give the customer table with --customers"
            )
        missing = [c for c in spec.attributes if c not in customers.frame.columns]
        if missing:
            raise InputError(
                f"{customers.source}: the model needs the customer attribute column(s) "
                f"{', '.join(map(repr, missing))}, which this table does not have"
            )


def _transaction_features(tx: Transactions, spec: FeatureSpec, as_of: date) -> tuple[pd.DataFrame, dict[str, int]]:
    engine = tx.engine
    first_date = pd.Timestamp(tx.first_timestamp).date()
    if as_of <= first_date:
        raise InputError(
            f"as_of {as_of} is on or before the first transaction ({first_date}) of {tx.source}: "
            "no customer has a purchase before it; choose a later --as-of"
        )
    table = tx.table
    as_of_ts = ibis.literal(as_of).cast("timestamp")
    q = engine.quote
    n_after = engine.execute(
        f"SELECT count(*) FROM {q(tx.table_name)} WHERE ts >= ?", [datetime(as_of.year, as_of.month, as_of.day)]
    )[0][0]
    lines = table.filter(table.ts < as_of_ts)
    # An order is an order id, or a distinct purchase time when the log has none.
    lines = lines.mutate(
        order_key=lines.order_id.fill_null(lines.ts.cast("string")) if tx.has_order_id else lines.ts.cast("string")
    )
    lines_is_view = engine.name == "duckdb"  # Spark's materialize is already a lazy, persisted view
    if lines_is_view:
        # The lines are only filtered and given an order key: a view, not a copy of the whole log.
        lines_name = engine.unique_name("segwise_lines")
        engine.execute(f"CREATE TEMP VIEW {q(lines_name)} AS {ibis.to_sql(lines, dialect=engine.dialect)}")
    else:
        lines_name = engine.materialize(lines)
    plan = FeaturePlan(engine, release_early=engine.name != "spark")  # see FeaturePlan
    try:
        lines_t = engine.table(lines_name)
        purchases = lines_t.filter(~lines_t.is_return)
        metrics: dict[str, Any] = {"order_ts": purchases.ts.min(), "order_value": purchases.amount.sum()}
        if spec.has_discount:
            metrics["discount"] = purchases.discount.fill_null(False).any()
        if spec.channel_levels:
            metrics["channel"] = purchases.channel.arbitrary()
        if spec.has_category:
            metrics["has_category"] = purchases.category.notnull().any()
        # The orders table feeds several families: a stage of the plan, stored once; a
        # family's own aggregation of the purchase lines by order would be merged into it
        # rather than computed as a second pass over the lines (`FeaturePlan.merge`).
        orders = plan.stage(purchases.group_by(["customer_id", "order_key"]).aggregate(**metrics))
        ctx = FeatureContext(
            lines=lines_t,
            purchases=purchases,
            orders=orders,
            as_of=as_of,
            spec=spec,
            store=plan.stage,
        )
        if "rfm" not in spec.families:
            raise InputError("the rfm family is required whenever features come from transactions")
        # Every family's expression first, then one plan: the aggregations that families
        # share (the orders or lines grouped by customer, the purchase lines by customer,
        # category and order) are merged and computed once (`segwise.features.plan`).
        computed = {family: FAMILIES[family].compute(ctx) for family in ["rfm"] + [
            f for f in spec.families if f != "rfm"]}
        computed = plan.merge(computed)
        # Each family is still one stored query, joined at the end: as one query the
        # families' aggregates and joins all hold memory at once, more than a memory limit
        # below the size of the log allows (DuckDB then fails instead of spilling).
        tables = plan.store_all(computed)
        result = tables.pop("rfm")
        for table in tables.values():
            result = result.left_join(table, "customer_id").drop("customer_id_right")
        # Sorted here, not by the engine: a sort of the whole wide table is the one step
        # DuckDB could not fit under a memory limit smaller than the log. The order (code
        # points, as the engines sort) matters to the model fits of the families' finish.
        # Arrow straight from the engine, sorted in Arrow (the byte order of UTF-8 is the
        # code-point order) and converted to pandas once.
        rows = plan.fetch(result, engine.fetch_arrow).sort_by("customer_id")
        frame = rows.to_pandas()
        del rows
        # The frame has one row per customer with an order (rfm is the base of the
        # joins) and those are a subset of the customers with lines: the rest only
        # returned. With nothing after as_of, the lines are the whole cleaned log,
        # whose customers the loader has counted.
        if n_after == 0:
            n_line_customers = tx.n_customers
        else:
            n_line_customers = engine.execute(f"SELECT count(DISTINCT customer_id) FROM {q(lines_name)}")[0][0]
        n_returns_only = int(n_line_customers) - len(frame)
    finally:
        plan.drop()
        if lines_is_view:
            engine.execute(f"DROP VIEW IF EXISTS {q(lines_name)}")
        else:
            engine.drop(lines_name)
    categorical = {c.name for f in spec.families for c in FAMILIES[f].columns(spec) if c.kind == "categorical"}
    for column in frame.columns:
        if column != "customer_id" and column not in categorical:
            frame[column] = frame[column].astype("float64")
    frame["customer_id"] = frame["customer_id"].astype("object")
    excluded = {"after_as_of": int(n_after), "customers_with_only_returns": int(n_returns_only)}
    return frame, excluded


def _join_attributes(
    frame: pd.DataFrame, customers: CustomerTable, spec: FeatureSpec, as_of: date | None, has_transactions: bool
) -> tuple[pd.DataFrame, list[str]]:
    attrs = customers.frame
    notes = []
    out = {}
    for name, kind in spec.attributes.items():
        values = attrs[name]
        if kind == "date":
            if as_of is None:
                reference = pd.Timestamp(values.max()).normalize() + pd.Timedelta(days=1)
            else:
                reference = pd.Timestamp(as_of)
            out[f"days_since_{name}"] = (reference - pd.to_datetime(values)).dt.days.astype("float64")
        elif kind == "numeric":
            out[name] = values.astype("float64")
        else:
            out[name] = values.astype("object")
    attr_frame = pd.DataFrame(out, index=attrs.index)
    derived = apply_plan(attrs, derive_plan(spec.attributes), as_of)
    attr_frame = attr_frame.join(derived[[c for c in derived.columns if c not in attr_frame.columns]])
    if has_transactions:
        unmatched = int((~attr_frame.index.isin(frame.index)).sum())
        without_attrs = int((~frame.index.isin(attr_frame.index)).sum())
        if unmatched:
            notes.append(f"{unmatched} customers of the customer table have no purchase before as_of")
        if without_attrs:
            notes.append(f"{without_attrs} customers with purchases are not in the customer table (attributes missing)")
        if without_attrs == len(frame):
            raise InputError(
                f"{customers.source}: none of its customer ids match the transaction log's; check "
                "that both files use the same ids (and --customer-id-col for each)"
            )
        frame = frame.join(attr_frame, how="left")
    else:
        frame = attr_frame
    for column in frame.columns:
        # Categorical columns (attributes, and family columns such as first_purchase_category) stay text.
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            continue
        frame[column] = frame[column].astype("float64").replace([np.inf, -np.inf], np.nan)
    return frame, notes
