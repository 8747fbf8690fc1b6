"""The state database foundation: SQLite by default, PostgreSQL when shared; tables created once, races tolerated."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, String, Table, func, insert, select

from bot.state.database import DEFAULT_FILE, METADATA, Database, DatabaseError

PROBE = Table("test_probe", METADATA, Column("id", Integer, primary_key=True), Column("text", String(100)))


def _write_and_count(writer: Database, reader: Database) -> int:
    for database in (writer, reader):
        database.ensure(PROBE)
    with writer.begin() as connection:
        connection.execute(insert(PROBE).values(text="from one replica"))
    with reader.begin() as connection:
        return int(connection.execute(select(func.count()).select_from(PROBE)).scalar_one())


def test_default_is_sqlite_in_the_data_dir_and_two_openers_share_it(tmp_path: Path) -> None:
    one, two = Database.open(None, tmp_path / "data"), Database.open(None, tmp_path / "data")
    try:
        assert one.backend == "sqlite"
        assert _write_and_count(one, two) == 1
        assert (tmp_path / "data" / DEFAULT_FILE).exists()
    finally:
        one.close()
        two.close()


def test_a_url_that_is_not_one_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="DOCBOT_DATABASE_URL"):
        Database.open("not a url", tmp_path)


def test_an_unreachable_server_says_which_and_what_to_do(tmp_path: Path) -> None:
    from live import free_port

    database = Database.open(f"postgresql+psycopg://docbot:secret@127.0.0.1:{free_port()}/docbot", tmp_path)
    with pytest.raises(DatabaseError) as caught:
        database.ensure(PROBE)
    message = str(caught.value)
    assert "secret" not in message and "127.0.0.1" in message and "DOCBOT_DATABASE_URL" in message


def test_postgresql_two_replicas_share_it_and_create_tables_once(state_db_url: str, tmp_path: Path) -> None:
    one, two = Database.open(state_db_url, tmp_path), Database.open(state_db_url, tmp_path)
    try:
        assert one.backend == "postgresql"
        assert _write_and_count(one, two) == 1
    finally:
        one.close()
        two.close()
