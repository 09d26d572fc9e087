"""The guards and effects the turn's table is made of.

A guard reads the progress and the input and says whether its row applies;
an effect records what the input taught and says what to do next. Both are
pure. Every classifier request is built here from story's prompt builders,
and every transcript a classifier reads is :func:`transcript_lines` of the
dialogue read, so no OOC note reaches a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from attrs import evolve

from protocol import WorldEventStatus
from protocol import events as ev

from ._classifiers import (
    ADDRESSEE_SCHEMA,
    INTERJECTION_SCHEMA,
    LIFECYCLE_SCHEMA,
    SCENE_CLOSE_SCHEMA,
    SCENE_SUMMARY_SCHEMA,
    STATE_UPDATE_SCHEMA,
    InterjectionDecision,
    OpenEvent,
    SceneCloseDecision,
    SceneSummaryResult,
    StateChange,
    Transition,
    addressee_prompt,
    default_scene_summary,
    interjection_prompt,
    lifecycle_prompt,
    scene_close_prompt,
    scene_summary_prompt,
    state_update_prompt,
    validate_addressee,
    validate_interjection,
    validate_lifecycle,
    validate_scene_close,
    validate_scene_summary,
    validate_state_update,
)
from ._memory import pov_memory
from ._parse import prose_for_model
from ._prompt import Interjection
from ._scene_rules import Close, Unsure
from ._transcript import transcript_lines
from ._turn_io import (
    Answer,
    Append,
    Appended,
    BeatEnded,
    BeatRequest,
    CancelRequested,
    Classified,
    Classify,
    Command,
    Input,
    Loaded,
    OpenWorldEvent,
    PersonSaid,
    Read,
    ScoreSignificance,
    Settle,
    StopBeat,
    StreamBeat,
    TurnError,
)
from ._turn_state import (
    Phase,
    Progress,
    character_of,
    chosen_interjector,
    edge_of,
    expect,
    pairs_of,
    person_of,
    said_of,
    scene_ruling,
    silent_witnesses,
    speaker_by_rules,
)

Guard = Callable[[Progress, Input], bool]
Effect = Callable[[Progress, Input], tuple[Progress, tuple[Command, ...]]]

RECENT_FOR_STATE = 10
"""Turns of dialogue a state update reads (of which the prompt keeps the last few)."""
RECENT_FOR_SUMMARY = 40
"""Turns of dialogue a scene summary reads."""
OPEN_STATUSES: tuple[WorldEventStatus, ...] = ("planned", "active")

INTERJECTION = "interjection:"
STATE_UPDATE = "state_update:"
SCENE_SUMMARY = "scene_summary:"


def _answer(i: Input) -> Classified:
    return expect(i, Classified, "the answer")


def _key(i: Input) -> str:
    return i.key if isinstance(i, Classified) else ""


# --- guards ---


def always(p: Progress, i: Input) -> bool:
    """Otherwise."""
    return True


def no_scene_open(p: Progress, i: Input) -> bool:
    """The chat has no open scene."""
    return expect(i, Loaded, "the read").scene is None


def speaker_known(p: Progress, i: Input) -> bool:
    """The rules (or a regenerated beat) name the speaker."""
    return speaker_by_rules(p) is not None


def passes_due(p: Progress, i: Input) -> bool:
    """The beat said something, and is not an interjection cut short."""
    beat = expect(i, BeatEnded, "the beat")
    cut_short = p.phase is Phase.INTERJECTION and beat.truncated
    return bool(beat.text.strip()) and not cut_short


def interjection_open(p: Progress, i: Input) -> bool:
    """The primary beat completed, nobody cancelled, and someone else is present."""
    primary = p.beat is not None and p.beat is p.primary
    completed = p.primary is not None and p.primary.completed
    return primary and completed and p.cancel is None and bool(silent_witnesses(p))


def a_decision(p: Progress, i: Input) -> bool:
    """The answer is an interjection decision."""
    return _key(i).startswith(INTERJECTION)


def more_changes_due(p: Progress, i: Input) -> bool:
    """A state update is still out besides this one."""
    return _out(p, STATE_UPDATE, besides=_key(i))


def decisions_due(p: Progress, i: Input) -> bool:
    """An interjection decision is still out."""
    return _out(p, INTERJECTION)


def interjection_due(p: Progress, i: Input) -> bool:
    """A silent witness decided to speak, nobody cancelled, and none spoke yet."""
    return _interjects(p, p.decisions)


def more_decisions_due(p: Progress, i: Input) -> bool:
    """An interjection decision is still out besides this one."""
    return _out(p, INTERJECTION, besides=_key(i))


def interjects(p: Progress, i: Input) -> bool:
    """With this last decision, a silent witness speaks up (and nobody cancelled)."""
    return _interjects(p, _decide(p, i).decisions)


def _out(p: Progress, prefix: str, besides: str = "") -> bool:
    return any(k.startswith(prefix) and k != besides for k in p.waiting)


def _interjects(p: Progress, decisions: Mapping[str, bool]) -> bool:
    return (
        chosen_interjector(p, decisions) is not None and p.cancel is None and p.interjector is None
    )


def events_open(p: Progress, i: Input) -> bool:
    """Some world event is planned or active."""
    return bool(expect(i, Loaded, "the read").world_events)


def events_move(p: Progress, i: Input) -> bool:
    """The lifecycle classifier moved some world event."""
    return bool(_answer(i).value)


def rules_close(p: Progress, i: Input) -> bool:
    """The scene-close rules close the scene."""
    return isinstance(scene_ruling(p), Close)


def rules_unsure(p: Progress, i: Input) -> bool:
    """The scene-close rules are unsure."""
    return isinstance(scene_ruling(p), Unsure)


def closes(p: Progress, i: Input) -> bool:
    """The scene-close classifier closes the scene."""
    return expect(_answer(i).value, SceneCloseDecision, "scene_close").close


def more_summaries_due(p: Progress, i: Input) -> bool:
    """A scene summary is still out besides this one."""
    return _out(p, SCENE_SUMMARY, besides=_key(i))


# --- effects ---

Step = tuple[Progress, tuple[Command, ...]]


def take_the_turn(p: Progress, i: Input) -> Step:
    """Keep the prose (and its OOC-free form); read the open scene."""
    said = expect(i, PersonSaid, "the prose")
    p = evolve(p, said=said, model_prose=prose_for_model(said.segments))
    person_of(p)  # the speaker must be present
    return p, (Read(scene=True),)


def open_scene(p: Progress, i: Input) -> Step:
    """Open a scene at the chat's location."""
    return p, (Append((ev.SceneOpened(p.cast.chat_id, p.cast.location),)),)


