"""Size limits of the wire protocol and of what we store."""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_CLIENT_ID: Final = 64
MAX_ID: Final = 64
MAX_NAME: Final = 80
MAX_PERSONA: Final = 4000
MAX_GREETING: Final = 4000
MAX_TITLE: Final = 200
MAX_LOCATION: Final = 200
MAX_PROSE: Final = 8000
MAX_DESCRIPTION: Final = 4000
MAX_FACT: Final = 300
MAX_FACTS: Final = 20
"""Knowledge facts an edge keeps (the oldest go first) and one edge update may carry."""
MAX_ARTIFACTS: Final = 20
"""How many changes one world event's artifacts may name, all lists together."""
MAX_INT: Final = 2**63 - 1
"""The largest integer the protocol carries: SQLite's signed 64-bit range."""
MIN_INT: Final = -(2**63)
MAX_DEPTH: Final = 64
"""How deeply a frame's arrays and objects may nest; the protocol itself needs four."""
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
