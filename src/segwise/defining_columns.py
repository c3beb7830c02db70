"""Which feature columns define the segments, order them by value, or are named by a method's parameters.

`select_columns` chooses the defining columns (the rules are in `segwise.segmenter`'s
docstring: families by default, ``features`` / ``exclude``, constant and
identifier-like columns left out); `value_column` the column that orders segments.

The methods (`segwise.cluster`) see only a prepared matrix; the Segmenter knows the
feature table and its families. A method's parameters that name features
(k-prototypes' ``categorical``, two-stage's ``first_features``, multi-view's
``views``; declared in its ``column_params``) are given as family names, column
names or patterns (``share_channel_*``); `column_references` finds the columns
they name (which then define the segments) and `resolve_column_params` turns them
into positions in the prepared matrix.
"""

from __future__ import annotations

import fnmatch
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from segwise.errors import InputError
from segwise.features.base import FeatureColumn
from segwise.features.selection import check_sampling, gate_shares
from segwise.features.shrink import IntervalPrior, fit_interval_prior

__all__ = [
    "DEFAULT_FAMILIES", "MIXED_DATA_FAMILIES", "VALUE_COLUMN_HINTS", "categorical_joining", "families_of", "select_columns", "value_column", "column_references",
    "resolve_column_params", "source_columns", "OVERDUE_FAMILY", "OVERDUE_COLUMN", "OVERDUE_SOURCES",
    "asks_for_overdue", "overdue_ratio", "with_overdue_ratio", "overdue_ratio_values",
]

#: The derived family holding the overdue ratio: not computed by any engine's SQL but from
#: the rfm columns already in the feature table. Measured, not adopted as a default
#: (docs/quality.md, seventh pass): it defines the segments only when ``features`` names it.
OVERDUE_FAMILY = "overdue"
OVERDUE_COLUMN = "overdue_ratio"
#: The rfm columns the overdue ratio is computed from.
OVERDUE_SOURCES = ("recency_days", "tenure_days", "n_orders")

OVERDUE_DOC = FeatureColumn(
    OVERDUE_COLUMN, OVERDUE_FAMILY, "ratio",
    "How overdue the next order is, relative to the customer's own rhythm: days since the last order over "
    "the customer's typical days between orders (their own mean interval, pulled toward the population's "
    "when it rests on few orders; one-order customers are measured against the population's). "
    "1 means on time, 3 three times as long as usual.",
    higher_is="worse", log_scale=True,
)

#: Families that define segments by default (see the module docstring).
DEFAULT_FAMILIES = ("rfm", "affinity")

#: Families that say who a customer is: a customer table's columns (``attributes``) and
#: customer attributes repeated on the order lines (``log_attributes``). Their categorical
#: columns join the default definition of a mixed-data method (k-prototypes), whose reason
#: to exist they are. A behaviour family's categorical column (journey's
#: ``first_purchase_category``) joins where its family does: describing by default, defining
#: when the family is chosen with ``features``.
MIXED_DATA_FAMILIES = ("attributes", "log_attributes")

#: Starts of column names (normalised: lower case, letters and digits only) that
#: measure customer value, in order of preference, for ordering segments when there
#: is no ``monetary_total``. English words, never one data set's column; the shorthand
#: of amount (amt, mnt) only after "total", where it cannot be another word's start
#: (``mnths_active``): a customer table's derived total of a group of amount columns
#: (``total_mnt``, ``total_amount``) comes before income or any one amount column.
VALUE_COLUMN_HINTS = (
    "monetarytotal", "totalspend", "totalamount", "totalamt", "totalmnt", "totalrevenue", "totalsales",
    "spend", "spending", "revenue", "clv", "ltv", "value", "monetary", "annualincome", "income",
    "spendingscore", "amount",
)


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def families_of(frame: pd.DataFrame, docs: dict[str, FeatureColumn], *,
                defining: bool = False) -> dict[str, list[str]]:
    """Family name to its columns present in ``frame``.

    With ``defining``, only the columns a named family defines segments by (those with
    `FeatureColumn.defines`; e.g. rfm without ``tenure_days``).
    """
    families: dict[str, list[str]] = {}
    for name, col in docs.items():
        if name in frame.columns and (col.defines or not defining):
            families.setdefault(col.family, []).append(name)
    return families


