"""Embedded MLflow tracking server, run from its own virtual environment.

Full ``mlflow`` cannot live in the application's environment: it pins ``graphene<4``,
which needs ``graphql-core<3.3`` while strawberry needs ``>=3.3`` (pip then quietly
picks graphene 2 and MLflow's server breaks). The app only uses ``mlflow-skinny`` as a
client; the server comes from a separate venv that :func:`ensure_mlflow_venv` creates
on first use (~850 MB, ~80 s) and reuses afterwards.

The default version follows the app's ``mlflow-skinny`` client (3.17.x): on this
machine's index ``mlflow==3.18.0`` exists but its ``mlflow-skinny==3.18.0`` dependency
does not, so 3.18.0 cannot be installed. Override with ``MLPATRON_MLFLOW_VERSION``.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from app.embedded.ports import free_port

MLFLOW_VERSION = os.environ.get("MLPATRON_MLFLOW_VERSION", "3.17.2")
DEFAULT_VENV = Path(os.environ.get("MLPATRON_MLFLOW_VENV", "~/.cache/mlpatron/mlflow-venv")).expanduser()

# Written only after pip succeeded, so a half-finished install is never mistaken for a good one.
_MARKER = ".mlpatron-mlflow-version"


def _clean_env() -> dict[str, str]:
    # The app venv must not leak into the MLflow venv (or vice versa).
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        env.pop(var, None)
    return env


def _tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _installed(path: Path, version: str) -> bool:
    marker = path / _MARKER
    return (path / "bin" / "mlflow").exists() and marker.exists() and marker.read_text().strip() == version


def ensure_mlflow_venv(path: Path = DEFAULT_VENV, version: str = MLFLOW_VERSION) -> Path:
    """Return a venv at ``path`` with ``mlflow==version`` installed, creating it if needed."""
    path = path.expanduser().absolute()
    if _installed(path, version):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # flock (not a pid file): released by the kernel if the installer dies, and a second
    # process simply blocks until the first install finished, then sees the marker.
    with (path.parent / f"{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(path, version):
            return path
        python = path / "bin" / "python"
        if not python.exists():
            # sys.executable rather than whatever "python3" is on PATH: it is known to
            # work and to have ensurepip (Debian's python3 may lack the venv module).
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, env=_clean_env())
        (path / _MARKER).unlink(missing_ok=True)
        log = path / "mlpatron-install.log"
        with log.open("w") as out:
            proc = subprocess.run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", f"mlflow=={version}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_clean_env(),
            )
        if proc.returncode != 0 or not (path / "bin" / "mlflow").exists():
            raise RuntimeError(f"installing mlflow=={version} into {path} failed:\n{_tail(log)}")
        (path / _MARKER).write_text(version + "\n")
    return path


class MlflowServer:
    """An ``mlflow server`` child process with a SQLite backend under ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        venv: Path | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.venv = venv
        self.startup_timeout = startup_timeout
        self.log_path = self.data_dir / "mlflow.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("MLflow server not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        if self._proc is not None:
            return self.url
        venv = self.venv or ensure_mlflow_venv()
        if self.port is None:
            self.port = free_port()
        tmp = self.data_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = _clean_env()
        # MLflow puts a lock file (and upload spools) in the temp dir: keep them per instance.
        env["TMPDIR"] = str(tmp)
        # Even with --workers 1 MLflow forks a job runner with 7 huey consumers (GenAI jobs,
        # unused by mlpatron): off unless the environment explicitly asks for them.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        cmd = [
            str(venv / "bin" / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--artifacts-destination", str(self.data_dir / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            # Default is 4 uvicorn workers; one is plenty.
            "--workers", "1",
        ]
        with self.log_path.open("ab") as log:
            offset = log.tell()
            # Own process group: stop() can signal the server and every worker it forked.
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.data_dir, env=env, start_new_session=True,
            )
        try:
            self._wait_healthy(offset)
        except BaseException:
            self.stop()
            raise
        # Its own session means it would outlive us: stop it at exit if the caller forgot,
        # except from a forked child (inherited atexit handlers must not kill our server).
        self._owner_pid = os.getpid()
        atexit.register(self._atexit_stop)
        return self.url

    def _wait_healthy(self, log_offset: int) -> None:
        # No proxies for loopback, whatever the environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.startup_timeout
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {self._proc.returncode}:\n{_tail(self.log_path, log_offset)}"
                )
            try:
                with opener.open(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        tail = _tail(self.log_path, log_offset)
        raise TimeoutError(f"mlflow server not healthy after {self.startup_timeout:.0f}s:\n{tail}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self._atexit_stop)
        pgid = proc.pid
        _killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _killpg(pgid, signal.SIGKILL)
            proc.wait()
        # Workers may outlive the parent by a moment; never leave any behind.
        deadline = time.monotonic() + 5
        while _killpg(pgid, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        _killpg(pgid, signal.SIGKILL)

    def _atexit_stop(self) -> None:
        if os.getpid() == self._owner_pid:
            self.stop()

    def __enter__(self) -> MlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
