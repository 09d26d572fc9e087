"""Printing a benchmark's table and writing its JSON result."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def report(name: str, rows: list[tuple[str, str]], figures: dict[str, Any]) -> Path:
    """Print ``rows`` as a two-column table and write ``figures`` to results/NAME.json."""
    width = max(len(label) for label, _ in rows)
    print(f"\n{name}")
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **figures,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
