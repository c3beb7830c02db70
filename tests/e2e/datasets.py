"""Small input files for the end-to-end tests, in the layouts real exports have.

Every generator is seeded and writes one file; the ones that plant dirt (blank ids,
zero prices, cancellations, zero amounts) return the counts they planted, so a test
can compare them with what ``segwise run`` reports in run.json.

Layouts:

- `write_order_log`: the synthetic order log as Parquet or CSV (what ``segwise synth``
  writes);
- `write_invoice_lines`: one line per product, like the UCI Online Retail export
  (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
  Country), Latin-1 encoded, dates day-first or month-first;
- `write_cdnow`: a whitespace-padded log (customer id, YYYYMMDD date, item count,
  dollar value), like the CDNOW log, with or without a header line;
- `write_mall_customers`: a ';'-separated customer attribute table with a byte-order
  mark and CRLF line endings, like the mall-customers data.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import segwise

INVOICE_COLUMNS = [
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country",
]
CDNOW_COLUMNS = ["customer_id", "date", "count", "dollar_value"]
MALL_COLUMNS = ["CustomerID", "Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)"]

# Product descriptions per synthetic category; the accented ones make the file Latin-1.
_DESCRIPTIONS = {
    "apparel": ["CHAMBRAY SHIRT", "NÉGLIGÉ SILK ROBE"],
    "beauty": ["ROSE HAND CREAM", "EAU DE TOILETTE ÉTÉ"],
    "books": ["RECIPE NOTEBOOK", "CAFÉ CULTURE GUIDE"],
    "electronics": ["USB DESK LAMP", "RÉTRO RADIO"],
    "grocery": ["JAM MAKING SET", "CRÈME BRÛLÉE SET"],
    "home": ["WHITE HANGING HEART T-LIGHT HOLDER", "CAFÉ MUG"],
    "sports": ["YOGA MAT", "PÉTANQUE SET"],
    "toys": ["WOODEN TRAIN", "POUPÉE DOLL"],
}


@functools.cache
def population(n_customers: int, seed: int, *, clean: bool = False, end_date: str = "2024-12-31"):
    """A synthetic population (cached: the same arguments give the same object).

    ``clean=True`` plants no duplicate lines and no lines without a customer id, so
    a test can plant its own dirt and know the exact counts.
    """
    noise = {"duplicate_rate": 0.0, "missing_customer_rate": 0.0} if clean else {}
    return segwise.generate_population(n_customers, seed=seed, end_date=end_date, **noise)


def write_order_log(path: Path, orders: pa.Table) -> Path:
    """Write an order log as Parquet (``.parquet``) or CSV (anything else)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(orders, path)
    else:
        pacsv.write_csv(orders, path)
    return path


def offset_customer_ids(orders: pa.Table, offset: int) -> pa.Table:
    """The same log with every customer id shifted by ``offset`` (new, unseen customers)."""
    ids = orders.column("customer_id").to_numpy(zero_copy_only=False)
    mask = orders.column("customer_id").is_null().to_numpy(zero_copy_only=False)
    shifted = pa.array(np.where(mask, 0, ids).astype(np.int64) + offset, mask=mask)
    return orders.set_column(orders.schema.get_field_index("customer_id"), "customer_id", shifted)


# --------------------------------------------------------------------------- invoice lines (UCI layout)


@dataclass
class InvoiceLog:
    """An invoice-line file and what was planted in it."""

    path: Path
    lines: int
    customers: int
    cancellations: int
    blank_customer_ids: int
    zero_prices: int
    accented_lines: int


def _uci_date(ts: pd.Timestamp, day_first: bool) -> str:
    if day_first:
        return ts.strftime("%d/%m/%Y %H:%M")  # 13/01/2011 08:26
    return f"{ts.month}/{ts.day}/{ts.year} {ts.hour}:{ts.minute:02d}"  # 1/13/2011 8:26, as in the UCI file