def select_columns(frame: pd.DataFrame, docs: Mapping[str, FeatureColumn], features: Any = None, exclude: Any = None,
                   method_columns: Sequence[str] = (), with_categorical: bool = False) -> tuple[list[str], list[str]]:
    """The columns that define the segments, and notes on those left out (see `segwise.segmenter`).

    ``features`` / ``exclude`` name columns or families (the Segmenter's parameters);
    ``method_columns`` are those a method's parameters name (`column_references`).
    """
    families = families_of(frame, docs)
    defining = families_of(frame, docs, defining=True)
    columns = list(frame.columns)

    def expand(items: Sequence[str], what: str, members: Mapping[str, list[str]]) -> list[str]:
        out: list[str] = []
        for item in items:
            if item in families:
                out += members.get(item, [])
            elif item in columns:
                out.append(item)
            else:
                known = ", ".join(list(families) + columns)
                raise InputError(f"{what}: {item!r} is neither a feature column nor a family; known: {known}")
        return list(dict.fromkeys(out))

    notes = []
    if features is not None:
        # A named family defines by its defining columns (as in the default definition);
        # a column it leaves out joins when named itself.
        chosen = expand(_as_list(features), "features", defining)
    elif method_columns:
        chosen = list(method_columns)
        described = [c for c in columns if c not in chosen]
        if described:
            notes.append(f"segments are defined by the columns the method's parameters name; "
                         f"{len(described)} other columns describe them")
    elif any(f in families for f in DEFAULT_FAMILIES) and "rfm" in families:
        chosen = [c for f in DEFAULT_FAMILIES for c in defining.get(f, [])]
        # Affinity columns whose customers differ only by sampling (categories or discounts
        # drawn alike for everyone) would split segments by number of orders.
        sampling = check_sampling(frame, docs, chosen)
        chosen = [c for c in chosen if c not in sampling.left_out]
        # Order shares (channel, weekend, part of day, quarter) join when customers
        # differ in them far more than sampling explains (segwise.features.selection).
        gate = gate_shares(frame, docs, chosen)
        chosen += gate.kept
        described = [c for c in columns if c not in chosen]
        joined = f" and {len(gate.kept)} reliable order share(s)" if gate.kept else ""
        named = [f for f in DEFAULT_FAMILIES if any(c in chosen for c in defining.get(f, []))]
        if described:
            notes.append(
                f"segments are defined by the {' and '.join(named)} famil{'ies' if len(named) > 1 else 'y'}{joined}; "
                f"{len(described)} other columns describe them (add them with --features)"
            )
        notes += sampling.notes() + gate.notes()
    else:
        chosen = columns
    if with_categorical and features is None:
        extra, describing = categorical_joining(frame, docs, chosen)
        if extra:
            chosen += extra
            notes.append(f"categorical column(s) {', '.join(extra)} join the definition (mixed-data method)")
        if describing:
            notes.append(f"categorical column(s) {', '.join(describing)} describe the segments: their families "
                         "do not define them (add them with --features)")
    if exclude is not None:
        dropped = set(expand(_as_list(exclude), "exclude", families))
        chosen = [c for c in chosen if c not in dropped]
    usable = []
    n = len(frame)
    for column in chosen:
        series = frame[column]
        n_unique = series.nunique(dropna=True)
        if n_unique <= 1:
            notes.append(f"column {column!r} left out: constant")
            continue
        is_numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if not is_numeric and n >= 20 and n_unique >= 0.9 * series.notna().sum():
            notes.append(f"column {column!r} left out: looks like an identifier (one value per customer)")
            continue
        if is_numeric and n >= 20 and _normalise(column).endswith("id") and n_unique == series.notna().sum():
            notes.append(f"column {column!r} left out: looks like an identifier")
            continue
        usable.append(column)
    if not usable:
        raise InputError(
            "no columns are left to segment on"
            + (f" ({'; '.join(notes)})" if notes else "")
            + ": check --features / --exclude"
        )
    return usable, notes


def categorical_joining(frame: pd.DataFrame, docs: Mapping[str, FeatureColumn],
                        chosen: Sequence[str]) -> tuple[list[str], list[str]]:
    """The categorical columns a mixed-data method's default definition takes, and those it leaves describing.

    A categorical column outside ``chosen`` joins when its family is one of the families
    that define the segments (the families of ``chosen``) or says who the customer is
    (`MIXED_DATA_FAMILIES`; a column without documentation is a user's attribute);
    otherwise it describes the segments like the rest of its family.

    Returns
    -------
    joining, describing : list of str
    """
    defining = {docs[c].family for c in chosen if c in docs} | set(MIXED_DATA_FAMILIES)
    joining, describing = [], []
    for column in frame.columns:
        if column in chosen or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        family = docs[column].family if column in docs else "attributes"
        (joining if family in defining else describing).append(column)
    return joining, describing


