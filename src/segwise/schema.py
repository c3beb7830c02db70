"""Column roles: which input column is the customer id, the timestamp, the amount...

Roles are detected from column names (normalised: lower case, letters and digits
only, so ``Customer ID``, ``customer_id`` and ``CustomerID`` are the same name) and
checked against column types. Every role can be given explicitly; an explicit
choice always wins. Detection never guesses between two equally good candidates:
it raises an `InputError` that names both and the flag that settles it.

When no column has a known name, two weaker signals are used, in this order:

- **type**: the only column of a timestamp or date type (a Parquet, DuckDB or
  DataFrame column) is the timestamp, whatever its name (``paid_at``, ``order_ts``);
- **name tokens**: a name split into words (``order_ts`` -> order, ts;
  ``purchaseTime`` -> purchase, time) whose words include a timestamp word, or
  whose last word is an amount word (``line_value``, ``net_paid``), or a text
  column whose last word is a category word (``item_category``).

Each detected role records why (`ColumnRoles.reasons`), so run.json says how the
columns were found.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Mapping

from segwise.errors import InputError

__all__ = [
    "TRANSACTION_ROLES",
    "ColumnRoles",
    "detect_transaction_roles",
    "detect_customer_id_column",
    "normalize_name",
    "name_tokens",
    "suggest_column",
]

#: Roles a transaction log can have, in the order they are detected. The first
#: three are required (amount may instead come from quantity x unit_price).
TRANSACTION_ROLES = (
    "customer_id",
    "timestamp",
    "amount",
    "order_id",
    "quantity",
    "unit_price",
    "category",
    "channel",
    "discount",
)

# Normalised synonyms per role, best first. Position in the list is the priority:
# two columns matching at the same priority are ambiguous.
_SYNONYMS: dict[str, list[str]] = {
    "customer_id": [
        "customerid", "customer", "custid", "customerno", "customernumber",
        "clientid", "client", "userid", "user", "memberid", "accountid",
        "buyerid", "shopperid", "contactid", "householdid",
    ],
    "timestamp": [
        "invoicedate", "orderdate", "orderedat", "orderdatetime", "ordertime",
        "purchasedate", "purchasedat", "purchasetime", "transactiondate",
        "transactiontime", "transactiondatetime", "saledate", "salesdate",
        "date", "datetime", "timestamp", "createdat", "eventtime", "time", "ts", "dt",
    ],
    "amount": [
        "amount", "revenue", "sales", "total", "value", "dollarvalue", "spend",
        "totalamount", "ordervalue", "ordertotal", "linetotal", "totalprice",
        "netamount", "grossamount", "saleamount", "salesamount", "monetary",
        "purchaseamount", "payment", "paymentvalue",
    ],
    "order_id": [
        "invoiceno", "invoice", "invoiceid", "invoicenumber", "orderid", "order",
        "ordernumber", "orderno", "transactionid", "transaction", "txnid",
        "receiptid", "receiptno", "basketid",
    ],
    "quantity": ["quantity", "qty", "count", "units", "nitems", "itemcount", "numitems"],
    "unit_price": ["unitprice", "price", "itemprice", "priceeach", "unitcost", "priceperunit"],
    "category": [
        "category", "productcategory", "categoryname", "department", "productline",
        "productgroup", "maincategory",
    ],
    "channel": ["channel", "saleschannel", "orderchannel", "platform", "medium"],
    "discount": [
        "discount", "discounted", "isdiscount", "discountflag", "promo", "promotion",
        "ispromo", "promoflag", "coupon", "couponused", "usedcoupon", "ondeal",
    ],
}

# Words that mark a role when no whole name matches (see the module docstring).
# Timestamp words may be anywhere in the name; amount words must be its last word.
_TIMESTAMP_TOKENS = {"ts", "timestamp", "time", "datetime", "date", "dt", "at", "on", "when"}
_AMOUNT_LAST_TOKENS = {"amount", "revenue", "sales", "total", "value", "spend", "spent", "paid", "payment"}
# A text column whose last word is one of these is the category (item_category, product_department).
_CATEGORY_LAST_TOKENS = {"category", "department"}
_TEMPORAL_KINDS = {"timestamp", "date"}
_NUMERIC_KINDS = {"integer", "float"}

# Roles whose columns must hold these kinds of values (kinds come from the engine).
_ACCEPTED_KINDS: dict[str, set[str]] = {
    "timestamp": {"timestamp", "date", "string", "integer"},
    "amount": {"integer", "float", "string"},
    "quantity": {"integer", "float", "string"},
    "unit_price": {"integer", "float", "string"},
    "discount": {"boolean", "integer", "float", "string"},
}

_CLI_FLAG = {
    "customer_id": "--customer-id-col",
    "timestamp": "--timestamp-col",
    "amount": "--amount-col",
    "order_id": "--order-id-col",
    "quantity": "--quantity-col",
    "unit_price": "--price-col",
    "category": "--category-col",
    "channel": "--channel-col",
    "discount": "--discount-col",
}

_PY_ARG = {
    "customer_id": "customer_id_col",
    "timestamp": "timestamp_col",
    "amount": "amount_col",
    "order_id": "order_id_col",
    "quantity": "quantity_col",
    "unit_price": "price_col",
    "category": "category_col",
    "channel": "channel_col",
    "discount": "discount_col",
}


def normalize_name(name: str) -> str:
    """Lower-case a column name and keep only letters and digits."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def suggest_column(name: str, columns: list[str]) -> str:
    """A 'did you mean' hint for a column name that does not exist (may be empty)."""
    by_norm = {normalize_name(c): c for c in columns}
    close = difflib.get_close_matches(normalize_name(name), list(by_norm), n=1, cutoff=0.6)
    return f" Did you mean {by_norm[close[0]]!r}?" if close else ""


