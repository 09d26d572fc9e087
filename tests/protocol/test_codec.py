"""The wire codec: strict types, clear errors, lenient extras, round trips."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol import events as ev
from protocol._codec import _load
from protocol._validators import FieldTooLarge, stored_read


def error_of(frame: str | bytes) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        p.decode_client(frame)
    return info.value


def test_decodes_every_type_with_id_and_ignores_unknown_fields() -> None:
    env = p.decode_client('{"type":"send_turn","id":"a1","chat_id":"c1","prose":"Hi","x":1}')
    assert env.message == p.SendTurn(chat_id="c1", prose="Hi")
    assert env.id == "a1"
    assert env.type == "send_turn"
    assert p.decode_client('{"type":"list_bots"}').message == p.ListBots()
    forced = p.decode_client('{"type":"send_turn","chat_id":"c1","prose":"Hi","reply_as":"b2"}')
    assert forced.message == p.SendTurn(chat_id="c1", prose="Hi", reply_as="b2")


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ("not json", "bad_json", "not valid JSON"),
        ("[1, 2]", "bad_json", "not a JSON object"),
        ('{"id":"x"}', "bad_message", "type"),
        ('{"type":"dance"}', "unknown_type", "dance"),
        ('{"type":"send_turn","chat_id":5,"prose":"hi"}', "bad_message", "chat_id"),
        ('{"type":"send_turn","chat_id":"c"}', "bad_message", "prose: required field missing"),
        ('{"type":"send_turn","chat_id":"c","prose":"   "}', "bad_message", "must not be empty"),
        ('{"type":"pin_memory","memory_id":true,"pinned":true}', "bad_message", "integer"),
        ('{"type":"pin_memory","memory_id":1,"pinned":1}', "bad_message", "true or false"),
        ('{"type":"list_bots","id":7}', "bad_message", "id must be a string"),
        ('{"type":"list_bots","id":"' + "i" * 65 + '"}', "too_large", "id"),
    ],
)
def test_errors_name_the_problem(frame: str, code: str, words: str) -> None:
    error = error_of(frame)
    assert error.code == code
    assert words in error.message


def test_field_and_frame_limits_are_too_large() -> None:
    prose = "x" * 8001
    assert error_of(json.dumps({"type": "send_turn", "chat_id": "c", "prose": prose})).code == (
        "too_large"
    )
    assert error_of(" " * (64 * 1024 + 1)).code == "too_large"


def test_reply_to_is_kept_on_errors_after_the_id_is_read() -> None:
    assert error_of('{"type":"nope","id":"q"}').reply_to == "q"


def test_server_messages_carry_type_and_reply_to() -> None:
    wire = p.to_wire(p.Accepted("c1", 5), "a", direct=True)
    assert wire == {"type": "accepted", "chat_id": "c1", "user_turn_id": 5, "reply_to": "a"}
    assert p.to_wire(p.TurnSettled("c1", 4, seq=9)) == {
        "type": "turn_settled",
        "chat_id": "c1",
        "user_turn_id": 4,
        "seq": 9,
    }
    assert p.to_wire(p.Error("busy", "later"))["reply_to"] is None


def test_every_client_type_round_trips() -> None:
    samples: list[p.ClientMessage] = [
        p.Hello(1),
        p.SetYou("Ana", "a sailor"),
        p.CreateBot("Mira", "barkeep", "Welcome."),
        p.UpdateBot("mira", persona="gruff"),
        p.CreateChat("mira", "tom", "The Eel", "Night"),
        p.OpenChat("c1", 3),
        p.Regenerate("c1", 10, "edited"),
        p.CreateWorldEvent(
            "c1",
            "Storm",
            "A storm hits",
            p.Artifacts(acquired_objects=(p.ObjectArtifact("you", "lantern"),)),
        ),
    ]
    assert set(p.CLIENT_TYPES) >= {"hello", "send_turn", "rewind", "pin_memory"}
    for message in samples:
        assert p.decode_client(p.encode_client(message, id="z")).message == message


@given(st.text(max_size=200))
def test_decoding_arbitrary_text_never_crashes(frame: str) -> None:
    try:
        p.decode_client(frame)
    except p.ProtocolError as exc:
        assert exc.code in {"bad_json", "bad_message", "unknown_type", "too_large"}


def test_events_round_trip_and_bad_payloads_are_refused() -> None:
    event = ev.AssistantTurn("c1", "mira", 3, 4, "Hello", truncated=True, error="cancelled")
    kind, text = p.dump_event(event)
    assert kind == "assistant_turn"
    assert p.load_event(kind, text) == event
    with pytest.raises(p.EventPayloadError, match="unknown event kind"):
        p.load_event("nonsense", "{}")
    with pytest.raises(p.EventPayloadError, match="significance"):
        p.load_event("memory_scored", '{"chat_id":"c1","memory_id":1,"significance":"high"}')
    with pytest.raises(p.EventPayloadError, match="malformed user_turn"):
        p.load_event("user_turn", '{"chat_id":"c1","prose":"hi","segments":[{"kind":"x"}]}')


# --- hostile input: every frame decodes to something storable, or is refused ---

LONE = "\ud800"
BIG = 2**63
"""One past the largest integer SQLite stores."""

VALID: dict[str, dict[str, Any]] = {
    "hello": {"protocol": 1},
    "set_you": {"name": "Ana", "persona": "a sailor"},
    "list_bots": {},
    "list_lorebooks": {},
    "create_bot": {"name": "Mira", "persona": "barkeep", "greeting": "Hi."},
    "update_bot": {"bot_id": "mira", "name": "Mira", "persona": "gruff", "greeting": "Hm."},
    "delete_bot": {"bot_id": "mira"},
    "list_chats": {},
    "create_chat": {
        "host_bot_id": "mira",
        "guest_bot_id": "tom",
        "location": "Eel",
        "title": "T",
        "continue_from": "c0",
    },
    "open_chat": {"chat_id": "c1", "after_seq": 3},
    "close_chat": {"chat_id": "c1"},
    "send_turn": {"chat_id": "c1", "prose": "Hello", "reply_as": "mira", "queue": True},
    "cancel": {"chat_id": "c1", "queued": True},
    "regenerate": {"chat_id": "c1", "event_id": 9, "prose": "again"},
    "rewind_preview": {"chat_id": "c1", "event_id": 9},
    "rewind": {"chat_id": "c1", "event_id": 9},
    "list_memories": {"bot_id": "mira", "chat_id": "c1"},
    "pin_memory": {"memory_id": 4, "pinned": True},
    "update_chat_settings": {"chat_id": "c1", "temperature": 0.7, "max_tokens": 200},
    "create_world_event": {
        "chat_id": "c1",
        "title": "Storm",
        "description": "A storm",
        "artifacts": {
            "knowledge_facts": [{"source_id": "mira", "target_id": "you", "fact": "is wet"}],
            "relationship_changes": [
                {"source_id": "mira", "target_id": "you", "affinity_delta": 5, "trust_delta": -5}
            ],
            "acquired_objects": [{"holder_id": "you", "name": "lantern"}],
        },
    },
    "get_statistics": {},
    "add_to_cast": {"chat_id": "c1", "bot_id": "ada"},
    "remove_from_cast": {"chat_id": "c1", "bot_id": "ada"},
    "enter_scene": {"chat_id": "c1", "bot_id": "ada"},
    "leave_scene": {"chat_id": "c1", "bot_id": "ada"},
    "mute": {"chat_id": "c1", "bot_id": "ada"},
    "unmute": {"chat_id": "c1", "bot_id": "ada"},
    "load_older": {"chat_id": "c1", "before_event_id": 40, "limit": 50},
    "update_card": {"bot_id": "mira", "description": "Keeps the bar.", "first_mes": "Hi."},
    "attach_lorebook": {"chat_id": "c1", "lorebook_id": "harbour-lore"},
    "detach_lorebook": {"chat_id": "c1", "lorebook_id": "harbour-lore"},
    "set_author_note": {"chat_id": "c1", "text": "Keep it tense.", "depth": 2},
    "create_persona": {"name": "Bea", "persona": "a smuggler"},
    "list_personas": {},
    "update_persona": {"persona_id": "bea", "name": "Bea", "persona": "a retired smuggler"},
    "take_seat": {"chat_id": "c1", "persona_id": "bea"},
    "select_alternative": {"chat_id": "c1", "event_id": 9},
    "list_branches": {"chat_id": "c1"},
    "switch_branch": {"chat_id": "c1", "branch_id": 12},
    "edit_turn": {"chat_id": "c1", "event_id": 9, "prose": "Said anew."},
    "continue": {"chat_id": "c1"},
}
"""A well-formed message of every client type, every optional field given."""


def frame_of(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


Path = tuple[str | int, ...]


def leaves(value: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """Every scalar in a JSON value, with the keys and indexes that lead to it."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in leaves(v, (*path, i))]
    return [(path, value)]


