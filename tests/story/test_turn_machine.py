"""The turn machine, state by state: plain functions, no event loop, no actors.

A small scripted runner answers the machine's commands the way a driver
would (reads from a made-up chat, appends with made-up ids, beats and
classifier answers from the test), optionally holding some answers back,
cancelling or halting in a chosen state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import story
from protocol import YOU_ID, Artifacts, Bot, Entity, Scene, Turn
from protocol import events as ev
from protocol._shapes import KnowledgeArtifact, ObjectArtifact, RelationshipArtifact
from story import (
    INPUTS,
    Answer,
    Append,
    Appended,
    BeatEnded,
    CancelRequested,
    Cast,
    Classified,
    Classify,
    Command,
    ContinueAsked,
    ContinueBeat,
    Halted,
    Input,
    InterjectionDecision,
    Loaded,
    OpenWorldEvent,
    PersonSaid,
    Phase,
    Read,
    Regenerate,
    SceneCloseDecision,
    SceneSummaryResult,
    ScoreSignificance,
    Settle,
    StopBeat,
    StreamBeat,
    Transition,
    TurnError,
    TurnMachine,
)

MIRA = Bot("mira", "Mira", "Mira keeps the bar at the Gilded Eel; dry, observant.", "")
TOBIAS = Bot("tobias", "Tobias", "Tobias, an old lamplighter, superstitious and kind.", "")
ODA = Bot("oda", "Oda", "Oda, a harbour pilot.", "")
ANA = Entity(YOU_ID, "Ana", "A sailor looking for her brother.")
BEN = Entity("ben", "Ben", "Ana's cousin.")
PLACE = "The Gilded Eel"
SCENE = Scene(3, PLACE, "")
USER_TURN = 10

ONE = Cast("c1", PLACE, (MIRA,), (ANA,))
TWO = Cast("c1", PLACE, (MIRA, TOBIAS), (ANA,))
THREE = Cast("c1", PLACE, (MIRA, TOBIAS, ODA), (ANA,))

STORM = OpenWorldEvent(
    21,
    "active",
    "The storm",
    "A storm batters the harbour.",
    Artifacts(
        knowledge_facts=(KnowledgeArtifact("mira", YOU_ID, "Ana helped bar the shutters"),),
        relationship_changes=(RelationshipArtifact("tobias", YOU_ID, 8, 6),),
        acquired_objects=(ObjectArtifact(YOU_ID, "storm lantern"),),
    ),
)

Reply = Answer | Callable[[Classify], Answer]


@attrs.define
class Run:
    """One scripted turn: every input sent and every command given back."""

    machine: TurnMachine
    inputs: list[Input] = attrs.Factory(list)
    commands: list[Command] = attrs.Factory(list)
    phases: list[Phase] = attrs.Factory(list)

    def send(self, event: Input) -> tuple[Command, ...]:
        self.inputs.append(event)
        out = self.machine.send(event)
        self.commands.extend(out)
        self.phases.append(self.machine.phase)
        return out

    def of(self, kind: type[Command]) -> list[Command]:
        return [c for c in self.commands if isinstance(c, kind)]

    def calls(self, name: str) -> int:
        return sum(1 for c in self.commands if isinstance(c, Classify) and c.name == name)

    def beats(self) -> list[StreamBeat]:
        return [c for c in self.commands if isinstance(c, StreamBeat)]

    def events(self) -> list[ev.Event]:
        return [e for c in self.commands if isinstance(c, Append) for e in c.events]

    def settles(self) -> list[Command]:
        return self.of(Settle)


def drive(
    cast: Cast = ONE,
    prose: str = '"What happened to the ferry?"',
    *,
    person: str = YOU_ID,
    regenerate: Regenerate | None = None,
    scene: Scene | None = SCENE,
    beats: Sequence[BeatEnded | str] = ("Mira nods.",),
    answers: Mapping[str, Reply] | None = None,
    late: Sequence[str] = (),
    world: Sequence[OpenWorldEvent] = (),
    cancel_in: Phase | None = None,
    halt_in: Phase | None = None,
    history: Sequence[Turn] = (),
) -> Run:
    """Run a whole turn, answering commands first come first served.

    ``answers`` are by classifier key or name (a callable gets the command);
    any other classifier answers its default. Keys or names in ``late`` are
    answered only once nothing else is left (a stalled classifier).
    """
    run = Run(TurnMachine(cast))
    replies = dict(answers or {})
    pending: list[Command] = []
    said = [beat if isinstance(beat, BeatEnded) else BeatEnded(0, beat) for beat in beats]
    dialogue = [*history, Turn(USER_TURN, "user", person, prose, False, None, USER_TURN)]
    next_id = [100]
    hooks = {"cancel": cancel_in, "halt": halt_in}

    def new_ids(n: int) -> tuple[int, ...]:
        first = next_id[0]
        next_id[0] += n
        return tuple(range(first, first + n))

    def poke() -> None:
        if hooks["cancel"] is run.machine.phase:
            hooks["cancel"] = None
            run.send(CancelRequested("stop"))
        if hooks["halt"] is run.machine.phase:
            hooks["halt"] = None
            pending.extend(c for c in run.send(Halted("disk full")) if _answered(c))

    def feed(event: Input) -> None:
        pending.extend(c for c in run.send(event) if _answered(c))
        poke()

    poke()
    feed(PersonSaid(USER_TURN, prose, story.parse_prose(prose), person, regenerate))
    for _ in range(500):
        if not pending:
            break
        ready = [c for c in pending if not _is_late(c, late)] or pending
        command = ready[0]
        pending.remove(command)
        if isinstance(command, Read):
            feed(
                Loaded(
                    scene=scene if command.scene else None,
                    dialogue=tuple(dialogue[-command.dialogue :]) if command.dialogue else (),
                    world_events=tuple(world) if command.world_events else (),
                )
            )
        elif isinstance(command, Append):
            ids = new_ids(len(command.events))
            feed(Appended(ids))
        elif isinstance(command, StreamBeat):
            beat = said.pop(0) if said else BeatEnded(0, "")
            if command.cancelled is not None:
                beat = BeatEnded(0, "", truncated=True, error=command.cancelled)
            beat = attrs.evolve(beat, event_id=new_ids(1)[0])
            request = command.request
            dialogue.append(
                Turn(
                    beat.event_id,
                    "assistant",
                    request.speaker_id,
                    beat.text,
                    beat.truncated,
                    command.interjection_of,
                    USER_TURN,
                )
            )
            feed(beat)
        elif isinstance(command, Classify):
            reply = replies.get(command.key, replies.get(command.name, command.default))
            value = reply(command) if callable(reply) else reply
            feed(Classified(command.key, value))
    assert not pending, "the turn did not finish in 500 steps"
    return run


def _answered(command: Command) -> bool:
    return isinstance(command, Read | Append | StreamBeat | Classify)


def _is_late(command: Command, late: Sequence[str]) -> bool:
    return isinstance(command, Classify) and (command.key in late or command.name in late)


def _kinds(run: Run) -> list[str]:
    return [type(c).__name__ for c in run.commands]


# --- the plain turn ---


def test_one_to_one_turn_runs_the_steps_in_order() -> None:
    run = drive()
    assert _kinds(run) == [
        "Read",  # the open scene
        "StreamBeat",
        "Read",  # edges and dialogue for the passes
        "Append",  # one memory
        "Classify",
        "Classify",  # two state updates (mira<->you)
        "Append",  # the edge updates
        "ScoreSignificance",
        "Read",  # open world events
        "Settle",
    ]
    memory, *edges = run.events()
    assert isinstance(memory, ev.MemoryWritten)
    assert memory.scene_id == SCENE.id and memory.bot_id == "mira"
    assert [(e.source_id, e.target_id) for e in edges if isinstance(e, ev.EdgeUpdate)] == [
        ("mira", YOU_ID),
        (YOU_ID, "mira"),
    ]
    assert run.settles() == [Settle(USER_TURN, resync=False)]
    assert run.phases[-1] is Phase.SETTLED


def test_a_chat_with_no_open_scene_opens_one_and_its_memories_point_at_it() -> None:
    run = drive(scene=None)
    opened = run.events()[0]
    assert opened == ev.SceneOpened("c1", PLACE)
    assert run.phases[:2] == [Phase.OPENING, Phase.OPENING_SCENE]
    memory = run.events()[1]
    assert isinstance(memory, ev.MemoryWritten) and memory.scene_id == 100


def test_the_beat_request_carries_the_prose_without_ooc_and_stops_at_the_others() -> None:
    run = drive(TWO, '"Mira?" ((make her cry))')
    (beat,) = run.beats()
    assert beat.request.speaker_id == "mira"
    assert beat.request.prose == '"Mira?"'
    assert beat.request.stop == ("\nAna:", "\nTobias:")
    assert beat.request.before_event_id == USER_TURN
    assert beat.interjection_of is None and beat.supersedes is None


def test_state_updates_read_a_transcript_without_ooc() -> None:
    run = drive(TWO, '"Evening, Mira." ((SECRET-OOC))')
    asks = [c for c in run.of(Classify) if isinstance(c, Classify)]
    assert {c.name for c in asks} == {"state_update", "interjection"}
    for ask in asks:
        text = " ".join(m.content for m in ask.messages)
        assert "SECRET-OOC" not in text
    first = next(a for a in asks if a.name == "state_update")
    assert 'Ana: "Evening, Mira."' in first.messages[1].content


@pytest.mark.parametrize("n", range(1, 9))
def test_one_state_update_per_entity_present_covers_its_edges_to_all_the_others(n: int) -> None:
    bots = tuple(Bot(f"b{k}", f"Bot{k}", "", "") for k in range(n))
    cast = Cast("c1", PLACE, bots, (ANA,))
    present = [YOU_ID, *(b.id for b in bots)]

    def answer(ask: Classify) -> Answer:
        source = ask.key.removeprefix("state_update:")
        targets = ask.schema["properties"]["edges"]["required"]
        assert sorted(targets) == sorted(t for t in present if t != source)
        entries = {t: {"affinity_delta": 3, "trust_delta": -2} for t in targets}
        return ask.validate({"edges": entries})

    run = drive(cast, '"Evening."', answers={"state_update": answer}, beats=["Hm."] * 3)
    beats = len(run.beats())
    assert run.calls("state_update") == (n + 1) * beats  # not (n + 1) * n per beat
    edges = [e for e in run.events() if isinstance(e, ev.EdgeUpdate)]
    assert len(edges) == (n + 1) * n * beats
    assert {(e.affinity_delta, e.trust_delta) for e in edges} == {(3, -2)}


# --- who answers ---


def test_someone_addressed_unnamed_before_anyone_spoke_asks_the_addressee_first() -> None:
    run = drive(THREE, '"Hey, you, a toast!"', answers={"addressee": "oda"})
    assert _kinds(run)[:3] == ["Read", "Classify", "StreamBeat"]
    assert run.beats()[0].request.speaker_id == "oda"
    ask = next(c for c in run.of(Classify) if isinstance(c, Classify))
    assert ask.schema["properties"]["addressee"]["enum"] == ["mira", "tobias", "oda"]


def test_several_named_answer_in_the_order_named_each_with_its_own_passes() -> None:
    run = drive(THREE, '"Oda, Mira, a toast!"', beats=["Oda raises a cup.", "Mira drinks."])
    assert run.calls("addressee") == 0
    assert [b.request.speaker_id for b in run.beats()] == ["oda", "mira"]
    assert all(b.interjection_of is None for b in run.beats())
    assert run.calls("state_update") == 8  # four present, two beats
    memories = [e for e in run.events() if isinstance(e, ev.MemoryWritten)]
    assert len(memories) == 6  # three witnesses, two beats
    assert run.calls("interjection") == 1  # Tobias, silent, ranked once after the last


@pytest.mark.parametrize("n", range(1, 9))
def test_the_beats_of_a_turn_stop_at_max_beats_interjections_included(n: int) -> None:
    bots = tuple(Bot(f"b{k}", f"Bot{k}", "", "") for k in range(n))
    cast = Cast("c1", PLACE, bots, (ANA,), max_beats=3)
    prose = " ".join(f"Bot{k}," for k in range(n)) + " speak up."
    run = drive(
        cast, prose, beats=["Hm."] * 9, answers={"interjection": InterjectionDecision(("b0",))}
    )
    assert [b.request.speaker_id for b in run.beats()] == [f"b{k}" for k in range(min(n, 3))]
    # Two named and a third character silent: the interjection is the third beat.
    run = drive(
        cast,
        " ".join(f"Bot{k}," for k in range(min(n - 1, 2))) + " hello.",
        beats=["Hm."] * 9,
        answers={"interjection": InterjectionDecision((f"b{n - 1}",))},
    )
    if n == 3:
        assert [b.interjection_of for b in run.beats()] == [None, None, "b1"]
    assert len(run.beats()) <= 3


def test_nobody_named_the_last_speaker_answers_and_the_host_at_first() -> None:
    assert drive(THREE, '"And then?"').beats()[0].request.speaker_id == "mira"
    history = [
        Turn(1, "user", YOU_ID, '"Oda?"', False, None, 1),
        Turn(2, "assistant", "oda", "Oda nods.", False, None, 1),
        Turn(3, "assistant", "ghost", "Someone gone.", False, None, 1),
    ]
    run = drive(THREE, '"And then?"', history=history)
    assert run.beats()[0].request.speaker_id == "oda"  # the one who left is skipped
    run = drive(THREE, '"How are you?"', history=history)
    assert (run.beats()[0].request.speaker_id, run.calls("addressee")) == ("oda", 0)
    run = drive(attrs.evolve(THREE, muted=frozenset({"oda"})), '"And then?"', history=history)
    assert run.beats()[0].request.speaker_id == "mira"


def test_reply_as_forces_the_speaker_even_a_muted_one_and_muted_never_answer_otherwise() -> None:
    muted = attrs.evolve(THREE, muted=frozenset({"oda"}))
    prose = '"Oda?"'
    said = PersonSaid(USER_TURN, prose, story.parse_prose(prose), YOU_ID, reply_as="oda")
    machine = TurnMachine(muted)
    machine.send(said)
    (beat,) = machine.send(Loaded(scene=SCENE))
    assert isinstance(beat, StreamBeat) and beat.request.speaker_id == "oda"
    run = drive(
        muted,
        prose,
        beats=["Mira shrugs.", "Tobias laughs."],
        answers={"interjection": lambda ask: ask.validate({"ranking": ["oda", "tobias"]})},
    )
    assert [b.request.speaker_id for b in run.beats()] == ["mira", "tobias"]


def test_named_guest_answers_without_a_classifier() -> None:
    run = drive(TWO, '"Tobias, light the lamp."')
    assert run.calls("addressee") == 0
    assert run.beats()[0].request.speaker_id == "tobias"


def test_three_characters_the_one_named_answers_else_the_host_and_no_classifier() -> None:
    assert drive(THREE, '"Oda, the tide?"').beats()[0].request.speaker_id == "oda"
    run = drive(THREE, '"Mira, Oda: the tide?"')
    assert run.calls("addressee") == 0
    assert run.beats()[0].request.speaker_id == "mira"
    assert run.calls("state_update") == 4  # four present: one per entity


def test_with_two_people_the_one_who_spoke_is_remembered_and_every_pair_weighed() -> None:
    cast = Cast("c1", PLACE, (MIRA,), (ANA, BEN))
    run = drive(cast, '"Evening, Mira."', person="ben")
    memory = next(e for e in run.events() if isinstance(e, ev.MemoryWritten))
    assert memory.text.startswith('Ben said: "Evening, Mira."')
    assert run.calls("state_update") == 3
    assert run.beats()[0].request.stop == ("\nAna:", "\nBen:")


def test_every_beat_of_a_persona_turn_answers_that_persona_interjections_included() -> None:
    cast = Cast("c1", PLACE, (MIRA, TOBIAS), (ANA, BEN))
    run = drive(
        cast,
        '"Mira, have you seen my cousin?"',
        person="ben",
        beats=["Mira shakes her head.", "Tobias coughs."],
        answers={"interjection": InterjectionDecision(("tobias",), "he knows")},
    )
    assert [b.request.person_id for b in run.beats()] == ["ben", "ben"]
    memories = [e for e in run.events() if isinstance(e, ev.MemoryWritten)]
    assert memories and all(m.text.startswith("Ben said:") for m in memories)
    assert all(set(m.present or ()) == {"mira", "tobias", YOU_ID, "ben"} for m in memories)
    edges = {(e.source_id, e.target_id) for e in run.events() if isinstance(e, ev.EdgeUpdate)}
    assert {("mira", "ben"), ("ben", "mira"), ("tobias", "ben"), ("ben", YOU_ID)} <= edges


# --- the interjection ---


def test_interjection_fires_after_a_completed_beat() -> None:
    run = drive(
        TWO,
        '"Mira, have you seen my brother?"',
        beats=["Mira shakes her head slowly.", 'Tobias clears his throat. "I have."'],
        answers={"interjection": InterjectionDecision(("tobias",), "he knows")},
    )
    _primary, second = run.beats()
    assert second.request.speaker_id == "tobias" and second.interjection_of == "mira"
    assert second.request.interjection == story.Interjection(
        "Mira", "Mira shakes her head slowly."
    )
    # expect.calls of tests/dialogues/interjection_fires.toml
    assert (len(run.beats()), run.calls("interjection"), run.calls("state_update")) == (2, 1, 6)
    memories = [e for e in run.events() if isinstance(e, ev.MemoryWritten)]
    assert [m.bot_id for m in memories] == ["mira", "tobias", "mira", "tobias"]
    assert len(run.of(ScoreSignificance)) == 2


def test_interjection_declined_is_one_beat() -> None:
    run = drive(TWO, '"Evening, Mira."', answers={"interjection": InterjectionDecision()})
    assert (len(run.beats()), run.calls("interjection"), run.calls("state_update")) == (1, 1, 3)


def test_a_late_decision_is_waited_for_after_the_passes() -> None:
    run = drive(
        TWO,
        '"Evening, Mira."',
        beats=["Mira nods.", "Tobias waves."],
        answers={"interjection": InterjectionDecision(("tobias",))},
        late=["interjection"],
    )
    assert Phase.DECIDING in run.phases
    assert len(run.beats()) == 2


def test_one_call_ranks_the_silent_witnesses_and_the_first_ranked_speaks() -> None:
    def rank(ask: Classify) -> Answer:
        text = " ".join(m.content for m in ask.messages)
        assert "Tobias is present but was not addressed" in text
        assert "Oda is present but was not addressed" in text
        assert "Mira is present" not in text
        return ask.validate({"ranking": ["Oda", "tobias", "mira", "nobody-known"]})

    run = drive(
        THREE, '"Mira?"', beats=["Mira nods.", "Oda laughs."], answers={"interjection": rank}
    )
    assert [b.request.speaker_id for b in run.beats()] == ["mira", "oda"]
    assert run.calls("interjection") == 1


@pytest.mark.parametrize("n", range(1, 9))
def test_one_ranking_call_whatever_the_cast_and_nobody_by_default(n: int) -> None:
    bots = tuple(Bot(f"b{k}", f"Bot{k}", "", "") for k in range(n))
    cast = Cast("c1", PLACE, bots, (ANA,))
    run = drive(cast, '"Evening."', beats=["Hm.", "Ha."])
    assert run.calls("interjection") == (1 if n > 1 else 0)
    assert len(run.beats()) == 1  # the default ranking is nobody
    last = f"b{n - 1}"
    run = drive(
        cast,
        '"Evening."',
        beats=["Hm.", "Ha."],
        answers={"interjection": InterjectionDecision((last,))},
    )
    assert [b.request.speaker_id for b in run.beats()] == (["b0", last] if n > 1 else ["b0"])


def test_a_cancelled_primary_beat_gets_no_interjection() -> None:
    run = drive(
        TWO,
        '"Mira, tell me everything about the wreck."',
        beats=[BeatEnded(0, "The wreck lies", truncated=True, error="stop")],
        answers={"interjection": InterjectionDecision(("tobias",))},
        cancel_in=Phase.PRIMARY,
    )
    assert run.of(StopBeat) == [StopBeat("stop")]
    assert (len(run.beats()), run.calls("interjection")) == (1, 0)
    assert run.calls("state_update") == 3  # the partial beat still has its passes
    assert len(run.settles()) == 1


def test_a_cancelled_interjection_keeps_its_partial_and_skips_its_passes() -> None:
    run = drive(
        TWO,
        '"Mira, where were you?"',
        beats=['Mira folds her arms. "Here."', BeatEnded(0, "Tobias coughs.", truncated=True)],
        answers={"interjection": InterjectionDecision(("tobias",))},
        cancel_in=Phase.INTERJECTION,
    )
    assert (len(run.beats()), run.calls("interjection"), run.calls("state_update")) == (2, 1, 3)
    memories = [e for e in run.events() if isinstance(e, ev.MemoryWritten)]
    assert len(memories) == 2  # the primary beat's only


@pytest.mark.parametrize("phase", [Phase.REMEMBERING, Phase.WEIGHING, Phase.RELATING])
def test_a_cancel_during_the_passes_stops_the_interjection_the_witness_wanted(
    phase: Phase,
) -> None:
    run = drive(
        TWO,
        '"Evening, Mira."',
        answers={"interjection": InterjectionDecision(("tobias",))},
        late=["interjection"],
        cancel_in=phase,
    )
    assert (len(run.beats()), run.calls("interjection")) == (1, 1)
    assert run.of(StopBeat) == []  # nothing was streaming
    assert len(run.settles()) == 1


@pytest.mark.parametrize("phase", [Phase.OPENING, Phase.OPENING_SCENE, Phase.ADDRESSING])
def test_a_cancel_before_the_beat_starts_it_cut_short(phase: Phase) -> None:
    run = drive(TWO, '"Hey, you two, a toast!"', scene=None, cancel_in=phase)
    (beat,) = run.beats()
    assert beat.cancelled == "stop"
    assert run.calls("state_update") == 0  # the beat said nothing: no passes
    assert run.calls("interjection") == 0


# --- errors of the model ---


def test_a_model_error_mid_beat_keeps_the_partial_and_the_turn_settles() -> None:
    failed = BeatEnded(0, "It sank off the", truncated=True, error="connection reset by peer")
    run = drive(TWO, '"Mira, what happened to the ferry?"', beats=[failed])
    assert run.calls("interjection") == 0  # not completed
    assert run.calls("state_update") == 3
    memory = next(e for e in run.events() if isinstance(e, ev.MemoryWritten))
    assert "It sank off the" in memory.text
    assert len(run.settles()) == 1


def test_an_empty_beat_has_no_passes() -> None:
    run = drive(beats=[BeatEnded(0, "  ", truncated=True, error="empty")])
    assert _kinds(run) == ["Read", "StreamBeat", "Read", "Settle"]


# --- regenerate ---


def test_regenerate_keeps_its_speaker_and_does_not_score() -> None:
    run = drive(
        TWO,
        '"Mira, Tobias, a toast!"',
        regenerate=Regenerate(55, "tobias"),
        answers={"interjection": InterjectionDecision()},
    )
    assert run.calls("addressee") == 0
    (beat,) = run.beats()
    assert (beat.request.speaker_id, beat.supersedes) == ("tobias", 55)
    assert run.calls("state_update") == 3
    assert run.of(ScoreSignificance) == []
    assert run.settles() == [Settle(USER_TURN, resync=True)]


def test_regenerate_with_edited_prose_chooses_anew() -> None:
    run = drive(TWO, '"Tobias?"', regenerate=Regenerate(55))
    assert run.beats()[0].request.speaker_id == "tobias"
    assert run.beats()[0].supersedes == 55
    assert run.of(ScoreSignificance) == []


def test_regenerating_a_speaker_who_left_lets_the_rules_choose() -> None:
    run = drive(ONE, '"Hello?"', regenerate=Regenerate(55, "tobias"))
    assert run.beats()[0].request.speaker_id == "mira"


# --- world events ---


def test_world_event_moves_and_promotes_its_artifacts_on_completion() -> None:
    started = drive(
        world=[attrs.evolve(STORM, status="planned")],
        answers={"lifecycle": (Transition(21, "active"),)},
    )
    assert ev.WorldEventStarted("c1", 21, ("mira", "you")) in started.events()
    done = drive(world=[STORM], answers={"lifecycle": (Transition(21, "completed"),)})
    (append,) = [c for c in done.of(Append) if isinstance(c, Append)][-1:]
    assert list(append.events) == [
        ev.WorldEventCompleted("c1", 21, ("mira", "you")),
        ev.EdgeUpdate(
            "mira", YOU_ID, chat_id="c1", knowledge_facts=("Ana helped bar the shutters",)
        ),
        ev.EdgeUpdate("tobias", YOU_ID, chat_id="c1", affinity_delta=8, trust_delta=6),
        ev.ObjectAcquired("c1", YOU_ID, "storm lantern", 21),
    ]
    assert done.calls("lifecycle") == 1


def test_the_lifecycle_reads_the_primary_beat_and_only_when_events_are_open() -> None:
    run = drive(world=[STORM], beats=["Thunder rolls."])
    (ask,) = [c for c in run.of(Classify) if isinstance(c, Classify) and c.name == "lifecycle"]
    assert "Thunder rolls." in ask.messages[1].content
    assert drive().calls("lifecycle") == 0
    assert Phase.WORLD_MOVING not in run.phases  # the default moves nothing


# --- scene close ---


def test_a_cancelled_beat_still_closes_the_scene_the_prose_closed() -> None:
    run = drive(
        TWO,
        '"We are done here." *I leave.* Fade to black.',
        beats=[BeatEnded(0, "", truncated=True, error="stop")],
        cancel_in=Phase.PRIMARY,
    )
    events = run.events()
    closed = next(e for e in events if isinstance(e, ev.SceneClosed))
    assert closed.scene_id == SCENE.id and "closing phrase" in closed.reason
    summaries = [e for e in events if isinstance(e, ev.SceneSummary)]
    assert [s.bot_id for s in summaries] == ["mira", "tobias"]
    assert run.calls("scene_summary") == 2 and run.calls("scene_close") == 0


def test_a_location_change_closes_and_opens_the_next_scene() -> None:
    run = drive(prose="*We walk down to the harbour docks together.*")
    events = run.events()
    assert isinstance(events[-1], ev.SceneOpened)
    assert events[-1].location is not None and "harbour docks" in events[-1].location


def test_unsure_prose_asks_the_classifier_which_may_close_or_not() -> None:
    kept = drive(prose="*I leave.*")
    assert kept.calls("scene_close") == 1
    assert not any(isinstance(e, ev.SceneClosed) for e in kept.events())
    moved = drive(
        prose="*I leave.*",
        answers={"scene_close": SceneCloseDecision(True, "the gilded eel")},
    )
    closed = next(e for e in moved.events() if isinstance(e, ev.SceneClosed))
    assert (closed.reason, closed.next_location) == ("the story moved on", None)


def test_witness_summaries_update_their_edges() -> None:
    summary = SceneSummaryResult(
        "I poured and listened.", {YOU_ID: "A sailor with a grief."}, {"tobias": ("Drinks",)}
    )
    run = drive(TWO, '"Fade out."', answers={"scene_summary:mira": summary})
    edges = [e for e in run.events() if isinstance(e, ev.EdgeUpdate) and e.summary is not None]
    assert [(e.source_id, e.target_id, e.summary) for e in edges] == [
        ("mira", YOU_ID, "A sailor with a grief.")
    ]
    facts = [e for e in run.events() if isinstance(e, ev.EdgeUpdate) and e.target_id == "tobias"]
    assert facts[-1].knowledge_facts == ("Drinks",)


# --- cancel, failing classifiers and halts, in every state ---

FULL: dict[str, Any] = {
    "cast": TWO,
    "prose": '"Hey, you two, where do we go?" *I leave.* ((SECRET-OOC))',
    "scene": None,
    "beats": ["Mira points north.", "Tobias shrugs."],
    "world": [STORM],
    "answers": {
        "interjection": InterjectionDecision(("tobias",)),
        "lifecycle": (Transition(21, "completed"),),
        "scene_close": SceneCloseDecision(True, "the north road"),
    },
    "late": ["interjection"],
}
"""A turn that passes through every state."""


def _full(**changes: Any) -> Run:
    return drive(**{**FULL, **changes})


TURN_PHASES = [p for p in Phase if p is not Phase.CONTINUING]
"""The states a turn of prose goes through (``continuing`` is the ``continue`` turn's own)."""


def test_the_full_turn_visits_every_state() -> None:
    run = _full()
    assert set(run.phases) | {Phase.IDLE} == set(TURN_PHASES)


@pytest.mark.parametrize("phase", TURN_PHASES)
def test_cancel_in_every_state(phase: Phase) -> None:
    run = _full(cancel_in=phase)
    beats = run.beats()
    assert len(run.settles()) == 1 and isinstance(run.commands[-1], Settle)
    assert CancelRequested("stop") in run.inputs
    streaming = phase in (Phase.PRIMARY, Phase.INTERJECTION)
    assert run.of(StopBeat) == ([StopBeat("stop")] if streaming else [])
    before_primary = phase in (
        Phase.OPENING,
        Phase.OPENING_SCENE,
        Phase.ADDRESSING,
    )
    assert beats[0].cancelled == ("stop" if before_primary else None)
    order = [p for p in Phase]
    reached_interjection = order.index(phase) >= order.index(Phase.INTERJECTION)
    assert len(beats) == (2 if reached_interjection or phase is Phase.IDLE else 1)
    # the scene still closes: it reads the prose, not the beat
    assert any(isinstance(e, ev.SceneClosed) for e in run.events())


@pytest.mark.parametrize("phase", [p for p in TURN_PHASES if p is not Phase.IDLE])
def test_a_halt_in_every_state_settles_at_once_and_ignores_leftovers(phase: Phase) -> None:
    run = _full(halt_in=phase)
    assert len(run.settles()) == 1
    halted = run.inputs.index(Halted("disk full"))
    after = [c for c in run.commands[run.commands.index(run.settles()[0]) + 1 :]]
    assert after == []
    if phase is not Phase.SETTLED:
        assert run.phases[halted] is Phase.SETTLED


WAITING_ON = {
    "addressee": Phase.ADDRESSING,
    "interjection": Phase.DECIDING,
    "state_update": Phase.WEIGHING,
    "lifecycle": Phase.WORLD_ASKING,
    "scene_close": Phase.CLOSING_ASKING,
    "scene_summary": Phase.SUMMARISING,
}
CLASSIFIERS = ["addressee", "interjection", "state_update", "lifecycle", "scene_close"]


@pytest.mark.parametrize("name", [*CLASSIFIERS, "scene_summary"])
def test_a_failed_or_stalled_classifier_yields_its_default_and_the_turn_settles(
    name: str,
) -> None:
    answers = {k: v for k, v in FULL["answers"].items() if k != name}
    run = _full(answers=answers, late=[name, "interjection"])
    assert len(run.settles()) == 1
    assert WAITING_ON[name] in run.phases
    events = run.events()
    speakers = [b.request.speaker_id for b in run.beats()]
    if name == "addressee":
        assert speakers[0] == "mira"  # the host
    if name == "interjection":
        assert speakers == ["mira"]
    if name == "state_update":
        deltas = [
            (e.affinity_delta, e.trust_delta)
            for e in events
            if isinstance(e, ev.EdgeUpdate) and e.chat_id and e.summary is None
        ]
        assert (0, 0) in deltas
    if name == "lifecycle":
        assert not any(isinstance(e, ev.WorldEventCompleted) for e in events)
    if name == "scene_close":
        assert not any(isinstance(e, ev.SceneClosed) for e in events)
    if name == "scene_summary":
        summaries = [e for e in events if isinstance(e, ev.SceneSummary)]
        assert len(summaries) == 2 and all(s.text for s in summaries)


# --- continue ---

ASKED = ContinueAsked(42, 41, "mira", USER_TURN, "Mira sets the glass down.", "Hi ((zq-ooc))")


def test_continue_streams_more_of_the_beat_then_settles_with_no_passes() -> None:
    run = Run(TurnMachine(TWO))
    (beat,) = run.send(ASKED)
    assert run.machine.phase is Phase.CONTINUING
    assert isinstance(beat, ContinueBeat)
    assert (beat.event_id, beat.beat_id, beat.text) == (42, 41, "Mira sets the glass down.")
    assert beat.user_turn_id == USER_TURN and beat.cancelled is None
    assert beat.request.speaker_id == "mira" and beat.request.prose == "Hi"
    assert beat.request.stop == story_stops("Ana", "Tobias")
    out = run.send(BeatEnded(42, " She smiles."))
    assert out == (Settle(USER_TURN),) and run.machine.settled


def story_stops(*names: str) -> tuple[str, ...]:
    from protocol import stop_sequences

    return stop_sequences(list(names))


def test_cancel_mid_continue_stops_the_beat_and_keeps_what_arrived() -> None:
    run = Run(TurnMachine(ONE))
    run.send(ASKED)
    assert run.send(CancelRequested("stop")) == (StopBeat("stop"),)
    assert run.machine.phase is Phase.CONTINUING  # the beat still ends, with what arrived
    out = run.send(BeatEnded(42, " She", truncated=True, error="stop"))
    assert out == (Settle(USER_TURN),)
    assert run.machine.progress.beat == BeatEnded(42, " She", truncated=True, error="stop")


def test_cancel_when_idle_or_after_continue_settled_does_nothing() -> None:
    run = Run(TurnMachine(ONE))
    assert run.send(CancelRequested("early")) == ()
    (beat,) = run.send(ASKED)
    assert isinstance(beat, ContinueBeat) and beat.cancelled is None
    run.send(BeatEnded(42, " More."))
    assert run.send(CancelRequested("late")) == () and run.machine.settled


def test_a_halt_while_continuing_settles_at_once_and_ignores_the_late_end() -> None:
    run = Run(TurnMachine(ONE))
    run.send(ASKED)
    assert run.send(Halted("disk full")) == (Settle(USER_TURN),)
    assert run.send(BeatEnded(42, " late")) == ()


def test_continue_refuses_a_speaker_who_is_not_present_and_a_second_ask() -> None:
    with pytest.raises(TurnError):
        TurnMachine(ONE).send(attrs.evolve(ASKED, speaker_id="tobias"))
    machine = TurnMachine(ONE)
    machine.send(ASKED)
    with pytest.raises(TurnError, match="not expected while the turn is continuing"):
        machine.send(ASKED)
    with pytest.raises(TurnError):
        machine.send(PersonSaid(USER_TURN, "hi", ()))


# --- the driver's mistakes ---


def test_inputs_the_state_does_not_take_are_refused() -> None:
    machine = TurnMachine(ONE)
    with pytest.raises(TurnError, match="not expected while the turn is idle"):
        machine.send(BeatEnded(1, "hi"))
    machine.send(PersonSaid(USER_TURN, "hi", story.parse_prose("hi")))
    with pytest.raises(TurnError, match="no classifier 'addressee' is out"):
        machine.send(Classified("addressee", "host"))
    with pytest.raises(TurnError):
        TurnMachine(ONE).send(PersonSaid(1, "hi", (), person_id="nobody"))
    with pytest.raises(TurnError):
        Cast("c1", None, (), (ANA,))
    with pytest.raises(TurnError):
        Cast("c1", None, (MIRA,), (Entity("mira", "Mira", ""),))


def test_an_answer_given_twice_is_refused() -> None:
    run = Run(TurnMachine(TWO))
    run.send(PersonSaid(USER_TURN, '"Hey, you!"', story.parse_prose('"Hey, you!"')))
    run.send(Loaded(scene=SCENE))
    run.send(Classified("addressee", "mira"))
    with pytest.raises(TurnError):
        run.send(Classified("addressee", "mira"))


# --- the table ---


def _sample(kind: type[Input]) -> Input:
    samples: dict[type[Input], Input] = {
        PersonSaid: PersonSaid(USER_TURN, "hi", ()),
        ContinueAsked: ASKED,
        Loaded: Loaded(),
        Appended: Appended((1,)),
        BeatEnded: BeatEnded(1, "hi"),
        Classified: Classified("nothing-asked", "host"),
        CancelRequested: CancelRequested(),
        Halted: Halted("x"),
    }
    return samples[kind]


def test_the_table_covers_every_pair_the_machine_declares_and_no_other() -> None:
    for phase in Phase:
        for kind in INPUTS:
            rows = story.rows_for(phase, kind)
            if kind in story.expected(phase):
                assert rows, f"no row for {kind.__name__} in {phase.value}"
            else:
                assert not rows, f"a row for {kind.__name__} in {phase.value}, undeclared"
                progress = attrs.evolve(story.start(ONE), phase=phase)
                with pytest.raises(TurnError):
                    story.step(progress, _sample(kind))
    for row in story.TRANSITIONS:
        assert row.does or row.to is None
        assert row.states


def test_every_state_is_reachable_and_waits_for_something() -> None:
    targets = {row.to for row in story.TRANSITIONS if row.to is not None}
    assert targets | {Phase.IDLE} == set(Phase)
    assert set(story.AWAITS) == set(Phase) == set(story.WAITS)


def test_the_doc_shows_the_table_the_code_has() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "story.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- turn-table -->\n(.*?)<!-- /turn-table -->", doc, re.S)
    assert found is not None, "docs/story.md lacks the turn table"
    assert found.group(1) == story.describe_table()


