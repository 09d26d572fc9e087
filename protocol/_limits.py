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
MAX_ARTIFACTS: Final = 20
"""How many changes one world event's artifacts may name, all lists together."""
MAX_INT: Final = 2**63 - 1
"""The largest integer the protocol carries: SQLite's signed 64-bit range."""
MIN_INT: Final = -(2**63)
MAX_DEPTH: Final = 64
"""How deeply a frame's arrays and objects may nest; the protocol itself needs four."""
MAX_EDGE_DELTA: Final = 100
"""The largest change of affinity or trust (each 0..100) an artifact may ask for, either way."""