def label(path: Path) -> str:
    """A path as the codec's errors name it: ``artifacts.knowledge_facts[0].fact``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text.lstrip(".")


def replace(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the scalar at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {k: replace(v, tuple(rest), new) if k == head else v for k, v in value.items()}
    if isinstance(value, list):
        return [replace(v, tuple(rest), new) if i == head else v for i, v in enumerate(value)]
    return value


def test_the_valid_samples_cover_every_type_and_decode() -> None:
    assert set(VALID) == set(p.CLIENT_TYPES)
    for kind, fields in VALID.items():
        assert p.decode_client(frame_of(kind, **fields)).type == kind


STRING_FIELDS = [
    (kind, path)
    for kind, fields in VALID.items()
    for path, v in leaves(fields)
    if isinstance(v, str)
]
INT_FIELDS = [
    (kind, path)
    for kind, fields in VALID.items()
    for path, v in leaves(fields)
    if isinstance(v, int) and not isinstance(v, bool)
]


@pytest.mark.parametrize(("kind", "path"), STRING_FIELDS, ids=str)
def test_every_string_field_refuses_a_lone_surrogate(kind: str, path: Path) -> None:
    fields = replace(VALID[kind], path, f"a{LONE}b")
    error = error_of(frame_of(kind, id="s", **fields))
    assert error.code == "bad_message"
    assert label(path) in error.message
    assert "surrogate" in error.message
    assert error.reply_to == "s"


@pytest.mark.parametrize(("kind", "path"), INT_FIELDS, ids=str)
@pytest.mark.parametrize("number", [BIG, 2**64, -BIG - 1, 10**40], ids=str)
def test_every_integer_field_is_bounded_to_64_bits(kind: str, path: Path, number: int) -> None:
    error = error_of(frame_of(kind, **replace(VALID[kind], path, number)))
    assert error.code == "bad_message"
    assert str(path[-1]) in error.message


@pytest.mark.parametrize(("kind", "path"), INT_FIELDS, ids=str)
def test_no_integer_field_takes_a_boolean(kind: str, path: Path) -> None:
    error = error_of(frame_of(kind, **replace(VALID[kind], path, True)))
    assert error.code == "bad_message"
    assert "integer" in error.message


@pytest.mark.parametrize(
    ("kind", "fields", "words"),
    [
        ("rewind_preview", {"chat_id": "c1", "event_id": 0}, "event_id must be between 1"),
        ("rewind", {"chat_id": "c1", "event_id": -1}, "event_id must be between 1"),
        ("regenerate", {"chat_id": "c1", "event_id": 0}, "event_id must be between 1"),
        ("pin_memory", {"memory_id": 0, "pinned": True}, "memory_id must be between 1"),
        ("open_chat", {"chat_id": "c1", "after_seq": -1}, "after_seq must be between 0"),
        (
            "create_world_event",
            replace(
                VALID["create_world_event"],
                ("artifacts", "relationship_changes", 0, "trust_delta"),
                101,
            ),
            "trust_delta must be between -100 and 100",
        ),
    ],
)
def test_ids_seqs_and_deltas_keep_to_their_ranges(
    kind: str, fields: dict[str, Any], words: str
) -> None:
    error = error_of(frame_of(kind, **fields))
    assert (error.code, words in error.message) == ("bad_message", True)


def test_the_edges_of_every_range_are_accepted() -> None:
    top = BIG - 1
    assert p.decode_client(frame_of("rewind", chat_id="c", event_id=top)).message == p.Rewind(
        "c", top
    )
    assert p.decode_client(frame_of("rewind_preview", chat_id="c", event_id=1)).type == (
        "rewind_preview"
    )
    assert p.decode_client(frame_of("open_chat", chat_id="c", after_seq=0)).message == p.OpenChat(
        "c", 0
    )
    change = {"source_id": "a", "target_id": "b", "affinity_delta": -100, "trust_delta": 100}
    fields = {"chat_id": "c", "title": "t", "artifacts": {"relationship_changes": [change]}}
    assert p.decode_client(frame_of("create_world_event", **fields)).type == "create_world_event"


def test_an_id_with_a_lone_surrogate_is_not_echoed() -> None:
    error = error_of(frame_of("list_bots", id=f"x{LONE}"))
    assert (error.code, error.reply_to) == ("bad_message", None)
    assert "id" in error.message
    assert p.peek_id(frame_of("list_bots", id=f"x{LONE}")) is None
    assert p.peek_id(frame_of("list_bots", id="fine")) == "fine"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [65, 1_000, 30_000])
def test_deep_nesting_is_bad_json(depth: int) -> None:
    error = error_of('{"type": "list_bots", "x": ' + nested(depth - 1) + "}")
    assert error.code == "bad_json"
    assert "nests too deeply" in error.message
    assert error_of(nested(depth)).code == "bad_json"
    assert p.peek_id(nested(depth)) is None


def test_nesting_up_to_the_limit_is_fine_and_the_id_is_kept_past_it() -> None:
    assert p.decode_client('{"type": "list_bots", "x": ' + nested(63) + "}").type == "list_bots"
    error = error_of('{"type": "list_bots", "id": "d", "x": ' + nested(64) + "}")
    assert (error.code, error.reply_to) == ("bad_json", "d")


WORLD = {"chat_id": "c1", "title": "Storm"}
LANTERN = {"holder_id": "you", "name": "lantern"}
FACT = {"source_id": "mira", "target_id": "you", "fact": "is wet"}


@pytest.mark.parametrize(
    ("artifacts", "code", "words"),
    [
        ([], "bad_message", "artifacts: expected an object"),
        ("", "bad_message", "artifacts: expected an object"),
        ({}, "bad_message", "at least one"),
        ({"acquired_objects": []}, "bad_message", "at least one"),
        ({"acquired_objects": {}}, "bad_message", "acquired_objects: expected a list"),
        ({"acquired_objects": "lantern"}, "bad_message", "expected a list"),
        ({"acquired_objects": ["lantern"]}, "bad_message", "expected an object"),
        ({"acquired_objects": [LANTERN] * 21}, "too_large", "at most 20"),
        (
            {
                "acquired_objects": [LANTERN] * 7,
                "knowledge_facts": [FACT] * 7,
                "relationship_changes": [{"source_id": "a", "target_id": "b"}] * 7,
            },
            "too_large",
            "21 changes",
        ),
    ],
)
def test_artifacts_when_given_name_one_to_twenty_changes(
    artifacts: Any, code: str, words: str
) -> None:
    error = error_of(frame_of("create_world_event", **WORLD, artifacts=artifacts))
    assert error.code == code
    assert words in error.message


def test_artifacts_may_be_left_out_and_twenty_is_allowed() -> None:
    bare = p.decode_client(frame_of("create_world_event", **WORLD)).message
    assert bare == p.CreateWorldEvent("c1", "Storm")
    # A message without artifacts encodes without them, so it decodes again.
    assert "artifacts" not in p.encode_client(bare)
    assert p.decode_client(p.encode_client(bare)).message == bare
    full = p.decode_client(
        frame_of("create_world_event", **WORLD, artifacts={"acquired_objects": [LANTERN] * 20})
    )
    assert isinstance(full.message, p.CreateWorldEvent)
    assert full.message.artifacts.count == 20


def test_the_log_refuses_to_write_what_the_wire_refuses() -> None:
    with pytest.raises(p.EventPayloadError, match="64-bit"):
        p.check_event(ev.ChatRewound("c1", 2**64))
    with pytest.raises(p.EventPayloadError, match="surrogate"):
        p.load_event("user_turn", json.dumps({"chat_id": "c1", "prose": LONE, "segments": []}))
    with pytest.raises(FieldTooLarge, match="at most 20"):
        p.check_event(
            ev.WorldEventCreated(
                "c1",
                "Storm",
                artifacts=p.Artifacts(acquired_objects=(p.ObjectArtifact("you", "x"),) * 21),
            )
        )


HOSTILE = (
    st.integers()
    | st.sampled_from([BIG, -BIG - 1, 2**64, 0, -1, True, False, None, 1.5, [], {}])
    | st.text(max_size=8)
    | st.builds(
        lambda a, s, b: a + s + b,
        st.text(max_size=4),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.text(max_size=4),
    )
)


def is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(value: Any) -> bool:
    """Whether every scalar of an unstructured message fits SQLite and UTF-8."""
    for _, leaf in leaves(value):
        if isinstance(leaf, str) and not is_text(leaf):
            return False
        if isinstance(leaf, int) and not -BIG <= leaf < BIG:
            return False
    return True


@given(
    st.sampled_from(sorted(VALID)).flatmap(
        lambda kind: st.tuples(
            st.just(kind),
            st.lists(
                st.sampled_from([path for path, _ in leaves(VALID[kind])] or [("x",)]), max_size=3
            ),
            st.lists(HOSTILE, min_size=3, max_size=3),
        )
    ),
    st.none() | HOSTILE,
)
def test_hostile_fields_decode_to_storable_messages_or_a_protocol_error(
    case: tuple[str, list[Path], list[Any]], ident: Any
) -> None:
    kind, paths, values = case
    fields = VALID[kind]
    for path, value in zip(paths, values, strict=False):
        fields = replace(fields, path, value)
    frame = json.dumps({"type": kind, "id": ident, "extra": values[-1], **fields})
    try:
        envelope = p.decode_client(frame)
    except p.ProtocolError as exc:
        assert exc.code in {"bad_json", "bad_message", "too_large"}
        assert exc.reply_to is None or is_text(exc.reply_to)
        # The answer itself can always be sent.
        p.encode_server(p.Error(exc.code, exc.message), exc.reply_to).encode("utf-8")
        return
    assert storable(p.converter.unstructure(envelope.message))
    assert envelope.id is None or is_text(envelope.id)
    p.encode_client(envelope.message, envelope.id).encode("utf-8")


def _outcome(check: Any) -> tuple[str, Any]:
    try:
        return "ok", check()
    except (p.EventPayloadError, ValueError, TypeError) as exc:
        return "refused", type(exc).__name__


def _full_round_trip(event: ev.Event) -> ev.Event:
    """What appending did before the quick check: encode, then decode with the limits."""
    kind, text = p.dump_event(event)
    return _load(kind, text)


@given(
    st.tuples(HOSTILE, HOSTILE, HOSTILE, HOSTILE),
    st.sampled_from(["user_turn", "assistant_turn", "chat_rewound", "bot_created"]),
)
def test_the_quick_check_decides_as_the_full_round_trip(
    values: tuple[Any, ...], kind: str
) -> None:
    a, b, c, d = values
    build = {
        "user_turn": lambda: ev.UserTurn(
            "c1", a, (p.Segment("dialogue", b),), present=d, person_id=c
        ),
        "assistant_turn": lambda: ev.AssistantTurn("c1", "mira", a, b, "text", error=c),
        "chat_rewound": lambda: ev.ChatRewound(a, b),
        "bot_created": lambda: ev.BotCreated(a, "Mira", b, c),
    }[kind]
    try:
        event = build()
    except (ValueError, TypeError):
        return  # refused already when built
    quick = _outcome(lambda: p.checked_payload(event)[0])
    full = _outcome(lambda: _full_round_trip(event))
    assert quick[0] == full[0]
    if quick[0] == "ok":
        assert quick[1] == full[1]


def test_the_quick_check_still_refuses_what_would_not_load_back() -> None:
    with pytest.raises(p.EventPayloadError, match="expected a string"):
        p.checked_payload(ev.UserTurn("c1", cast(Any, 5), ()))
    with pytest.raises(p.EventPayloadError, match="surrogate"):
        p.checked_payload(ev.UserTurn("c1", LONE, ()))
    with pytest.raises(p.EventPayloadError, match="64-bit"):
        p.checked_payload(ev.ChatRewound("c1", BIG))
    # Built where the limits did not apply (a replay), then offered for writing: refused.
    over = stored_read(lambda: ev.UserTurn("c1", "x" * (p.MAX_PROSE + 1), ()))
    with pytest.raises(p.EventPayloadError, match="at most 8000"):
        p.checked_payload(over)
    # A list where a tuple belongs loads back as the tuple: the decoded copy is kept.
    listed = ev.UserTurn("c1", "hi", cast(Any, [p.Segment("narration", "hi")]))
    kept, kind, _ = p.checked_payload(listed)
    assert kind == "user_turn" and isinstance(kept.segments, tuple)
    plain = ev.UserTurn("c1", "hi", (p.Segment("narration", "hi"),))
    assert p.checked_payload(plain)[0] is plain  # nothing to fix: not decoded again
