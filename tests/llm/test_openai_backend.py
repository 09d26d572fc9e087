"""The openai backend over real loopback HTTP against a misbehaving test server."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from llm import (
    ClassifierRequest,
    Message,
    ModelHTTPError,
    ModelOutputError,
    ModelProtocolError,
    ModelSettings,
    ModelStalled,
    ModelTimeout,
    NarrativeRequest,
    OpenAIBackend,
    Timeouts,
)
from tests.support.openai_server import OpenAIServer

KEY = "sk-secret-key-123"
SCORE = {
    "type": "object",
    "properties": {"significance": {"type": "integer"}},
    "required": ["significance"],
}


def backend(server: OpenAIServer, **overrides: Any) -> OpenAIBackend:
    options: dict[str, Any] = {
        "backend": "openai",
        "base_url": server.url,
        "model": "test-model",
        "api_key": KEY,
        "timeouts": Timeouts(connect=2, first_token=2, stall=0.3, total=10),
    }
    options.update(overrides)
    return OpenAIBackend(ModelSettings(**options))


REQUEST = NarrativeRequest(
    (Message("system", "You are Mira."), Message("user", "Hello!", "Ana O'Neil")), speaker="Mira"
)


async def collect(model: OpenAIBackend, request: NarrativeRequest = REQUEST) -> str:
    parts = []
    async with model.stream(request) as chunks:
        async for text in chunks:
            parts.append(text)
    return "".join(parts)


async def test_streams_text_past_role_empty_and_usage_chunks(server: OpenAIServer) -> None:
    model = backend(server)
    assert await collect(model) == "Mira squints at the key."
    body = server.requests[0]
    assert body["stream"] is True and body["model"] == "test-model"
    assert body["messages"][1] == {"role": "user", "content": "Hello!", "name": "Ana_O_Neil"}
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    await model.aclose()


async def test_retries_429_and_500_before_the_first_token_honouring_retry_after(
    server: OpenAIServer,
) -> None:
    server.script.fail_first = 2
    server.script.fail_status = 429
    server.script.retry_after = 0.2
    model = backend(server)
    started = trio.current_time()
    assert await collect(model) == "Mira squints at the key."
    assert trio.current_time() - started >= 0.4  # two waits of Retry-After
    assert len(server.requests) == 3
    assert model.statistics().retries == 2
    server.script.fail_first, server.failures_sent = 5, 0
    server.script.fail_status, server.script.retry_after = 500, 0
    with pytest.raises(ModelHTTPError, match="gave up after 4 tries"):
        await collect(model)


async def test_no_retry_after_the_first_token_so_text_is_never_duplicated(
    server: OpenAIServer,
) -> None:
    server.script.cut_after = 2
    model = backend(server)
    parts: list[str] = []
    with pytest.raises(ModelProtocolError):
        async with model.stream(REQUEST) as chunks:
            async for text in chunks:
                parts.append(text)
    assert "".join(parts) == "Mira squints"
    assert len(server.requests) == 1


async def test_a_stall_between_tokens_and_no_first_token_time_out(server: OpenAIServer) -> None:
    server.script.stall_after = 2
    with pytest.raises(ModelStalled):
        await collect(backend(server))
    server.script.stall_after = 0
    with pytest.raises(ModelTimeout):
        await collect(backend(server, timeouts=Timeouts(first_token=0.3, stall=5, total=10)))
    server.script.stall_after = None
    server.script.rate = 10
    with pytest.raises(ModelTimeout, match="longer than allowed"):
        await collect(backend(server, timeouts=Timeouts(first_token=5, stall=5, total=0.25)))


async def test_an_answer_that_is_not_an_event_stream_is_a_protocol_error(
    server: OpenAIServer,
) -> None:
    server.script.body = '{"choices": []}'  # a 200 in application/json
    with pytest.raises(ModelProtocolError, match="not server-sent events"):
        await collect(backend(server))


async def test_malformed_chunks_and_error_objects_mid_stream(server: OpenAIServer) -> None:
    server.script.malformed_after = 1
    with pytest.raises(ModelProtocolError, match="malformed"):
        await collect(backend(server))
    server.script.malformed_after = None
    server.script.error_after = 2
    server.script.error_message = f"overloaded (your key {KEY})"
    with pytest.raises(ModelHTTPError) as info:
        await collect(backend(server))
    assert "overloaded" in str(info.value) and KEY not in str(info.value)


async def test_the_key_never_appears_in_errors_or_logs(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.status, server.script.body = 401, f'{{"error": {{"message": "bad key {KEY}"}}}}'
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelHTTPError) as info:
        await collect(backend(server))
    assert info.value.status == 401
    assert "answered 401 to a beat" in caplog.text and "bad key [key]" in caplog.text
    assert KEY not in str(info.value) and KEY not in caplog.text
    assert KEY not in repr(ModelSettings(api_key=KEY))


async def test_leaving_the_stream_closes_the_response(server: OpenAIServer) -> None:
    server.script.text = " ".join(["word"] * 200)
    server.script.rate = 50
    model = backend(server)
    async with model.stream(REQUEST) as chunks:
        async for _text in chunks:
            break
    with trio.fail_after(5):
        await server.disconnected.wait()
    assert server.disconnects == 1 and server.completed == 0
    server.disconnected = trio.Event()
    with trio.move_on_after(0.05):  # cancelling the consumer also closes it
        await collect(model)
    with trio.fail_after(5):
        await server.disconnected.wait()
    assert server.disconnects == 2


async def test_one_cap_for_everyone_with_narrative_first(server: OpenAIServer) -> None:
    server.script.text = "one two three"
    server.script.first_delay = 0.2
    model = backend(server, max_connections=1)
    order: list[str] = []

    async def narrative(tag: str) -> None:
        await collect(model, NarrativeRequest((Message("user", tag),), speaker="Mira"))
        order.append(tag)

    async def classifier(tag: str) -> None:
        await model.complete_json(ClassifierRequest(tag, (Message("user", tag),), SCORE))
        order.append(tag)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(narrative, "first")
        await trio.testing.wait_all_tasks_blocked()
        assert model.statistics().in_use == 1  # held while the server holds its answer
        nursery.start_soon(classifier, "background")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(narrative, "urgent")
        await trio.testing.wait_all_tasks_blocked()
        stats = model.statistics()
        assert (stats.waiting_urgent, stats.waiting_background) == (1, 1)
    assert order == ["first", "urgent", "background"]
    assert model.statistics().in_use == 0


async def test_a_beat_cancelled_at_any_point_gives_its_slot_back(server: OpenAIServer) -> None:
    model = backend(server, max_connections=1)
    # Already cancelled: nothing is sent, no slot is held.
    with trio.CancelScope() as scope:
        scope.cancel()
        await collect(model)
    assert server.requests == [] and model.statistics().in_use == 0
    # Queued behind another holder of the one slot.
    await model.limiter.acquire(urgent=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, model)
        await trio.testing.wait_all_tasks_blocked()
        assert model.statistics().waiting_urgent == 1
        nursery.cancel_scope.cancel()
    model.limiter.release()
    assert model.statistics().in_use == 0 and server.requests == []
    # Sent, waiting for the first token.
    server.script.first_delay = 30
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect, model)
        with trio.fail_after(5):
            await server.requested.wait()
        nursery.cancel_scope.cancel()
    with trio.fail_after(5):
        await server.disconnected.wait()
    assert model.statistics().in_use == 0
    server.script.first_delay = 0
    assert await collect(model) == "Mira squints at the key."
    assert model.statistics().in_use == 0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("schema", {"type": "json_schema", "json_schema": {"name": "score", "schema": SCORE}}),
        ("object", {"type": "json_object"}),
        ("none", None),
    ],
)
async def test_classifier_json_modes(
    server: OpenAIServer, mode: str, expected: dict[str, Any] | None
) -> None:
    server.script.content = 'Sure! ```json\n{"significance": 3}\n``` hope that helps'
    model = backend(server, json_mode=mode)
    answer = await model.complete_json(
        ClassifierRequest("score", (Message("system", "Rate."), Message("user", "this")), SCORE)
    )
    assert answer == {"significance": 3}
    sent = server.requests[-1]
    assert sent.get("response_format") == expected
    # Where the server is not handed the schema, the system message describes it.
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Rate.")
    assert ('"required":["significance"]' in system["content"]) == (mode != "schema")


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "answered 500" in r.getMessage()]


async def test_a_server_that_refuses_json_schema_falls_back_to_json_object_for_good(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.refuse_formats = ("json_schema",)
    model = backend(server)
    request = ClassifierRequest("score", (Message("user", "rate this"),), SCORE)
    with caplog.at_level(logging.WARNING, logger="troupe.llm.openai"):
        assert await model.complete_json(request) == {"significance": 2}
    kinds = [body["response_format"]["type"] for body in server.requests]
    assert kinds == ["json_schema", "json_object"]  # asked again at once, not four times
    assert model.statistics().retries == 0 and model.statistics().json_mode == "object"
    (logged,) = refusals(caplog)
    assert "a classifier call" in logged and "Input should be 'text' or 'json_object'" in logged
    assert KEY not in caplog.text
    # The next call goes straight to the mode that worked.
    assert await model.complete_json(request) == {"significance": 2}
    assert len(server.requests) == 3 and server.refusals == 1
    assert server.requests[-1]["response_format"] == {"type": "json_object"}


async def test_a_server_that_refuses_both_formats_gets_prompt_only_json(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.refuse_formats = ("json_schema", "json_object")
    server.script.content = 'Here you go: {"significance": 4}'
    model = backend(server)
    request = ClassifierRequest("score", (Message("user", "rate this"),), SCORE)
    with caplog.at_level(logging.WARNING, logger="troupe.llm.openai"):
        assert await model.complete_json(request) == {"significance": 4}
        assert await model.complete_json(request) == {"significance": 4}
    formats = [body.get("response_format") for body in server.requests]
    assert formats == [
        {"type": "json_schema", "json_schema": {"name": "score", "schema": SCORE}},
        {"type": "json_object"},
        None,
        None,
    ]
    assert len(refusals(caplog)) == 2 and model.statistics().json_mode == "none"
    prompt = server.requests[-1]["messages"][0]
    assert prompt["role"] == "system" and '"significance"' in prompt["content"]
    assert prompt["content"].startswith("Reply with one JSON object")


async def test_a_fixed_json_mode_is_never_changed(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.refuse_formats = ("json_schema",)
    model = backend(server, json_mode="schema", retries=0)
    request = ClassifierRequest("score", (Message("user", "rate this"),), SCORE)
    with caplog.at_level(logging.WARNING), pytest.raises(ModelHTTPError, match="status 500"):
        await model.complete_json(request)
    assert [body["response_format"]["type"] for body in server.requests] == ["json_schema"]
    assert model.statistics().json_mode == "schema" and len(refusals(caplog)) == 1


async def test_a_server_failing_in_every_mode_is_retried_and_no_mode_is_kept(
    server: OpenAIServer,
) -> None:
    server.script.fail_first, server.script.retry_after = 10, 0
    model = backend(server, retries=1)
    request = ClassifierRequest("score", (Message("user", "rate this"),), SCORE)
    with pytest.raises(ModelHTTPError, match="gave up after 2 tries: status 500"):
        await model.complete_json(request)
    formats = [(body.get("response_format") or {}).get("type") for body in server.requests]
    assert formats == ["json_schema", "json_object", None, None]
    assert model.statistics().json_mode == "schema"


def test_an_unknown_json_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="json_mode"):
        ModelSettings(json_mode="grammar")  # type: ignore[arg-type]


async def test_classifier_output_that_is_not_the_json_asked_for(server: OpenAIServer) -> None:
    model = backend(server)
    server.script.content = "I would say quite significant."
    with pytest.raises(ModelOutputError):
        await model.complete_json(ClassifierRequest("score", (Message("user", "x"),), SCORE))
    server.script.content = '{"mood": "happy"}'
    with pytest.raises(ModelOutputError, match="significance"):
        await model.complete_json(ClassifierRequest("score", (Message("user", "x"),), SCORE))
    server.script.fail_first, server.script.retry_after = 1, 0
    server.script.content = '{"significance": 1}'
    answer = await model.complete_json(ClassifierRequest("score", (Message("user", "x"),), SCORE))
    assert answer == {"significance": 1}


async def test_a_server_that_is_not_there_is_retried_then_a_clear_error() -> None:
    listener = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener[0].socket.getsockname()[1]
    await listener[0].aclose()  # nothing listens there now
    model = OpenAIBackend(
        ModelSettings(
            backend="openai",
            base_url=f"http://127.0.0.1:{port}/v1",
            retries=2,
            timeouts=Timeouts(connect=1, first_token=2, stall=1, total=20),
        )
    )
    with pytest.raises(ModelHTTPError, match="gave up after 3 tries: connection failed"):
        await collect(model)
    assert model.statistics().retries == 2


def test_a_continuation_shows_the_reply_so_far_then_asks_to_go_on() -> None:
    from llm import GO_ON, Message, NarrativeRequest, continuation_messages

    asked = (Message("user", "Well?", "Wren"),)
    plain = NarrativeRequest(asked, speaker="Mira")
    assert continuation_messages(plain) == asked
    more = NarrativeRequest(asked, speaker="Mira", continues="Mira sighs.")
    assert continuation_messages(more) == (
        *asked,
        Message("assistant", "Mira sighs.", "Mira"),
        Message("user", GO_ON),
    )
