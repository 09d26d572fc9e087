"""What leaves troupe: a bot's card (as it came, or made from the bot), a chat as SillyTavern's.

Reads only; the bytes themselves are written by :mod:`story`'s writers.
"""

from __future__ import annotations

import json
from typing import Any

from attrs import field, frozen

from protocol import YOU_ID, Turn
from story import Card, ChatLine, StChat, build_st_chat, read_card_json

from ._store import Store


def card_for(s: Store, bot_id: str) -> Card | None:
    """The card to export for a live bot: the one it was made from, else one made of its fields.

    None when there is no such bot.
    """
    bot = s.get_bot(bot_id)
    if bot is None:
        return None
    card = s.card_of(bot_id)
    if card is not None:
        return card
    doc = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": bot.name,
            "description": bot.persona,
            "personality": "",
            "scenario": "",
            "first_mes": bot.greeting,
            "mes_example": "",
            "creator_notes": "",
            "system_prompt": "",
            "post_history_instructions": "",
            "alternate_greetings": [],
            "group_only_greetings": [],
            "tags": [],
            "creator": "",
            "character_version": "",
            "extensions": {},
        },
    }
    return read_card_json(json.dumps(doc, ensure_ascii=False))


def chat_export(s: Store, chat_id: str) -> StChat | None:
    """A chat's visible timeline as a SillyTavern chat; None when there is no such chat.

    Each turn is one line with troupe's own data (event id, speaker id, the
    user turn it answers...) under ``extra.troupe``; a beat with alternatives
    (on any branch) has them all as ``swipes``, oldest first, and ``swipe_id``
    the one shown; one that replaced others on its own branch (as regenerating
    did before branches) has them as ``swipes``, itself last.
    A turn that came from an imported file's line is that line as it was
    read (its swipes, dates and unknown keys), with ``extra.troupe`` added;
    an imported chat keeps its file's header.
    """
    chat = s.get_chat(chat_id)
    if chat is None:
        return None
    names = {YOU_ID: s.get_you().name}
    timeline = s.timeline(chat_id)
    for turn in timeline:
        if turn.speaker_id not in names:
            entity = s.get_entity(turn.speaker_id)
            names[turn.speaker_id] = entity.name if entity is not None else turn.speaker_id
    rows: list[Any] = s.conn.execute(
        "SELECT e.id, e.at FROM timeline t JOIN event_log e ON e.id = t.event_id "
        "WHERE t.chat_id = ?",
        (chat_id,),
    ).fetchall()
    at = {int(event_id): str(when) for event_id, when in rows}
    replaced = _replaced(s, chat_id)
    branched = s.alternatives(chat_id)
    beat_texts = _beat_texts(s, chat_id) if any(len(g) > 1 for g in branched.values()) else {}
    file = _imported_lines(s, chat_id)
    last = file.last
    lines: list[ChatLine] = []
    done = -1  # the file's lines up to here are written
    for turn in timeline:
        troupe = {
            "event_id": turn.event_id,
            "kind": turn.kind,
            "speaker_id": turn.speaker_id,
            "user_turn_id": turn.user_turn_id,
            "truncated": turn.truncated,
            "interjection_of": turn.interjection_of,
        }
        index = file.index_of.get(turn.event_id)
        if index is not None:
            # The file's lines that made no turn (system lines) go back where they were.
            lines.extend(_as_is(file.lines[n]) for n in file.skipped if done < n < index)
            lines.append(_from_file(file.lines[index], turn, troupe))
            done = index
            if index == last:
                lines.extend(_as_is(file.lines[n]) for n in file.skipped if n > index)
            continue
        group = branched.get(turn.event_id, ())
        if len(group) > 1:
            # Its alternatives on every branch, oldest first; the one shown is chosen.
            swipes = tuple(beat_texts.get(beat, "") for beat in group)
            swipe_id = group.index(turn.event_id)
        else:
            older = _alternatives(turn.event_id, replaced)
            swipes = (*older, turn.text) if older else ()
            swipe_id = len(swipes) - 1 if swipes else 0
        lines.append(
            ChatLine(
                name=names[turn.speaker_id],
                is_user=turn.kind == "user",
                text=turn.text,
                send_date=str(at.get(turn.event_id, "")),
                swipes=swipes,
                swipe_id=swipe_id,
                extra=json.dumps({"troupe": troupe}, ensure_ascii=False),
            )
        )
    host = s.get_entity(chat.host_bot_id)
    built = build_st_chat(
        names[YOU_ID], host.name if host else chat.host_bot_id, lines, chat.created_at
    )
    if file.header:
        return StChat(
            built.user_name, built.character_name, built.lines, built.create_date, file.header
        )
    return built


