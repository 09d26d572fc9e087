"""The wire codec: strict types, clear errors, lenient extras, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p
from protocol import events as ev


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
        p.load_event("memory_scored", '{"chat_id":"c1","memory_id":1,"significance":9}')
    with pytest.raises(p.EventPayloadError, match="malformed user_turn"):
        p.load_event("user_turn", '{"chat_id":"c1","prose":"hi","segments":[{"kind":"x"}]}')
