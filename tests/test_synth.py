import pandas as pd
import pyarrow.parquet as pq
import pytest

from segwise.synth import BEHAVIOUR_TYPES, CATEGORIES, generate_population


@pytest.fixture(scope="module")
def population():
    return generate_population(20_000, seed=3)


def test_same_seed_same_population():
    a, b = generate_population(500, seed=9), generate_population(500, seed=9)
    assert a.orders.equals(b.orders) and a.customers.equals(b.customers)
    assert not a.orders.equals(generate_population(500, seed=10).orders)


def test_planted_type_sizes_span_under_one_percent_to_35_percent(population):
    shares = population.truth["behaviour_type"].value_counts(normalize=True)
    assert set(shares.index) == {t.name for t in BEHAVIOUR_TYPES}
    assert shares.min() < 0.01 and shares.max() == pytest.approx(0.35, abs=1e-3)
    assert {"champions", "loyal_regulars", "big_spenders", "new_customers", "at_risk", "lost_one_timers",
            "deal_hunters", "category_specialists"} <= set(shares.index)


def test_order_log_has_what_real_exports_have(population):
    orders = population.orders.to_pandas()
    assert list(orders.columns) == ["order_id", "customer_id", "ordered_at", "amount", "category", "channel", "discount"]
    returns = orders[orders["amount"] < 0]
    assert 0.005 < len(returns) / len(orders) < 0.05 and returns["order_id"].str.startswith("C").all()
    assert 0.0005 < orders["customer_id"].isna().mean() < 0.003
    assert orders.duplicated().sum() > 0
    assert set(orders["category"]) == set(CATEGORIES)
    assert orders["ordered_at"].max() <= pd.Timestamp("2024-12-31 23:59:59")
    # seasonality: December is busier than an average month
    monthly = orders.groupby(orders["ordered_at"].dt.month).size()
    assert monthly[12] > 1.3 * monthly.mean()


def test_planted_behaviour_is_visible_in_the_raw_log(population):
    orders = population.orders.to_pandas().dropna(subset=["customer_id"])
    orders["customer_id"] = orders["customer_id"].astype("int64").astype(str)
    truth = population.truth.set_index("customer_id")["behaviour_type"]
    orders["type"] = orders["customer_id"].map(truth)
    per_type = orders[orders.amount > 0].groupby("type").agg(
        discount=("discount", "mean"), categories=("category", "nunique"))
    assert per_type.loc["deal_hunters", "discount"] > 0.7
    specialists = orders[orders.type == "category_specialists"].groupby("customer_id")["category"].nunique()
    assert (specialists == 1).all()
    one_timers = orders[(orders.type == "lost_one_timers") & (orders.amount > 0)].groupby("customer_id")["order_id"].nunique()
    assert (one_timers == 1).all()


def test_customer_attributes(population):
    customers = population.customers.to_pandas()
    assert list(customers.columns) == ["customer_id", "age", "gender", "region", "signup_date"]
    assert 0.05 < customers["age"].isna().mean() < 0.12
    assert len(customers) == 20_000


def test_write_creates_files_atomically(tmp_path):
    population = generate_population(300, seed=1)
    paths = population.write(tmp_path, "parquet")
    assert pq.read_table(paths["orders"]).num_rows == population.orders.num_rows
    csv_paths = population.write(tmp_path / "csv", "csv")
    assert pd.read_csv(csv_paths["truth"]).shape == (300, 2)
    assert not list(tmp_path.glob(".*tmp*"))


def test_ten_order_lines_per_customer_on_average(population):
    assert 9 < population.orders.num_rows / 20_000 < 12