def value_column(frame: pd.DataFrame, value_col: str | None = None) -> str | None:
    """The column that orders segments by value: ``value_col``, else the first column named
    like `VALUE_COLUMN_HINTS`, else None (segments are then ordered by size)."""
    if value_col is not None:
        if value_col not in frame.columns:
            raise InputError(f"value_col {value_col!r} is not a feature column")
        return value_col
    numeric = {_normalise(c): c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])}
    for hint in VALUE_COLUMN_HINTS:
        # A hint matches the start of a name: "Annual Income (k$)" is annualincomek.
        for name, column in numeric.items():
            if name.startswith(hint):
                return column
    return None


def _expand(items: Sequence[Any], families: Mapping[str, list[str]], columns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, numbers.Integral):
            continue
        item = str(item)
        if item in families:
            out += families[item]
        elif item in columns:
            out.append(item)
        elif any(ch in item for ch in "*?["):
            out += [c for c in columns if fnmatch.fnmatchcase(c, item)]
    return list(dict.fromkeys(out))


def _as_names(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def column_references(method_cls, method_params: Mapping[str, Any], families: Mapping[str, list[str]],
                      columns: Sequence[str]) -> tuple[dict[str, tuple[str, Any, bool]], list[str], list[str]]:
    """The column parameters of a method, the feature columns they name, and notes.

    Returns ``(specs, referenced, notes)``: ``specs[param] = (kind, value, given)``
    where ``given`` says whether the user set it (else it is the method's default).
    """
    specs: dict[str, tuple[str, Any, bool]] = {}
    defaults = getattr(method_cls, "default_column_params", {})
    for param, kind in method_cls.column_params.items():
        if method_params.get(param) is not None:
            specs[param] = (kind, method_params[param], True)
        elif param in defaults:
            specs[param] = (kind, defaults[param], False)
    referenced: list[str] = []
    notes: list[str] = []
    for param, (kind, value, given) in specs.items():
        groups = value.items() if kind == "groups" else [(param, value)]
        for group, names in groups:
            found = _expand(_as_names(names), families, columns)
            if not found and not all(isinstance(v, numbers.Integral) for v in _as_names(names)):
                if given:
                    raise InputError(
                        f"{param}: {group!r} names no feature column ({', '.join(map(str, _as_names(names)))}); "
                        f"known families: {', '.join(families) or 'none'}; columns: {', '.join(columns)}"
                    )
                notes.append(f"{param} {group!r} left out: the features have none of {', '.join(map(str, _as_names(names)))}")
            referenced += found
    return specs, list(dict.fromkeys(referenced)), notes


def source_columns(prepared_names: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The feature column each prepared column comes from (``region=North`` -> ``region``)."""
    base = []
    for name in prepared_names:
        root = name.split("=")[0]
        if root.endswith("_missing") and root not in columns:
            root = root[: -len("_missing")]
        base.append(root)
    return base


def resolve_column_params(specs: Mapping[str, tuple[str, Any, bool]], prepared_names: Sequence[str],
                          families: Mapping[str, list[str]], columns: Sequence[str]) -> dict[str, Any]:
    """Column parameters as prepared-column positions (integers pass through)."""
    base = source_columns(prepared_names, columns)

    def positions(names: Any) -> list[int]:
        items = _as_names(names)
        wanted = set(_expand(items, families, columns))
        out = [i for i, b in enumerate(base) if b in wanted]
        out += [int(v) for v in items if isinstance(v, numbers.Integral)]
        return sorted(set(out))

    resolved: dict[str, Any] = {}
    for param, (kind, value, given) in specs.items():
        if kind == "groups":
            groups = {}
            for group, names in value.items():
                index = positions(names)
                if index:
                    groups[group] = index
                elif given:
                    raise InputError(f"{param}: {group!r} has no usable prepared column (all dropped in preparation)")
            if not groups:
                raise InputError(f"{param}: none of the groups has a usable feature column")
            resolved[param] = groups
        else:
            index = positions(value)
            if not index and given:
                raise InputError(f"{param}: no usable prepared column for {', '.join(map(str, _as_names(value)))}")
            resolved[param] = index or None
    return resolved


def asks_for_overdue(features: Any, frame: pd.DataFrame | None = None) -> bool:
    """Whether ``features`` (the Segmenter's parameter) names the overdue family or column.

    Without ``features`` the default definition asks for it when `DEFAULT_FAMILIES`
    holds its family (it does not; ``python -m bench.quality --on overdue`` measures it so)
    and ``frame`` has the rfm columns it is computed from (a customer table has not).
    """
    if features is None:
        return (OVERDUE_FAMILY in DEFAULT_FAMILIES and frame is not None
                and all(c in frame.columns for c in OVERDUE_SOURCES))
    return any(name in (OVERDUE_FAMILY, OVERDUE_COLUMN) for name in _as_list(features))


def _overdue_inputs(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    missing = [c for c in OVERDUE_SOURCES if c not in frame.columns]
    if missing:
        raise InputError(f"the overdue ratio needs the rfm columns {', '.join(OVERDUE_SOURCES)}; "
                         f"the feature table has no {', '.join(missing)} (build the rfm family)")
    recency = frame["recency_days"].astype(float)
    tenure = frame["tenure_days"].astype(float)
    orders = pd.Series(_whole_orders(frame["n_orders"].to_numpy(dtype=np.float64)), index=frame.index)
    return recency, tenure, orders


def _whole_orders(orders: np.ndarray) -> np.ndarray:
    orders = np.round(orders)
    if ((orders < 1) & ~np.isnan(orders)).any():
        raise InputError("the overdue ratio needs n_orders >= 1 for every customer")
    return orders


def overdue_ratio(frame: pd.DataFrame, prior: IntervalPrior | None = None) -> tuple[pd.Series, IntervalPrior]:
    """Days since the last order over the customer's own (shrunk) mean interval between orders.

    The customer's mean interval is ``(tenure_days - recency_days) / (n_orders - 1)``,
    shrunk toward the population's by the number of intervals it rests on
    (`segwise.features.shrink.IntervalPrior`) and at least one day; a one-order
    customer has no interval and gets the population's. ``prior`` is fitted on
    ``frame``'s repeat buyers when None (training) and reused as given (new customers).

    Returns
    -------
    ratio : Series
        Indexed like ``frame``; missing where an input is.
    prior : IntervalPrior
    """
    recency, tenure, orders = _overdue_inputs(frame)
    if prior is None:
        span = (tenure - recency).clip(lower=0.0)
        try:
            prior = fit_interval_prior(span.to_numpy(), (orders - 1.0).to_numpy())
        except ValueError as exc:
            raise InputError(f"the overdue ratio cannot be computed: {exc}") from None
    ratio = overdue_ratio_values(recency.to_numpy(), tenure.to_numpy(), orders.to_numpy(), prior)
    return pd.Series(ratio, index=frame.index, name=OVERDUE_COLUMN), prior


def overdue_ratio_values(recency, tenure, orders, prior: IntervalPrior) -> np.ndarray:
    """The overdue ratio (`overdue_ratio`) of arrays of `OVERDUE_SOURCES` values, with a fitted prior.

    ``orders`` are numbers of orders, rounded to whole ones (an InputError below 1); NaN
    in any input gives NaN. Assignment (`segwise.segmenter.Segmenter.numeric_from_inputs`)
    derives the ratio of new customers with this, from the same columns as training.
    """
    recency = np.asarray(recency, dtype=np.float64)
    span = np.asarray(tenure, dtype=np.float64) - recency
    span = np.where(span < 0.0, 0.0, span)  # NaN stays NaN
    interval = prior.shrunk_interval(span, _whole_orders(np.asarray(orders, dtype=np.float64)) - 1.0)
    return recency / np.where(interval < 1.0, 1.0, interval)


def with_overdue_ratio(frame: pd.DataFrame, docs: Mapping[str, FeatureColumn],
                       prior: IntervalPrior | None = None) -> tuple[pd.DataFrame, dict[str, FeatureColumn], IntervalPrior]:
    """``frame`` and ``docs`` with the overdue ratio added (see `overdue_ratio`), and the prior used."""
    ratio, prior = overdue_ratio(frame, prior)
    out = frame.copy()
    out[OVERDUE_COLUMN] = ratio
    docs = dict(docs)
    docs[OVERDUE_COLUMN] = OVERDUE_DOC
    return out, docs, prior
