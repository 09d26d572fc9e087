"""What the classifier passes are given: both personas, the witness and the place, never OOC."""

from __future__ import annotations

from actors import Engine
from llm import ClassifierRequest, ScriptedBackend
from protocol import YOU_ID
from store import Store

SAILOR = "A sailor looking for her brother."
BARKEEP = "Keeps the bar at the Gilded Eel; dry, observant."


def text_of(request: ClassifierRequest) -> str:
    return "\n".join(message.content for message in request.messages)


def classifier_requests(backend: ScriptedBackend, name: str) -> list[ClassifierRequest]:
    return [r for r in backend.requests if isinstance(r, ClassifierRequest) and r.name == name]


async def test_a_state_update_carries_both_personas_and_the_summary_its_witness_and_place(
    engine: Engine, backend: ScriptedBackend
) -> None:
    await engine.set_you("Ana", SAILOR)
    mira = await engine.create_bot("Mira", BARKEEP, "")
    chat_id = (await engine.create_chat(mira.id, None, "The Gilded Eel")).id

    backend.push_narrative("Mira slides a glass over.")
    await engine.send_turn(chat_id, '((secret note: Ana is the smuggler)) "Evening."')
    await engine.wait_settled(chat_id)
    updates = {
        r.messages[-1].content.splitlines()[0]: text_of(r)
        for r in classifier_requests(backend, "state_update")
    }
    assert set(updates) == {f"pair: {mira.id} -> {YOU_ID}", f"pair: {YOU_ID} -> {mira.id}"}
    for prompt in updates.values():
        # Whichever way the pair points, both people are described.
        assert f"Ana: {SAILOR}" in prompt and f"Mira: {BARKEEP}" in prompt
        assert "(no description)" not in prompt
        assert 'Ana: "Evening."' in prompt
        assert "smuggler" not in prompt

    # The scene closes; the summary classifier fails, so the default is kept.
    backend.push_narrative("Mira wipes the counter.")
    await engine.send_turn(chat_id, '"Goodnight, Mira." *I head upstairs.* Fade out.')
    await engine.wait_settled(chat_id)
    (summary_request,) = classifier_requests(backend, "scene_summary")
    assert "Location: The Gilded Eel" in text_of(summary_request)
    assert "smuggler" not in text_of(summary_request)

    def summaries(s: Store) -> dict[str, str]:
        (closed,) = s.closed_scenes(chat_id)
        return s.scene_summaries(closed.id)

    summary = (await engine.store.run(summaries))[mira.id]
    # The extractive default tells the scene from the witness's side, at its place.
    assert summary.startswith("At The Gilded Eel: ")
    assert "I: Mira slides a glass over." in summary
    assert 'Ana: "Evening."' in summary
    assert "smuggler" not in summary
