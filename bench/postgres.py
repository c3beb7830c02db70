"""Benchmark: features computed inside PostgreSQL against fetching the table and computing in DuckDB.

Usage::

    .venv/bin/python -m bench.postgres --size 1m --wait-idle 600   # about 1M order lines
    .venv/bin/python -m bench.postgres --size quick                # a quick check (about 100k)
    .venv/bin/python -m bench.postgres --url postgresql://me@db/shop --table orders --no-record

The order log of ``--size`` (``bench/data/<size>/orders.parquet``, shared with
``python -m bench``) is copied into table ``orders`` of a throwaway PostgreSQL
server started for the run (``initdb`` + ``pg_ctl`` on 127.0.0.1, default
settings), or of the server named by ``--url``. Then, in this process, each way
loads and cleans the log and builds the customer feature table:

``postgres``
    the PostgreSQL engine: cleaning and every feature family run as SQL in the
    database; one row per customer comes back.
``duckdb``
    the whole table is fetched (COPY, streamed) into an embedded DuckDB, which
    cleans and computes (what a user without a database engine would do).

Both ways must give the same features (checked to 1e-9). Bytes transferred are
the result bytes of the COPY streams that carry table rows (PostgreSQL's CSV
text, protocol framing excluded; the few one-row answers to counting queries
are not counted). Time is wall time of load + features, median of the size's
repeats; the busy share says how much of the machine other processes used.

Results go to ``bench/results/postgres-<size>-<date>-<machine>.{json,md}``.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets import order_log
from bench.harness import busy_share_since, machine_busy_seconds, wait_for_idle
from bench.results import describe_machine, machine_sentence, record_named, result_parser
from bench.sizes import SIZES

ROOT = Path(__file__).resolve().parent.parent


def copy_into_postgres(url: str, table: str, orders: Path) -> int:
    """(Re)create ``table`` from the Parquet log (typed columns; NaN as NULL); return its rows."""
    import psycopg
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from psycopg import sql

    data = pq.read_table(orders)
    columns = {}
    for name in data.column_names:
        column = data.column(name)
        if pa.types.is_floating(column.type):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        columns[name] = column
    data = pa.table(columns)
    types = {"bool": "boolean", "int64": "bigint", "double": "double precision"}
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(
            "timestamp" if pa.types.is_timestamp(f.type) else types.get(str(f.type), "text")))
        for f in data.schema
    )
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), definition))
        with conn.cursor() as cur, cur.copy(
                sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(sql.Identifier(table))) as copy:
            copy.write(buffer.getvalue())
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return data.num_rows


def in_postgres(url: str, table: str) -> tuple[Any, int]:
    """Features by the PostgreSQL engine; (feature frame, bytes received)."""
    from segwise.data import load_transactions
    from segwise.engines.postgres import PostgresEngine
    from segwise.features import build_features

    engine = PostgresEngine(url)
    try:
        frame = build_features(load_transactions(url, table=table, engine=engine)).frame
        return frame, engine.bytes_received
    finally:
        engine.close()


def fetched_to_duckdb(url: str, table: str) -> tuple[Any, int]:
    """Features by DuckDB on the fetched table; (feature frame, bytes received)."""
    from segwise.data import load_transactions
    from segwise.engines.postgres import PostgresEngine
    from segwise.features import build_features

    source = PostgresEngine(url)
    try:
        rows = source.fetch_arrow(f"SELECT * FROM {source.quote(table)}")
        received = source.bytes_received
    finally:
        source.close()
    return build_features(load_transactions(rows)).frame, received


WAYS = {"postgres": in_postgres, "duckdb": fetched_to_duckdb}


def measure(way: str, url: str, table: str, repeats: int, wait_idle: float) -> tuple[dict[str, Any], Any]:
    """``repeats`` timed runs of one way: median wall time, bytes, busy share of each run."""
    runs, frame = [], None
    for _ in range(repeats):
        waited = wait_for_idle(wait_idle) if wait_idle else 0.0
        busy_before, started = machine_busy_seconds(), time.perf_counter()
        frame, received = WAYS[way](url, table)
        seconds = time.perf_counter() - started
        runs.append({"wall_s": round(seconds, 2), "bytes": received,
                     "machine_busy_share": busy_share_since(busy_before, seconds), "idle_wait_s": round(waited, 1)})
    summary = {
        "way": way, "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
        "bytes": runs[-1]["bytes"], "customers": int(len(frame)), "runs": runs,
    }
    return summary, frame


def _markdown(record: dict[str, Any]) -> str:
    lines = [
        f"# Features inside PostgreSQL vs fetched into DuckDB, {record['size']} ({record['order_lines']:,} order lines)",
        "",
        f"Measured {record['started']} on {machine_sentence(record['machine'], ('duckdb', 'ibis-framework'))}, "
        f"psycopg {record['psycopg']}, PostgreSQL {record['server_version']} on the same machine "
        f"({record['server']}; segwise's session sets work_mem 64MB).",
        "Load + clean + all feature families, in one process; median of "
        f"{record['repeats']} runs. Bytes: result bytes of the COPY streams (CSV text).",
        f"Features identical to {record['max_abs_difference']:.1e} (max absolute difference).",
        "Machine busy share: the share of all CPUs used by everything during the run, the run included "
        "(a quiet machine shows about what the run itself used).",
        "",
        "| way | median wall time | bytes transferred | customers | busy share per run |",
        "|---|---|---|---|---|",
    ]
    for way in record["ways"]:
        busy = ", ".join(str(r["machine_busy_share"]) for r in way["runs"])
        lines.append(f"| {way['way']} | {way['median_wall_s']:.2f} s | {way['bytes']:,} | "
                     f"{way['customers']:,} | {busy} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = result_parser(__doc__.splitlines()[0])
    parser.add_argument("--url", help="use this PostgreSQL server instead of starting one")
    parser.add_argument("--table", default="orders", help="table to (re)create and read (default: orders)")
    parser.add_argument("--repeats", type=int, help="runs of each way (default: the size's repeats)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to SECONDS for the machine to be idle")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    orders, order_lines, _, label = order_log(size)
    server = None
    if args.url is None:
        sys.path.insert(0, str(ROOT))
        from tests.postgres import PostgresServer, server_binaries

        binaries = server_binaries()
        if binaries is None:
            print("no PostgreSQL server binaries (initdb, pg_ctl): give --url", file=sys.stderr)
            return 2
        server = PostgresServer(*binaries)
    try:
        url = args.url or server.start()
        loaded = copy_into_postgres(url, args.table, orders)
        import psycopg

        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        record: dict[str, Any] = {
            "size": label, "order_lines": order_lines, "rows_in_table": loaded, "machine": describe_machine(),
            "server": "started by the benchmark, default settings" if server else "given by --url",
            "server_version": version, "psycopg": psycopg.__version__, "repeats": args.repeats or size.repeats,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "ways": [],
        }
        frames = {}
        for way in WAYS:
            summary, frames[way] = measure(way, url, args.table, record["repeats"], args.wait_idle)
            record["ways"].append(summary)
            print(json.dumps(summary), flush=True)
    finally:
        if server is not None:
            server.stop()
    a, b = frames["postgres"], frames["duckdb"]
    if list(a.columns) != list(b.columns) or list(a.index) != list(b.index):
        print("the two ways gave different feature tables", file=sys.stderr)
        return 1
    record["max_abs_difference"] = float(np.nanmax(np.abs(a.to_numpy(float) - b.to_numpy(float)), initial=0.0))
    print(json.dumps({"max_abs_difference": record["max_abs_difference"]}))
    if record["max_abs_difference"] > 1e-9:
        # Say where: the columns that differ, with how many customers and the largest gap.
        gaps = (a - b).abs()
        for column in gaps.columns[(gaps > 1e-9).any()]:
            worst = gaps[column].idxmax()
            print(f"{column}: {int((gaps[column] > 1e-9).sum())} customers differ; largest at one customer: "
                  f"postgres {a.at[worst, column]!r}, duckdb {b.at[worst, column]!r}", file=sys.stderr)
        return 1
    if not args.no_record:
        record_named(f"postgres-{label}", record, _markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
