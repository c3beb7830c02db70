"""Export to a real PostgreSQL server (started by the `postgres_url` fixture, see tests/postgres.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pandas as pd
import psycopg
import pytest

from segwise.errors import InputError
from segwise.export import describe_postgres_url, export_frame, upsert_postgres

T1 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
T2 = datetime(2025, 2, 1, 12, 0, tzinfo=timezone.utc)


def assignments(n: int, shift: int = 0, changed: int = 0) -> pd.DataFrame:
    """n customers over 4 segments; the first ``changed`` move to the next segment."""
    segment = [(i + shift + (1 if i < changed else 0)) % 4 for i in range(n)]
    return pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(n)],
        "segment_id": segment,
        "segment_name": [f"Segment {s}" for s in segment],
        "confidence": [0.5 + (i % 5) / 10 for i in range(n)],
    })


def read(url: str, table: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY customer_id').fetchall()
        columns = [c.name for c in conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description]
    return pd.DataFrame(rows, columns=columns)


@pytest.fixture
def table() -> str:
    return f"segs_{uuid.uuid4().hex[:8]}"


def test_export_creates_the_table_with_the_contract_columns(postgres_url, table):
    result = upsert_postgres(export_frame(assignments(50), model_version="m1", as_of="2025-01-01", updated_at=T1),
                             postgres_url, table)
    assert (result.inserted, result.updated, result.unchanged) == (50, 0, 0)
    with psycopg.connect(postgres_url) as conn:
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position", [table]).fetchall())
        key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary", [table]).fetchall()
    assert types == {"customer_id": "text", "segment_id": "integer", "segment_name": "text",
                     "confidence": "double precision", "model_version": "text", "as_of": "date",
                     "updated_at": "timestamp with time zone"}
    assert key == [("customer_id",)]
    rows = read(postgres_url, table)
    assert len(rows) == 50
    assert rows["as_of"].unique().tolist() == [date(2025, 1, 1)]
    assert rows.loc[rows["customer_id"] == "c00007", "segment_id"].item() == 3


def test_upsert_of_changed_segments_updates_only_those_rows(postgres_url, table):
    upsert_postgres(export_frame(assignments(200), model_version="m1", as_of="2025-01-01", updated_at=T1),
                    postgres_url, table)
    # 30 customers change segment and 20 new ones arrive; the other 170 are as before.
    newer = pd.concat([assignments(200, changed=30), assignments(220).iloc[200:]], ignore_index=True)
    result = upsert_postgres(export_frame(newer, model_version="m1", as_of="2025-01-01", updated_at=T2),
                             postgres_url, table)
    assert (result.inserted, result.updated, result.unchanged) == (20, 30, 170)
    rows = read(postgres_url, table).set_index("customer_id")
    assert len(rows) == 220
    expected = newer.set_index("customer_id")
    assert (rows["segment_id"] == expected["segment_id"]).all()
    assert (rows["segment_name"] == expected["segment_name"]).all()
    stamps = rows["updated_at"].map(lambda t: t.astimezone(timezone.utc))
    changed = [f"c{i:05d}" for i in range(30)] + [f"c{i:05d}" for i in range(200, 220)]
    assert (stamps[changed] == T2).all()
    assert (stamps.drop(changed) == T1).all(), "unchanged rows keep their updated_at"
    # Exporting the same again changes nothing.
    again = upsert_postgres(export_frame(newer, model_version="m1", as_of="2025-01-01", updated_at=T2),
                            postgres_url, table)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 220)


def test_a_failure_mid_export_leaves_the_table_unchanged(postgres_url, table):
    upsert_postgres(export_frame(assignments(300), model_version="m1", as_of="2025-01-01", updated_at=T1),
                    postgres_url, table)
    before = read(postgres_url, table)
    # The server fails the export half-way: a trigger raises on the 150th customer, after
    # the rows before it have been written inside the transaction.
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f"""CREATE FUNCTION fail_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.customer_id = 'c00150' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$""")
        conn.execute(f'CREATE TRIGGER fail BEFORE INSERT OR UPDATE ON "{table}" FOR EACH ROW '
                     f"EXECUTE FUNCTION fail_{table}()")
    everyone_moves = assignments(400, shift=1)
    with pytest.raises(InputError) as info:
        upsert_postgres(export_frame(everyone_moves, model_version="m2", as_of="2025-02-01", updated_at=T2),
                        postgres_url, table)
    message = str(info.value)
    assert f"the export to table '{table}' failed and was rolled back; the table is unchanged" in message
    assert "injected failure" in message
    pd.testing.assert_frame_equal(read(postgres_url, table), before)


def test_postgres_errors_are_clear_and_hide_the_password(postgres_url, table):
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    closed = f"postgresql://postgres:hunter2@127.0.0.1:{int(port) + 1 if int(port) < 65535 else 1}/postgres"
    frame = export_frame(assignments(3), model_version="m1", as_of=None)
    with pytest.raises(InputError) as info:
        upsert_postgres(frame, closed, table, connect_timeout=2)
    assert "cannot connect to PostgreSQL" in str(info.value) and "hunter2" not in str(info.value)
    assert describe_postgres_url(closed) == f"postgresql://postgres@127.0.0.1:{closed.split(':')[3]}"
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f'CREATE TABLE "{table}" (customer_id text, segment_id integer, segment_name text, '
                     "confidence double precision, model_version text, as_of date, updated_at timestamptz)")
    with pytest.raises(InputError, match="has no primary key or unique constraint on customer_id"):
        upsert_postgres(frame, postgres_url, table)
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f'CREATE TABLE "{table}_old" (customer_id text PRIMARY KEY, segment integer)')
    with pytest.raises(InputError, match="exists without column\\(s\\) segment_id, segment_name"):
        upsert_postgres(frame, postgres_url, f"{table}_old")
    with pytest.raises(InputError, match="is not a table name"):
        upsert_postgres(frame, postgres_url, "a.b.c")


def test_schema_qualified_tables(postgres_url, table):
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f"CREATE SCHEMA crm_{table}")
    result = upsert_postgres(export_frame(assignments(5), model_version="m1", as_of=None), postgres_url,
                             f"crm_{table}.segments")
    assert result.inserted == 5
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM crm_{table}.segments").fetchone() == (5,)
