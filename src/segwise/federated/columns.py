"""The feature columns a federated run agrees on: numeric columns only.

Every aggregate a silo releases (histogram sketches, moment sums, cross-products,
per-centroid sums) is a sum of numbers over its customers, which secure
aggregation masks and differential privacy noises. A categorical column such as
journey's ``first_purchase_category`` is left out of that shared numeric matrix,
with a note, rather than encoded:

- one-hot indicators would first need the levels agreed by every silo, and the
  levels are learned from the data: each silo would send its list of category names
  in the clear. Secure aggregation masks sums of numbers, not sets of names; the
  differential-privacy noise does not cover them either, and a category bought by a
  single customer names that customer's purchase;
- its level codes are not numbers to average: k-means on the codes would measure
  distances between category names' positions in a list.

So a family's categorical columns stay out when the family is chosen (noted in the
run's record and the model's notes), and naming one on its own is an error that says
why. The numeric columns of the same family (the sequence rates, spend shares) take
part as usual.
"""

from __future__ import annotations

from typing import Any

from segwise.errors import InputError
from segwise.features import FeatureSpec
from segwise.features.base import FAMILIES, FeatureColumn

__all__ = ["SUPPORTED_FAMILIES", "DEFAULT_FEATURES", "agreed_columns"]

#: Feature families a federated run can compute: transaction features that every silo
#: computes alike (no levels learned from one silo's data define a numeric column).
#: Their categorical columns are left out of the run (see the module docstring).
SUPPORTED_FAMILIES = ("rfm", "affinity", "journey")

#: The families that define the segments when ``features`` is not given (as `segwise.Segmenter`).
DEFAULT_FEATURES = ("rfm", "affinity")


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def agreed_columns(spec: FeatureSpec, features: Any = None,
                   exclude: Any = None) -> tuple[list[str], dict[str, FeatureColumn], list[str]]:
    """The numeric feature columns a federated run segments on, their documentation, and notes.

    Parameters
    ----------
    spec : FeatureSpec
        What every silo's log supports (categories, discounts ...).
    features : str or list of str, optional
        Families (`SUPPORTED_FAMILIES`) or columns; default `DEFAULT_FEATURES`.
    exclude : str or list of str, optional
        Families or columns to leave out.

    Returns
    -------
    columns : list of str
    docs : dict of str to FeatureColumn
        The documentation of ``columns``.
    notes : list of str
        The categorical columns left out, and why.

    Raises
    ------
    InputError
        An unknown family or column, a categorical column named on its own, or no
        column left.
    """
    docs: dict[str, FeatureColumn] = {}
    for family in SUPPORTED_FAMILIES:
        if FAMILIES[family].applies(spec):
            for col in FAMILIES[family].columns(spec):
                docs[col.name] = col
    numeric = {c: d for c, d in docs.items() if d.kind == "numeric"}
    columns: list[str] = []
    left_out: list[str] = []
    for item in _as_list(features if features is not None else DEFAULT_FEATURES):
        if item in SUPPORTED_FAMILIES:
            columns += [c for c, d in numeric.items() if d.family == item]
            left_out += [c for c, d in docs.items() if d.family == item and c not in numeric]
        elif item in numeric:
            columns.append(item)
        elif item in docs:
            raise InputError(
                f"features: {item!r} is a categorical column; a federated run shares sums of numbers only (its "
                "levels would reveal which categories each silo's customers bought): leave it out"
            )
        else:
            raise InputError(
                f"features: {item!r} is not available in a federated run; families are "
                f"{', '.join(SUPPORTED_FAMILIES)} and columns {', '.join(numeric)}"
            )
    dropped = set()
    for item in _as_list(exclude or []):
        if item in SUPPORTED_FAMILIES:
            dropped |= {c for c, d in docs.items() if d.family == item}
        elif item in docs:
            dropped.add(item)
        else:
            raise InputError(f"exclude: {item!r} is neither a federated feature column nor a family")
    columns = [c for c in dict.fromkeys(columns) if c not in dropped]
    left_out = [c for c in dict.fromkeys(left_out) if c not in dropped]
    if not columns:
        raise InputError("no feature columns are left to segment on: check features / exclude")
    notes = []
    if left_out:
        notes.append(
            f"categorical column(s) {', '.join(left_out)} left out: a federated run shares sums of numbers only, "
            "and a category's levels would reveal which categories each silo's customers bought"
        )
    return columns, {c: docs[c] for c in columns}, notes
