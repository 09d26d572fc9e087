"""The dialogue window starts where a block starts, so its start stays put for a while."""

from __future__ import annotations

from itertools import pairwise

from protocol import Turn
from story import DIALOGUE_BLOCK, block_of, stable_window


def turns(exchanges: int, ids: int = 10) -> list[Turn]:
    out = []
    for k in range(1, exchanges + 1):
        out.append(Turn(k * ids, "user", "you", f"ask {k}", False, None, k * ids))
        out.append(Turn(k * ids + 1, "assistant", "mira", f"beat {k}", False, None, k * ids))
    return out


def test_a_short_chat_is_read_whole() -> None:
    assert stable_window(turns(5), 20) == tuple(turns(5))
    assert stable_window(turns(5), 0) == ()


def test_the_start_moves_only_when_a_whole_block_falls_out() -> None:
    starts = []
    for n in range(12, 61):
        fetched = turns(n)[-(20 + DIALOGUE_BLOCK) :]  # what the store returns
        window = stable_window(fetched, 20)
        assert 0 < len(window) <= 20
        first = window[0]
        index = fetched.index(first)
        assert block_of(first.event_id) != block_of(fetched[index - 1].event_id)
        starts.append(first.event_id)
    moves = sum(1 for a, b in pairwise(starts) if a != b)
    # An exchange takes 10 ids here, so a block is about 3 exchanges: the start
    # moves about once in 3 turns, not on every one.
    assert moves <= len(starts) // 3 + 1


def test_without_a_block_start_in_reach_it_is_the_last_limit() -> None:
    dense = turns(30, ids=1)[:40]  # ids 1..31: everything in one or two blocks
    window = stable_window(dense, 20)
    assert len(window) <= 20
    assert window[-1] == dense[-1]
