"""A throw-away PostgreSQL server started from its binaries, for tests that need a real one.

>>> with PostgresServer.start() as server:
...     with server.database("caravan_index") as url:
...         engine = create_engine(url)  # postgresql+psycopg://caravan@127.0.0.1:PORT/…

``initdb`` and ``pg_ctl`` run in a fresh directory under the system temp dir, with a
unix socket there and a free TCP port on 127.0.0.1 (no other address). PostgreSQL
refuses to run as root, so as root they run as the ``postgres`` system user
(``runuser -u postgres --``) on a directory handed to it. pytest-postgresql's executor
cannot switch users, so only its ``DatabaseJanitor`` (create/drop a database) is used.

Binaries: ``CARAVAN_PG_BIN`` if set, else the newest ``/usr/lib/postgresql/<ver>/bin``
(Debian's layout), else ``pg_ctl`` on PATH. Missing binaries are an error that says to
install PostgreSQL, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_postgresql.janitor import DatabaseJanitor

__all__ = ["PostgresNotInstalled", "PostgresServer", "find_bindir"]

USER = "caravan"
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
    "(`apt-get install postgresql`, or `make sysdeps`), or set CARAVAN_PG_BIN to their directory"
)


class PostgresNotInstalled(RuntimeError):
    """No initdb/pg_ctl on this machine."""


def find_bindir() -> Path:
    candidates: list[Path] = []
    if os.environ.get("CARAVAN_PG_BIN"):
        candidates.append(Path(os.environ["CARAVAN_PG_BIN"]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: -int(p.name))]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresNotInstalled(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    bindir: Path
    base: Path
    port: int
    as_user: list[str]

    @property
    def data(self) -> Path:
        return self.base / "data"

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[PostgresServer]:
        bindir = find_bindir()
        base = Path(tempfile.mkdtemp(prefix="caravan-pg-"))  # short: socket paths are limited
        as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresNotInstalled(
                    "running as root and there is no `postgres` user to run PostgreSQL as: "
                    + INSTALL_HINT
                ) from None
            os.chown(base, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(bindir, base, _free_port(), as_user)
        try:
            server._run(
                "initdb", "-D", str(server.data), "-U", USER, "--auth=trust", "--no-sync",
                "-E", "UTF8", "--locale=C",
            )  # fmt: skip
            server._pg_ctl_start()
            yield server
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                server._run("pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop")
            shutil.rmtree(base, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.base)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, command, done.stdout, f"{tool} failed: {done.stderr.strip()}"
            )

    def _pg_ctl_start(self) -> None:
        options = (
            f"-k {self.base} -p {self.port} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.base / "server.log"
        try:
            self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")
        except subprocess.CalledProcessError as exc:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{text}") from exc

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{dbname}"

    @contextlib.contextmanager
    def database(self, dbname: str) -> Iterator[str]:
        """A fresh database for the block, dropped afterwards; yields its SQLAlchemy URL."""
        janitor = DatabaseJanitor(
            user=USER, host="127.0.0.1", port=self.port, dbname=dbname, connection_timeout=10
        )
        janitor.init()
        try:
            yield self.url(dbname)
        finally:
            janitor.drop()
