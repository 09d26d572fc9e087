"""Whether the user's prose ends the scene: rules first, the classifier only when unsure.

The rules read the whole prose, OOC included ("((let's fade out here))"
closes), with curly quotes made straight. In order:

1. a location marker, ``[[location: X]]`` or ``((location: X))``, closes and moves to X
   (unless X is where the scene already is);
2. a closing phrase ("fade out", "fade to black", "we're done here",
   "the scene ends", "end scene", "cut to black", ...) closes, unless
   negated ("don't fade out yet");
3. a move with a destination ("we head to the docks", "*walks into the
   Gilded Eel*", "meanwhile, at the harbour", "cut to the lighthouse",
   "goes home") closes and moves there, unless the destination is where
   the scene already is, something in the room ("walks to the bar"), or
   not a place ("goes to sleep"); a negated move is ignored, while a
   hedged one ("we should go to the docks", a question, "over to X", a
   bare one-word destination that may be a person) is only unsure;
4. movement without a clear destination ("I leave", "we head out",
   "they arrive", "let's go") is unsure — only then is the classifier asked;
5. anything else does not close.
"""

from __future__ import annotations

import re

from attrs import frozen

from protocol import MAX_LOCATION as MAX_LOCATION  # the longest location name kept

from ._text import collapse, shorten, straighten, words


@frozen
class Close:
    """The scene ends, for ``reason``; the next one opens at ``new_location`` if given."""

    reason: str
    new_location: str | None = None


@frozen
class NoClose:
    """The scene goes on."""


@frozen
class Unsure:
    """The prose hints at a move the rules cannot settle: ask the scene-close classifier."""

    reason: str


SceneCloseRuling = Close | NoClose | Unsure

_MARKER = re.compile(
    r"(?:\[\[|\(\()\s*(?:location|loc|scene|place|setting|move\s+to)\s*[:=]\s*"
    r"([^\]\)\n]{1,2000}?)\s*(?:\]\]|\)\))",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"(?<!\w)(?:fad(?:e|es|ed|ing)[\s-]+(?:out|to\s+black)|cut\s+to\s+black"
    r"|(?:we're|we\s+are)\s+done\s+here|(?:the\s+)?scene\s+(?:ends|ended|is\s+over)"
    r"|end\s+(?:of\s+)?(?:the\s+)?scene|close\s+(?:the\s+)?scene|roll\s+credits)(?!\w)",
    re.IGNORECASE,
)
_DEST = r"([\w'-]+(?:[ \t]+[\w'-]+){0,7})"
_VERB = (
    r"head(?:s|ed|ing)?|go(?:es|ing)?|went|walk(?:s|ed|ing)?|ride(?:s)?|rode|riding"
    r"|travel(?:s|led|ed|ling|ing)?|mov(?:e|es|ed|ing)|run(?:s)?|ran|running|driv(?:e|es|ing)"
    r"|drove|sail(?:s|ed|ing)?|step(?:s|ped|ping)?|stroll(?:s|ed|ing)?|wander(?:s|ed|ing)?"
    r"|hurr(?:y|ies|ied|ying)|march(?:es|ed|ing)?|climb(?:s|ed|ing)?|return(?:s|ed|ing)?"
    r"|retreat(?:s|ed|ing)?|slip(?:s|ped|ping)?|strid(?:e|es|ing)|strode|rush(?:es|ed|ing)?"
    r"|rac(?:e|es|ed|ing)|(?:make|makes|made|making)\s+(?:our|my|their|his|her|your)\s+way"
    r"|set(?:s|ting)?\s+(?:off|out)"
)
_PARTICLES = r"((?:\s+(?:back|over|down|up|out|off|across|along|on|straight|together|inside))*)"
_MOVES = (
    re.compile(
        rf"(?<!\w)(?:{_VERB}){_PARTICLES}\s+(?:to|into|towards|toward)\s+{_DEST}", re.IGNORECASE
    ),
    re.compile(
        rf"(?<!\w)(?:head(?:s|ed|ing)?|leav(?:e|es|ing)|left|set(?:s|ting)?\s+"
        rf"(?:off|out)|sail(?:s|ed|ing)?){_PARTICLES}\s+for\s+{_DEST}",
        re.IGNORECASE,
    ),
    re.compile(rf"(?<!\w)arriv(?:e|es|ed|ing)(\s+back)?\s+(?:at|in)\s+{_DEST}", re.IGNORECASE),
    re.compile(rf"(?<!\w)enter(?:s|ed|ing)?()\s+{_DEST}", re.IGNORECASE),
    re.compile(
        rf"(?<!\w)(?:meanwhile|elsewhere|later|the\s+next\s+(?:day|morning|evening|night)"
        rf"|that\s+(?:night|evening)|(?:hours|days)\s+later)\s*,?(\s+back)?\s+"
        rf"(?:at|in|on)\s+{_DEST}",
        re.IGNORECASE,
    ),
    re.compile(rf"(?<!\w)cut\s+to()\s+(?!black\b){_DEST}", re.IGNORECASE),
)
_HOME = re.compile(
    r"(?<!\w)(?:go(?:es|ing)?|went|head(?:s|ed|ing)?|walk(?:s|ed|ing)?|return(?:s|ed|ing)?"
    r"|rid(?:e|es|ing)|rode|run|runs|ran|hurr(?:y|ies|ied))\s+(?:back\s+)?home(?!\w)",
    re.IGNORECASE,
)
_FUZZY = re.compile(
    r"(?<!\w)(?:leav(?:e|es|ing)|left|depart(?:s|ed|ing)?"
    r"|head(?:s|ed|ing)?\s+(?:out|off|away|upstairs|downstairs|outside|inside|back|elsewhere"
    r"|somewhere|onward)|set(?:s|ting)?\s+(?:off|out)|mov(?:e|es|ed|ing)\s+on"
    r"|(?:go|goes|going|went|walk(?:s|ed|ing)?|step(?:s|ped|ping)?|run(?:s)?|ran|slip(?:s|ped)?"
    r"|hurr(?:y|ies|ied))\s+(?:out|away|off|outside|upstairs|downstairs|elsewhere|somewhere)"
    r"|arriv(?:e|es|ed|ing)|travel(?:s|led|ed|ling|ing)?|journey(?:s|ed|ing)?|elsewhere"
    r"|let's\s+go|let\s+us\s+go|get\s+out\s+of\s+here|follow\s+me|time\s+skip"
    r"|time\s+passes|(?:hours|days)\s+later|the\s+next\s+(?:day|morning))(?!\w)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w']+")
