"""What only PostgreSQL has: several processes on one database, a server that goes away."""

from __future__ import annotations

import threading

import psycopg
import pytest
import trio
import trio.testing
from storeworld import Places, add_bot, add_chat, exchange, open_store, said

from protocol import events as ev
from store import AsyncStore, Invalid, Store, StoreError, Unavailable
from store._dialect import translate
from store._schema import LATEST, version
from tests.support.servers import PostgresServer


@pytest.fixture
def pg_places(postgres: PostgresServer) -> Places:
    return Places("postgresql", postgres)


def test_nodes_opening_a_new_database_at_once_migrate_it_once(pg_places: Places) -> None:
    with pg_places.fresh() as url:
        start = threading.Barrier(4)
        opened: list[Store] = []
        failed: list[BaseException] = []

        def open_one() -> None:
            start.wait(timeout=10)
            try:
                opened.append(Store.open(url, recover=False))
            except BaseException as exc:
                failed.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failed and len(opened) == 4
        try:
            assert {version(s.conn) for s in opened} == {LATEST}
            # Each writes its own chat; the ids come from one sequence, none twice.
            ids = set()
            for n, store in enumerate(opened):
                bot = store.new_bot_id(f"Bot {n}")
                store.append(ev.BotCreated(bot, f"Bot {n}", ""))
                chat = f"chat-{n}"
                ids.update(store.append(ev.ChatCreated(chat, "T", bot)).ids)
                ids.update(exchange(store, chat, bot, "Hi.", "Hello."))
            assert len(ids) == 4 * 4
            assert opened[0].event_count() == 4 * 5
            assert [t.text for t in opened[0].timeline("chat-3")] == ["Hi.", "Hello."]
        finally:
            for store in opened:
                store.close()


def test_a_lost_connection_is_unavailable_and_the_next_call_connects_again(
    pg_places: Places, postgres: PostgresServer
) -> None:
    with pg_places.fresh() as url:
        store = open_store(url)
        try:
            mira = add_bot(store, "Mira")
            chat, _ = add_chat(store, mira)
            ((pid,),) = store.conn.execute("SELECT pg_backend_pid()").fetchall()
            with psycopg.connect(postgres.url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(Unavailable):
                exchange(store, chat, mira, "Hi.", "Hello.")
            assert not store.conn.in_transaction
            exchange(store, chat, mira, "Hi again.", "Hello again.")
            assert [t.text for t in store.timeline(chat)] == ["Hi again.", "Hello again."]
        finally:
            store.close()


async def test_a_connection_lost_in_a_group_commit_fails_the_group_and_no_more(
    pg_places: Places, postgres: PostgresServer
) -> None:
    with pg_places.fresh() as url:
        store = open_store(url)
        mira = add_bot(store, "Mira")
        chat, _ = add_chat(store, mira)
        ((pid,),) = store.conn.execute("SELECT pg_backend_pid()").fetchall()
        astore = AsyncStore(store)
        gate = threading.Event()
        outcomes: list[object] = []

        async def write(n: int) -> None:
            try:
                await astore.append(ev.UserTurn(chat, f"Line {n}.", said("x")))
                outcomes.append(n)
            except Unavailable as exc:
                outcomes.append(exc)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(astore.run, lambda _s: gate.wait(10))
                await trio.testing.wait_all_tasks_blocked()
                for n in range(4):
                    nursery.start_soon(write, n)
                    await trio.testing.wait_all_tasks_blocked()
                with psycopg.connect(postgres.url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                gate.set()
            assert len(outcomes) == 4 and all(isinstance(o, Unavailable) for o in outcomes)
            await astore.append(ev.UserTurn(chat, "After.", said("x")))
            lines = [t.text for t in await astore.run(Store.timeline, chat)]
            assert lines == ["After."]
        finally:
            await astore.aclose()


def test_a_restarted_server_is_unavailable_then_reachable_again(
    pg_places: Places, postgres: PostgresServer
) -> None:
    with pg_places.fresh() as url:
        store = open_store(url)
        try:
            mira = add_bot(store, "Mira")
            postgres.restart()
            with pytest.raises(Unavailable):
                store.append(ev.BotUpdated(mira, name="Mira the Second"))
            store.append(ev.BotUpdated(mira, name="Mira the Third"))
            bot = store.get_bot(mira)
            assert bot is not None and bot.name == "Mira the Third"
        finally:
            store.close()


def test_the_session_never_holds_locks_for_long(pg_places: Places) -> None:
    with pg_places.fresh() as url:
        store = open_store(url)
        try:
            settings = dict(
                store.conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('idle_in_transaction_session_timeout', 'lock_timeout')"
                ).fetchall()
            )
            assert settings == {
                "idle_in_transaction_session_timeout": "10000",
                "lock_timeout": "5000",
            }
        finally:
            store.close()


def test_snapshots_are_refused_and_a_nul_is_bad_input(pg_places: Places) -> None:
    with pg_places.fresh() as url:
        store = open_store(url)
        try:
            with pytest.raises(Invalid, match="pg_dump"):
                store.snapshot()
            before = store.event_count()
            with pytest.raises(Invalid):
                store.append(ev.BotCreated("nul", "A\x00B", ""))
            assert store.event_count() == before
        finally:
            store.close()


def test_a_database_from_a_newer_troupe_is_refused(pg_places: Places) -> None:
    with pg_places.fresh() as url:
        Store.open(url).close()
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("UPDATE troupe_schema SET version = %s", (LATEST + 1,))
        with pytest.raises(StoreError, match="newer"):
            Store.open(url)


def test_forgetting_a_chat_reads_what_another_node_wrote(pg_places: Places) -> None:
    with pg_places.fresh() as url:
        ours, theirs = open_store(url), open_store(url)
        try:
            mira = add_bot(ours, "Mira")
            chat, _ = add_chat(ours, mira)
            exchange(ours, chat, mira, "Hi.", "Hello.")
            user = ours.timeline(chat)[0].event_id
            theirs.fork(chat, user, "regenerate")  # the chat moved to another node, which forked
            ours.forget_chat(chat)
            (started,) = ours.append(ev.AssistantTurnStarted(chat, mira, user)).ids
            assert ours.branch_of(started) == theirs.current_branch(chat)
            ours.forget_all()
            assert ours.counters()["appended"] > 0
        finally:
            ours.close()
            theirs.close()


def test_the_dialect_rewrites_what_sqlite_alone_reads() -> None:
    one = translate("SELECT ?1, ?, '?', 100 % 7 FROM t WHERE a = ?1")
    assert one.sql == "SELECT %s, %s, '?', 100 %% 7 FROM t WHERE a = %s"
    assert one.bind(("x", "y")) == ("x", "y", "x")
    assert translate("BEGIN IMMEDIATE").sql == "BEGIN"
    insert = translate("INSERT INTO event_log(at) VALUES (?)")
    assert insert.returns_id and insert.sql.endswith("RETURNING id")
    assert not translate("INSERT INTO meta(key, value) VALUES (?, ?)").returns_id
    assert (
        translate("SELECT json_extract(payload, '$.text') FROM event_log INDEXED BY x").sql
        == "SELECT (payload::json ->> 'text') FROM event_log"
    )
