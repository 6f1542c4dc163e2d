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

import fcntl
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from app.embedded.child import ChildServer, log_tail

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
            raise RuntimeError(f"installing mlflow=={version} into {path} failed:\n{log_tail(log)}")
        (path / _MARKER).write_text(version + "\n")
    return path


class MlflowServer(ChildServer):
    """An ``mlflow server`` child process with a SQLite backend under ``data_dir``."""

    name = "mlflow"
    log_name = "mlflow.log"

    def __init__(self, data_dir: Path, port: int | None = None, venv: Path | None = None,
                 startup_timeout: float = 120.0, **options: Any) -> None:
        super().__init__(data_dir, port, startup_timeout=startup_timeout, **options)
        self.venv = venv
        # No proxies for loopback, whatever the environment says.
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def prepare(self) -> None:
        self.venv = self.venv or ensure_mlflow_venv()
        (self.data_dir / "tmp").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        assert self.venv is not None
        return [
            str(self.venv / "bin" / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--artifacts-destination", str(self.data_dir / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            # Default is 4 uvicorn workers; one is plenty.
            "--workers", "1",
        ]  # fmt: skip

    def popen_options(self) -> dict[str, Any]:
        env = _clean_env()
        # MLflow puts a lock file (and upload spools) in the temp dir: keep them per instance.
        env["TMPDIR"] = str(self.data_dir / "tmp")
        # Even with --workers 1 MLflow forks a job runner with 7 huey consumers (GenAI jobs,
        # unused by mlpatron): off unless the environment explicitly asks for them.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        return {"env": env, "cwd": self.data_dir}

    def is_ready(self) -> bool:
        try:
            with self._http.open(f"{self.url}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False
