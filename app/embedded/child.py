"""One supervised child-process lifecycle for the embedded servers (PostgreSQL, Redis, MLflow).

`start()` spawns the server in its own session (a Ctrl-C at the terminal reaches only the
platform, which then stops its children in order) and waits until `is_ready()`. A supervisor
thread then waits on the process: if it exits without `stop()` (crash, OOM kill, `kill -9`), the
supervisor logs one line, kills what is left of its process group (workers, backends) and starts
it again on the same address and port, so clients reconnect to the URL they already have.
Restarts back off exponentially, from the first delay again once a server stayed up a minute.
`stop()` ends supervision, asks the server to stop (`stop_signal`), waits, and kills whatever
remains of its process group.

`sigterm_unwinds()` makes SIGTERM raise KeyboardInterrupt like Ctrl-C, so that every `with` and
`finally` that stops a server also runs on `kill`, `docker stop` or a Kubernetes pod's end.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from app.embedded.ports import free_port

log = logging.getLogger("mlpatron.embedded")

RESTART_DELAY = (0.5, 30.0)  # first, max seconds before a restart
STABLE_SECONDS = 60.0  # up this long: the next crash restarts after the first delay again
STOP_TIMEOUT = 30.0  # graceful stop, then SIGKILL


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so every `finally` (server stops) still runs."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log_tail(path: Path, offset: int = 0, chars: int = 4000) -> str:
    """The end of a log file from `offset` (what a server said before it failed)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")[-chars:]
    except OSError:
        return ""


