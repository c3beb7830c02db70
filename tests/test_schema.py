import pytest

from segwise.errors import InputError
from segwise.schema import detect_customer_id_column, detect_transaction_roles, normalize_name


def kinds(**columns):
    return dict(columns)


def test_normalize_name_ignores_case_and_punctuation():
    assert normalize_name("Customer ID") == normalize_name("customer_id") == normalize_name("CustomerID") == "customerid"


@pytest.mark.parametrize(
    "columns, expected",
    [
        (kinds(CustomerID="integer", InvoiceDate="string", Quantity="integer", UnitPrice="float", InvoiceNo="string"),
         {"customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": None, "quantity": "Quantity",
          "unit_price": "UnitPrice", "order_id": "InvoiceNo"}),
        (kinds(customer_id="string", date="integer", count="integer", dollar_value="float"),
         {"customer_id": "customer_id", "timestamp": "date", "amount": "dollar_value", "quantity": None}),
        (kinds(user_id="string", created_at="timestamp", revenue="float", channel="string", promo="boolean"),
         {"customer_id": "user_id", "timestamp": "created_at", "amount": "revenue", "channel": "channel",
          "discount": "promo"}),
        (kinds(client_id="integer", order_date="date", total="float", category="string"),
         {"customer_id": "client_id", "timestamp": "order_date", "amount": "total", "category": "category"}),
    ],
)
def test_roles_are_detected_from_common_names(columns, expected):
    roles = detect_transaction_roles(columns)
    for role, column in expected.items():
        assert getattr(roles, role) == column


def test_amount_column_wins_over_quantity_times_price():
    roles = detect_transaction_roles(kinds(customer="string", ts="timestamp", amount="float", qty="integer",
                                           price="float"))
    assert roles.amount == "amount" and roles.unit_price is None and roles.quantity is None


def test_override_wins_and_is_not_detected():
    roles = detect_transaction_roles(kinds(buyer="string", when="timestamp", amount="float", customer_id="string"),
                                     {"customer_id": "buyer", "timestamp": "when"})
    assert roles.customer_id == "buyer" and roles.timestamp == "when"
    assert "customer_id" not in roles.detected and "amount" in roles.detected


def test_ambiguous_customer_columns_are_refused_with_the_fix():
    with pytest.raises(InputError) as info:
        detect_transaction_roles(kinds(customer_id="string", CustomerID="string", date="date", amount="float"),
                                 source="orders.csv")
    message = str(info.value)
    assert "orders.csv" in message and "'customer_id'" in message and "'CustomerID'" in message
    assert "--customer-id-col" in message


def test_missing_required_columns_are_named_with_flags():
    with pytest.raises(InputError) as info:
        detect_transaction_roles(kinds(shopper_name="string", amount="float"), source="x.csv")
    message = str(info.value)
    assert "customer id column" in message and "--customer-id-col" in message
    assert "date/time column" in message and "--timestamp-col" in message
    assert "Columns are: shopper_name, amount" in message


def test_unknown_override_column_suggests_a_close_name():
    with pytest.raises(InputError, match=r"does not exist\. Did you mean 'customer_id'\?"):
        detect_transaction_roles(kinds(customer_id="string", date="date", amount="float"), {"customer_id": "custmer_id"})


def test_a_text_column_named_like_an_amount_still_counts():
    roles = detect_transaction_roles(kinds(customer_id="string", date="string", amount="string"))
    assert roles.amount == "amount"


def test_customer_table_id_accepts_a_plain_id_column():
    assert detect_customer_id_column(kinds(ID="integer", Age="integer")) == "ID"
    assert detect_customer_id_column(kinds(CustomerID="integer", ID="integer")) == "CustomerID"
    with pytest.raises(InputError, match="could not find a customer id column"):
        detect_customer_id_column(kinds(Age="integer", Income="float"))
