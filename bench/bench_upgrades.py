"""What bad WebSocket upgrades leave behind, and what a crowd of clients does to a probe.

Both parts run a real ``troupe serve`` (scripted model) in a separate process,
from the source tree given with ``--tree`` (this one by default), and talk
to it over plain sockets.

1. Leak: the server's resident memory (VmRSS) after rounds of 2,000 refused
   upgrades (a missing ``Sec-WebSocket-Key``, or ``Sec-WebSocket-Version:
   12``), against a round of 2,000 good upgrades that open and drop at once,
   in the same run.
2. Crowd: the server runs with its open-file limit lowered to ``--files``
   (soft and hard, so it cannot raise it); ``--crowd`` clients open a
   WebSocket each and stay; then a probe asks ``/healthz`` and another
   upgrade; how long each waited for an answer, and what it was.

    python bench/bench_upgrades.py [--tree PATH] [--label NAME]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _report import report

HERE = Path(__file__).resolve().parent
TOKEN = "bench"
KEY = base64.b64encode(b"sixteen  bytes!!").decode()
SCRIPT = '[[narrative]]\ntext = "Mira nods."\nkeep = true\n'


def start(tree: Path, data: Path, files: int | None = None) -> tuple[subprocess.Popen[str], int]:
    """``troupe serve`` from ``tree`` on a free port; the process and its port."""
    script = data / "replies.toml"
    script.write_text(SCRIPT)

    def lower_limit() -> None:
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "troupe", "serve", "--port", "0", "--data", str(data / "d")),
            *("--token", TOKEN, "--backend", "scripted", "--script", str(script)),
        ],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lower_limit,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", process.stdout.readline())
            if found:
                return process, int(found.group(1))
    process.kill()
    raise RuntimeError("troupe serve did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def head(port: int, **changes: str | None) -> bytes:
    fields: dict[str, str | None] = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **changes,
    }
    lines = [f"GET /ws?token={TOKEN} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(sock: socket.socket, timeout: float) -> int | None:
    """The status of the answer on ``sock``, or None when none came in time."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionError):
        return None
    return int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else None


def one_upgrade(port: int, **changes: str | None) -> int | None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head(port, **changes))
        return status_of(sock, 10)


def round_of(port: int, n: int, good: bool) -> Counter[int | None]:
    seen: Counter[int | None] = Counter()
    for i in range(n):
        if good:
            changes: dict[str, str | None] = {}
        elif i % 2:
            changes = {"Sec-WebSocket-Key": None}
        else:
            changes = {"Sec-WebSocket-Version": "12"}
        seen[one_upgrade(port, **changes)] += 1
    return seen


def leak(tree: Path, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start(tree, Path(tmp))
        try:
            round_of(port, 200, good=False)
            round_of(port, 200, good=True)
            time.sleep(0.5)
            figures: dict[str, Any] = {"rss_start_kib": rss_kib(process.pid)}
            for name, good in (("bad_1", False), ("good", True), ("bad_2", False)):
                before = rss_kib(process.pid)
                started = time.perf_counter()
                statuses = round_of(port, n, good)
                seconds = time.perf_counter() - started
                time.sleep(0.5)  # let the last ones close
                figures[name] = {
                    "statuses": {str(k): v for k, v in statuses.items()},
                    "rss_growth_kib": rss_kib(process.pid) - before,
                    "seconds": round(seconds, 2),
                }
            figures["rss_end_kib"] = rss_kib(process.pid)
            return figures
        finally:
            process.terminate()
            process.wait(timeout=30)


def probe(port: int, request: bytes, timeout: float) -> tuple[int | None, float]:
    started = time.perf_counter()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None, time.perf_counter() - started
    with sock:
        sock.sendall(request)
        status = status_of(sock, timeout)
    return status, time.perf_counter() - started


def crowd(tree: Path, files: int, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start(tree, Path(tmp), files=files)
        sockets = []
        try:
            for _ in range(n):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.sendall(head(port))
                sockets.append(sock)
            statuses: Counter[int | None] = Counter()
            deadline = time.monotonic() + 10
            for sock in sockets:
                statuses[status_of(sock, max(0.01, deadline - time.monotonic()))] += 1
            health = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            health_status, health_seconds = probe(port, health, 15)
            upgrade_status, upgrade_seconds = probe(port, head(port), 15)
            return {
                "files": files,
                "clients": n,
                "statuses": {str(k): v for k, v in statuses.items()},
                "probe_healthz": {"status": health_status, "seconds": round(health_seconds, 3)},
                "probe_upgrade": {"status": upgrade_status, "seconds": round(upgrade_seconds, 3)},
            }
        finally:
            for sock in sockets:
                sock.close()
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent, help="the source tree to run")
    parser.add_argument("--label", default="", help="a suffix for the result's name")
    parser.add_argument("--requests", type=int, default=2000, help="upgrades per round")
    parser.add_argument("--files", type=int, default=256, help="the server's open-file limit")
    parser.add_argument("--crowd", type=int, default=400, help="clients that stay connected")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process holds the crowd
    leaked = leak(args.tree.resolve(), args.requests)
    crowded = crowd(args.tree.resolve(), args.files, args.crowd)
    name = "upgrades" + (f"_{args.label}" if args.label else "")
    rows = [
        (f"RSS growth, {n} {kind} upgrades", f"{leaked[key]['rss_growth_kib']} KiB")
        for key, kind, n in (
            ("bad_1", "bad", args.requests),
            ("good", "good", args.requests),
            ("bad_2", "more bad", args.requests),
        )
    ]
    rows += [
        (f"{args.crowd} clients at {args.files} files", str(crowded["statuses"])),
        ("probe /healthz", str(crowded["probe_healthz"])),
        ("probe upgrade", str(crowded["probe_upgrade"])),
    ]
    report(name, rows, {"tree": str(args.tree), "leak": leaked, "crowd": crowded})


if __name__ == "__main__":
    main()