class ChildServer(abc.ABC):
    """A server process on `127.0.0.1:port`, logging to `data_dir/<log_name>`, supervised."""

    name: ClassVar[str]
    log_name: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int | None = None, *, startup_timeout: float = 30.0,
                 supervise: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.startup_timeout = startup_timeout
        self.supervise = supervise
        self.log_path = self.data_dir / self.log_name
        self.restarts = 0  # completed restarts (the new process answered)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # held while (re)spawning; stop() waits for it
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._starter: threading.Thread | None = None
        self.ready = threading.Event()  # set once the server first answered
        self._owner_pid = os.getpid()

    # ---- what each server defines ------------------------------------------------------------

    @abc.abstractmethod
    def command(self) -> list[str]: ...

    @abc.abstractmethod
    def url_for(self, port: int) -> str: ...

    @abc.abstractmethod
    def is_ready(self) -> bool:
        """Whether the server answers (called every 50 ms while it starts)."""

    def prepare(self) -> None:
        """Before the first start (directories, initdb, a virtual environment)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def popen_options(self) -> dict[str, Any]:
        """Extra `subprocess.Popen` arguments (env, cwd, user)."""
        return {}

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} not started")
        return self.url_for(self.port)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> str:
        with self._lock:
            if self._proc is not None or (self._supervisor is not None and self._supervisor.is_alive()):
                return self.url  # running, or between a crash and its restart
            self._stopping.clear()
            self._start_locked()
        self._supervise_from_now()
        return self.url

    def start_in_background(self) -> str:
        """The URL at once; the server starts in a thread (see `ready`). For a server nothing
        needs at start-up: its clients wait for it (connection refused means "not yet")."""
        with self._lock:
            self._stopping.clear()
            if self.port is None:
                self.port = free_port()
        self._starter = threading.Thread(target=self._background_start, name=f"start-{self.name}", daemon=True)
        self._starter.start()
        return self.url

    def _background_start(self) -> None:
        began = time.monotonic()
        try:
            with self._lock:
                if self._stopping.is_set() or self._proc is not None:
                    return
                self._start_locked()
        except _Aborted:
            return
        except Exception:
            log.exception("embedded %s failed to start", self.name)
            return
        self._supervise_from_now()
        log.info("embedded %s ready on %s after %.1fs (started in the background)",
                 self.name, self.url, time.monotonic() - began)

    def _start_locked(self) -> None:
        self.reap_orphan()
        self.prepare()
        if self.port is None:
            self.port = free_port()
        self._spawn()
        self.ready.set()

    def _supervise_from_now(self) -> None:
        # If the caller forgets stop(): stop our own child -- but not from a forked child
        # process, which inherits atexit handlers and must not stop its parent's server.
        self._owner_pid = os.getpid()
        atexit.register(self._atexit_stop)
        if self.supervise:
            self._supervisor = threading.Thread(target=self._supervise, name=f"supervise-{self.name}", daemon=True)
            self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()  # also aborts a start in progress (see _spawn)
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc, self.stop_signal)
            self.pid_file.unlink(missing_ok=True)
        supervisor, self._supervisor = self._supervisor, None
        for thread in (supervisor, self._starter):
            if thread is not None and thread is not threading.current_thread():
                thread.join()
        atexit.unregister(self._atexit_stop)

    @property
    def pid_file(self) -> Path:
        """`<data_dir>.pid`: the server's pid and its owner's (each with its start time, so a
        reused pid is never taken for them), for the next start after a crash of the owner."""
        return self.data_dir.with_name(f"{self.data_dir.name}.pid")

    def reap_orphan(self) -> None:
        """Stop a server a killed predecessor left running on this data directory (its session
        outlives a SIGKILL or OOM kill of the platform); a server whose owner lives is left alone."""
        try:
            pid, started, owner, owner_started = (int(f) for f in self.pid_file.read_text().split())
        except (OSError, ValueError):
            return
        if _started(owner) == owner_started:
            return
        if _started(pid) == started:
            log.warning("stopping embedded %s (pid %d), left running by a predecessor (pid %d) that was killed",
                        self.name, pid, owner)
            _end_group(pid, self.stop_signal)
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> str:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server as a crash would. Supervised, it is restarted; otherwise it is gone
        (with its process group) and `start()` starts it again on the same port."""
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"{self.name} not running")
        proc.send_signal(sig)
        if not self.supervise:
            with self._lock:
                self._proc = None
            proc.wait()
            _killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> ChildServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _atexit_stop(self) -> None:
        if os.getpid() == self._owner_pid:
            self.stop()

    def _spawn(self) -> None:
        """Start the process and wait until it is ready (the caller holds the lock)."""
        with self.log_path.open("ab") as log_file:
            offset = log_file.tell()
            proc = subprocess.Popen(self.command(), stdout=log_file, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, **self.popen_options())
        self._proc = proc
        deadline = time.monotonic() + self.startup_timeout
        try:
            while not self.is_ready():
                if self._stopping.is_set():
                    raise _Aborted(self.name)
                if proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {proc.returncode}:\n{log_tail(self.log_path, offset)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not ready after {self.startup_timeout:.0f}s:\n"
                                       f"{log_tail(self.log_path, offset)}")
                time.sleep(0.05)
        except BaseException:
            self._proc = None
            _end(proc, self.stop_signal)
            raise
        owner = os.getpid()
        self.pid_file.write_text(f"{proc.pid} {_started(proc.pid)} {owner} {_started(owner)}\n")

    def _supervise(self) -> None:
        delay = RESTART_DELAY[0]
        while (proc := self._proc) is not None:
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            _killpg(proc.pid, signal.SIGKILL)  # what is left of its process group
            if time.monotonic() - started > STABLE_SECONDS:
                delay = RESTART_DELAY[0]
            log.warning("embedded %s (pid %d) exited with %s; restarting it on %s in %.1fs (restart %d)",
                        self.name, proc.pid, code, self.url, delay, self.restarts + 1)
            while not self._stopping.wait(delay):
                delay = min(delay * 2, RESTART_DELAY[1])
                with self._lock:
                    if self._stopping.is_set():
                        return
                    try:
                        self._spawn()
                        self.restarts += 1
                        break
                    except _Aborted:
                        return
                    except Exception as exc:
                        log.warning("restarting embedded %s failed (%s); next try in %.1fs", self.name, exc, delay)
            else:
                return


class _Aborted(Exception):
    """stop() was called while the server was starting."""


def _end(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process, wait (SIGKILL after STOP_TIMEOUT), then kill what remains of its group."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _reap_group(proc.pid, 5)  # workers may outlive the leader by a moment; never leave any behind


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None if there is no such process."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _end_group(pgid: int, sig: int) -> None:
    """`_end` for a process that is not our child (it leads its own process group)."""
    _killpg(pgid, sig)
    _reap_group(pgid, STOP_TIMEOUT)


def _reap_group(pgid: int, timeout: float) -> None:
    """Wait up to `timeout` for a process group to go, then kill what remains of it."""
    deadline = time.monotonic() + timeout
    while _killpg(pgid, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    _killpg(pgid, signal.SIGKILL)


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
