"""Scripted dialogues: a readable TOML story, run headless through the real actors.

A script names the people, the chat, and each turn: what you say, what the
model answers (narrative text and classifier outputs, valid or not), and what
must be true afterwards. See docs/dialogues.md for the format.
"""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

import story
from actors import Engine, EngineSettings, open_engine
from llm import ScriptedBackend, split_tokens
from protocol import (
    YOU_ID,
    Artifacts,
    BeatStarted,
    Bot,
    Edge,
    ProtocolError,
    Queued,
    Token,
    TurnSettled,
    converter,
)
from store import Store, import_card, import_lorebook


class ScriptError(Exception):
    """The script itself is malformed: its author's fault."""


@attrs.define
class Outcome:
    """What running a script produced: the transcript and every failed expectation."""

    lines: list[str] = attrs.Factory(list)
    failures: list[str] = attrs.Factory(list)

    def say(self, line: str) -> None:
        """Add a line to the transcript."""
        self.lines.append(line)

    def fail(self, where: str, what: str) -> None:
        """Record a failed expectation."""
        self.failures.append(f"{where}: {what}")
        self.lines.append(f"  ✗ {what}")

    @property
    def ok(self) -> bool:
        """Every expectation held."""
        return not self.failures


def load_script(path: Path) -> dict[str, Any]:
    """Read a dialogue script."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScriptError(f"{path}: {exc}") from None
    if "chat" not in data or "bot" not in data:
        raise ScriptError(f"{path}: a script needs [[bot]] entries and a [chat] table")
    return data


SETTINGS = {"auto_pin_cap": int, "classifier_timeout": float, "max_beats_per_turn": int}
"""Engine settings a script may change in its ``[settings]`` table."""


@asynccontextmanager
async def scripted_engine(
    db: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AsyncIterator[tuple[Engine, ScriptedBackend]]:
    """An engine on a scripted backend, with a temporary database unless ``db`` is given."""
    options: dict[str, Any] = {"classifier_timeout": 5.0}
    for key, value in (overrides or {}).items():
        if key not in SETTINGS:
            raise ScriptError(f"unknown setting {key!r}; a script may set {sorted(SETTINGS)}")
        options[key] = SETTINGS[key](value)
    with tempfile.TemporaryDirectory(prefix="troupe-replay-") as tmp:
        data_dir = Path(tmp)
        settings = EngineSettings(
            db_path=db if db is not None else data_dir / "troupe.db",
            data_dir=data_dir,
            **options,
        )
        backend = ScriptedBackend()
        async with open_engine(settings, narrative=backend, classifier=backend) as engine:
            yield engine, backend


async def run_script(data: Mapping[str, Any], db: Path | None = None) -> Outcome:
    """Run a parsed script; never raises for a failed expectation (see ``Outcome``)."""
    async with scripted_engine(db, data.get("settings")) as (engine, backend):
        return await Runner(engine, backend, data).run()


class Runner:
    """Plays one script against an engine."""

    def __init__(self, engine: Engine, backend: ScriptedBackend, data: Mapping[str, Any]) -> None:
        self.engine = engine
        self.backend = backend
        self.data = data
        self.out = Outcome()
        self.ids: dict[str, str] = {"you": YOU_ID}
        self.names: dict[str, str] = {}
        self.chat_id = ""
        self.books: dict[str, str] = {}
        self.seat = YOU_ID
        """The persona whose turns the script's connection sends (``seat`` steps change it)."""
        self.chats: list[str] = []
        self._printed: set[int] = set()

    def resolve(self, key: str) -> str:
        """A script's name for an entity to its id."""
        if key not in self.ids:
            raise ScriptError(
                f"the script names {key!r}, which is neither 'you' nor a bot nor a persona"
            )
        return self.ids[key]

    async def run(self) -> Outcome:
        """Set the world up, then play every turn."""
        you = self.data.get("you", {})
        if you:
            entity = await self.engine.set_you(you.get("name", "You"), you.get("persona", ""))
            self.names[YOU_ID] = entity.name
        else:
            self.names[YOU_ID] = (await self.engine.you()).name
        for book in self.data.get("lorebook", []):
            self.books[book["key"]] = await self.import_lorebook(book)
        for persona in self.data.get("persona", []):
            made_persona = await self.engine.create_persona(
                persona["name"], persona.get("persona", "")
            )
            self.ids[persona.get("key", made_persona.id)] = made_persona.id
            self.names[made_persona.id] = made_persona.name
        for bot in self.data["bot"]:
            if "card" in bot:
                made = await self.import_card(bot["card"])
            else:
                made = await self.engine.create_bot(
                    bot["name"], bot.get("persona", ""), bot.get("greeting", "")
                )
            self.ids[bot.get("key", made.id)] = made.id
            self.names[made.id] = made.name
        chat = self.data["chat"]
        cast = chat.get("cast")
        made_chat = await self.engine.create_chat(
            self.resolve(chat["host"]) if chat.get("host") else None,
            self.resolve(chat["guest"]) if chat.get("guest") else None,
            chat.get("location"),
            chat.get("title"),
            cast=tuple(self.resolve(key) for key in cast) if cast is not None else None,
            greeting=chat.get("greeting"),
        )
        self.chat_id = made_chat.id
        for key in chat.get("lorebooks", []):
            await self.engine.attach_lorebook(self.chat_id, self.book(key))
        self.chats = [made_chat.id]
        self.out.say(f"# {self.data.get('title', made_chat.title)}")
        for number, turn in enumerate(self.data.get("turn", []), start=1):
            await self.play(number, turn)
        await self.summary()
        return self.out

    def book(self, key: str) -> str:
        """A script's name for a lorebook to its id."""
        if key not in self.books:
            raise ScriptError(f"the script names the lorebook {key!r}, which it never made")
        return self.books[key]

    async def import_lorebook(self, book: Mapping[str, Any]) -> str:
        """A ``[[lorebook]]``: its ``entries`` as a SillyTavern world-info file, imported."""
        entries = {str(n): {"uid": n, **entry} for n, entry in enumerate(book["entries"])}
        text = json.dumps({"name": book.get("name", book["key"]), "entries": entries})
        return await self.engine.store.run(
            lambda s: import_lorebook(s, story.read_world_info(text), book["key"])
        )

    async def import_card(self, card: Mapping[str, Any]) -> Bot:
        """A bot's ``card``: a V3 card's ``data`` table, imported as a card file would be."""
        document = {"spec": "chara_card_v3", "spec_version": "3.0", "data": dict(card)}
        imported = story.read_import(json.dumps(document).encode("utf-8"))
        if not isinstance(imported, story.ImportedCard):
            raise ScriptError(f"the card of {card.get('name')!r} does not read as a card")
        bot_id = await self.engine.store.run(lambda s: import_card(s, imported))
        made = await self.engine.store.run(Store.get_bot, bot_id)
        assert made is not None
        return made

    # --- one turn ---

    async def play(self, number: int, turn: Mapping[str, Any]) -> None:
        """Script the model, do the turn's action, wait for it to settle, check."""
        where = f"turn {number}"
        for plan in _as_list(turn.get("world_event")):
            artifacts = converter.structure(
                self.resolve_artifacts(plan.get("artifacts", {})), Artifacts
            )
            await self.engine.create_world_event(
                self.chat_id, plan["title"], plan.get("description", ""), artifacts
            )
            self.out.say(f"[world event planned: {plan['title']}]")
        await self.script_model(turn)
        before = len(self.backend.requests)
        error: str | None = None
        try:
            await self.act(turn)
        except ProtocolError as exc:
            error = exc.code
            self.out.say(f"  → error {exc.code}: {exc.message}")
        expected_error = turn.get("expect", {}).get("error")
        if expected_error != error:
            self.out.fail(where, f"expected error {expected_error!r}, got {error!r}")
        await self.engine.wait_settled(self.chat_id)
        await self.drain_background()
        await self.check(where, turn.get("expect", {}), self.backend.requests[before:])

    def resolve_artifacts(self, artifacts: Mapping[str, Any]) -> dict[str, Any]:
        """Artifacts with the script's names for people turned into ids."""
        out: dict[str, Any] = {}
        for group, items in artifacts.items():
            out[group] = [
                {
                    k: self.resolve(v) if k in ("source_id", "target_id", "holder_id") else v
                    for k, v in item.items()
                }
                for item in items
            ]
        return out

    async def world_event_ids(self, outputs: Any) -> Any:
        """Lifecycle outputs may name events by title (``event``); turn titles into ids."""
        events = await self.engine.store.run(
            lambda s: s.world_events(self.chat_id, ("planned", "active", "completed", "cancelled"))
        )
        by_title = {e.title: e.id for e in events}
        fixed = []
        for output in _as_list(outputs):
            if isinstance(output, Mapping) and "transitions" in output:
                moves = []
                for move in output["transitions"]:
                    move = dict(move)
                    if "event" in move:
                        title = move.pop("event")
                        if title not in by_title:
                            raise ScriptError(f"no world event is titled {title!r}")
                        move["event_id"] = by_title[title]
                    moves.append(move)
                output = {**output, "transitions": moves}
            fixed.append(output)
        return fixed

    async def script_model(self, turn: Mapping[str, Any]) -> None:
        """Hand the turn's scripted replies to the backend."""
        for reply in _as_list(turn.get("reply")):
            if isinstance(reply, str):
                self.backend.push_narrative(reply)
            else:
                self.backend.push_narrative(**_narrative_kwargs(reply))
        for name, outputs in turn.get("classifier", {}).items():
            if isinstance(outputs, Mapping) and outputs and all("->" in k for k in outputs):
                # Keyed by directed pair, e.g. "you->mira"; a state update is one call per
                # source, so the pairs from one source make one answer (a raw or failing
                # output stands for the whole call).
                by_source: dict[str, dict[str, Any]] = {}
                for pair, output in outputs.items():
                    source, _, target = pair.partition("->")
                    by_source.setdefault(self.resolve(source), {})[self.resolve(target)] = output
                for source, entries in by_source.items():
                    match = re.escape(f"pair: {source} -> ")
                    special = [
                        o for o in entries.values() if _classifier_kwargs(o).get("json") is None
                    ]
                    kwargs = (
                        _classifier_kwargs(special[0]) if special else {"json": {"edges": entries}}
                    )
                    self.backend.push_classifier(name, match=match, **kwargs)
                continue
            if name == "lifecycle":
                outputs = await self.world_event_ids(outputs)
            for output in _as_list(outputs):
                self.backend.push_classifier(name, **_classifier_kwargs(output))

    async def act(self, turn: Mapping[str, Any]) -> None:
        """Do what the turn says: send prose, regenerate, rewind or pin."""
        engine, chat_id = self.engine, self.chat_id
        if "seat" in turn:
            persona = self.resolve(turn["seat"])
            await engine.take_seat(chat_id, persona)
            self.seat = persona
            self.out.say(f"[{self.names[persona]} takes a seat]")
        if "you" in turn:
            prose = turn["you"]
            self.out.say(f"{self.names[self.seat]}: {prose}")
            cancel_after = turn.get("cancel_after_tokens")
            reply_as = self.resolve(turn["reply_as"]) if "reply_as" in turn else None
            if "queue" in turn:
                answers = await self.send_and_queue(
                    prose, reply_as, _as_list(turn["queue"]), bool(turn.get("cancel_after_queue"))
                )
                want = turn.get("expect", {})
                for key, value in (("queued", answers[0]), ("queue_refused", answers[1])):
                    if key in want:
                        _compare(self.out, "queue", f"{key} turns", value, want[key])
            elif cancel_after is None:
                await engine.send_turn(chat_id, prose, reply_as, person_id=self.seat)
            else:
                beat = int(turn.get("cancel_beat", 1))
                replies = _as_list(turn.get("reply"))
                reply = replies[beat - 1] if len(replies) >= beat else ""
                text = reply if isinstance(reply, str) else reply.get("text", "")
                prefix = "".join(split_tokens(text)[: int(cancel_after)])
                await self.send_and_cancel(prose, max(1, len(prefix)), beat)
        elif "regenerate" in turn:
            latest = (await engine.chat_state(chat_id)).timeline[-1]
            edited = turn["regenerate"] if isinstance(turn["regenerate"], str) else None
            event_id = int(turn.get("regenerate_event", latest.event_id))
            if "regenerate_turn" in turn:
                timeline = (await engine.chat_state(chat_id)).timeline
                event_id = timeline[int(turn["regenerate_turn"]) - 1].event_id
            self.out.say(f"[regenerate {event_id}{' with: ' + edited if edited else ''}]")
            await engine.regenerate(chat_id, event_id, edited)
        elif "continue" in turn:
            timeline = (await engine.chat_state(chat_id)).timeline
            if timeline:
                self._printed.discard(timeline[-1].event_id)  # shown again, whole
            self.out.say("[continue]")
            cancel_after = turn.get("cancel_after_tokens")
            if cancel_after is None:
                await engine.continue_beat(chat_id)
            else:
                replies = _as_list(turn.get("reply"))
                reply = replies[0] if replies else ""
                text = reply if isinstance(reply, str) else reply.get("text", "")
                prefix = "".join(split_tokens(text)[: int(cancel_after)])
                await self.continue_and_cancel(max(1, len(prefix)))
        elif "rewind_to_turn" in turn:
            timeline = (await engine.chat_state(chat_id)).timeline
            index = int(turn["rewind_to_turn"])
            event_id = timeline[index - 1].event_id
            preview = await engine.rewind_preview(chat_id, event_id)
            self.out.say(f"[rewind to {event_id}: {preview.summary}]")
            said = turn.get("expect", {}).get("rewind_summary")
            if said is not None and said != preview.summary:
                self.out.fail("rewind", f"preview says {preview.summary!r}, want {said!r}")
            want = turn.get("expect", {}).get("rewind_removes")
            if want is not None and want != preview.total_events:
                self.out.fail("rewind", f"preview removes {preview.total_events}, want {want}")
            await engine.rewind(chat_id, event_id)
        elif "pin" in turn:
            spec = turn["pin"]
            memories = await engine.list_memories(self.resolve(spec["bot"]), chat_id)
            target = memories[int(spec.get("index", -1))]
            await engine.pin_memory(target.id, bool(spec.get("pinned", True)))
            self.out.say(f"[{'pin' if spec.get('pinned', True) else 'unpin'} memory {target.id}]")
        elif "delete_bot" in turn:
            await engine.delete_bot(self.resolve(turn["delete_bot"]))
            self.out.say(f"[delete bot {turn['delete_bot']}]")
        elif "cancel" in turn:
            await engine.cancel(chat_id)
            self.out.say("[cancel]")
        elif "enter" in turn:
            await engine.enter_scene(chat_id, self.resolve(turn["enter"]))
            self.out.say(f"[{turn['enter']} enters]")
        elif "leave" in turn:
            await engine.leave_scene(chat_id, self.resolve(turn["leave"]))
            self.out.say(f"[{turn['leave']} leaves]")
        elif "attach_lorebook" in turn:
            await engine.attach_lorebook(chat_id, self.book(turn["attach_lorebook"]))
            self.out.say(f"[lorebook {turn['attach_lorebook']} attached]")
        elif "detach_lorebook" in turn:
            await engine.detach_lorebook(chat_id, self.book(turn["detach_lorebook"]))
            self.out.say(f"[lorebook {turn['detach_lorebook']} detached]")
        elif "author_note" in turn:
            note = turn["author_note"]
            await engine.set_author_note(chat_id, note.get("text", ""), int(note.get("depth", 4)))
            self.out.say(f"[author's note: {note.get('text', '')}]")
        elif "add_to_cast" in turn:
            await engine.add_to_cast(chat_id, self.resolve(turn["add_to_cast"]))
            self.out.say(f"[{turn['add_to_cast']} joins the cast]")
        elif "select_alternative" in turn:
            spec = turn["select_alternative"]
            timeline = (await engine.chat_state(chat_id)).timeline
            beat = timeline[int(spec["turn"]) - 1].event_id
            options = (await engine.store.run(Store.alternatives, chat_id)).get(beat, (beat,))
            chosen = options[int(spec["alternative"]) - 1]
            self.out.say(f"[select alternative {spec['alternative']} of beat {beat}: {chosen}]")
            await engine.select_alternative(chat_id, chosen)
        elif "switch_branch" in turn:
            branches = (await engine.list_branches(chat_id)).branches
            number = int(turn["switch_branch"])
            # A number past the list names a branch that does not exist.
            branch = branches[number - 1].branch_id if number <= len(branches) else 10**9
            self.out.say(f"[switch to branch {turn['switch_branch']} ({branch})]")
            await engine.switch_branch(chat_id, branch)
        elif "edit_turn" in turn:
            spec = turn["edit_turn"]
            timeline = (await engine.chat_state(chat_id)).timeline
            event_id = timeline[int(spec["turn"]) - 1].event_id
            self.out.say(f"[edit turn {event_id}: {spec['prose']}]")
            await engine.edit_turn(chat_id, event_id, spec["prose"])
        elif "new_chat" in turn:
            await self.new_chat(turn["new_chat"])
        elif "remove_from_cast" in turn:
            await engine.remove_from_cast(chat_id, self.resolve(turn["remove_from_cast"]))
            self.out.say(f"[{turn['remove_from_cast']} leaves the cast]")
        elif "mute" in turn:
            await engine.mute(chat_id, self.resolve(turn["mute"]))
            self.out.say(f"[{turn['mute']} is muted]")
        elif "unmute" in turn:
            await engine.unmute(chat_id, self.resolve(turn["unmute"]))
            self.out.say(f"[{turn['unmute']} is unmuted]")

    async def send_and_queue(
        self, prose: str, reply_as: str | None, queued: list[Mapping[str, Any]], cancel: bool
    ) -> tuple[int, int]:
        """Send a turn; once its first beat streams, queue the others behind it, in order.

        Each queued turn is sent by a connection seated as its ``as`` persona
        (``you`` when left out). A turn that finds the chat idle already runs
        at once: the timeline is the same either way. With ``cancel`` the
        first turn's beat (a stalled reply holds it) is cancelled once all are
        sent. Returns how many were queued and how many refused.
        """
        counts = [0, 0]
        async with self.engine.watch(self.chat_id) as messages:
            await self.engine.send_turn(self.chat_id, prose, reply_as, person_id=self.seat)
            async for message in messages:
                if isinstance(message, Token | TurnSettled):
                    break
        for item in queued:
            unknown = set(item) - {"as", "say", "reply_as"}
            if unknown or "say" not in item:
                raise ScriptError(f"a queued turn takes say, as and reply_as; got {dict(item)}")
            person = self.resolve(item.get("as", "you"))
            if person != YOU_ID:
                await self.engine.take_seat(self.chat_id, person)
            forced = self.resolve(item["reply_as"]) if "reply_as" in item else None
            self.out.say(f"{self.names[person]} (queued): {item['say']}")
            try:
                answer = await self.engine.send_or_queue(
                    self.chat_id, item["say"], forced, person_id=person, queue=True
                )
            except ProtocolError as exc:
                counts[1] += 1
                self.out.say(f"  → error {exc.code}: {exc.message}")
                continue
            if isinstance(answer, Queued):
                counts[0] += 1
                self.out.say(f"  → queued at {answer.position}")
        if cancel:
            await self.engine.cancel(self.chat_id)
            self.out.say("[cancel]")
        return counts[0], counts[1]

    async def new_chat(self, spec: Mapping[str, Any]) -> None:
        """Start another chat and play on in it; ``continue_from`` carries one over.

        ``continue_from`` is ``true`` (the chat played so far), the number of one
        of the script's chats (1 is the first), or a raw chat id.
        """
        wanted = spec.get("continue_from")
        source: str | None = None
        if wanted is True:
            source = self.chat_id
        elif isinstance(wanted, int) and not isinstance(wanted, bool):
            source = self.chats[wanted - 1]
        elif isinstance(wanted, str):
            source = wanted
        made = await self.engine.create_chat(
            None,
            None,
            spec.get("location"),
            spec.get("title"),
            cast=tuple(self.resolve(key) for key in spec["cast"]),
            continue_from=source,
        )
        self.chat_id = made.id
        self.chats.append(made.id)
        carried = f", carrying on from {source}" if source else ""
        self.out.say(f"[new chat {made.id}: {made.title}{carried}]")

    async def send_and_cancel(self, prose: str, characters: int, beat: int = 1) -> None:
        """Send a turn; cancel once its ``beat``-th beat streamed ``characters``."""
        beats: list[int] = []
        async with self.engine.watch(self.chat_id) as messages:
            await self.engine.send_turn(self.chat_id, prose, person_id=self.seat)
            async for message in messages:
                if isinstance(message, BeatStarted):
                    beats.append(message.beat_id)
                if (
                    isinstance(message, Token)
                    and len(beats) >= beat
                    and message.beat_id == beats[beat - 1]
                    and message.offset + len(message.text) >= characters
                ):
                    await self.engine.cancel(self.chat_id)
                    break
                if isinstance(message, TurnSettled):
                    break  # the beat to cancel never came

    async def continue_and_cancel(self, characters: int) -> None:
        """Let the latest beat go on; cancel once the continuation streamed ``characters``."""
        start: int | None = None
        async with self.engine.watch(self.chat_id) as messages:
            await self.engine.continue_beat(self.chat_id)
            async for message in messages:
                if isinstance(message, BeatStarted) and message.continues is not None:
                    start = message.offset
                if (
                    isinstance(message, Token)
                    and start is not None
                    and message.offset + len(message.text) - start >= characters
                ):
                    await self.engine.cancel(self.chat_id)
                    break
                if isinstance(message, TurnSettled):
                    break  # it ended before that many

    async def drain_background(self) -> None:
        """Let the background significance scoring finish before checking."""
        for _ in range(50):
            await trio.lowlevel.checkpoint()
        await self.engine.idle()

    # --- checks ---

    async def check(self, where: str, expect: Mapping[str, Any], requests: list[Any]) -> None:
        """Compare the state after a turn with the turn's expectations."""
        state = await self.engine.chat_state(self.chat_id)
        for turn in state.timeline:
            if turn.kind == "assistant" and turn.event_id not in self._printed:
                self._printed.add(turn.event_id)
                flag = f"  [truncated: {turn.truncated and 'yes'}]" if turn.truncated else ""
                self.out.say(
                    f"{self.names.get(turn.speaker_id, turn.speaker_id)}: {turn.text}{flag}"
                )
        checks: dict[str, Callable[[Any], Any]] = {
            "last": lambda spec: self.check_turn(where, "last turn", state.timeline[-1], spec),
            "timeline": lambda spec: self.check_timeline(where, state.timeline, spec),
            "edges": lambda spec: self.check_edges(where, spec),
            "memories": lambda spec: self.check_memories(where, spec),
            "scene": lambda spec: self.check_scene(where, spec),
            "world_events": lambda spec: self.check_world(where, spec),
            "inventory": lambda spec: self.check_inventory(where, spec),
            "calls": lambda spec: self.check_calls(where, spec, requests),
            "prompt_has": lambda spec: self.check_prompt(where, spec, requests, True),
            "prompt_lacks": lambda spec: self.check_prompt(where, spec, requests, False),
            "requests_lack": lambda spec: self.check_requests_lack(where, spec, requests),
            "requests_have": lambda spec: self.check_requests_have(where, spec, requests),
            "requests_for_lack": lambda spec: self.check_requests_for(
                where, spec, requests, False
            ),
            "requests_for_have": lambda spec: self.check_requests_for(where, spec, requests, True),
            "present": lambda spec: self.check_present(where, state.chat, spec),
            "muted": lambda spec: self.check_muted(where, state.chat, spec),
            "branches": lambda spec: self.check_branches(where, spec),
        }
        for key, spec in expect.items():
            if key in ("error", "rewind_removes", "rewind_summary", "queued", "queue_refused"):
                continue
            if key not in checks:
                raise ScriptError(f"{where}: unknown expectation {key!r}")
            result = checks[key](spec)
            if hasattr(result, "__await__"):
                await result

    def check_turn(self, where: str, label: str, turn: Any, spec: Mapping[str, Any]) -> None:
        """One timeline entry against ``speaker``, ``text``, ``contains``, flags."""
        if "speaker" in spec and turn.speaker_id != self.resolve(spec["speaker"]):
            self.out.fail(where, f"{label} speaker is {turn.speaker_id}, want {spec['speaker']}")
        if "text" in spec and turn.text != spec["text"]:
            self.out.fail(where, f"{label} text is {turn.text!r}, want {spec['text']!r}")
        if "contains" in spec and spec["contains"] not in turn.text:
            self.out.fail(where, f"{label} text {turn.text!r} lacks {spec['contains']!r}")
        if "lacks" in spec and spec["lacks"] in turn.text:
            self.out.fail(where, f"{label} text {turn.text!r} holds {spec['lacks']!r}")
        for flag in ("truncated", "kind", "alternatives", "alternative"):
            if flag in spec and getattr(turn, flag) != spec[flag]:
                self.out.fail(
                    where, f"{label} {flag} is {getattr(turn, flag)!r}, want {spec[flag]!r}"
                )
        if "interjection_of" in spec:
            want = self.resolve(spec["interjection_of"]) if spec["interjection_of"] else None
            if turn.interjection_of != want:
                self.out.fail(where, f"{label} interjection_of is {turn.interjection_of!r}")

    def check_timeline(self, where: str, timeline: Any, spec: Any) -> None:
        """The whole visible timeline: a count, or a list of turn specs."""
        if isinstance(spec, int):
            if len(timeline) != spec:
                self.out.fail(where, f"timeline has {len(timeline)} turns, want {spec}")
            return
        if len(timeline) != len(spec):
            self.out.fail(where, f"timeline has {len(timeline)} turns, want {len(spec)}")
            return
        for index, (turn, turn_spec) in enumerate(zip(timeline, spec, strict=True), start=1):
            self.check_turn(where, f"timeline[{index}]", turn, turn_spec)

    async def check_branches(self, where: str, spec: Any) -> None:
        """The chat's branches: a count, or a list of ``{length, current, last_line}``."""
        branches = (await self.engine.list_branches(self.chat_id)).branches
        if isinstance(spec, int):
            _compare(self.out, where, "branches", len(branches), spec)
            return
        _compare(self.out, where, "branches", len(branches), len(spec))
        for index, (branch, want) in enumerate(zip(branches, spec, strict=False), start=1):
            for key, value in want.items():
                _compare(self.out, where, f"branch {index} {key}", getattr(branch, key), value)

    async def check_edges(self, where: str, spec: Mapping[str, Any]) -> None:
        """Edges by ``"a->b"``: affinity, trust, knowledge, summary."""
        for pair, want in spec.items():
            source, _, target = pair.partition("->")
            edges = await self.engine.store.run(
                _edge_of, self.chat_id, self.resolve(source), self.resolve(target)
            )
            for field_name in ("affinity", "trust"):
                if field_name in want:
                    _compare(
                        self.out,
                        where,
                        f"{pair} {field_name}",
                        getattr(edges, field_name),
                        want[field_name],
                    )
            for fact in _as_list(want.get("knows")):
                if not any(fact in known for known in edges.knowledge_facts):
                    self.out.fail(where, f"{pair} does not know {fact!r}: {edges.knowledge_facts}")
            if "summary_contains" in want and want["summary_contains"] not in edges.summary:
                self.out.fail(where, f"{pair} summary {edges.summary!r} lacks the phrase")

    async def check_memories(self, where: str, spec: Mapping[str, Any]) -> None:
        """A bot's memories of this chat: count, pinned, significance, contents."""
        for key, want in spec.items():
            memories = await self.engine.list_memories(self.resolve(key), self.chat_id)
            if "count" in want:
                _compare(self.out, where, f"{key} memories", len(memories), want["count"])
            if "pinned" in want:
                pinned = sum(1 for mem in memories if mem.pinned)
                _compare(self.out, where, f"{key} pinned memories", pinned, want["pinned"])
            if "last_significance" in want and memories:
                _compare(
                    self.out,
                    where,
                    f"{key} last significance",
                    memories[-1].significance,
                    want["last_significance"],
                )
            for phrase in _as_list(want.get("contain")):
                if not any(phrase in mem.text for mem in memories):
                    self.out.fail(where, f"no memory of {key} contains {phrase!r}")
            for phrase in _as_list(want.get("lack")):
                if any(phrase in mem.text for mem in memories):
                    self.out.fail(where, f"a memory of {key} contains {phrase!r}")

    async def check_scene(self, where: str, spec: Mapping[str, Any]) -> None:
        """The chat's current scene: open or not, and where."""
        scene = (await self.engine.chat_state(self.chat_id)).scene
        if "open" in spec and (scene is not None) != spec["open"]:
            self.out.fail(where, f"scene open is {scene is not None}, want {spec['open']}")
        if "location" in spec and (scene is None or scene.location != spec["location"]):
            self.out.fail(where, f"scene location is {scene and scene.location!r}")
        if "closed" in spec:
            closed = await self.engine.store.run(lambda s: s.closed_scenes(self.chat_id))
            _compare(self.out, where, "closed scenes", len(closed), spec["closed"])

    async def check_world(self, where: str, spec: Mapping[str, Any]) -> None:
        """World events by title: their status."""
        events = await self.engine.store.run(
            lambda s: s.world_events(self.chat_id, ("planned", "active", "completed", "cancelled"))
        )
        status = {e.title: e.status for e in events}
        for title, want in spec.items():
            if status.get(title) != want:
                self.out.fail(
                    where, f"world event {title!r} is {status.get(title)!r}, want {want!r}"
                )

    async def check_inventory(self, where: str, spec: Mapping[str, Any]) -> None:
        """What each holder owns."""
        for key, want in spec.items():
            have = await self.engine.store.run(Store.inventory, self.resolve(key))
            if sorted(have) != sorted(want):
                self.out.fail(where, f"{key} holds {sorted(have)}, want {sorted(want)}")

    def check_calls(self, where: str, spec: Mapping[str, Any], requests: list[Any]) -> None:
        """Model calls made during the turn, by classifier name (``narrative`` for beats)."""
        counts: dict[str, int] = {}
        first_narrative = None
        for index, request in enumerate(requests):
            name = getattr(request, "name", None) or "narrative"
            counts[name] = counts.get(name, 0) + 1
            if name == "narrative" and first_narrative is None:
                first_narrative = index
        for name, want in spec.items():
            if name == "before_first_token":
                before = requests[: first_narrative if first_narrative is not None else 0]
                _compare(
                    self.out, where, "classifier calls before the first token", len(before), want
                )
                continue
            _compare(self.out, where, f"{name} calls", counts.get(name, 0), want)

    def check_prompt(self, where: str, spec: Any, requests: list[Any], present: bool) -> None:
        """Phrases that the turn's first narrative prompt must (or must not) contain."""
        prompts = [r for r in requests if getattr(r, "name", None) is None]
        if not prompts:
            self.out.fail(where, "no narrative prompt was sent")
            return
        text = "\n".join(message.content for message in prompts[0].messages)
        for phrase in _as_list(spec):
            if (phrase in text) != present:
                verb = "lacks" if present else "contains"
                self.out.fail(where, f"the prompt {verb} {phrase!r}")

    def check_requests_lack(self, where: str, spec: Any, requests: list[Any]) -> None:
        """Phrases that no model request of the turn may contain, narrative or classifier."""
        for phrase in _as_list(spec):
            carriers = [_kind(r) for r in requests if phrase in _request_text(r)]
            if carriers:
                self.out.fail(
                    where,
                    f"{len(carriers)} of {len(requests)} model requests contain {phrase!r}: "
                    f"{', '.join(carriers)}",
                )

    def check_requests_have(
        self, where: str, spec: Mapping[str, Any], requests: list[Any]
    ) -> None:
        """Per kind (a classifier's name, or ``narrative``): phrases every such request has."""
        for kind, phrases in spec.items():
            chosen = [r for r in requests if _kind(r) == kind]
            if not chosen:
                self.out.fail(where, f"no {kind} request was sent")
                continue
            for phrase in _as_list(phrases):
                lacking = sum(1 for r in chosen if phrase not in _request_text(r))
                if lacking:
                    self.out.fail(
                        where, f"{lacking} of {len(chosen)} {kind} requests lack {phrase!r}"
                    )

    async def summary(self) -> None:
        """Print the state at the end: edges and memories."""
        state = await self.engine.chat_state(self.chat_id)
        self.out.say("-- state --")
        for edge in state.edges:
            knows = "; knows " + "; ".join(edge.knowledge_facts) if edge.knowledge_facts else ""
            self.out.say(
                f"{self.names.get(edge.source_id, edge.source_id)} → "
                f"{self.names.get(edge.target_id, edge.target_id)}: affinity {edge.affinity}, "
                f"trust {edge.trust}{knows}"
            )
        for bot_id, name in self.names.items():
            if bot_id == YOU_ID:
                continue
            try:
                memories = await self.engine.list_memories(bot_id, self.chat_id)
            except ProtocolError:
                continue  # deleted during the script
            pinned = sum(1 for mem in memories if mem.pinned)
            self.out.say(f"{name}: {len(memories)} memories, {pinned} pinned")
        if state.scene is not None:
            self.out.say(f"scene: {state.scene.location or 'somewhere'}")

    def check_requests_for(
        self, where: str, spec: Mapping[str, Any], requests: list[Any], present: bool
    ) -> None:
        """Per character: phrases that no request built for it has (or that one of them has).

        A request is built for a character when it is its beat, its side of a
        state update, its interjection question or its scene summary.
        """
        for key, phrases in spec.items():
            bot_id = self.resolve(key)
            mine = [r for r in requests if _built_for(r, self.names[bot_id], bot_id)]
            if not mine:
                self.out.fail(where, f"no request was built for {key}")
                continue
            for phrase in _as_list(phrases):
                carriers = [_kind(r) for r in mine if phrase in _request_text(r)]
                if present and not carriers:
                    self.out.fail(where, f"no request built for {key} has {phrase!r}")
                if not present and carriers:
                    self.out.fail(
                        where,
                        f"requests built for {key} contain {phrase!r}: {', '.join(carriers)}",
                    )

    def check_present(self, where: str, chat: Any, spec: Any) -> None:
        """Who is in the scene after the turn, in cast order."""
        want = [self.resolve(key) for key in _as_list(spec)]
        _compare(self.out, where, "present", list(chat.present), want)

    def check_muted(self, where: str, chat: Any, spec: Any) -> None:
        """Who is muted after the turn, in cast order."""
        want = [self.resolve(key) for key in _as_list(spec)]
        _compare(self.out, where, "muted", list(chat.muted or ()), want)