def note_scene(p: Progress, i: Input) -> Step:
    """Keep the open scene."""
    scene = expect(i, Loaded, "the read").scene
    assert scene is not None
    return evolve(p, scene_id=scene.id, location=scene.location), ()


def note_opened_scene(p: Progress, i: Input) -> Step:
    """Keep the scene just opened."""
    ids = expect(i, Appended, "the append").ids
    return evolve(p, scene_id=ids[0], location=p.cast.location), ()


def choose_by_rules(p: Progress, i: Input) -> Step:
    """The speaker is who the rules name."""
    return evolve(p, speaker_id=speaker_by_rules(p)), ()


def ask_addressee(p: Progress, i: Input) -> Step:
    """Ask the addressee classifier which of the two was spoken to."""
    host, guest = p.cast.characters[:2]
    prose = said_of(p).prose

    def validate(raw: object) -> Answer:
        return validate_addressee(raw, host.name, guest.name)

    ask = Classify(
        "addressee",
        "addressee",
        addressee_prompt(prose, host.name, guest.name),
        ADDRESSEE_SCHEMA,
        validate,
        "host",
    )
    return p, (ask,)


def take_addressee(p: Progress, i: Input) -> Step:
    """The speaker is who the classifier chose (the host unless clearly the guest)."""
    answer = _answer(i)
    if answer.key != "addressee":
        raise TurnError(f"the turn waits for the addressee, not {answer.key!r}")
    host, guest = p.cast.characters[:2]
    return evolve(p, speaker_id=guest.id if answer.value == "guest" else host.id), ()


def _stop(p: Progress, speaker_id: str) -> tuple[str, ...]:
    others = [
        *(q.name for q in p.cast.people),
        *(c.name for c in p.cast.characters if c.id != speaker_id),
    ]
    return tuple(f"\n{name}:" for name in others)


