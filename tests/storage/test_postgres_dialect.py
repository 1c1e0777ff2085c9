"""PostgreSQL specifics: the ``?`` -> ``$n`` rewrite and multi-process-shaped behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hs.storage.database import DatabaseConfig, Transaction, TransactionConflict, open_database
from hs.storage.dialects.postgres import group_args, pg_statement


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ?", "SELECT $1"),
        ("INSERT INTO t VALUES (?, ?, ?)", "INSERT INTO t VALUES ($1, $2, $3)"),
        ("SELECT '?' , ?", "SELECT '?' , $1"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
        ("SELECT E'\\' ?', ?", "SELECT E'\\' ?', $1"),
        ('SELECT "od?d" FROM t WHERE a = ?', 'SELECT "od?d" FROM t WHERE a = $1'),
        ("SELECT 1 -- why?\n, ?", "SELECT 1 -- why?\n, $1"),
        ("SELECT /* ? */ ?", "SELECT /* ? */ $1"),
        ("SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1"),
        ("SELECT $tag$ ? $tag$, ?", "SELECT $tag$ ? $tag$, $1"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_placeholder_rewrite(sql: str, expected: str) -> None:
    assert pg_statement(sql)[0] == expected


@pytest.mark.parametrize(
    ("sql", "expected", "shape"),
    [
        ("SELECT a FROM t WHERE a IN (?, ?, ?)", "SELECT a FROM t WHERE a = ANY($1)", (3,)),
        ("SELECT a FROM t WHERE b = ? AND a in(?) AND c = ?",
         "SELECT a FROM t WHERE b = $1 AND a = ANY($2) AND c = $3", (0, 1, 0)),
        ("DELETE FROM t WHERE a NOT IN ( ?,? ) AND b IN (?, ?)",
         "DELETE FROM t WHERE a <> ALL($1) AND b = ANY($2)", (2, 2)),
        # Not lists of bare placeholders, or not the IN keyword: left alone.
        ("SELECT 1 WHERE (a, b) IN ((?, ?))", "SELECT 1 WHERE (a, b) IN (($1, $2))", None),
        ("SELECT 1 WHERE a IN (?::text, ?)", "SELECT 1 WHERE a IN ($1::text, $2)", None),
        ("SELECT MIN(?), JOIN_IN(?)", "SELECT MIN($1), JOIN_IN($2)", None),
        ("SELECT 'x IN (?)', ? IN (SELECT 1)", "SELECT 'x IN (?)', $1 IN (SELECT 1)", None),
    ],
)
def test_in_lists_become_one_array_parameter(sql: str, expected: str,
                                             shape: tuple[int, ...] | None) -> None:
    assert pg_statement(sql) == (expected, shape)


def test_group_args() -> None:
    assert group_args((0, 3, 0), ["b", 1, 2, 3, "c"]) == ["b", [1, 2, 3], "c"]
    assert group_args(None, (1, 2)) == (1, 2)


async def test_in_lists_on_a_real_server(fresh_pg_config: DatabaseConfig) -> None:
    """Same rows as the list of placeholders would give, NULLs and NOT IN included; an IN
    list of any length is one prepared statement."""
    db = await open_database(fresh_pg_config, run_migrations=False)
    try:
        await db.execute("CREATE TABLE t (x BIGINT, s TEXT)")
        await db.executemany("INSERT INTO t VALUES (?, ?)",
                             [(i, f"s{i}") for i in range(10)] + [(None, None)])
        rows = await db.fetchall("SELECT x FROM t WHERE s IN (?, ?, ?) ORDER BY x",
                                 "s1", "s7", "nope")
        assert rows == [(1,), (7,)]
        assert await db.fetchval("SELECT count(*) FROM t WHERE x NOT IN (?, ?)", 1, 2) == 8
        assert await db.fetchval("SELECT count(*) FROM t WHERE x IN (?)", 3) == 1
        await db.executemany("UPDATE t SET s = ? WHERE x IN (?, ?)",
                             [("low", 0, 1), ("high", 8, 9)])
        assert await db.fetchall("SELECT s, count(*) FROM t WHERE s IN (?, ?) GROUP BY s"
                                 " ORDER BY s", "high", "low") == [("high", 2), ("low", 2)]
    finally:
        await db.close()


async def test_two_pools_see_each_others_commits(fresh_pg_config: DatabaseConfig) -> None:
    a = await open_database(fresh_pg_config)
    b = await open_database(fresh_pg_config, run_migrations=False)
    try:
        await a.execute("CREATE TABLE t (x BIGINT)")
        await a.execute("INSERT INTO t VALUES (?)", 5)
        assert await b.fetchval("SELECT x FROM t") == 5
    finally:
        await a.close()
        await b.close()


async def test_serialization_failure_is_transaction_conflict(
    fresh_pg_config: DatabaseConfig,
) -> None:
    db = await open_database(fresh_pg_config)
    try:
        await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, x BIGINT)")
        await db.execute("INSERT INTO t VALUES (?, ?)", "a", 0)
        with pytest.raises(TransactionConflict):
            async with db.transaction() as txn:
                await txn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                assert await txn.fetchval("SELECT x FROM t WHERE k = ?", "a") == 0
                # Another connection commits a change to the row after our snapshot...
                await db.execute("UPDATE t SET x = ? WHERE k = ?", 2, "a")
                # ...so updating it here cannot be serialized.
                await txn.execute("UPDATE t SET x = ? WHERE k = ?", 1, "a")
        assert await db.fetchval("SELECT x FROM t WHERE k = ?", "a") == 2
    finally:
        await db.close()


async def test_run_transaction_retries_conflicts(fresh_pg_config: DatabaseConfig) -> None:
    db = await open_database(fresh_pg_config)
    try:
        await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, x BIGINT)")
        await db.execute("INSERT INTO t VALUES (?, ?)", "a", 0)
        attempts = 0

        async def bump(txn: Transaction) -> int:
            nonlocal attempts
            attempts += 1
            await txn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            x = await txn.fetchval("SELECT x FROM t WHERE k = ?", "a")
            if attempts == 1:  # a concurrent writer sneaks in once
                await db.execute("UPDATE t SET x = x + ? WHERE k = ?", 10, "a")
            await txn.execute("UPDATE t SET x = ? WHERE k = ?", x + 1, "a")
            return int(x + 1)

        assert await db.run_transaction(bump) == 11
        assert attempts == 2
        assert await db.fetchval("SELECT x FROM t WHERE k = ?", "a") == 11
    finally:
        await db.close()


_LITERALS = st.sampled_from(
    ["'?'", "'it''s ?'", '"a?b"', "-- x?\n", "/* ? */", "$$?$$", "$q$ ? $q$", "E'\\'?'"]
)
_TOKENS = st.lists(st.one_of(st.just("?"), _LITERALS, st.sampled_from([" a ", ", ", "::int"])))


@given(_TOKENS)
def test_placeholder_rewrite_numbers_only_real_placeholders(tokens: list[str]) -> None:
    rewritten = pg_statement(" ".join(tokens))[0]
    expected, n = [], 0
    for token in tokens:
        if token == "?":
            n += 1
            expected.append(f"${n}")
        else:
            expected.append(token)
    assert rewritten == " ".join(expected)


async def test_pooled_connections_know_the_array_types_when_they_open(
        fresh_pg_config: DatabaseConfig) -> None:
    """Opening a pooled connection looks up the array codecs, so a request's first query
    with an array is the only statement it sends (no catalog query before it)."""
    db = await open_database(fresh_pg_config, run_migrations=False)
    try:
        async with db.acquire() as conn:
            sent: list[str] = []
            conn.add_query_logger(lambda record: sent.append(record.query))
            assert await conn.fetchval("SELECT cardinality($1::BIGINT[])", [1, 2]) == 2
            assert await conn.fetchval("SELECT $1::SMALLINT[] IS NULL", None) is True
            assert not any("typeinfo" in q for q in sent), sent
    finally:
        await db.close()