def write_invoice_lines(
    path: Path,
    *,
    n_customers: int = 300,
    seed: int = 11,
    day_first: bool = True,
    blank_customer_ids: int = 7,
    zero_prices: int = 5,
    encoding: str = "latin-1",
) -> InvoiceLog:
    """Write a UCI Online Retail style invoice-line CSV built from a synthetic population.

    One invoice per synthetic order, one line per order line with Quantity x UnitPrice
    equal to the line amount (up to rounding of the price). Returns become
    cancellation invoices ``C<number>`` with a negative Quantity and a positive price.
    ``blank_customer_ids`` purchase lines lose their CustomerID and ``zero_prices``
    other purchase lines get a UnitPrice of 0. Some descriptions hold accented
    letters, so with ``encoding="latin-1"`` the file is not valid UTF-8.
    """
    pop = population(n_customers, seed, clean=True, end_date="2011-12-09")
    orders = pop.orders.to_pandas()
    rng = np.random.default_rng(seed)
    n = len(orders)
    is_cancel = orders["order_id"].str.startswith("C").to_numpy()
    amount = orders["amount"].to_numpy()
    quantity = rng.integers(1, 7, n)
    price = np.round(np.abs(amount) / quantity, 2)
    quantity = np.where(is_cancel, -quantity, quantity)

    purchases = np.flatnonzero(~is_cancel)
    planted = rng.choice(purchases, blank_customer_ids + zero_prices, replace=False)
    blank, zero = planted[:blank_customer_ids], planted[blank_customer_ids:]
    price[zero] = 0.0
    customer = orders["customer_id"].astype("Int64").astype(str).to_numpy(dtype=object)
    customer[blank] = ""

    variant = (rng.uniform(size=n) < 0.05).astype(int)  # a few accented descriptions, as in real exports
    variant[:3] = 1  # ... and some near the top of the file
    description = [_DESCRIPTIONS[c][v] for c, v in zip(orders["category"], variant, strict=True)]
    # As in the real export, the country belongs to the customer (drawn once per customer);
    # a few lines (1%) carry another one, as when a customer orders for delivery abroad.
    places = np.array(["United Kingdom"] * 8 + ["France", "EIRE"])
    ids = orders["customer_id"].fillna(-1).astype(np.int64).to_numpy()
    home = places[np.random.default_rng([seed, 1]).integers(0, len(places), ids.max() + 2)]
    countries = np.where(rng.uniform(size=n) < 0.01, places[rng.integers(0, len(places), n)], home[ids + 1])

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(INVOICE_COLUMNS)
    for i in range(n):
        writer.writerow([
            orders["order_id"].iat[i],
            f"{20000 + i}{'ABCDEF'[i % 6]}",  # unique per line: no accidental duplicate lines
            description[i],
            int(quantity[i]),
            _uci_date(orders["ordered_at"].iat[i], day_first),
            f"{price[i]:.2f}",
            customer[i],
            countries[i],
        ])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode(encoding))
    # Customers left after cleaning: those with a purchase line that keeps its id and price.
    usable = np.ones(n, dtype=bool)
    usable[planted] = False
    kept_customers = orders.loc[usable & ~is_cancel, "customer_id"].nunique()
    return InvoiceLog(
        path=path,
        lines=n,
        customers=int(kept_customers),
        cancellations=int(is_cancel.sum()),
        blank_customer_ids=blank_customer_ids,
        zero_prices=zero_prices,
        accented_lines=sum(any(ord(ch) > 127 for ch in d) for d in description),
    )


# --------------------------------------------------------------------------- CDNOW layout


@dataclass
class WhitespaceLog:
    """A whitespace-separated log and what was planted in it."""

    path: Path
    lines: int
    customers: int
    zero_amounts: int


