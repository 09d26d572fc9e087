"""The worker's prefix cache: a chat's evaluated prompt, kept between its turns.

A beat's prompt starts with what changes least (the speaker's card, the
scene, the older dialogue) and ends with what changes every turn, so the
next beat of the same chat shares a long prefix with the last one. llama.cpp
keeps the evaluated prompt in its context (the KV cache), but a classifier
call or another chat's beat overwrites it. The worker therefore saves the
context's state under the chat's key before anything else is evaluated, and
loads it back when the chat's next beat finds more of its prompt there than
in the live context.

Entries are the llama.cpp sequence state (about 8 KB a token for Gemma 3
270M) and the tokens it holds; the cache keeps the most recently used ones
within a byte cap (least recently used go first; an entry larger than the
cap is never kept; a cap of 0 turns the cache off). It lives in the worker
process: a worker that dies takes its cache with it, and nothing else.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import attrs

DEFAULT_CAP = 256 * 1024 * 1024
"""Bytes of saved state a worker keeps at the most: about 20 chats of 1,600 prompt tokens."""


@attrs.frozen
class Entry:
    """One saved context: the tokens it holds and llama.cpp's state of them."""

    tokens: tuple[int, ...]
    state: bytes


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same


class PrefixCache:
    """Saved contexts by key, least recently used first, within ``cap`` bytes."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = max(0, cap)
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        """Times a saved context was loaded back."""
        self.saves = 0
        self.evictions = 0
        """Entries dropped to stay under the cap."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Entry | None:
        """The entry under ``key``, now the most recently used; None if there is none."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        """Keep ``entry`` under ``key`` (replacing the old one), then evict down to the cap."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old.state)
        if len(entry.state) > self.cap:
            return  # it would push out everything else and still not fit
        self._entries[key] = entry
        self.bytes += len(entry.state)
        self.saves += 1
        while self.bytes > self.cap:
            _, gone = self._entries.popitem(last=False)
            self.bytes -= len(gone.state)
            self.evictions += 1

    def statistics(self) -> dict[str, int]:
        """The figures the worker reports with each request."""
        return {
            "entries": len(self._entries),
            "bytes": self.bytes,
            "cap": self.cap,
            "hits": self.hits,
            "saves": self.saves,
            "evictions": self.evictions,
        }
