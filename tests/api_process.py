"""Extra API replicas as real processes (uvicorn on loopback), sharing the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from app.embedded.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


class ChildProcess:
    """A process of the platform (API replica, watcher, simulated cluster), its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, text: str, within: float = 30.0, after: int = 0) -> str:
        """The first log line containing `text` past character `after`; fails if the process ends first."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = next((ln for ln in self.log_text()[after:].splitlines() if text in ln), None)
            if found is not None:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args} exited with {self.proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{text!r} not logged within {within}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a node or OOM killer taking the process."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class ApiProcess(ChildProcess):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"], env, log_path)

    def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"API process exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"API process not ready within {within}s:\n{self.log_tail()}")


class WatcherProcess(ChildProcess):
    """`mlpatron watcher`: follows Kubernetes Jobs while it holds the advisory lock."""

    LEADING = "watcher: watching namespace"  # logged once it holds the lock and has synced

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__([sys.executable, "-c", "from app.cli import main; main()", "watcher"], env, log_path)


def replica_env(settings, redis_url: str | None = None) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url or settings.redis_url,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLPATRON_DATA_DIR": str(settings.data_dir),
        "ALLOW_LOCAL_REPOS": "true",
        "AUTH_ATTEMPTS_PER_HOUR": "100000",
        "DRYRUNS_PER_DAY": "100000",
        "CONCURRENT_DRYRUNS": "1000",
        "REQUESTS_PER_MINUTE": "1000000",
        "ANONYMOUS_REQUESTS_PER_MINUTE": "1000000",
        "STARTUP_OVERHEAD_SECONDS": str(settings.startup_overhead_seconds),
        # Replicas as in production (`serve --api-only`): the test process is the one watcher.
        "RUN_WATCHER": "false",
    }


@asynccontextmanager
async def replica_pair(env: dict[str, str], log_dir: Path, name: str) -> AsyncIterator[tuple[str, str]]:
    """Two API processes with `env`, started together: their base URLs."""
    a, b = ApiProcess(env, log_dir / f"{name}-a.log"), ApiProcess(env, log_dir / f"{name}-b.log")
    try:
        await asyncio.gather(asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready))
        yield a.url, b.url
    finally:
        a.stop()
        b.stop()