def stream_primary(p: Progress, i: Input) -> Step:
    """Stream the speaker's beat (at once cut short if a cancel came first)."""
    said = said_of(p)
    speaker = character_of(p, p.speaker_id)
    request = BeatRequest(speaker.id, p.model_prose, said.user_turn_id, None, _stop(p, speaker.id))
    supersedes = said.regenerate.supersedes if said.regenerate is not None else None
    beat = StreamBeat(request, said.user_turn_id, None, supersedes, p.cancel)
    return p, (beat,)


def keep_primary(p: Progress, i: Input) -> Step:
    """Keep how the primary beat ended."""
    beat = expect(i, BeatEnded, "the beat")
    return evolve(p, primary=beat, beat=beat, beat_speaker=p.speaker_id), ()


def keep_interjection(p: Progress, i: Input) -> Step:
    """Keep how the interjection ended."""
    beat = expect(i, BeatEnded, "the beat")
    return evolve(p, beat=beat, beat_speaker=p.interjector), ()


def read_relations(p: Progress, i: Input) -> Step:
    """Read the edges among everyone present and the recent dialogue."""
    return p, (Read(edges_among=p.cast.present_ids, dialogue=RECENT_FOR_STATE),)


def note_relations(p: Progress, i: Input) -> Step:
    """Keep the edges, and the dialogue as a transcript without OOC."""
    loaded = expect(i, Loaded, "the read")
    edges = {(e.source_id, e.target_id): e for e in loaded.edges}
    return evolve(p, edges=edges, lines=transcript_lines(loaded.dialogue, p.cast.names)), ()


def write_memories(p: Progress, i: Input) -> Step:
    """One memory per witness, from its own point of view."""
    beat = expect(p.beat, BeatEnded, "the beat")
    speaker = character_of(p, p.beat_speaker)
    person = person_of(p)
    memories = tuple(
        ev.MemoryWritten(
            p.cast.chat_id,
            witness.id,
            pov_memory(witness, person.name, p.model_prose, speaker.name, beat.text),
            scene_id=p.scene_id,
            source_event_id=beat.event_id,
        )
        for witness in p.cast.characters
    )
    return p, (Append(memories),)


def ask_interjection(p: Progress, i: Input) -> Step:
    """Ask each silent witness whether it speaks up (alongside the passes)."""
    speaker = character_of(p, p.speaker_id)
    person = person_of(p)
    said = expect(p.primary, BeatEnded, "the primary beat").text
    asks = tuple(
        Classify(
            INTERJECTION + witness.id,
            "interjection",
            interjection_prompt(
                witness,
                edge_of(p, witness.id, speaker.id),
                edge_of(p, witness.id, person.id),
                speaker.name,
                person.name,
                p.model_prose,
                said,
            ),
            INTERJECTION_SCHEMA,
            validate_interjection,
            InterjectionDecision(),
        )
        for witness in silent_witnesses(p)
    )
    return evolve(p, decisions={}), asks


def note_memories(p: Progress, i: Input) -> Step:
    """Keep the memories' ids, for the significance pass."""
    return evolve(p, memory_ids=expect(i, Appended, "the append").ids), ()


def ask_state_updates(p: Progress, i: Input) -> Step:
    """Ask one state update per directed pair present, all at once."""
    names, personas = p.cast.names, p.cast.personas
    asks = tuple(
        Classify(
            f"{STATE_UPDATE}{source}->{target}",
            "state_update",
            state_update_prompt(
                source,
                names[source],
                personas.get(source, ""),
                target,
                names[target],
                edge_of(p, source, target),
                p.lines,
                target_persona=personas.get(target, ""),
            ),
            STATE_UPDATE_SCHEMA,
            validate_state_update,
            StateChange(),
        )
        for source, target in pairs_of(p)
    )
    return evolve(p, changes={}), asks


def _decide(p: Progress, i: Input) -> Progress:
    answer = _answer(i)
    witness = answer.key.removeprefix(INTERJECTION)
    decision = expect(answer.value, InterjectionDecision, "interjection")
    return evolve(p, decisions={**p.decisions, witness: decision.interject})


def note_decision(p: Progress, i: Input) -> Step:
    """Keep a silent witness's decision."""
    return _decide(p, i), ()


def note_change(p: Progress, i: Input) -> Step:
    """Keep a state update's answer."""
    answer = _answer(i)
    change = expect(answer.value, StateChange, "state_update")
    return evolve(p, changes={**p.changes, answer.key: change}), ()


