"""PostgreSQL and Redis servers of our own, on 127.0.0.1, for tests and benchmarks.

Each starts from the machine's own binaries in a fresh temporary folder, on
a free loopback port, and goes away with everything it wrote. Both can be
stopped hard, paused and started again on the same port and data, which is
what the cluster's fault scenarios do to them.

    with postgres_server() as pg, redis_server() as redis:
        store = Store.open(pg.url)
        bus = redis.url

PostgreSQL will not run as root: when the tests run as root (CI does), the
data folder is handed to the ``postgres`` account that Debian's package
creates, and the server runs as that account. ``fsync`` is off: a test's
database lives as long as the test, and what a test kills is the server
process, never the machine, so the operating system still has every commit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

START_WITHIN = 30.0
"""Seconds a server may take to accept connections before the start counts as failed."""


class ServerMissing(RuntimeError):
    """The machine lacks the server's binaries (``make install`` installs them)."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_accepting(proc: subprocess.Popen[bytes], port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        if _accepts(port):
            return
        time.sleep(0.05)  # waiting on another process, bounded by START_WITHIN
    proc.kill()
    raise RuntimeError(f"{what} did not accept connections within {START_WITHIN} s: {_tail(log)}")


def _wait_gone(pid: int, what: str) -> None:
    """Wait until process ``pid`` no longer exists, not even as a zombie."""
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass  # alive, and someone else's
        time.sleep(0.05)  # waiting on another process, bounded by START_WITHIN
    raise RuntimeError(f"{what} (pid {pid}) was still there {START_WITHIN} s after the kill")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server binaries (``initdb``, ``postgres``)."""
    wanted = os.environ.get("TROUPE_PG_BIN")
    candidates = [wanted] if wanted else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    raise ServerMissing("PostgreSQL's initdb and postgres are not installed")


def _as_server_user() -> list[str]:
    """The command prefix that runs a PostgreSQL binary as a non-root account when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@attrs.define
class Server:
    """A server process of ours: where it listens, and how to stop, pause and restart it."""

    name: str
    port: int
    folder: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> None:
        """Start (or start again) on the same port and data."""
        if self.proc is not None and self.proc.poll() is None:
            return
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait_accepting(self.proc, self.port, self.name, self.log)

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=START_WITHIN)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM; SIGKILL past the start bound)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=START_WITHIN)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()


@attrs.define
class PostgresServer(Server):
    user: str = "troupe"
    database: str = "troupe"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        """Start, and return once the server takes sessions, not just TCP connections.

        A postmaster listens before it has recovered its data; until then it
        answers every session with "the database system is starting up".
        """
        super().start()
        bindir = postgres_bin()
        deadline = time.monotonic() + START_WITHIN
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), *_where(self.port), "-d", "postgres", "-t", "1"],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)  # waiting on another process, bounded by START_WITHIN
        raise RuntimeError(
            f"{self.name} took no sessions within {START_WITHIN} s: {_tail(self.log)}"
        )

    def kill(self) -> None:
        """Stop at once, and return only once the old postmaster is gone for good.

        As root the server runs under ``runuser``, which the kill takes down
        too: the orphaned postmaster is then reaped by the machine's init,
        up to seconds later, and until then a new postmaster on the same data
        refuses to start ("lock file already exists").
        """
        pid = self._postmaster_pid()
        super().kill()
        if pid is not None:
            _wait_gone(pid, self.name)

    def stop(self) -> None:
        """Stop cleanly but without waiting for clients: a fast shutdown (SIGINT).

        SIGTERM would ask for a smart shutdown, which waits for every client
        to disconnect, and a cluster's nodes never do. The signal goes to the
        postmaster alone; ``runuser``, when there is one, exits with it.
        """
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self._postmaster_pid()
        if pid is None:
            super().stop()
            return
        os.kill(pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=START_WITHIN)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        _wait_gone(pid, self.name)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def fresh_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        bindir = postgres_bin()
        subprocess.run(
            [str(bindir / "createdb"), *_where(self.port), name],
            check=True,
            capture_output=True,
        )
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"


def _where(port: int) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(port), "-U", "troupe"]


def _temp_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster with one database, ``troupe``, trusted on loopback."""
    bindir = postgres_bin()
    folder = _temp_folder("troupe-pg-")
    data = folder / "data"
    data.mkdir()
    sock = folder / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
        shutil.chown(folder, "postgres", "postgres")
    prefix = _as_server_user()
    port = free_port()
    try:
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "troupe",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ],
            check=True,
            capture_output=True,
        )
        argv = [
            *prefix,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sock),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ]
        server = PostgresServer("postgres", port, folder, argv)
        server.start()
        subprocess.run(
            [str(bindir / "createdb"), *_where(port), "troupe"],
            check=True,
            capture_output=True,
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[Server]:
    """A fresh redis-server on loopback, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerMissing("redis-server is not installed")
    folder = _temp_folder("troupe-redis-")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(folder), "--protected-mode", "no"]
    server = Server("redis", port, folder, argv)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def redis_url(server: Server) -> str:
    return f"redis://127.0.0.1:{server.port}/0"