_BOUNDARY = re.compile(r'[.!?\n"*]')

_NEGATIONS = words(
    """not never don't dont doesn't didn't won't can't cannot shouldn't wouldn't no isn't"""
)
_HEDGES = words(
    """will shall should could would might may must can want wants wanted wish going gonna plan
    plans planning maybe perhaps if tomorrow soon someday ought need needs"""
)
_DETERMINERS = words("""the a an my our his her their your its this that some""")
_DEST_STOP = words(
    """and or but where with while as to for before after because then so when until together
    quickly slowly again now tonight tomorrow today at in on by through without from under
    near since if though although carrying holding followed behind leaving i we you he she
    they it is are was were who which"""
)
# A first word that makes the "destination" no place at all.
_NOT_PLACES = words(
    """me you him her them us it this that sleep bed work pieces hell war rest waste ruin bits
    help cover drink walk look fetch get see meet find talk speak say tell ask be do have
    make take give bring check wait stop sit stand himself herself themselves myself
    ourselves yourself each one someone somebody something anyone everyone nobody evening
    morning night day week afternoon dawn dusk noon midnight moment minute hour while end
    point left right side edge front back top bottom life terms grips blows"""
)
# A last word that keeps the move inside the scene.
_NEARBY = words(
    """door doors doorway window windows bar counter table tables fire fireplace hearth corner
    chair chairs seat stool stools bench bed desk wall walls stairs staircase steps booth
    room shelf shelves exit entrance hatch railing rail piano stage centre center middle
    crate barrel mirror sink cupboard closet wardrobe chest box bag man woman men women boy
    girl stranger barkeep bartender guard guards crowd group others child kid figure person
    people lady gentleman him her them"""
)


def _key(place: str) -> str:
    words = [w for w in _WORD.findall(place.lower()) if w not in _DETERMINERS]
    return " ".join(words)


def same_place(a: str | None, b: str | None) -> bool:
    """Whether two location names mean the same place (case, spacing and articles aside)."""
    return _key(a or "") == _key(b or "")


def _window(text: str, start: int) -> list[str]:
    """The last few words before ``start`` in the same sentence, lowercased."""
    sentence = max(text.rfind(c, 0, start) for c in '.!?\n"*')
    return _WORD.findall(text[sentence + 1 : start].lower())[-4:]


def _is_question(text: str, end: int) -> bool:
    boundary = _BOUNDARY.search(text, end)
    return boundary is not None and boundary.group() == "?"


def _negated(words: list[str]) -> bool:
    return any(w in _NEGATIONS or w.endswith("n't") for w in words)


def _hedged(words: list[str]) -> bool:
    return any(w in _HEDGES or w.endswith(("'ll", "'d")) for w in words)


def _destination(raw: str) -> str | None:
    """The place named at the start of ``raw``, or ``None`` if it names none."""
    words = raw.split()
    kept: list[str] = []
    for word in words:
        if kept and word.lower() in _DEST_STOP:
            break
        kept.append(word)
    content = [w.lower() for w in kept if w.lower() not in _DETERMINERS]
    if not content or content[0] in _NOT_PLACES or content[-1] in _NEARBY:
        return None
    return shorten(collapse(" ".join(kept)).strip("'-"), MAX_LOCATION) or None


