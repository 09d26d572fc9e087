"""PostgreSQL and Redis servers of our own, on 127.0.0.1, for tests and benchmarks.

Each starts from the machine's own binaries in a fresh temporary folder, on
a free loopback port, and goes away with everything it wrote. Both can be
stopped hard, paused and started again on the same port and data, which is
what the cluster's fault scenarios do to them.

    with postgres_server() as pg, redis_server() as redis:
        store = Store.open(pg.url)
        bus = redis.url

Nothing here sleeps to wait: a server is up when it says so (its ready
line, read from its output as it comes: :class:`Output`), down when every
process holding its output has exited, and a test waits on a database's
tables by ``LISTEN`` for a trigger's notice that they were written
(:func:`wait_until`, :class:`Changes`).

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
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import attrs
import psycopg

START_WITHIN = 30.0
"""Seconds a server may take to accept connections before the start counts as failed."""

CHANGES = "troupe_test_changes"
"""The channel on which a test's database says that a watched table changed."""

T = TypeVar("T")


class ServerMissing(RuntimeError):
    """The machine lacks the server's binaries (``make install`` installs them)."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Output:
    """A child's output, copied line by line to its log as it comes, and waited on by content.

    One thread reads the pipe; each line wakes whoever waits for a line like
    it, and the end of the pipe (every process holding it has exited) wakes
    everyone. Nothing polls: the child's own words are the events.
    """

    def __init__(self, pipe: IO[bytes], log: Path) -> None:
        self.text = ""
        self.ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._copy, args=(pipe, log), daemon=True)
        self._thread.start()

    def _copy(self, pipe: IO[bytes], log: Path) -> None:
        with pipe, log.open("ab") as out:
            for line in pipe:
                out.write(line)
                out.flush()
                with self._changed:
                    self.text += line.decode(errors="replace")
                    self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], within: float, what: str) -> re.Match[str]:
        """The first match of ``pattern`` in the output; fails if the output ends without it."""
        with self._changed:
            self._changed.wait_for(lambda: self.ended or pattern.search(self.text), within)
            found = pattern.search(self.text)
        if found is None:
            ended = "exited" if self.ended else f"said nothing like it within {within:g} s"
            raise RuntimeError(f"{what} {ended}: {self.text[-2000:]}")
        return found

    def wait_more(self, within: float) -> None:
        """Until the next line (or the end), at most ``within`` seconds."""
        with self._changed:
            said = len(self.text)
            self._changed.wait_for(lambda: self.ended or len(self.text) > said, within)

    def wait_ended(self, within: float, what: str) -> None:
        """Until every process that holds the pipe has exited."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.ended, within):
                raise RuntimeError(f"{what} still had processes {within:g} s after it stopped")


def spawn(argv: list[str], log: Path, **popen: object) -> tuple[subprocess.Popen[bytes], Output]:
    """Start ``argv`` in a process group of its own, its output followed by an :class:`Output`."""
    proc = subprocess.Popen(  # type: ignore[call-overload]
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **popen
    )
    assert proc.stdout is not None
    return proc, Output(proc.stdout, log)


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
    ready: re.Pattern[str]
    """What the server prints once it takes clients."""
    proc: subprocess.Popen[bytes] | None = None
    output: Output | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> None:
        """Start (or start again) on the same port and data; return once it takes clients."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc, self.output = spawn(self.argv, self.log)
        try:
            self.output.wait_for(self.ready, START_WITHIN, self.name)
        except RuntimeError:
            self.kill()
            raise

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would; return once none of its processes is left."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=START_WITHIN)
        self._wait_ended()

    def stop(self) -> None:
        """Stop cleanly (SIGTERM; SIGKILL past the start bound)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=START_WITHIN)
        except subprocess.TimeoutExpired:
            self.kill()
        self._wait_ended()

    def _wait_ended(self) -> None:
        if self.output is not None:
            self.output.wait_ended(START_WITHIN, self.name)

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

    def kill(self) -> None:
        """Stop at once, and leave the data as a crash leaves it, ready to start again.

        As root the server runs under ``runuser``, which the kill takes down
        too: the orphaned postmaster is then reaped by the machine's init,
        up to seconds later, and until then a new postmaster on the same data
        takes the dead one's lock files for a live server's. Once every process
        of the server has exited (its output pipe closed), they are stale,
        and they go, as an operator removes them after a crash.
        """
        super().kill()
        (self.folder / "data" / "postmaster.pid").unlink(missing_ok=True)
        for left in (self.folder / "sock").glob(f".s.PGSQL.{self.port}*"):
            left.unlink(missing_ok=True)  # the socket and its lock file, as stale

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
        self._wait_ended()

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


_watched: set[tuple[str, str]] = set()


def watch_tables(url: str, *tables: str) -> None:
    """Have the database at ``url`` notify :data:`CHANGES` at every write of ``tables``.

    A trigger of the test's own, on tables that must exist already; put in
    once per database and table.
    """
    wanted = [t for t in tables if (url, t) not in _watched]
    if not wanted:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE OR REPLACE FUNCTION {CHANGES}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_notify('{CHANGES}', TG_TABLE_NAME); RETURN NULL; END $$"
        )
        for table in wanted:
            conn.execute(f"DROP TRIGGER IF EXISTS {CHANGES} ON {table}")
            conn.execute(
                f"CREATE TRIGGER {CHANGES} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {CHANGES}()"
            )
            _watched.add((url, table))


class Changes:
    """A ``LISTEN`` on :data:`CHANGES`: :meth:`wait` returns at the next write of ``tables``."""

    def __init__(self, url: str, tables: tuple[str, ...]) -> None:
        watch_tables(url, *tables)
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f"LISTEN {CHANGES}")

    def wait(self, within: float) -> bool:
        """Until the next write (True), or ``within`` seconds without one (False)."""
        for _ in self._conn.notifies(timeout=max(within, 0.0), stop_after=1):
            return True
        return False

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Changes:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def wait_until(
    url: str, tables: tuple[str, ...], check: Callable[[], T | None], within: float, what: str
) -> T:
    """``check()`` once it is not None, looked at afresh each time one of ``tables`` changes.

    The database says when (:class:`Changes`), so nothing polls: a check
    that holds now returns at once, and one that does not waits for the next
    write of those tables, within ``within`` seconds in all.
    """
    deadline = time.monotonic() + within
    with Changes(url, tables) as changes:  # listening before the first look: nothing is missed
        while True:
            found = check()
            if found is not None:
                return found
            if not changes.wait(deadline - time.monotonic()):
                raise TimeoutError(f"{what}: not within {within:g} s")


def next_change(url: str, tables: tuple[str, ...], within: float, what: str) -> None:
    """Until the next write of one of ``tables`` (the database says so), within ``within`` s."""
    with Changes(url, tables) as changes:
        if not changes.wait(within):
            raise TimeoutError(f"{what}: no change within {within:g} s")


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
        # Printed once recovery is over: sessions are taken from then on, not just sockets.
        ready = re.compile("database system is ready to accept connections")
        server = PostgresServer("postgres", port, folder, argv, ready)
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
    server = Server("redis", port, folder, argv, re.compile("Ready to accept connections"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def redis_url(server: Server) -> str:
    return f"redis://127.0.0.1:{server.port}/0"