def _beat_texts(s: Store, chat_id: str) -> dict[int, str]:
    """Every beat's text, on whatever branch."""
    rows: list[Any] = s.conn.execute(
        "SELECT id, json_extract(payload, '$.text') FROM event_log "
        "WHERE chat_id = ? AND kind = 'assistant_turn'",
        (chat_id,),
    ).fetchall()
    texts = {int(event_id): str(text or "") for event_id, text in rows}
    # A beat that went on (``continue``) says more, as the current branch tells it.
    # A beat that went on (``continue``) says more: what it said on its own branch, or on
    # the current one.
    more: list[Any] = s.conn.execute(
        "SELECT c.id, b.id, json_extract(c.payload, '$.text'), c.branch_id = b.branch_id "
        "FROM event_log c JOIN event_log b "
        "ON b.id = CAST(json_extract(c.payload, '$.event_id') AS BIGINT) "
        "WHERE c.chat_id = ? AND c.kind = 'beat_continued' ORDER BY c.id",
        (chat_id,),
    ).fetchall()
    for continued_id, beat, text, same_branch in more:
        if int(beat) in texts and (same_branch or s.on_current_branch(chat_id, continued_id)):
            texts[int(beat)] += str(text or "")
    return texts


def _replaced(s: Store, chat_id: str) -> dict[int, tuple[int, str]]:
    """Each regenerated assistant turn's id → (the older turn it replaced, that turn's text)."""
    rows: list[Any] = s.conn.execute(
        "SELECT id, superseded_by, payload FROM event_log WHERE chat_id = ? "
        "AND kind = 'assistant_turn' AND superseded_by IS NOT NULL AND rewound_by IS NULL",
        (chat_id,),
    ).fetchall()
    out: dict[int, tuple[int, str]] = {}
    for event_id, by, payload in rows:
        out[int(by)] = (int(event_id), str(json.loads(payload).get("text", "")))
    return out


def _alternatives(event_id: int, replaced: dict[int, tuple[int, str]]) -> tuple[str, ...]:
    """The texts a turn replaced, oldest first, following the chain of regenerations."""
    texts: list[str] = []
    seen = {event_id}
    while event_id in replaced:
        event_id, text = replaced[event_id]
        if event_id in seen:
            break  # a log edited by hand could loop; the export must still end
        seen.add(event_id)
        texts.append(text)
    return tuple(reversed(texts))


@frozen
class _File:
    """An imported chat's file: its lines, which turn each made, its header."""

    index_of: dict[int, int] = field(factory=dict)
    lines: tuple[str, ...] = ()
    skipped: tuple[int, ...] = ()
    header: str = ""

    @property
    def last(self) -> int:
        """The index of the file's last line that made a turn."""
        return max(self.index_of.values(), default=-1)


def _imported_lines(s: Store, chat_id: str) -> _File:
    """The turns an import made, each with the index of the file's line it came from."""
    found = s.chat_import(chat_id)
    if found is None:
        return _File()
    import_id, event = found
    skipped = set(event.skipped)
    kept = [n for n in range(len(event.lines)) if n not in skipped]
    ids = s.chat_events_after(chat_id, import_id, len(kept))
    return _File(dict(zip(ids, kept, strict=False)), event.lines, event.skipped, event.header)


def _as_is(source: str) -> ChatLine:
    """A line of the file that made no turn, written back as it was."""
    obj = json.loads(source)
    return ChatLine(
        name=str(obj.get("name", "")),
        is_user=bool(obj.get("is_user")),
        text=str(obj.get("mes", "")),
        source=source,
    )


def _from_file(source: str, turn: Turn, troupe: dict[str, Any]) -> ChatLine:
    """A turn written as the file's own line, with troupe's data added under ``extra``."""
    obj = json.loads(source)
    extra = obj.get("extra")
    obj["extra"] = {**(extra if isinstance(extra, dict) else {}), "troupe": troupe}
    return ChatLine(
        name=str(obj.get("name", "")),
        is_user=turn.kind == "user",
        text=turn.text,
        source=json.dumps(obj, ensure_ascii=False),
    )
