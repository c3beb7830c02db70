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


@pytest.mark.parametrize("name", ["subscriber_id", "PatientID", "SubscriberId"])
def test_customer_table_id_is_the_only_column_whose_name_ends_in_id(name):
    assert detect_customer_id_column(kinds(**{name: "integer", "Age": "integer", "paid": "float"})) == name
    # A synonym or a plain id column still wins; two such columns are not guessed between.
    assert detect_customer_id_column(kinds(**{name: "integer", "ID": "integer"})) == "ID"
    assert detect_customer_id_column(kinds(**{name: "integer", "client_id": "integer"})) == "client_id"
    with pytest.raises(InputError, match=f"columns '{name}', 'plan_id' could each be the customer id.*"
                                         "--customer-id-col"):
        detect_customer_id_column(kinds(**{name: "integer", "plan_id": "integer"}))


@pytest.mark.parametrize("name", ["order_ts", "paid_at", "when", "x"])
def test_the_only_date_time_typed_column_is_the_timestamp_whatever_its_name(name):
    roles = detect_transaction_roles({"customer_id": "integer", name: "timestamp", "amount": "float"})
    assert roles.timestamp == name
    assert "only column of a date/time type" in roles.reason("timestamp")
    assert roles.to_dict()["reasons"]["timestamp"] == roles.reason("timestamp")


def test_a_date_typed_column_counts_as_date_time():
    roles = detect_transaction_roles({"user_id": "string", "day_of_sale": "date", "revenue": "float"})
    assert roles.timestamp == "day_of_sale"


@pytest.mark.parametrize("name, word", [("order_ts", "ts"), ("checkoutTime", "time"), ("Paid At", "at")])
def test_a_text_column_with_a_time_word_is_the_timestamp(name, word):
    roles = detect_transaction_roles({"customer_id": "integer", name: "string", "amount": "float"})
    assert roles.timestamp == name
    assert repr(word) in roles.reason("timestamp")


def test_a_usual_name_beats_the_type_and_reasons_say_so():
    roles = detect_transaction_roles({"customer_id": "integer", "order_date": "string", "shipped_ts": "timestamp",
                                      "amount": "float"})
    assert roles.timestamp == "order_date"
    assert "usual name" in roles.reason("timestamp")


def test_of_several_typed_columns_the_one_with_a_time_word_wins():
    roles = detect_transaction_roles({"customer_id": "integer", "order_ts": "timestamp", "birthday_x": "date",
                                      "amount": "float"})
    assert roles.timestamp == "order_ts"


def test_two_typed_columns_without_a_way_to_choose_are_ambiguous():
    with pytest.raises(InputError, match="will not guess.*--timestamp-col"):
        detect_transaction_roles({"customer_id": "integer", "paid_ts": "timestamp", "shipped_ts": "timestamp",
                                  "amount": "float"})


def test_a_numeric_column_ending_in_an_amount_word_is_the_amount():
    roles = detect_transaction_roles({"customer": "integer", "order_no": "integer", "date": "timestamp",
                                      "item_category": "string", "line_value": "float"})
    assert roles.amount == "line_value" and roles.order_id == "order_no"
    assert "'value'" in roles.reason("amount")
    assert roles.category == "item_category"
    assert "category word 'category'" in roles.reason("category")


def test_two_text_columns_ending_in_a_category_word_leave_the_category_undecided():
    roles = detect_transaction_roles({"customer_id": "integer", "date": "timestamp", "amount": "float",
                                      "item_category": "string", "store_department": "string"})
    assert roles.category is None


def test_quantity_and_price_still_win_over_an_amount_word():
    roles = detect_transaction_roles({"CustomerID": "integer", "InvoiceDate": "string", "Quantity": "integer",
                                      "UnitPrice": "float", "tax_value": "float"})
    assert roles.amount is None and roles.quantity == "Quantity" and roles.unit_price == "UnitPrice"


def test_explicit_roles_are_recorded_as_given():
    roles = detect_transaction_roles({"a": "integer", "b": "timestamp", "c": "float"},
                                     {"customer_id": "a", "amount": "c"})
    assert roles.reason("customer_id") == "given explicitly" and roles.timestamp == "b"