def write_cdnow(
    path: Path, *, header: bool = True, n_customers: int = 300, seed: int = 5, zero_amounts: int = 3,
) -> WhitespaceLog:
    """Write a CDNOW-like log: one line per order, fields padded with runs of spaces.

    Columns: customer id (zero-padded, 00001 upwards), date as YYYYMMDD, number of items, dollar
    value. Returns are left out (the CDNOW log has none); ``zero_amounts`` orders get
    a dollar value of 0.00, as some CDNOW lines have.
    """
    pop = population(n_customers, seed, clean=True, end_date="1998-06-30")
    lines = pop.orders.to_pandas()
    lines = lines[~lines["order_id"].str.startswith("C")]
    orders = (
        lines.groupby("order_id", sort=True)
        .agg(customer_id=("customer_id", "first"), ordered_at=("ordered_at", "first"),
             count=("amount", "size"), dollar_value=("amount", "sum"))
        .sort_values(["customer_id", "ordered_at"], kind="stable")
        .reset_index(drop=True)
    )
    rng = np.random.default_rng(seed)
    zero = rng.choice(len(orders), zero_amounts, replace=False)
    orders.loc[zero, "dollar_value"] = 0.0
    text = []
    if header:
        text.append("   customer_id      date   count   dollar_value")
    for row in orders.itertuples(index=False):
        customer = int(row.customer_id) - 10_000
        text.append(f"  {customer:05d}   {row.ordered_at:%Y%m%d}   {int(row.count):>3d}   {row.dollar_value:>9.2f}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text) + "\n", encoding="ascii")
    return WhitespaceLog(path=path, lines=len(orders), customers=int(orders["customer_id"].nunique()),
                         zero_amounts=zero_amounts)


# --------------------------------------------------------------------------- customer table (mall layout)


@dataclass
class CustomerFile:
    path: Path
    rows: int
    missing_incomes: int


def write_mall_customers(path: Path, *, n: int = 200, seed: int = 2, missing_incomes: int = 9) -> CustomerFile:
    """Write a mall-customers-like table: ';'-separated, UTF-8 with BOM, CRLF line ends.

    Two planted groups (young high spenders, older low spenders) so there is
    something to segment; ``missing_incomes`` rows have an empty income field.
    """
    rng = np.random.default_rng(seed)
    young = rng.uniform(size=n) < 0.5
    age = np.where(young, rng.integers(18, 35, n), rng.integers(40, 70, n))
    income = np.where(young, rng.normal(80, 15, n), rng.normal(45, 12, n)).round().clip(15, 140).astype(int)
    score = np.where(young, rng.normal(75, 10, n), rng.normal(30, 10, n)).round().clip(1, 99).astype(int)
    gender = np.array(["Male", "Female"])[rng.integers(0, 2, n)]
    missing = set(rng.choice(n, missing_incomes, replace=False).tolist())
    text = [";".join(MALL_COLUMNS)]
    for i in range(n):
        income_text = "" if i in missing else str(income[i])
        text.append(f"{i + 1};{gender[i]};{age[i]};{income_text};{score[i]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(text) + "\r\n").encode("utf-8-sig"))
    return CustomerFile(path=path, rows=n, missing_incomes=missing_incomes)


# --------------------------------------------------------------------------- tiny files for bad input


def write_text(path: Path, lines: list[str], *, encoding: str = "utf-8", newline: str = "\n") -> Path:
    """Write literal lines (for small hand-made inputs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def simple_log_lines(n_customers: int = 30, *, delimiter: str = ",", date_format: str = "%Y-%m-%d",
                     header: tuple[str, ...] = ("customer_id", "order_date", "amount"), seed: int = 0) -> list[str]:
    """A small well-formed log (customer, date, amount): a base to break in one way."""
    rng = np.random.default_rng(seed)
    lines = [delimiter.join(header)]
    days = pd.date_range("2024-01-01", "2024-12-31", freq="D")
    for customer in range(1, n_customers + 1):
        for _ in range(int(rng.integers(1, 5))):
            day = days[int(rng.integers(0, len(days)))]
            lines.append(delimiter.join([f"C{customer:04d}", day.strftime(date_format), f"{rng.uniform(5, 300):.2f}"]))
    return lines
