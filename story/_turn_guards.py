"""The guards of the turn's table: when a row applies.

Each reads the progress and the input, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._classifiers import SceneCloseDecision
from ._scene_rules import Close, Unsure
from ._turn_io import BeatEnded, Input, Loaded
from ._turn_state import (
    INTERJECTION,
    SCENE_SUMMARY,
    STATE_UPDATE,
    Phase,
    Progress,
    answer_of,
    chosen_interjector,
    expect,
    key_of,
    scene_ruling,
    speakers_by_rules,
    with_decision,
    with_last_speaker,
)


def always(p: Progress, i: Input) -> bool:
    """Otherwise."""
    return True


def no_scene_open(p: Progress, i: Input) -> bool:
    """The chat has no open scene."""
    return expect(i, Loaded, "the read").scene is None


def speaker_known(p: Progress, i: Input) -> bool:
    """The rules (``reply_as``, a regenerated beat, names, the last speaker) name the speakers."""
    return speakers_by_rules(with_last_speaker(p, i)) is not None


def next_speaker_due(p: Progress, i: Input) -> bool:
    """Another character named is still to answer, nobody cancelled, and a beat is left."""
    return bool(p.queue) and p.cancel is None and p.beats < p.cast.max_beats


def passes_due(p: Progress, i: Input) -> bool:
    """The beat said something, and is not an interjection cut short."""
    beat = expect(i, BeatEnded, "the beat")
    cut_short = p.phase is Phase.INTERJECTION and beat.truncated
    return bool(beat.text.strip()) and not cut_short


def judged_by_rules(p: Progress, i: Input) -> bool:
    """The chat's passes are judged by rules, not a model (``Cast.judge``)."""
    return p.cast.judge == "rules"


def interjection_by_rules(p: Progress, i: Input) -> bool:
    """The primary beat's passes, completed before any cancel, and rules judge the ranking."""
    return interjection_open(p, i) and judged_by_rules(p, i)


def interjection_open(p: Progress, i: Input) -> bool:
    """These are the primary beat's passes, and it completed before any cancel."""
    return p.decide and p.interjector is None


def a_decision(p: Progress, i: Input) -> bool:
    """The answer is the interjection ranking."""
    return key_of(i).startswith(INTERJECTION)


def more_changes_due(p: Progress, i: Input) -> bool:
    """A state update is still out besides this one."""
    return _out(p, STATE_UPDATE, besides=key_of(i))


def decisions_due(p: Progress, i: Input) -> bool:
    """The interjection ranking is still out."""
    return _out(p, INTERJECTION)


def interjection_due(p: Progress, i: Input) -> bool:
    """The ranking names a silent witness, nobody cancelled, and none spoke yet."""
    return _interjects(p, p.ranking)


def interjects(p: Progress, i: Input) -> bool:
    """With this ranking, a silent witness speaks up (and nobody cancelled)."""
    return _interjects(p, with_decision(p, i).ranking)


def _out(p: Progress, prefix: str, besides: str = "") -> bool:
    return any(k.startswith(prefix) and k != besides for k in p.waiting)


def _interjects(p: Progress, ranking: Sequence[str] | None) -> bool:
    return (
        chosen_interjector(p, ranking) is not None and p.cancel is None and p.interjector is None
    )


def events_open(p: Progress, i: Input) -> bool:
    """Some world event is planned or active."""
    return bool(expect(i, Loaded, "the read").world_events)


def events_move(p: Progress, i: Input) -> bool:
    """The lifecycle classifier moved some world event."""
    return bool(answer_of(i).value)


def rules_close(p: Progress, i: Input) -> bool:
    """The scene-close rules close the scene."""
    return isinstance(scene_ruling(p), Close)


def rules_unsure(p: Progress, i: Input) -> bool:
    """The scene-close rules are unsure."""
    return isinstance(scene_ruling(p), Unsure)


def closes(p: Progress, i: Input) -> bool:
    """The scene-close classifier closes the scene."""
    return expect(answer_of(i).value, SceneCloseDecision, "scene_close").close


def more_summaries_due(p: Progress, i: Input) -> bool:
    """A scene summary is still out besides this one."""
    return _out(p, SCENE_SUMMARY, besides=key_of(i))
