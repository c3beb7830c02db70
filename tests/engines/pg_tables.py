"""Tables and roles in the test PostgreSQL server (the `postgres_url` fixture of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow as pa
from psycopg import sql

#: PostgreSQL column type of each Arrow type the synthetic logs use.
_PG_TYPES = [
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "bigint"),
    (pa.types.is_floating, "double precision"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
]


def _pg_type(arrow_type: pa.DataType) -> str:
    return next((name for test, name in _PG_TYPES if test(arrow_type)), "text")


def create_table(url: str, name: str, table: pa.Table) -> None:
    """(Re)create table ``name`` with typed columns holding the rows of ``table`` (NaN stored as NULL)."""
    table = pa.table({c: table.column(c).combine_chunks() for c in table.column_names})
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_pg_type(f.type))) for f in table.schema
    )
    rows = table.to_pylist()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), columns))
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(name))) as copy:
            for row in rows:
                copy.write_row([None if isinstance(v, float) and v != v else v for v in row.values()])


def export_csv(url: str, name: str, path: Path) -> Path:
    """The table as a CSV file with a header line, written by PostgreSQL's COPY (an "export")."""
    with psycopg.connect(url) as conn, conn.cursor() as cur, open(path, "wb") as fh:
        with cur.copy(sql.SQL("COPY {} TO STDOUT WITH (FORMAT csv, HEADER true)").format(sql.Identifier(name))) as c:
            for chunk in c:
                fh.write(chunk)
    return path


def create_role(url: str, role: str, password: str, *, select_on: list[str] = ()) -> str:
    """A login role with a password (and SELECT on the named tables); returns its URL with the password."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        for table in select_on:
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(role)))
    parts = psycopg.conninfo.conninfo_to_dict(url)
    return f"postgresql://{role}:{password}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def persistent_relations(url: str) -> set[str]:
    """Every table, view, sequence and index outside the temporary schemas (to check nothing was created)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'"
        ).fetchall()
    return {r[0] for r in rows}
