"""The effects of the turn's table that are not classifier calls.

An effect records what the input taught and says what to do next: reads,
appends (the events are built here), beats, the significance pass, settling.
"""

from __future__ import annotations

from attrs import evolve

from protocol import OPEN_STATUSES, stop_sequences, world_event_moved
from protocol import events as ev

from ._classifiers import SceneCloseDecision, SceneSummaryResult, StateChange, Transition
from ._memory import pov_memory
from ._parse import parse_prose, prose_for_model
from ._prompt import Interjection
from ._scene_rules import Close
from ._turn_io import (
    Append,
    Appended,
    BeatEnded,
    BeatRequest,
    CancelRequested,
    ContinueAsked,
    ContinueBeat,
    Input,
    Loaded,
    PersonSaid,
    Read,
    ScoreSignificance,
    Settle,
    StopBeat,
    StreamBeat,
)
from ._turn_state import (
    SCENE_SUMMARY,
    STATE_UPDATE,
    Progress,
    Step,
    answer_of,
    character_of,
    chosen_interjector,
    expect,
    pairs_of,
    person_of,
    said_of,
    scene_ruling,
    silent_witnesses,
    speakers_by_rules,
    with_decision,
    with_last_speaker,
)

RECENT_FOR_STATE = 10
"""Turns of dialogue a state update reads (of which the prompt keeps the last few)."""
RECENT_FOR_SUMMARY = 40
"""Turns of dialogue a scene summary reads."""
RECENT_FOR_SPEAKER = 12
"""Turns of dialogue the turn's first read takes, to find who last spoke to the person."""


def take_the_turn(p: Progress, i: Input) -> Step:
    """Keep the prose (and its OOC-free form); read the open scene."""
    said = expect(i, PersonSaid, "the prose")
    p = evolve(p, said=said, model_prose=prose_for_model(said.segments))
    person_of(p)  # whoever spoke must be present
    return p, (Read(scene=True, dialogue=RECENT_FOR_SPEAKER),)


def stream_continuation(p: Progress, i: Input) -> Step:
    """Keep the beat to extend; stream more of it, its speaker going on from its text."""
    asked = expect(i, ContinueAsked, "the beat to continue")
    segments = parse_prose(asked.prose)
    p = evolve(
        p,
        continued=asked,
        model_prose=prose_for_model(segments),
        speaker_id=asked.speaker_id,
        beats=p.beats + 1,
        spoken=(asked.speaker_id,),
    )
    speaker = character_of(p, asked.speaker_id)
    request = BeatRequest(
        speaker.id,
        p.model_prose,
        asked.user_turn_id,
        None,
        _stop(p, speaker.id),
        asked.person_id,
    )
    beat = ContinueBeat(
        request, asked.event_id, asked.beat_id, asked.user_turn_id, asked.text, p.cancel
    )
    return p, (beat,)


def keep_continuation(p: Progress, i: Input) -> Step:
    """Keep how the continuation ended."""
    beat = expect(i, BeatEnded, "the continuation")
    return evolve(p, beat=beat, beat_speaker=p.speaker_id), ()


def open_scene(p: Progress, i: Input) -> Step:
    """Keep who last spoke; open a scene at the chat's location."""
    p = with_last_speaker(p, i)
    return p, (Append((ev.SceneOpened(p.cast.chat_id, p.cast.location),)),)


def note_scene(p: Progress, i: Input) -> Step:
    """Keep the open scene and who last spoke."""
    scene = expect(i, Loaded, "the read").scene
    assert scene is not None
    p = with_last_speaker(p, i)
    return evolve(p, scene_id=scene.id, location=scene.location), ()


def note_opened_scene(p: Progress, i: Input) -> Step:
    """Keep the scene just opened."""
    ids = expect(i, Appended, "the append").ids
    return evolve(p, scene_id=ids[0], location=p.cast.location), ()


def choose_by_rules(p: Progress, i: Input) -> Step:
    """The speakers are who the rules name, in order, as many as the turn has beats for."""
    speakers = speakers_by_rules(p) or (p.cast.host.id,)
    return evolve(p, speaker_id=speakers[0], queue=speakers[1 : p.cast.max_beats]), ()


def next_speaker(p: Progress, i: Input) -> Step:
    """The next character named answers."""
    return evolve(p, speaker_id=p.queue[0], queue=p.queue[1:]), ()


def _stop(p: Progress, speaker_id: str) -> tuple[str, ...]:
    return stop_sequences(
        [
            *(q.name for q in p.cast.people),
            *(c.name for c in p.cast.characters if c.id != speaker_id),
        ]
    )