def _moves(text: str, here: str) -> tuple[str | None, str | None, list[tuple[int, int]]]:
    """``(clear destination, hedged destination, spans read)`` of the moves in ``text``.

    The spans cover every move with a named destination, even one ignored
    (here already, in the room), so its verb is not read again as a vague move.
    """
    clear: str | None = None
    hedged: str | None = None
    spans: list[tuple[int, int]] = []
    found: list[tuple[int, int, str, str]] = []
    for pattern in _MOVES:
        for m in pattern.finditer(text):
            found.append((m.start(), m.end(), m.group(1) or "", m.group(2)))
    for m in _HOME.finditer(text):
        found.append((m.start(), m.end(), "", "home"))
    for start, end, particles, raw in sorted(found):
        spans.append((start, end))
        place = _destination(raw)
        if place is None or _key(place) == here:
            continue
        before = _window(text, start)
        if _negated(before):
            continue
        particle_words = particles.lower().split()
        uncertain = (
            _hedged(before)
            or _is_question(text, end)
            or "over" in particle_words
            or "up" in particle_words
            or (len(place.split()) == 1 and place.lower() != "home")
        )
        if uncertain:
            hedged = place
        else:
            clear = place
    return clear, hedged, spans


def _fuzzy(text: str, read: list[tuple[int, int]]) -> str | None:
    for m in _FUZZY.finditer(text):
        if any(start <= m.start() < end for start, end in read):
            continue
        words = _window(text, m.start())
        if _negated(words):
            continue
        if m.group().lower() == "left":
            after = _WORD.findall(text[m.end() : m.end() + 40].lower())[:1]
            if (words and words[-1] in _LEFT_BEFORE) or (after and after[0] in _LEFT_AFTER):
                continue  # "on the left", "what's left", "left hand": not a departure
        return m.group()
    return None


_LEFT_BEFORE = words(
    """the his her my your their our its to on at what's is are was were nothing anything
    something one those these be been"""
)
_LEFT_AFTER = words(
    """hand side arm eye leg foot shoulder ear cheek wing turn over behind alone unsaid"""
)


def scene_close_by_rules(prose: str, current_location: str | None) -> SceneCloseRuling:
    """Read the user's prose for the end of the scene (see the module docstring).

    Runs on every turn, even a cancelled one, and costs no model call; only
    :class:`Unsure` sends the prose to the scene-close classifier.
    """
    text = straighten(prose)
    here = _key(current_location or "")
    marker = _MARKER.search(text)
    if marker is not None:
        place = shorten(collapse(marker.group(1)), MAX_LOCATION)
        if place and _key(place) != here:
            return Close("location marker", place)
    clear, hedged, read = _moves(text, here)
    for phrase in _CLOSING.finditer(text):
        if not _negated(_window(text, phrase.start())):
            return Close(f'closing phrase "{collapse(phrase.group()).lower()}"', clear)
    if clear is not None:
        return Close(f"location change to {clear}", clear)
    if hedged is not None:
        return Unsure(f"a possible move to {hedged}")
    cue = _fuzzy(text, read)
    if cue is not None:
        return Unsure(f'movement without a clear destination: "{collapse(cue).lower()}"')
    return NoClose()


@frozen
class PresenceMove:
    """A character named in the prose comes into the scene (``present``) or leaves it."""

    character_id: str
    present: bool


_LEAVING = (
    r"leaves|left|exits|exited|departs|departed|goes|went|walks|walked|steps|stepped|storms"
    r"|stormed|slips|slipped|heads|headed"
)
_LEAVING_AFTER = r"(?:\s+(?:out|off|away|outside))?"
_COMING = (
    r"walks\s+in|walked\s+in|comes\s+in|came\s+in|steps\s+in|stepped\s+in|enters|entered"
    r"|arrives|arrived|returns|returned|comes\s+back|came\s+back|is\s+back|joins\s+us|joined\s+us"
)


def presence_by_rules(prose: str, names: dict[str, str]) -> tuple[PresenceMove, ...]:
    """Read the prose for characters who leave or walk in ("Tobin leaves", "Ada walks in").

    ``names`` are the cast's display names by id. Only a name followed by a
    coming or going verb counts (a negated one does not: "Ada doesn't leave");
    the last move of each character wins, in cast order.
    """
    text = straighten(prose)
    last: dict[str, tuple[int, bool]] = {}
    for character_id, name in names.items():
        if not name.strip():
            continue
        who = re.escape(name.strip())
        going = re.compile(
            rf"(?<!\w){who}\s+(?:{_LEAVING})(?:{_LEAVING_AFTER})(?=\s*(?:[.!,;*\"]|$|\s+(?:the|through)\s+(?:room|door)))",
            re.IGNORECASE,
        )
        coming = re.compile(rf"(?<!\w){who}\s+(?:{_COMING})(?!\w)", re.IGNORECASE)
        for pattern, present in ((going, False), (coming, True)):
            for m in pattern.finditer(text):
                if _negated(_window(text, m.start())):
                    continue
                if character_id not in last or last[character_id][0] < m.start():
                    last[character_id] = (m.start(), present)
    return tuple(
        PresenceMove(character_id, last[character_id][1])
        for character_id in names
        if character_id in last
    )
