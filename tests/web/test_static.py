"""The web client's files, served without blocking the event loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from gateway_kit import Server, http_get


async def test_static_files_are_read_off_the_event_loop(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[str] = []
    read_bytes = Path.read_bytes

    def spy(path: Path) -> bytes:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            where.append("thread")
        else:
            where.append("event loop")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", spy)
    for target in ("/", "/static/app.js"):
        status, _, body = await http_get(server.port, target)
        assert status == 200 and body
    assert where == ["thread", "thread"]
