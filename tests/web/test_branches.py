"""Branches and alternatives over a real WebSocket: every command, its answer, and what
every watcher sees; bad input is refused and writes nothing."""

from __future__ import annotations

from gateway_kit import Client, Server, make_chat
from trio_websocket import open_websocket_url


def texts(state: dict[str, object]) -> list[object]:
    timeline = state["timeline"]
    assert isinstance(timeline, list)
    return [turn["text"] for turn in timeline]


async def exchange(client: Client, server: Server, chat_id: str, prose: str, reply: str) -> None:
    server.backend.push_narrative(reply)
    await client.ask("send_turn", chat_id=chat_id, prose=prose)
    await client.turn()
    client.backlog.clear()


async def test_alternatives_branches_and_edits(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await exchange(client, server, chat_id, '"First."', "One.")
    await exchange(client, server, chat_id, '"Second."', "Two.")
    state = await client.ask("open_chat", chat_id=chat_id)
    first_user, first_beat, second_user, _ = (t["event_id"] for t in state["timeline"])
    assert "alternatives" not in state["timeline"][1], "one alternative says nothing"

    async with open_websocket_url(server.url) as ws:
        watcher = Client(ws)
        await watcher.ask("open_chat", chat_id=chat_id)

        # Regenerate an older beat: a branch forks after its line.
        server.backend.push_narrative("Another one.")
        accepted = await client.ask("regenerate", chat_id=chat_id, event_id=first_beat)
        assert accepted == {
            "type": "accepted",
            "chat_id": chat_id,
            "user_turn_id": first_user,
            "reply_to": accepted["reply_to"],
        }
        await client.until("turn_settled")
        fresh = await watcher.until("chat_state")
        assert [t["event_id"] for t in fresh["timeline"]] == [first_user]
        state = await client.ask("open_chat", chat_id=chat_id)
        beat = state["timeline"][1]
        assert (beat["text"], beat["alternatives"], beat["alternative"]) == ("Another one.", 2, 2)
        assert beat["alternative_ids"] == [first_beat, beat["event_id"]]

        branches = await client.ask("list_branches", chat_id=chat_id)
        assert branches["type"] == "branches" and branches["chat_id"] == chat_id
        old, new = branches["branches"]
        assert (old["length"], old["last_line"], old["current"]) == (4, "Two.", False)
        assert (new["parent_id"], new["fork_event_id"]) == (old["branch_id"], first_user)
        assert (new["length"], new["last_line"], new["current"]) == (2, "Another one.", True)

        # Choosing the old alternative goes back to its branch; every watcher redraws.
        ok = await client.ask("select_alternative", chat_id=chat_id, event_id=first_beat)
        assert ok["type"] == "ok"
        back = ['"First."', "One.", '"Second."', "Two."]
        fresh = await watcher.until("chat_state", lambda m: texts(m) == back)
        assert fresh["timeline"][1]["alternative"] == 1

        ok = await client.ask("switch_branch", chat_id=chat_id, branch_id=new["branch_id"])
        assert ok["type"] == "ok"
        await watcher.until("chat_state", lambda m: texts(m) == ['"First."', "Another one."])

        # Edit the person's turn: another fork, the turn runs again.
        server.backend.push_narrative("Of course.")
        edited = await client.ask(
            "edit_turn", chat_id=chat_id, event_id=first_user, prose='"First, truly."'
        )
        assert edited["type"] == "accepted" and edited["user_turn_id"] > first_user
        await client.until("turn_settled")
        state = await client.ask("open_chat", chat_id=chat_id)
        assert [t["text"] for t in state["timeline"]] == ['"First, truly."', "Of course."]
        assert len((await client.ask("list_branches", chat_id=chat_id))["branches"]) == 3

    # Bad input: the code, a clear message, and nothing written.
    other = (await client.ask("create_chat", host_bot_id="mira"))["chat"]["id"]
    before = await server.event_count()
    refusals = [
        ("select_alternative", {"chat_id": other, "event_id": first_beat}, "not_found"),
        ("select_alternative", {"chat_id": chat_id, "event_id": first_user}, "invalid"),
        ("switch_branch", {"chat_id": chat_id, "branch_id": 9999}, "not_found"),
        ("edit_turn", {"chat_id": chat_id, "event_id": first_beat, "prose": "x"}, "invalid"),
        ("edit_turn", {"chat_id": chat_id, "event_id": second_user, "prose": "x"}, "invalid"),
        ("regenerate", {"chat_id": other, "event_id": first_beat}, "not_found"),
        ("list_branches", {"chat_id": "nope"}, "not_found"),
    ]
    for kind, fields, code in refusals:
        answer = await client.ask(kind, **fields)
        assert (answer["type"], answer["code"]) == ("error", code), (kind, answer)
        assert answer["message"]
    assert await server.event_count() == before


async def test_a_branch_command_while_a_turn_streams_is_busy(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await exchange(client, server, chat_id, '"First."', "One.")
    branches = (await client.ask("list_branches", chat_id=chat_id))["branches"]
    state = await client.ask("open_chat", chat_id=chat_id)
    first_user, first_beat = (t["event_id"] for t in state["timeline"])
    server.backend.push_narrative(text="A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=chat_id, prose="Tell me")
    await client.until("token")
    before = await server.event_count()
    for kind, fields in (
        ("switch_branch", {"branch_id": branches[0]["branch_id"]}),
        ("select_alternative", {"event_id": first_beat}),
        ("edit_turn", {"event_id": first_user, "prose": "Again"}),
        ("regenerate", {"event_id": first_beat}),
    ):
        answer = await client.ask(kind, chat_id=chat_id, **fields)
        assert (answer["type"], answer["code"]) == ("error", "busy"), (kind, answer)
    assert await server.event_count() == before
    await client.ask("cancel", chat_id=chat_id)
    await client.until("turn_settled")


async def test_the_rewind_preview_speaks_plainly(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await exchange(client, server, chat_id, '"First."', "One.")
    await exchange(client, server, chat_id, '"Second."', "Two.")
    state = await client.ask("open_chat", chat_id=chat_id)
    preview = await client.ask(
        "rewind_preview", chat_id=chat_id, event_id=state["timeline"][1]["event_id"]
    )
    assert preview["summary"].endswith("move to a branch you can return to")
    assert preview["summary"].startswith("2 turns, 2 memories")
