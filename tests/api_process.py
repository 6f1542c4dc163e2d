"""Extra API replicas as real processes (uvicorn on loopback), sharing the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.embedded.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


class ApiProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
        )

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

    def log_tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


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
        "STARTUP_OVERHEAD_SECONDS": str(settings.startup_overhead_seconds),
        # Replicas as in production (`serve --api-only`): the test process is the one watcher.
        "RUN_WATCHER": "false",
    }