def append_edges(p: Progress, i: Input) -> Step:
    """Append one edge update per pair, in pair order."""
    updates = []
    for source, target in pairs_of(p):
        change = p.changes[f"{STATE_UPDATE}{source}->{target}"]
        updates.append(
            ev.EdgeUpdate(
                source,
                target,
                chat_id=p.cast.chat_id,
                affinity_delta=change.affinity_delta,
                trust_delta=change.trust_delta,
                knowledge_facts=change.knowledge_facts,
            )
        )
    return p, (Append(tuple(updates)),)


def score_memories(p: Progress, i: Input) -> Step:
    """Score the beat's memories in the background (not on a regenerated turn)."""
    if said_of(p).regenerate is not None or not p.memory_ids:
        return p, ()
    beat = expect(p.beat, BeatEnded, "the beat")
    return p, (ScoreSignificance(p.memory_ids, beat.text, p.model_prose),)


def stream_interjection(p: Progress, i: Input) -> Step:
    """Stream the first willing witness's beat, after what the addressee said."""
    witness = character_of(p, chosen_interjector(p, p.decisions))
    speaker = character_of(p, p.speaker_id)
    said = said_of(p)
    primary = expect(p.primary, BeatEnded, "the primary beat")
    request = BeatRequest(
        witness.id,
        p.model_prose,
        said.user_turn_id,
        Interjection(speaker.name, primary.text),
        _stop(p, witness.id),
    )
    beat = StreamBeat(request, said.user_turn_id, interjection_of=speaker.id)
    return evolve(p, interjector=witness.id, memory_ids=()), (beat,)


def read_world(p: Progress, i: Input) -> Step:
    """Read the open world events."""
    return p, (Read(world_events=OPEN_STATUSES),)


def _open_events(p: Progress) -> list[OpenEvent]:
    return [OpenEvent(e.id, e.status, e.title, e.description) for e in p.world]


def ask_lifecycle(p: Progress, i: Input) -> Step:
    """Ask which open world events the primary beat moved."""
    p = evolve(p, world=expect(i, Loaded, "the read").world_events)
    events = _open_events(p)
    narrative = p.primary.text if p.primary is not None else ""

    def validate(raw: object) -> Answer:
        return validate_lifecycle(raw, events)

    ask = Classify(
        "lifecycle",
        "lifecycle",
        lifecycle_prompt(events, narrative),
        LIFECYCLE_SCHEMA,
        validate,
        (),
    )
    return p, (ask,)


def move_world(p: Progress, i: Input) -> Step:
    """Append the moves; a completed event promotes its artifacts."""
    moves = _answer(i).value
    assert isinstance(moves, tuple)
    by_id = {e.id: e for e in p.world}
    events: list[ev.Event] = []
    chat = p.cast.chat_id
    for move in moves:
        event_id, status = expect(move, Transition, "a lifecycle move")
        if status == "active":
            events.append(ev.WorldEventStarted(chat, event_id))
        elif status == "cancelled":
            events.append(ev.WorldEventCancelled(chat, event_id))
        elif status == "completed":
            events.append(ev.WorldEventCompleted(chat, event_id))
            events.extend(_promotions(chat, by_id[event_id]))
    return p, (Append(tuple(events)),)


def _promotions(chat_id: str, world: OpenWorldEvent) -> list[ev.Event]:
    """The events that put a completed world event's artifacts into state."""
    artifacts = world.artifacts
    facts: dict[tuple[str, str], list[str]] = {}
    for fact in artifacts.knowledge_facts:
        facts.setdefault((fact.source_id, fact.target_id), []).append(fact.fact)
    changes = {(c.source_id, c.target_id): c for c in artifacts.relationship_changes}
    out: list[ev.Event] = []
    for pair in dict.fromkeys([*facts, *changes]):
        change = changes.get(pair)
        out.append(
            ev.EdgeUpdate(
                pair[0],
                pair[1],
                chat_id=chat_id,
                affinity_delta=change.affinity_delta if change else 0,
                trust_delta=change.trust_delta if change else 0,
                knowledge_facts=tuple(facts.get(pair, ())),
            )
        )
    for obj in artifacts.acquired_objects:
        out.append(ev.ObjectAcquired(chat_id, obj.holder_id, obj.name, world.id))
    return out