def fix_hint(role: str) -> str:
    """How to name the column for ``role`` on the command line and in Python."""
    return f"{_CLI_FLAG[role]} NAME (Python: {_PY_ARG[role]}='NAME')"


@dataclass(frozen=True)
class ColumnRoles:
    """Which source column plays which role (None when the log has no such column).

    ``amount`` is None when the amount is computed as ``quantity * unit_price``.
    ``detected`` lists the roles that were auto-detected rather than given;
    ``reasons`` holds ``(role, why)`` pairs saying how each role's column was found.
    """

    customer_id: str
    timestamp: str
    amount: str | None = None
    order_id: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    category: str | None = None
    channel: str | None = None
    discount: str | None = None
    detected: tuple[str, ...] = field(default=())
    reasons: tuple[tuple[str, str], ...] = field(default=())

    def reason(self, role: str) -> str | None:
        """Why ``role``'s column was chosen (None when the role has no column)."""
        return dict(self.reasons).get(role)

    @property
    def amount_expression(self) -> str:
        """Human-readable description of where the amount comes from."""
        if self.amount is not None:
            return self.amount
        if self.unit_price is not None and self.quantity is not None:
            return f"{self.quantity} x {self.unit_price}"
        return str(self.unit_price)

    def to_dict(self) -> dict:
        """The roles as a JSON-friendly dict."""
        out = asdict(self)
        out["detected"] = list(self.detected)
        out["reasons"] = dict(self.reasons)
        return out


def _candidates(role: str, columns: Mapping[str, str], taken: set[str]) -> list[tuple[int, str]]:
    synonyms = _SYNONYMS[role]
    found = []
    for column, kind in columns.items():
        if column in taken:
            continue
        norm = normalize_name(column)
        if norm in synonyms and kind in _ACCEPTED_KINDS.get(role, {kind}):
            found.append((synonyms.index(norm), column))
    return sorted(found)


