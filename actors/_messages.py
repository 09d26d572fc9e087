"""Messages the engine sends to its actors."""

from __future__ import annotations

from attrs import frozen

from protocol import YOU_ID, Artifacts
from protocol import events as ev
from store import CommandRun


@frozen
class StartTurn:
    """Accept the user's prose and run the turn; the reply is the user turn id."""

    prose: str
    reply_as: str | None = None
    """A character present who must answer (muted or not)."""
    person_id: str = YOU_ID
    """The persona whose turn it is (the connection's seat)."""
    queue: bool = False
    """While a turn is in flight, wait in the chat's queue instead of being refused."""


@frozen
class CancelTurn:
    """Stop the beat in flight (and any interjection still to come)."""

    reason: str = "cancelled"
    queued_by: str | None = None
    """Also drop this persona's queued turns."""


@frozen
class RegenerateTurn:
    """Replace the latest assistant turn, optionally with edited prose."""

    event_id: int
    prose: str | None = None


@frozen
class SelectAlternativeOf:
    """Make the beat ``event_id`` (an alternative) current: the chat moves to its branch."""

    event_id: int


@frozen
class SwitchTo:
    """Make the chat's branch ``branch_id`` current."""

    branch_id: int


@frozen
class ContinueLatest:
    """Let the chat's latest beat go on; answered with the user turn id it answers."""


@frozen
class EditUserTurn:
    """Fork before the person's turn ``event_id`` and run it again with ``prose``."""

    event_id: int
    prose: str


@frozen
class PreviewRewind:
    """Count what a rewind would remove."""

    event_id: int


@frozen
class RewindChat:
    """Rewind the chat to ``event_id``."""

    event_id: int


@frozen
class PlanWorldEvent:
    """Create a planned world event in the chat."""

    title: str
    description: str
    artifacts: Artifacts


@frozen
class MoveCast:
    """Change the chat's cast, who is in its scene or who is muted: one such event."""

    event: ev.CastAdded | ev.CastRemoved | ev.PresenceChanged | ev.MuteChanged


@frozen
class WaitSettled:
    """Reply once no turn is in flight or queued (used by shutdown and by headless runs)."""


@frozen
class ResumeQueue:
    """Run the turns a crash left queued, if the chat is idle (sent as the engine opens)."""


@frozen
class ScoreMemories:
    """Score a beat's memories in the background; a 3 auto-pins."""

    chat_id: str
    memory_ids: tuple[int, ...]
    text: str
    context: str


@frozen
class Flush:
    """Reply once every message told before it was handled."""


@frozen
class Commanded:
    """A chat command sent with an id: ``message``'s first write records ``run``.

    A command that goes through the chat's actor runs its writes in the actor's
    task, which cannot see the gateway's ``current_command``: it travels here.
    """

    message: object
    run: CommandRun