# --- any legal run ---

SECRET = "zq-secret-note"


@st.composite
def _turns(draw: st.DrawFn) -> tuple[Cast, PersonSaid, list[OpenWorldEvent]]:
    n = draw(st.integers(1, 3))
    cast = Cast(
        "c1",
        PLACE,
        (MIRA, TOBIAS, ODA)[:n],
        draw(st.sampled_from([(ANA,), (ANA, BEN)])),
        muted=draw(st.sampled_from([frozenset(), frozenset({"tobias"})])),
        max_beats=draw(st.integers(1, 3)),
    )
    speech = draw(
        st.sampled_from(
            [
                '"Mira, Tobias, a toast!"',
                '"Evening."',
                '"Tobias?"',
                "*I leave.*",
                "Fade to black.",
                "*We walk down to the harbour docks together.*",
                '"Hey, you."',
            ]
        )
    )
    prose = f"{speech} (({SECRET} for the system)) *waves*"
    regenerate = draw(
        st.one_of(st.none(), st.builds(Regenerate, st.just(55), st.sampled_from([None, "mira"])))
    )
    person = draw(st.sampled_from([p.id for p in cast.people]))
    world = draw(st.sampled_from([[], [STORM], [attrs.evolve(STORM, status="planned")]]))
    reply_as = draw(st.sampled_from([None, "tobias"]))
    said = PersonSaid(USER_TURN, prose, story.parse_prose(prose), person, regenerate, reply_as)
    return cast, said, world


