"""The returns family: the share of a customer's orders that were returned or cancelled."""

from datetime import date

import pandas as pd
import pytest

from segwise.data import load_transactions
from segwise.features import build_features
from segwise.features.base import FeatureSpec
from segwise.features.returns import RETURN_SHARE_COLUMN
from segwise.features.selection import GATED_FAMILIES, gate_shares
from segwise.features.shrink import SHRUNK_FAMILIES

COLUMNS = ("order_id", "customer_id", "ordered_at", "amount")
ROWS = [
    ("1", "a", "2024-01-01 10:00", 10.0),
    ("1", "a", "2024-01-01 10:00", 5.0),      # a second line: one order
    ("2", "a", "2024-01-06 20:00", 20.0),
    ("3", "a", "2024-02-01 09:00", 30.0),
    ("4", "a", "2024-03-01 09:00", 12.0),
    ("C2", "a", "2024-01-09 10:00", -8.0),    # a cancellation invoice: one returned order
    ("C2", "a", "2024-01-09 10:00", -4.0),    # its second line: still one
    ("5", "b", "2024-02-15 15:00", 8.0),
    ("5", "b", "2024-02-20 15:00", -8.0),     # a return under the order's own id (negative amount)
    ("6", "b", "2024-02-21 15:00", 6.0),
    ("7", "c", "2024-03-10 12:00", 7.0),      # no return
    ("8", "d", "2024-03-11 12:00", 9.0),
    ("C8", "d", "2024-03-12 12:00", -3.0),    # two partial returns of d's one order:
    ("C9", "d", "2024-03-13 12:00", -3.0),    # the share is at most 1
    ("C10", "e", "2024-02-01 12:00", -3.0),   # only a return: not a customer with orders
]
AS_OF = date(2024, 4, 5)


def _log(rows):
    """The rows loaded as a log (timestamps parsed from the text, as a file would be)."""
    return load_transactions(pd.DataFrame(rows, columns=COLUMNS).assign(ordered_at=lambda f: pd.to_datetime(f.ordered_at)))


@pytest.fixture(scope="module")
def features():
    built = build_features(_log(ROWS), as_of=AS_OF)
    assert built.as_of == AS_OF
    return built


def test_share_of_orders_returned_by_invoice_or_by_a_negative_line(features):
    assert features.spec.has_returns and "returns" in features.spec.families
    doc = features.columns[RETURN_SHARE_COLUMN]
    assert (doc.family, doc.unit, doc.higher_is) == ("returns", "share 0-1", "worse")
    share = features.frame[RETURN_SHARE_COLUMN]
    # a: one cancellation invoice (two lines) over four orders; b: one of two orders
    # has a negative line; c: none; d: two return invoices over one order, capped.
    assert share.to_dict() == {"a": pytest.approx(0.25), "b": pytest.approx(0.5), "c": 0.0, "d": 1.0}
    assert features.excluded["customers_with_only_returns"] == 1


def test_a_log_without_returns_has_no_column_and_no_note():
    rows = [r for r in ROWS if r[3] > 0]
    built = build_features(_log(rows), as_of=AS_OF)
    assert not built.spec.has_returns and "returns" not in built.spec.families
    assert RETURN_SHARE_COLUMN not in built.frame.columns
    assert not any("return" in note for note in built.notes)


def test_returns_before_as_of_only_and_the_spec_is_reused_at_assignment(features):
    # The cancellation of b's order after as_of does not count.
    early = build_features(_log(ROWS), as_of=date(2024, 2, 18))
    assert early.frame.loc["b", RETURN_SHARE_COLUMN] == 0.0
    # A model's spec computes the column on a new log even when that log has no return.
    spec = FeatureSpec.from_dict(features.spec.to_dict())
    assigned = build_features(_log([("20", "f", "2024-01-02 10:00", 9.0)]), as_of=AS_OF, spec=spec)
    assert assigned.frame.loc["f", RETURN_SHARE_COLUMN] == 0.0


def test_a_model_stored_before_the_family_existed_has_no_returns():
    stored = FeatureSpec(families=["rfm", "affinity"]).to_dict()
    del stored["has_returns"]
    assert FeatureSpec.from_dict(stored).has_returns is False


def test_the_share_is_a_gate_candidate_and_is_shrunk():
    assert "returns" in GATED_FAMILIES and "returns" in SHRUNK_FAMILIES


def test_gate_lets_a_returners_type_in_and_leaves_uniform_returns_out():
    import numpy as np

    from segwise.features.base import FAMILIES

    rng = np.random.default_rng(3)
    n = 4_000
    orders = rng.integers(2, 12, n)
    returner = rng.random(n) < 0.1
    doc = FAMILIES["returns"].columns(FeatureSpec(families=["returns"], has_returns=True))[0]
    docs = {RETURN_SHARE_COLUMN: doc}
    typed = pd.DataFrame({"n_orders": orders,
                          RETURN_SHARE_COLUMN: rng.binomial(orders, np.where(returner, 0.45, 0.02)) / orders})
    uniform = pd.DataFrame({"n_orders": orders, RETURN_SHARE_COLUMN: rng.binomial(orders, 0.05) / orders})
    assert gate_shares(typed, docs, used=["n_orders"]).kept == [RETURN_SHARE_COLUMN]
    assert gate_shares(uniform, docs, used=["n_orders"]).kept == []
