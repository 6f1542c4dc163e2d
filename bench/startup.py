"""How long `make run` takes to serve: `mlpatron serve` on the embedded default (PostgreSQL,
Redis-protocol server, MLflow) from a prepared data directory, to `/ready` answering 200, and
then to the MLflow server answering (started in the background, nothing waits for it).

    python -m bench.startup [--rounds 5]

The first start prepares the data directory (initdb, the MLflow virtual environment) and is
not counted. Every round ends with SIGTERM and checks that no server process survives.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from app.embedded.ports import free_port
from tests.processes import alive, descendants

ROOT = Path(__file__).resolve().parent.parent
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LEFT_BEHIND: list[int] = []  # processes that outlived a SIGTERM of `serve`
READY_LINE = re.compile(r"embedded mlflow ready on (http://[\w.:]+)")


def answers(url: str) -> bool:
    try:
        with OPENER.open(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def one_start(data_dir: Path, timeout: float = 180) -> tuple[float, float | None]:
    """(seconds to /ready, seconds to MLflow healthy or None if not seen) for one `serve`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI")}
    env |= {"MLPATRON_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO"}
    log = (data_dir / "serve.log").open("ab")
    started = time.monotonic()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlpatron"), "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    ready_at = mlflow_at = None
    servers: set[int] = set()
    try:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}; see {data_dir / 'serve.log'}")
            servers |= descendants(proc.pid)
            if ready_at is None and answers(f"http://127.0.0.1:{port}/ready"):
                ready_at = time.monotonic() - started
            if ready_at is not None:
                mlflow = mlflow_url(data_dir)
                if mlflow and answers(f"{mlflow}/health"):
                    mlflow_at = time.monotonic() - started
                    break
                if time.monotonic() - started > ready_at + 60:  # started eagerly (before /ready), or never
                    break
            time.sleep(0.02)
        if ready_at is None:
            raise RuntimeError(f"not ready within {timeout} s")
        return ready_at, mlflow_at
    finally:
        servers |= descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in servers:  # a benchmark never leaves a server behind, whatever `serve` did
            if alive(pid):
                LEFT_BEHIND.append(pid)
                os.kill(pid, signal.SIGKILL)


def mlflow_url(data_dir: Path) -> str | None:
    """The embedded MLflow server's address, once the platform logged that it is ready."""
    found = READY_LINE.findall((data_dir / "serve.log").read_text(errors="replace"))
    return found[-1] if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlpatron-startup-", dir="/var/tmp") as tmp:
        data_dir = Path(tmp)
        os.chmod(data_dir, 0o755)  # reachable by the unprivileged user embedded PostgreSQL runs as (as root)
        prepare, _ = one_start(data_dir, timeout=900)
        print(f"first start (initdb, MLflow environment): {prepare:.2f} s to /ready")
        ready, mlflow = [], []
        for _ in range(args.rounds):
            r, m = one_start(data_dir)
            ready.append(r)
            if m is not None:
                mlflow.append(m)
        print(f"prepared start, {args.rounds} rounds: /ready median {statistics.median(ready):.2f} s "
              f"(min {min(ready):.2f}, max {max(ready):.2f})")  # fmt: skip
        if mlflow:
            print(f"MLflow healthy (in the background) median {statistics.median(mlflow):.2f} s after start")
        if LEFT_BEHIND:
            print(f"SIGTERM of serve left {len(LEFT_BEHIND)} server processes behind (killed by the benchmark)")
        else:
            print("SIGTERM of serve: no server process left behind in any round")


if __name__ == "__main__":
    main()
