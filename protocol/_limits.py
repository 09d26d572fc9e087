"""Limits of the wire protocol and of what we store, and the bounds of the story's numbers.

They apply to what comes in (a client's frame, an event about to be written);
a log written under older limits still reads back (see ``load_event``).
"""

from __future__ import annotations

from typing import Final

# --- the frame ---

PROTOCOL_VERSION: Final = 1
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 64
"""How deeply a frame's arrays and objects may nest; the protocol itself needs four."""
MAX_INT: Final = 2**63 - 1
"""The largest integer the protocol carries: SQLite's signed 64-bit range."""
MIN_INT: Final = -(2**63)

# --- lengths in characters: over one is ``too_large`` ---

MAX_ID: Final = 64
"""A bot's or a chat's id."""
MAX_CLIENT_ID: Final = MAX_ID
"""The ``id`` a client gives a frame, echoed as ``reply_to``."""
MAX_NAME: Final = 80
MAX_TITLE: Final = 200
MAX_LOCATION: Final = MAX_TITLE
MAX_FACT: Final = 300
"""One knowledge fact."""
MAX_PROSE: Final = 8000
MAX_PERSONA: Final = 4000
"""A persona; a bot's greeting and any description (a place's, a world event's) as well."""
MAX_GREETING: Final = MAX_PERSONA
MAX_DESCRIPTION: Final = MAX_PERSONA
MAX_AUTHOR_NOTE: Final = MAX_PERSONA
"""A chat's author's note."""

# --- counts ---

MAX_FACTS: Final = 20
"""Knowledge facts an edge keeps (the oldest go first) and one edge update may carry."""
MAX_CAST: Final = 8
"""Characters a chat's cast may hold, the host included."""
LATEST_TURNS: Final = 100
"""Visible turns ``chat_state`` carries: the chat's latest; ``load_older`` pages further back."""
MAX_OLDER_TURNS: Final = 200
"""The most turns one ``load_older`` may ask for."""
MAX_NOTE_DEPTH: Final = 100
"""The deepest an author's note may sit, in messages from the end of the dialogue."""
MAX_QUEUE: Final = 4
"""Turns a chat holds queued behind the one in flight (``send_turn`` with ``queue``)."""
MAX_ARTIFACTS: Final = 20
"""How many changes one world event's artifacts may name, all lists together."""

# --- the story's numbers ---

EDGE_MIN: Final = 0
EDGE_MAX: Final = 100
"""Affinity and trust each live in ``EDGE_MIN..EDGE_MAX``."""
EDGE_DEFAULT: Final = 50
"""Affinity and trust of a pair that has no history yet."""
MAX_EDGE_DELTA: Final = EDGE_MAX - EDGE_MIN
"""The largest change of affinity or trust an artifact may ask for, either way."""
MIN_SIGNIFICANCE: Final = 0
MAX_SIGNIFICANCE: Final = 3
"""A memory's significance is ``MIN_SIGNIFICANCE..MAX_SIGNIFICANCE``; the highest pins it."""
