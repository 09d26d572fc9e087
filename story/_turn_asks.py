"""The effects that ask classifiers, and read their answers.

Every classifier request of the turn is built here, from story's prompt
builders, and every transcript a classifier reads is
:func:`transcript_lines` of the dialogue read: no OOC note reaches a model.
"""

from __future__ import annotations

from attrs import evolve

from ._classifiers import (
    LIFECYCLE_SCHEMA,
    SCENE_CLOSE_SCHEMA,
    SCENE_SUMMARY_SCHEMA,
    InterjectionDecision,
    OpenEvent,
    SceneCloseDecision,
    StateChange,
    Target,
    Witness,
    addressee_prompt,
    addressee_schema,
    default_scene_summary,
    interjection_prompt,
    interjection_schema,
    judge_by_words,
    lifecycle_prompt,
    scene_close_prompt,
    scene_summary_prompt,
    state_update_prompt,
    state_updates_schema,
    validate_addressee,
    validate_interjection,
    validate_lifecycle,
    validate_scene_close,
    validate_scene_summary,
    validate_state_updates,
)
from ._names import mentions
from ._transcript import transcript_lines
from ._turn_io import Answer, BeatEnded, Classify, Input, Loaded, TurnError
from ._turn_state import (
    INTERJECTION,
    SCENE_SUMMARY,
    STATE_UPDATE,
    Progress,
    Step,
    answer_of,
    character_of,
    edge_of,
    expect,
    lines_seen_by,
    person_of,
    said_of,
    silent_witnesses,
)


def ask_addressee(p: Progress, i: Input) -> Step:
    """Ask the addressee classifier which of the characters who may answer was spoken to."""
    free = [c for c in p.cast.characters if c.id not in p.cast.muted] or [p.cast.host]
    candidates = {c.id: c.name for c in free}
    prose = said_of(p).prose

    def validate(raw: object) -> Answer:
        return validate_addressee(raw, candidates)

    ask = Classify(
        "addressee",
        "addressee",
        addressee_prompt(prose, candidates),
        addressee_schema(list(candidates)),
        validate,
        free[0].id,
    )
    return p, (ask,)


def take_addressee(p: Progress, i: Input) -> Step:
    """The speaker is who the classifier chose (its default: the host, unless muted)."""
    answer = answer_of(i)
    if answer.key != "addressee":
        raise TurnError(f"the turn waits for the addressee, not {answer.key!r}")
    chosen = answer.value if isinstance(answer.value, str) else ""
    if p.cast.character(chosen) is None:
        chosen = p.cast.host.id
    return evolve(p, speaker_id=chosen, queue=()), ()


def note_relations(p: Progress, i: Input) -> Step:
    """Keep the edges, and the dialogue as a transcript without OOC."""
    loaded = expect(i, Loaded, "the read")
    edges = {(e.source_id, e.target_id): e for e in loaded.edges}
    lines = transcript_lines(loaded.dialogue, p.cast.names)
    return evolve(p, edges=edges, lines=lines, read=loaded), ()


def ask_interjection(p: Progress, i: Input) -> Step:
    """Ask one ranking of the silent witnesses: who, if anyone, speaks up (beside the passes)."""
    speaker = character_of(p, p.speaker_id)
    person = person_of(p)
    said = expect(p.primary, BeatEnded, "the primary beat").text
    witnesses = [
        Witness(w, edge_of(p, w.id, speaker.id), edge_of(p, w.id, person.id))
        for w in silent_witnesses(p)
    ]
    known = {w.bot.id: w.bot.name for w in witnesses}

    def validate(raw: object) -> Answer:
        return validate_interjection(raw, known)

    ask = Classify(
        INTERJECTION,
        "interjection",
        interjection_prompt(witnesses, speaker.name, person.name, p.model_prose, said),
        interjection_schema(list(known)),
        validate,
        InterjectionDecision(),
    )
    return evolve(p, ranking=None), (ask,)


def exchange_of(p: Progress) -> tuple[tuple[str, str], ...]:
    """What was said in the exchange a beat's passes judge, as ``(speaker id, text)``.

    The person's prose counts in the passes of the turn's first beat only:
    a later named speaker's or an interjection's passes judge their own beat.
    """
    beat = expect(p.beat, BeatEnded, "the beat")
    first = p.beat is p.primary and len(p.spoken) <= 1
    said = ((person_of(p).id, p.model_prose),) if first else ()
    return (*said, (p.beat_speaker or "", beat.text))


def judge_states_by_words(p: Progress, i: Input) -> Step:
    """Judge every entity's edges toward everyone present by the lexicon, without a model."""
    present = p.cast.present_ids
    exchange = exchange_of(p)
    changes = {
        STATE_UPDATE + source: judge_by_words(exchange, [t for t in present if t != source])
        for source in present
    }
    return evolve(p, changes=changes), ()


def rank_by_mention(p: Progress, i: Input) -> Step:
    """Rank, without a model, the silent witnesses the primary beat names: they speak up."""
    said = expect(p.primary, BeatEnded, "the primary beat").text
    named = [w for w in silent_witnesses(p) if mentions(said, w.name)]
    return evolve(p, ranking=tuple(w.id for w in named)), ()


def ask_state_updates(p: Progress, i: Input) -> Step:
    """Ask one state update per entity present, covering its edges toward everyone present.

    Each call's default, and the reading of a target its answer leaves out,
    is the lexicon's (:func:`judge_states_by_words`).
    """
    names, personas = p.cast.names, p.cast.personas
    present = p.cast.present_ids
    exchange = exchange_of(p)
    asks = []
    for source in present:
        targets = tuple(
            Target(t, names[t], personas.get(t, ""), edge_of(p, source, t))
            for t in present
            if t != source
        )
        ids = tuple(t.id for t in targets)
        words = judge_by_words(exchange, ids)

        def validate(
            raw: object, ids: tuple[str, ...] = ids, words: dict[str, StateChange] = words
        ) -> Answer:
            return validate_state_updates(raw, ids, words)

        asks.append(
            Classify(
                STATE_UPDATE + source,
                "state_update",
                state_update_prompt(
                    source,
                    names[source],
                    personas.get(source, ""),
                    targets,
                    lines_seen_by(p, source),
                ),
                state_updates_schema(ids),
                validate,
                words,
            )
        )
    return evolve(p, changes={}), tuple(asks)


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


def ask_summaries(p: Progress, i: Input) -> Step:
    """Ask each witness for its summary of the scene, all at once."""
    loaded = expect(i, Loaded, "the read")
    everything = transcript_lines(loaded.dialogue, p.cast.names)
    seen = evolve(p, read=loaded)
    location = p.location or p.cast.location
    asks = []
    for witness in p.cast.characters:
        others = {e: n for e, n in p.cast.names.items() if e != witness.id}
        # Each witness sums up only the turns it was present for.
        lines = lines_seen_by(seen, witness.id)

        def validate(
            raw: object,
            others: dict[str, str] = others,
            name: str = witness.name,
            lines: tuple[str, ...] = lines,
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
    return evolve(p, lines=everything, summaries={}), tuple(asks)
