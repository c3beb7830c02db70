"""``python -m bench.reference_cli ORDERS OUT [--same-columns]``: the hand-written DuckDB query as a whole process.

The yardstick of `segwise features` measured from a shell: start Python, read the
Parquet log, clean it and compute the features with `bench.reference_duckdb`'s
query, and write the customer table as Parquet (DuckDB's ``COPY``). Without a flag,
the 12-column query (`REFERENCE_FEATURES_SQL`); with ``--same-columns``, the query
computing every column of the SQL families of ``segwise features``
(`same_columns_sql`, after one small query for the channel and category levels).
Nothing of segwise is imported.
"""

from __future__ import annotations

import sys

import duckdb

from bench.reference_duckdb import REFERENCE_FEATURES_SQL, learn_levels, same_columns_sql


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    same_columns = "--same-columns" in args
    orders, out = [a for a in args if a != "--same-columns"][:2]
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")
        query = same_columns_sql(*learn_levels(connection, orders)) if same_columns else REFERENCE_FEATURES_SQL
        # COPY takes no bound parameters: the path reaches the query as a variable.
        connection.execute("SET VARIABLE orders = ?", [orders])
        query = query.replace("$orders", "getvariable('orders')")
        connection.execute(f"COPY ({query}) TO '{out.replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