def _answer(draw: st.DrawFn, ask: Classify) -> Answer:
    if draw(st.booleans()):
        return ask.default
    raw: object = {
        "addressee": {"addressee": draw(st.sampled_from(["host", "guest"]))},
        "interjection": {"interject": draw(st.booleans()), "reason": ""},
        "state_update": {
            "edges": {
                t: {"affinity_delta": draw(st.integers(-20, 20)), "trust_delta": 1}
                for t in (ask.schema["properties"].get("edges", {}).get("required", []))
            }
        },
        "lifecycle": {
            "transitions": [
                {"event_id": 21, "status": draw(st.sampled_from(["active", "completed"]))}
            ]
        },
        "scene_close": {"close": draw(st.booleans()), "new_location": "the docks"},
        "scene_summary": {"summary": "I saw it all.", "edge_summaries": {"Ana": "kind"}},
    }[ask.name]
    return ask.validate(raw)


def _text_of(command: Command) -> str:
    if isinstance(command, Classify):
        return " ".join(m.content for m in command.messages)
    if isinstance(command, StreamBeat):
        return f"{command.request.prose} {command.request.interjection}"
    if isinstance(command, ScoreSignificance):
        return f"{command.text} {command.context}"
    if isinstance(command, Append):
        return " ".join(repr(e) for e in command.events)
    return ""


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_legal_run_settles_exactly_once_and_no_request_carries_ooc(
    data: st.DataObject,
) -> None:
    cast, said, world = data.draw(_turns())
    run = Run(TurnMachine(cast))
    pending: list[Command] = []
    dialogue = [Turn(USER_TURN, "user", said.person_id, said.prose, False, None, USER_TURN)]
    next_id = 100

    def feed(event: Input) -> None:
        pending.extend(c for c in run.send(event) if _answered(c))

    feed(said)
    interruptions = 0
    for _ in range(300):
        if not pending:
            break
        choice = data.draw(st.integers(0, 40)) if interruptions < 3 else 0
        if choice == 39:
            interruptions += 1
            feed(CancelRequested(data.draw(st.sampled_from(["cancelled", "shutdown"]))))
            continue
        if choice == 40:
            interruptions += 1
            feed(Halted("disk full"))
            continue
        command = pending.pop(data.draw(st.integers(0, len(pending) - 1)))
        if isinstance(command, Read):
            feed(
                Loaded(
                    scene=data.draw(st.sampled_from([None, SCENE])) if command.scene else None,
                    dialogue=tuple(dialogue) if command.dialogue else (),
                    world_events=tuple(world) if command.world_events else (),
                )
            )
        elif isinstance(command, Append):
            feed(Appended(tuple(range(next_id, next_id + len(command.events)))))
            next_id += len(command.events)
        elif isinstance(command, StreamBeat):
            text = data.draw(st.sampled_from(["", "Mira nods.", "Tobias coughs twice."]))
            cut = command.cancelled is not None or data.draw(st.booleans())
            dialogue.append(
                Turn(next_id, "assistant", command.request.speaker_id, text, cut, None, 10)
            )
            feed(BeatEnded(next_id, text, cut, "stop" if cut else None))
            next_id += 1
        elif isinstance(command, Classify):
            feed(Classified(command.key, _answer(data.draw, command)))
    assert not pending
    settles = run.settles()
    assert len(settles) == 1 and run.commands[-1] == settles[0]
    assert run.machine.settled
    for command in run.commands:
        assert SECRET not in _text_of(command), command
    beats = run.beats()
    assert len(beats) <= cast.max_beats
    interjections = [b for b in beats if b.interjection_of is not None]
    assert len(interjections) <= 1 and beats[-len(interjections) or len(beats) :] == interjections
    speakers = [b.request.speaker_id for b in beats]
    assert len(set(speakers)) == len(speakers)  # nobody answers twice in a turn