def _compare(out: Outcome, where: str, label: str, value: Any, want: Any) -> None:
    if isinstance(want, Mapping):
        if "at_least" in want and value < want["at_least"]:
            out.fail(where, f"{label} is {value}, want at least {want['at_least']}")
        if "at_most" in want and value > want["at_most"]:
            out.fail(where, f"{label} is {value}, want at most {want['at_most']}")
        if "equals" in want and value != want["equals"]:
            out.fail(where, f"{label} is {value}, want {want['equals']}")
    elif value != want:
        out.fail(where, f"{label} is {value!r}, want {want!r}")


def _built_for(request: Any, name: str, bot_id: str) -> bool:
    """Whether a model request was made from one character's point of view."""
    kind = _kind(request)
    if kind == "narrative":
        return bool(request.speaker == name)
    text = _request_text(request)
    if kind == "state_update":
        return bool(request.messages[-1].content.startswith(f"pair: {bot_id} ->"))
    if kind == "interjection":
        return f"{name} is present but was not addressed" in text
    if kind == "scene_summary":
        return f"Write {name}'s own account" in text
    return False


def _kind(request: Any) -> str:
    """A request's kind: its classifier's name, or ``narrative`` for a beat."""
    return getattr(request, "name", None) or "narrative"


def _request_text(request: Any) -> str:
    """Everything a model request carries, as one text."""
    return "\n".join(message.content for message in request.messages)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _narrative_kwargs(reply: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"text", "error", "stall", "delay", "match", "stall_after"}
    unknown = set(reply) - allowed
    if unknown:
        raise ScriptError(
            f"a reply has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return dict(reply)


def _classifier_kwargs(output: Any) -> dict[str, Any]:
    if isinstance(output, Mapping) and set(output) <= {"raw", "error", "json", "stall"} and output:
        return dict(output)
    return {"json": output}


def _edge_of(s: Store, chat_id: str, source: str, target: str) -> Edge:
    """One edge of the chat the script plays."""
    return s.get_edge(source, target, chat_id=chat_id)
