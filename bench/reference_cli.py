"""``python -m bench.reference_cli ORDERS OUT``: the hand-written DuckDB query as a whole process.

The yardstick of `segwise features` measured from a shell: start Python, read the
Parquet log, clean it and compute the features with `bench.reference_duckdb`'s one
query, and write the customer table as Parquet (DuckDB's ``COPY``). Nothing of
segwise is imported.
"""

from __future__ import annotations

import sys

import duckdb

from bench.reference_duckdb import REFERENCE_FEATURES_SQL


def main(argv: list[str] | None = None) -> int:
    orders, out = (argv if argv is not None else sys.argv[1:])[:2]
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")
        # COPY takes no bound parameters: the path reaches the query as a variable.
        connection.execute("SET VARIABLE orders = ?", [orders])
        query = REFERENCE_FEATURES_SQL.replace("$orders", "getvariable('orders')")
        connection.execute(f"COPY ({query}) TO '{out.replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