def test_a_cancel_just_after_a_completed_beat_still_asks_but_never_interjects() -> None:
    # As the turn always did: the decision starts when the beat completes; a cancel
    # that comes after it only stops the interjection's beat.
    run = drive(
        TWO,
        '"Evening, Mira."',
        answers={"interjection": InterjectionDecision(("tobias",))},
        cancel_in=Phase.READING,
    )
    assert (len(run.beats()), run.calls("interjection")) == (1, 1)


# --- passes judged by rules (the embedded model) ---


def _edges(events: list[ev.Event]) -> dict[tuple[str, str], ev.EdgeUpdate]:
    return {(e.source_id, e.target_id): e for e in events if isinstance(e, ev.EdgeUpdate)}


def test_the_state_updates_default_is_the_lexicon_reading() -> None:
    run = drive(prose='"Thank you, Mira, you are so kind."', beats=("Mira smiles.",))
    asks = [c for c in run.commands if isinstance(c, Classify) and c.name == "state_update"]
    assert asks
    edges = _edges(run.events())
    assert edges[("mira", YOU_ID)].affinity_delta > 0  # every call answered its default


def test_judged_by_rules_a_turn_makes_no_state_update_call() -> None:
    cast = attrs.evolve(TWO, judge="rules")
    run = drive(
        cast,
        prose='"Mira, you lying cheat."',
        beats=('Mira scowls. "Get out, you thief."',),
    )
    assert run.calls("state_update") == 0
    edges = _edges(run.events())
    assert edges[("mira", YOU_ID)].affinity_delta < 0  # what Ana said
    assert edges[("tobias", YOU_ID)].affinity_delta < 0  # Tobias heard it too
    assert edges[(YOU_ID, "mira")].trust_delta < 0  # what Mira said
    assert edges[(YOU_ID, "tobias")].affinity_delta == 0  # Tobias said nothing
    assert len(edges) == 6