def stream_primary(p: Progress, i: Input) -> Step:
    """Stream the speaker's beat (at once cut short if a cancel came first)."""
    said = said_of(p)
    speaker = character_of(p, p.speaker_id)
    request = BeatRequest(
        speaker.id, p.model_prose, said.user_turn_id, None, _stop(p, speaker.id), said.person_id
    )
    supersedes = said.regenerate.supersedes if said.regenerate is not None else None
    beat = StreamBeat(request, said.user_turn_id, None, supersedes, p.cancel)
    return evolve(p, beats=p.beats + 1, spoken=(*p.spoken, speaker.id)), (beat,)


def keep_primary(p: Progress, i: Input) -> Step:
    """Keep how the primary beat ended."""
    beat = expect(i, BeatEnded, "the beat")
    # Whether a witness may interject is settled now: a cancel after this still
    # stops the interjection's beat, but not the decision's call.
    # Only after the last named speaker, and only with a beat left for it.
    decide = (
        beat.completed
        and p.cancel is None
        and not p.queue
        and p.beats < p.cast.max_beats
        and bool(silent_witnesses(p))
    )
    return evolve(p, primary=beat, beat=beat, beat_speaker=p.speaker_id, decide=decide), ()


def keep_interjection(p: Progress, i: Input) -> Step:
    """Keep how the interjection ended."""
    beat = expect(i, BeatEnded, "the beat")
    return evolve(p, beat=beat, beat_speaker=p.interjector), ()


def read_relations(p: Progress, i: Input) -> Step:
    """Read the edges among everyone present and the recent dialogue."""
    return p, (Read(edges_among=p.cast.present_ids, dialogue=RECENT_FOR_STATE),)


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
            present=p.cast.present_ids,
        )
        for witness in p.cast.characters
    )
    return p, (Append(memories),)


def note_memories(p: Progress, i: Input) -> Step:
    """Keep the memories' ids, for the significance pass."""
    return evolve(p, memory_ids=expect(i, Appended, "the append").ids), ()


def note_decision(p: Progress, i: Input) -> Step:
    """Keep the interjection ranking."""
    return with_decision(p, i), ()


def note_change(p: Progress, i: Input) -> Step:
    """Keep one source's state update: its change toward each target."""
    answer = answer_of(i)
    changes = expect(answer.value, dict, "state_update")
    return evolve(p, changes={**p.changes, answer.key: changes}), ()


def append_edges(p: Progress, i: Input) -> Step:
    """Append one edge update per pair, in pair order."""
    updates = []
    for source, target in pairs_of(p):
        change = expect(p.changes[STATE_UPDATE + source][target], StateChange, "a state change")
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
    """Stream the beat of the ranking's first witness, after what the addressee said."""
    witness = character_of(p, chosen_interjector(p, p.ranking))
    speaker = character_of(p, p.speaker_id)
    said = said_of(p)
    primary = expect(p.primary, BeatEnded, "the primary beat")
    request = BeatRequest(
        witness.id,
        p.model_prose,
        said.user_turn_id,
        Interjection(speaker.name, primary.text),
        _stop(p, witness.id),
        said.person_id,
    )
    beat = StreamBeat(request, said.user_turn_id, interjection_of=speaker.id)
    return evolve(p, interjector=witness.id, memory_ids=(), beats=p.beats + 1), (beat,)


def read_world(p: Progress, i: Input) -> Step:
    """Read the open world events."""
    return p, (Read(world_events=OPEN_STATUSES),)


def move_world(p: Progress, i: Input) -> Step:
    """Append the moves; a completed event promotes its artifacts."""
    moves = answer_of(i).value
    assert isinstance(moves, tuple)
    by_id = {e.id: e for e in p.world}
    events: list[ev.Event] = []
    chat = p.cast.chat_id
    for move in moves:
        event_id, status = expect(move, Transition, "a lifecycle move")
        artifacts = by_id[event_id].artifacts
        events.extend(world_event_moved(chat, event_id, status, artifacts, p.cast.present_ids))
    return p, (Append(tuple(events)),)


def close_by_rules(p: Progress, i: Input) -> Step:
    """The scene closes as the rules read it."""
    ruling = scene_ruling(p)
    assert isinstance(ruling, Close)
    return evolve(p, closing=(ruling.reason, ruling.new_location)), ()


def close_by_classifier(p: Progress, i: Input) -> Step:
    """The story moved on; a new place the same as this one is no new place."""
    decision = expect(answer_of(i).value, SceneCloseDecision, "scene_close")
    place = decision.new_location
    if place and p.location and place.lower() == p.location.lower():
        place = None
    return evolve(p, closing=("the story moved on", place)), ()


def read_scene_dialogue(p: Progress, i: Input) -> Step:
    """Read the dialogue the witnesses sum up."""
    return p, (Read(dialogue=RECENT_FOR_SUMMARY),)


def note_summary(p: Progress, i: Input) -> Step:
    """Keep a witness's summary."""
    answer = answer_of(i)
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
    if p.continued is not None:
        return p, (Settle(p.continued.user_turn_id),)
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