def close_by_rules(p: Progress, i: Input) -> Step:
    """The scene closes as the rules read it."""
    ruling = scene_ruling(p)
    assert isinstance(ruling, Close)
    return evolve(p, closing=(ruling.reason, ruling.new_location)), ()


def ask_scene_close(p: Progress, i: Input) -> Step:
    """Ask the scene-close classifier about the prose the rules were unsure of."""

    def validate(raw: object) -> Answer:
        return validate_scene_close(raw)

    ask = Classify(
        "scene_close",
        "scene_close",
        scene_close_prompt(said_of(p).prose, p.location),
        SCENE_CLOSE_SCHEMA,
        validate,
        SceneCloseDecision(),
    )
    return p, (ask,)


def close_by_classifier(p: Progress, i: Input) -> Step:
    """The story moved on; a new place the same as this one is no new place."""
    decision = expect(_answer(i).value, SceneCloseDecision, "scene_close")
    place = decision.new_location
    if place and p.location and place.lower() == p.location.lower():
        place = None
    return evolve(p, closing=("the story moved on", place)), ()


def read_scene_dialogue(p: Progress, i: Input) -> Step:
    """Read the dialogue the witnesses sum up."""
    return p, (Read(dialogue=RECENT_FOR_SUMMARY),)


def ask_summaries(p: Progress, i: Input) -> Step:
    """Ask each witness for its summary of the scene, all at once."""
    lines = transcript_lines(expect(i, Loaded, "the read").dialogue, p.cast.names)
    location = p.location or p.cast.location
    asks = []
    for witness in p.cast.characters:
        others = {e: n for e, n in p.cast.names.items() if e != witness.id}

        def validate(
            raw: object, others: dict[str, str] = others, name: str = witness.name
        ) -> Answer:
            return validate_scene_summary(raw, others, lines, name, location)

        asks.append(
            Classify(
                SCENE_SUMMARY + witness.id,
                "scene_summary",
                scene_summary_prompt(witness, lines, others, location),
                SCENE_SUMMARY_SCHEMA,
                validate,
                default_scene_summary(lines, witness.name, location),
            )
        )
    return evolve(p, lines=lines, summaries={}), tuple(asks)


def note_summary(p: Progress, i: Input) -> Step:
    """Keep a witness's summary."""
    answer = _answer(i)
    summary = expect(answer.value, SceneSummaryResult, "scene_summary")
    witness = answer.key.removeprefix(SCENE_SUMMARY)
    return evolve(p, summaries={**p.summaries, witness: summary}), ()


def close_scene(p: Progress, i: Input) -> Step:
    """Close the scene: each witness's summary, what it learnt, and the next scene."""
    assert p.scene_id is not None and p.closing is not None
    chat, scene = p.cast.chat_id, p.scene_id
    reason, new_location = p.closing
    events: list[ev.Event] = [ev.SceneClosed(chat, scene, reason, new_location)]
    for witness in p.cast.characters:
        result = p.summaries[witness.id]
        events.append(ev.SceneSummary(chat, scene, witness.id, result.summary))
        targets = (
            *(q.id for q in p.cast.people),
            *(c.id for c in p.cast.characters if c.id != witness.id),
        )
        for target in targets:
            summary = result.edge_summaries.get(target)
            facts = result.knowledge.get(target, ())
            if summary or facts:
                events.append(
                    ev.EdgeUpdate(
                        witness.id,
                        target,
                        chat_id=chat,
                        knowledge_facts=tuple(facts),
                        summary=summary,
                    )
                )
    if new_location:
        events.append(ev.SceneOpened(chat, new_location))
    return p, (Append(tuple(events)),)


def settle(p: Progress, i: Input) -> Step:
    """Settle the turn: the chat takes the next one."""
    said = said_of(p)
    return p, (Settle(said.user_turn_id, resync=said.regenerate is not None),)


def note_cancel(p: Progress, i: Input) -> Step:
    """Remember the cancel (the first reason stands): no beat may start after it."""
    reason = expect(i, CancelRequested, "the cancel").reason
    return evolve(p, cancel=p.cancel or reason), ()


def stop_beat(p: Progress, i: Input) -> Step:
    """Cut the beat in flight short."""
    return p, (StopBeat(p.cancel or "cancelled"),)


def nothing(p: Progress, i: Input) -> Step:
    """Nothing to do."""
    return p, ()