def test_judged_by_rules_the_witness_the_beat_names_speaks_up() -> None:
    cast = attrs.evolve(THREE, judge="rules")
    run = drive(
        cast,
        prose='"Mira, any news?"',
        beats=("Ask Oda, she knows the harbour.", "Oda shrugs."),
    )
    assert run.calls("interjection") == 0
    speakers = [b.request.speaker_id for b in run.beats()]
    assert speakers == ["mira", "oda"]


def test_judged_by_rules_nobody_named_nobody_interjects() -> None:
    cast = attrs.evolve(THREE, judge="rules")
    run = drive(cast, prose='"Mira, any news?"', beats=("Nothing new tonight.",))
    assert run.calls("interjection") == 0
    assert [b.request.speaker_id for b in run.beats()] == ["mira"]


def test_the_person_s_prose_counts_once_per_turn() -> None:
    cast = attrs.evolve(THREE, judge="rules")
    run = drive(
        cast,
        prose='"Thank you, Mira, you are wonderful."',
        beats=("Oda would agree.", "Oda nods."),
    )
    updates = [e for e in run.events() if isinstance(e, ev.EdgeUpdate)]
    toward_ana = [
        e.affinity_delta for e in updates if e.source_id == "mira" and e.target_id == YOU_ID
    ]
    assert toward_ana[0] > 0 and toward_ana[1:] == [0]  # the interjection's passes judge Oda only