def name_tokens(name: str) -> list[str]:
    """The words of a column name: ``order_ts`` -> [order, ts]; ``purchaseTime`` -> [purchase, time]."""
    return [t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+", name)]


def _ambiguous(role: str, best: list[str], source: str, why: str = "") -> InputError:
    return InputError(
        f"{source}: columns {', '.join(repr(c) for c in best)} could each be the "
        f"{role.replace('_', ' ')}{why}; segwise will not guess. Name the right one with "
        f"{fix_hint(role)}."
    )


def _pick(role: str, columns: Mapping[str, str], taken: set[str], source: str) -> str | None:
    return _pick_with_reason(role, columns, taken, source)[0]


def _pick_with_reason(role: str, columns: Mapping[str, str], taken: set[str], source: str
                      ) -> tuple[str | None, str | None]:
    found = _candidates(role, columns, taken)
    if found:
        best_priority = found[0][0]
        best = [column for priority, column in found if priority == best_priority]
        if len(best) > 1:
            raise _ambiguous(role, best, source)
        return best[0], f"its name {best[0]!r} is a usual name for the {role.replace('_', ' ')}"
    free = {c: k for c, k in columns.items() if c not in taken}
    if role == "timestamp":
        return _timestamp_by_type_or_tokens(free, source)
    if role == "amount":
        numeric = [c for c, k in free.items() if k in _NUMERIC_KINDS and (name_tokens(c) or [""])[-1]
                   in _AMOUNT_LAST_TOKENS]
        if len(numeric) > 1:
            raise _ambiguous(role, numeric, source, " (their names end in an amount word)")
        if numeric:
            word = name_tokens(numeric[0])[-1]
            return numeric[0], f"numeric column whose name ends in the amount word {word!r}"
    if role == "category":
        # Optional role: two candidates are left undecided (--category-col) rather than refused.
        texts = [c for c, k in free.items() if k == "string" and (name_tokens(c) or [""])[-1] in _CATEGORY_LAST_TOKENS]
        if len(texts) == 1:
            word = name_tokens(texts[0])[-1]
            return texts[0], f"text column whose name ends in the category word {word!r}"
    return None, None


def _timestamp_by_type_or_tokens(free: Mapping[str, str], source: str) -> tuple[str | None, str | None]:
    def with_token(cols):
        return [c for c in cols if _TIMESTAMP_TOKENS.intersection(name_tokens(c))]

    typed = [c for c, k in free.items() if k in _TEMPORAL_KINDS]
    if len(typed) == 1:
        return typed[0], f"the only column of a date/time type ({free[typed[0]]})"
    if typed:
        named = with_token(typed)
        if len(named) == 1:
            return named[0], (f"the only one of the date/time-typed columns {', '.join(map(repr, typed))} "
                              "whose name has a time word")
        raise _ambiguous("timestamp", named or typed, source, " (each has a date/time type)")
    named = with_token([c for c, k in free.items() if k == "string"])
    if len(named) > 1:
        raise _ambiguous("timestamp", named, source, " (each name has a time word)")
    if named:
        word = next(t for t in name_tokens(named[0]) if t in _TIMESTAMP_TOKENS)
        return named[0], f"text column whose name has the time word {word!r}"
    return None, None


def detect_transaction_roles(
    columns: Mapping[str, str],
    overrides: Mapping[str, str | None] | None = None,
    *,
    source: str = "input",
) -> ColumnRoles:
    """Find the role of each column of a transaction log.

    Parameters
    ----------
    columns : mapping of str to str
        Column name to value kind (``"string"``, ``"integer"``, ``"float"``,
        ``"timestamp"``, ``"date"``, ``"boolean"`` or ``"other"``), in file order.
    overrides : mapping, optional
        Role to column name, for roles the caller names explicitly.
    source : str
        Name of the input, used in error messages.

    Returns
    -------
    ColumnRoles

    Raises
    ------
    InputError
        When an override names a missing column, a required role has no column,
        or two columns are equally good candidates for one role.
    """
    overrides = {role: col for role, col in (overrides or {}).items() if col is not None}
    names = list(columns)
    for role, column in overrides.items():
        if role not in TRANSACTION_ROLES:
            raise InputError(f"unknown column role {role!r}; roles are {', '.join(TRANSACTION_ROLES)}")
        if column not in columns:
            raise InputError(
                f"{source}: the {role.replace('_', ' ')} column {column!r} given with "
                f"{_CLI_FLAG[role]} does not exist.{suggest_column(column, names)} "
                f"Columns are: {', '.join(names)}."
            )
    taken = set(overrides.values())
    chosen: dict[str, str | None] = dict(overrides)
    reasons = {role: "given explicitly" for role in overrides}
    detected = []

    def detect(role: str) -> None:
        column, why = _pick_with_reason(role, columns, taken, source)
        chosen[role] = column
        if column is not None:
            taken.add(column)
            detected.append(role)
            reasons[role] = why

    for role in TRANSACTION_ROLES:
        if role in chosen:
            continue
        if role in ("quantity", "unit_price", "amount"):
            continue  # looked for below: an amount by its whole name beats quantity x price
        if role == "timestamp":
            detect(role)
            # A whole-name amount first, so an amount-word fallback cannot take a price column's place.
            found = _candidates("amount", columns, taken)
            if found and "amount" not in chosen:
                detect("amount")
            continue
        detect(role)
    if chosen.get("amount") is None and "amount" not in overrides:
        if not (_candidates("unit_price", columns, taken) and _candidates("quantity", columns, taken)):
            detect("amount")
    if chosen.get("amount") is None:
        for role in ("unit_price", "quantity"):
            if chosen.get(role) is None:
                detect(role)
    missing = [r for r in ("customer_id", "timestamp") if chosen.get(r) is None]
    if chosen.get("amount") is None and chosen.get("unit_price") is None:
        missing.append("amount")
    if missing:
        parts = []
        for role in missing:
            what = {
                "customer_id": "a customer id column (e.g. customer_id, CustomerID, client_id, user_id)",
                "timestamp": "a date/time column (e.g. order_date, InvoiceDate, date, created_at)",
                "amount": "an amount column (e.g. amount, revenue, sales, total, dollar_value) "
                "or Quantity and UnitPrice columns",
            }[role]
            parts.append(f"{what}: name it with {fix_hint(role)}")
        raise InputError(
            f"{source}: could not find {'; '.join(parts)}. Columns are: {', '.join(names)}."
        )
    return ColumnRoles(**{r: chosen.get(r) for r in TRANSACTION_ROLES}, detected=tuple(detected),
                       reasons=tuple((r, reasons[r]) for r in TRANSACTION_ROLES if r in reasons))


def detect_customer_id_column(
    columns: Mapping[str, str], override: str | None = None, *, source: str = "input",
    allow_generic_id: bool = True,
) -> str:
    """Find the customer id column of a customer attribute table.

    Besides the transaction synonyms, a plain ``id`` or ``ID`` column counts here
    (attribute tables such as the mall-customers data use it), and failing that the
    only column whose name ends in the word id (``subscriber_id``, ``PatientID``).
    """
    names = list(columns)
    if override is not None:
        if override not in columns:
            raise InputError(
                f"{source}: the customer id column {override!r} does not exist."
                f"{suggest_column(override, names)} Columns are: {', '.join(names)}."
            )
        return override
    column = _pick("customer_id", columns, set(), source)
    if column is None and allow_generic_id:
        generic = [c for c in names if normalize_name(c) in ("id", "customerkey", "key")]
        if not generic:
            # subscriber_id, PatientID, SubscriberId: a table of one row per customer rarely has
            # a second column of ids, and two are refused below rather than guessed between.
            generic = [c for c in names if (name_tokens(c) or [""])[-1] == "id"]
        if len(generic) == 1:
            column = generic[0]
        elif len(generic) > 1:
            raise InputError(
                f"{source}: columns {', '.join(map(repr, generic))} could each be the "
                f"customer id; name it with {fix_hint('customer_id')}."
            )
    if column is None:
        raise InputError(
            f"{source}: could not find a customer id column (e.g. customer_id, CustomerID, "
            f"ID): name it with {fix_hint('customer_id')}. Columns are: {', '.join(names)}."
        )
    return column
