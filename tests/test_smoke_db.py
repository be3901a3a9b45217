import psycopg


def test_template_has_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'").fetchone()
    assert row is not None and row[0] > 4
