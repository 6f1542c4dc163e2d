"""Child servers for the read benchmarks: always stopped, even on failure, Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from app.embedded.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
# The process serving each running `uvicorn_process` (by its base URL): benchmarks read its CPU time.
SERVER_PIDS: dict[str, int] = {}


# A benchmark is one client sending far more than any person: the request budget still runs (its
# Redis round trip is part of what a request costs) but never refuses.
UNLIMITED_BUDGET = {"REQUESTS_PER_MINUTE": "1000000000", "ANONYMOUS_REQUESTS_PER_MINUTE": "1000000000"}


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (live and reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK") + sum(tree_cpu(c) for c in children(pid))


def websocket_flags() -> list[str]:
    """uvicorn's command-line flags for the websocket settings `mlpatron serve` uses."""
    from app.main import WEBSOCKETS

    return [f"--ws={WEBSOCKETS['ws']}", f"--ws-per-message-deflate={WEBSOCKETS['ws_per_message_deflate']}"]


@contextlib.asynccontextmanager
async def uvicorn_process(app: str, env: dict[str, str], ready_path: str = "/health",
                          factory: bool = False) -> AsyncIterator[str]:
    """One uvicorn process serving `app`; yields its base URL once `ready_path` answers 200."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--log-level",
            "warning", "--no-access-log", *websocket_flags(), *(["--factory"] if factory else [])]
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=url) as http, asyncio.timeout(60):
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"{app} exited with {proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(ready_path) as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
        SERVER_PIDS[url] = proc.pid
        yield url
    finally:
        SERVER_PIDS.pop(url, None)
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
