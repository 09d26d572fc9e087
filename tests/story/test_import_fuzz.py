"""Whatever bytes arrive, reading them gives a result or a CardError: never another exception."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from story import CardError, card_v2_json, card_v3_json, read_import, write_card_png
from story._imports import ImportedCard
from tests.support.card_files import (
    apng,
    card_chunk,
    charx,
    jsonl,
    lorebook_v3,
    png,
    st_chat_lines,
    v2_card,
    v3_card,
    world_info,
)

SEEDS = [
    png(card_chunk("chara", v2_card())),
    apng(card_chunk("ccv3", v3_card())),
    charx(v3_card(), {"assets/icon/images/main.png": png()}),
    json.dumps(v2_card()).encode(),
    json.dumps(world_info()).encode(),
    json.dumps(lorebook_v3()).encode(),
    jsonl(st_chat_lines()),
]


def read_or_refuse(data: bytes) -> None:
    try:
        imported = read_import(data)
    except CardError as exc:
        assert exc.message
        return
    if isinstance(imported, ImportedCard):
        # Whatever was read can be written out again.
        card_v2_json(imported.card)
        card_v3_json(imported.card)
        write_card_png(imported.card, imported.avatar)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_damaged_files_are_read_or_refused(seed: bytes, data: st.DataObject) -> None:
    damaged = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            damaged[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del damaged[at:]
            if not damaged:
                damaged.append(0)
        else:
            damaged[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    read_or_refuse(bytes(damaged))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_read_or_refused(data: bytes) -> None:
    read_or_refuse(data)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_random_json_is_read_or_refused(value: object) -> None:
    read_or_refuse(json.dumps(value).encode())
    if isinstance(value, dict):
        for shape in (
            {"name": "x", **value},
            {"entries": value},
            {"spec": "lorebook_v3", "data": value},
        ):
            read_or_refuse(json.dumps(shape).encode())


def test_deep_nesting_is_refused() -> None:
    read_or_refuse(b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
