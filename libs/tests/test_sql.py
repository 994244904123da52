"""The one SQL layer: statements written once with `?`, each in one transaction on a worker thread."""

from __future__ import annotations

import pytest

from llmagg.common.sql import Sql, SqliteDatabase, sqlite_path, without_password


class Postgres:
    dialect = "postgres"


def test_statements_are_written_once_and_spelt_for_the_driver(tmp_path):
    statement = "SELECT strftime('%s', ts) FROM t WHERE a = ? AND b = ?"
    assert Sql(SqliteDatabase(tmp_path / "x.db")).text(statement) == statement
    assert Sql(Postgres()).text(statement) == "SELECT strftime('%%s', ts) FROM t WHERE a = %s AND b = %s"


async def test_work_is_one_transaction_rolled_back_when_it_raises(tmp_path):
    sql = Sql(SqliteDatabase(tmp_path / "x.db"))
    await sql.run(lambda cursor: cursor.execute("CREATE TABLE t (a INTEGER)"))

    def insert_then_fail(cursor):
        cursor.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        await sql.run(insert_then_fail)
    await sql.run(lambda cursor: cursor.execute(sql.text("INSERT INTO t VALUES (?)"), (2,)))
    assert await sql.run(lambda cursor: cursor.execute("SELECT a FROM t").fetchall()) == [(2,)]
    await sql.close()


def test_urls_name_their_file_and_hide_their_password():
    assert sqlite_path("sqlite:////abs/threads.db").as_posix() == "/abs/threads.db"
    assert without_password("postgresql://u:secret@h:5432/db") == "postgresql://u:****@h:5432/db"
