"""Token frames made once for every watcher: the same bytes as before, and never stale."""

from __future__ import annotations

import json

import trio
import trio.testing

import protocol
from web._outbox import Outbox
from web._wire import Encoded, encode, token_frame


def token(offset: int, text: str) -> protocol.Token:
    return protocol.Token("c1", 6, "mira", offset, text)


def test_a_token_frame_is_the_protocols_own_encoding() -> None:
    quote = token(12, ' "Où est-il ?" — elle rit')
    frame = token_frame(quote)
    assert frame == protocol.to_wire(quote)
    assert encode(frame) == protocol.encode_server(quote)


def test_equal_tokens_share_one_frame() -> None:
    assert token_frame(token(0, "Mira")) is token_frame(token(0, "Mira"))


def test_a_merged_token_is_encoded_from_its_merged_text() -> None:
    outbox = Outbox(4)
    assert outbox.try_put(token_frame(token(0, "Mira")))
    assert outbox.try_put(token_frame(token(4, " squints")))
    assert len(outbox) == 1
    merged = outbox._frames[0]
    assert type(merged) is not Encoded
    assert json.loads(encode(merged)) == {
        "type": "token",
        "chat_id": "c1",
        "beat_id": 6,
        "speaker_id": "mira",
        "offset": 0,
        "text": "Mira squints",
    }
    # The frame the first watcher queued is untouched for the chat's other watchers.
    assert encode(token_frame(token(0, "Mira"))) == protocol.encode_server(token(0, "Mira"))


def test_try_put_refuses_only_when_full() -> None:
    outbox = Outbox(1)
    assert outbox.try_put({"type": "ok", "reply_to": "1"})
    assert not outbox.try_put({"type": "ok", "reply_to": "2"})
    assert len(outbox) == 1
    outbox.close()
    assert outbox.try_put({"type": "ok", "reply_to": "3"})  # dropped: nobody reads
    assert len(outbox) == 0


def test_claim_takes_only_an_idle_outbox_and_holds_later_frames_behind_it() -> None:
    outbox = Outbox(4)
    assert outbox.claim()  # idle: the caller sends this frame itself
    assert not outbox.claim()  # one is on its way: the next one queues
    assert outbox.try_put({"type": "ok", "reply_to": "1"}) and len(outbox) == 1
    outbox.sent()
    assert not outbox.claim()  # still one queued, which must go out first
    assert outbox.moved == 2 and outbox.direct == 1
    outbox.close()
    assert not outbox.claim()


async def test_drained_waits_for_a_frame_sent_by_its_claimer() -> None:
    outbox = Outbox(4)
    assert outbox.claim()
    done: list[bool] = []

    async def drain() -> None:
        await outbox.drained()
        done.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []
        outbox.sent()
    assert done == [True]
