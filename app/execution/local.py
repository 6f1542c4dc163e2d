"""The local executor: one subprocess (in its own process group) per job on this machine.

Each job is a single background task that reports PENDING, RUNNING and one terminal update
in that order, and delivers every log line before the terminal update. While the job runs, its
Python (the `python` on its PATH) is asked for its version and packages once, reported to the
sink's `job_environment` before the terminal update. Stopping a job
(cancel, deadline, shutdown) is signalled to that task, which alone kills the process group
and decides the outcome, so there is exactly one terminal update whoever asks first.

The handle is `{"workdir", "pidfile"}`: both are known when `submit` returns, while the pid
only exists once the checkout finished. The pidfile (next to the workdir, written before
RUNNING is reported) is how a restarted platform finds and kills a surviving process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.execution import git
from app.execution.executor import Executor, JobSink, JobSpec
from app.execution.interpreter import describe_python, job_python
from app.jobs.status import JobError, JobStatus, JobUpdate

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024  # longer lines are delivered in pieces; nothing is dropped
_READ_CHUNK = 64 * 1024
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
# Only these reach a job: the platform's own secrets (DATABASE_URL, STRIPE_*...) must not.
_ENV_PASSTHROUGH = {
    "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CUDA_VISIBLE_DEVICES",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}  # fmt: skip
RESTART_MESSAGE = "platform restarted while the job was active; job was stopped"
SHUTDOWN_MESSAGE = "platform shut down while the job was active; job was stopped"


def _now() -> datetime:
    return datetime.now(UTC)


def _proc_identity(pid: int) -> str | None:
    """Boot id + start time of `pid` (Linux): tells our process from a later one reusing the pid."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def _group_alive(pgid: int) -> bool:
    """Does the process group still have a live (non-zombie) member?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    # kill(0) also succeeds for zombies waiting for init to reap them; those are already dead.
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(os.path.join(entry.path, "stat")) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _wait_group_gone(pgid: int, seconds: float) -> bool:
    # Members of a group we do not parent cannot be awaited; poll the kernel briefly.
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while _group_alive(pgid):
        if loop.time() >= end:
            return False
        await asyncio.sleep(0.02)
    return True


async def _stop_group(pgid: int, grace: float, leader_exited: asyncio.Event | None = None) -> None:
    """SIGTERM the whole group, SIGKILL whatever is left after `grace` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + grace
    _signal_group(pgid, signal.SIGTERM)
    if leader_exited is not None:  # the common case: the leader obeys SIGTERM, no polling needed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await leader_exited.wait()
    if not await _wait_group_gone(pgid, end - loop.time()):
        _signal_group(pgid, signal.SIGKILL)
        await _wait_group_gone(pgid, 2.0)


class _JobProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Stream protocol that also says when the process exits.

    `Process.wait()` only returns once every pipe is closed, i.e. never while a leftover
    grandchild holds stdout; the job's outcome must not depend on its descendants.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_READ_CHUNK, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


@dataclass
class _Job:
    spec: JobSpec
    workdir: Path
    pidfile: Path
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str | None = None  # "cancel" | "shutdown"
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class LocalExecutor(Executor):
    name = "local"

    def __init__(
        self,
        sink: JobSink,
        work_root: Path,
        python_bin_dir: Path | None = None,
        *,
        grace_seconds: float = 5.0,
        keep_workdirs: bool = False,
    ) -> None:
        super().__init__(sink)
        self.work_root = Path(work_root)
        # Jobs get this directory first on PATH: by default the platform's own Python, which
        # has the MLflow client, so `python train.py` logs to the platform's run.
        self.python_bin_dir = python_bin_dir or Path(sys.executable).parent
        self.grace_seconds = grace_seconds
        self.keep_workdirs = keep_workdirs  # checkouts are deleted after the job unless kept for debugging
        self._jobs: dict[str, _Job] = {}  # jobs until their terminal update
        self._tasks: set[asyncio.Task[None]] = set()  # until their cleanup is done too

    # ------------------------------------------------------------------ contract

    async def submit(self, spec: JobSpec) -> dict[str, Any]:
        if not _JOB_ID_RE.match(spec.job_id):
            raise ValueError(f"job id {spec.job_id!r} is not usable as a directory name")
        workdir = self.work_root / spec.job_id
        handle = {"workdir": str(workdir), "pidfile": str(self.work_root / f"{spec.job_id}.pid")}
        if spec.job_id in self._jobs:  # a retried submit must not start the job twice
            return handle
        job = _Job(spec=spec, workdir=workdir, pidfile=Path(handle["pidfile"]))
        self._jobs[spec.job_id] = job
        job.task = asyncio.create_task(self._run(job), name=f"local-job-{spec.job_id}")
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)
        return handle

    async def cancel(self, job_id: str, handle: dict[str, Any]) -> None:
        """Stop an owned job and return once CANCELLED is reported; unknown/finished: no-op."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job.stop_reason is None:
            job.stop_reason = "cancel"
        job.stop.set()
        await job.done.wait()

    async def reconcile(self, active: list[tuple[str, dict[str, Any]]]) -> None:
        orphans = [(job_id, handle) for job_id, handle in active if job_id not in self._jobs]
        await asyncio.gather(*(self._fail_orphan(job_id, handle) for job_id, handle in orphans))

    async def close(self) -> None:
        jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_reason = job.stop_reason or "shutdown"
            job.stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ reporting

    async def _report(
        self, job_id: str, status: JobStatus, *, error: JobError | None = None, pending_info: str | None = None
    ) -> None:
        update = JobUpdate(job_id=job_id, status=status, at=_now(), pending_info=pending_info, error=error)
        try:
            await self.sink.job_update(update)
        except Exception:  # a sink failure must not kill the job's task; the DB reconciler catches up
            log.exception("job %s: sink rejected %s update", job_id, status.value)

    async def _log_line(self, job_id: str, stream: str, line: str) -> None:
        try:
            await self.sink.job_log(job_id, stream, line)
        except Exception:  # keep reading, or the job would block on a full pipe
            log.exception("job %s: sink rejected a log line", job_id)

    # ------------------------------------------------------------------ one job

    async def _run(self, job: _Job) -> None:
        spec = job.spec
        try:
            await self._report(spec.job_id, JobStatus.PENDING, pending_info=f"checking out {spec.commit_sha[:12]}")
            await asyncio.to_thread(self._clean, job)
            terminal = await self._checkout(job)
            if terminal is None:
                probe = asyncio.create_task(self._record_python(spec))
                try:
                    terminal = await self._execute(job)
                finally:
                    await probe
            status, error = terminal
            await self._report(spec.job_id, status, error=error)
        except Exception as exc:  # a bug here must still end the job visibly
            log.exception("job %s: executor failure", spec.job_id)
            await self._report(spec.job_id, JobStatus.FAILED, error=JobError(platform=f"executor error: {exc}"))
        finally:
            self._jobs.pop(spec.job_id, None)
            job.done.set()
            if not self.keep_workdirs:
                await asyncio.to_thread(self._clean, job)

    async def _record_python(self, spec: JobSpec) -> None:
        """The job's Python version and packages, once (never fails the job)."""
        report = getattr(self.sink, "job_environment", None)
        env = self._env(spec)
        python = job_python(env)
        if report is None or python is None:
            return
        facts = await describe_python(python, env, self.work_root)  # not the checkout: see describe_python
        if facts is None:
            return
        try:
            await report(spec.job_id, facts)
        except Exception:
            log.exception("job %s: sink rejected its environment", spec.job_id)

    def _clean(self, job: _Job) -> None:
        shutil.rmtree(job.workdir, ignore_errors=True)
        job.pidfile.unlink(missing_ok=True)

    def _stopped(self, job: _Job) -> tuple[JobStatus, JobError | None]:
        if job.stop_reason == "cancel":
            return JobStatus.CANCELLED, None
        return JobStatus.FAILED, JobError(platform=SHUTDOWN_MESSAGE)

    async def _checkout(self, job: _Job) -> tuple[JobStatus, JobError | None] | None:
        """None when the code is in place; otherwise the terminal outcome."""
        spec = job.spec
        checkout = asyncio.create_task(git.checkout(spec.repo_url, spec.commit_sha, job.workdir))
        stop = asyncio.create_task(job.stop.wait())
        try:
            await asyncio.wait({checkout, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not checkout.done():  # cancelled or shutting down while fetching
            checkout.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await checkout
            return self._stopped(job)
        try:
            checkout.result()
        except (git.GitError, OSError) as exc:
            return JobStatus.FAILED, JobError(platform=f"git checkout failed: {exc}")
        return self._stopped(job) if job.stop.is_set() else None

    def _env(self, spec: JobSpec) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _ENV_PASSTHROUGH or k.startswith("LC_")}
        env["PATH"] = os.pathsep.join([str(self.python_bin_dir), os.environ.get("PATH", os.defpath)])
        env["PYTHONUNBUFFERED"] = "1"  # logs stream live instead of arriving in 8 KiB bursts
        env.update(spec.env)
        return env

    async def _execute(self, job: _Job) -> tuple[JobStatus, JobError | None]:
        spec = job.spec
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _JobProtocol(loop),
                "/bin/sh", "-c", spec.command,  # the command's parameters are already shell-quoted
                cwd=job.workdir,
                env=self._env(spec),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # own process group: cancel/deadline kill the whole tree
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            return JobStatus.FAILED, JobError(platform=f"could not start the job: {exc}")
        try:
            return await self._supervise(job, transport, protocol)
        finally:
            transport.close()

    async def _supervise(
        self, job: _Job, transport: asyncio.SubprocessTransport, protocol: _JobProtocol
    ) -> tuple[JobStatus, JobError | None]:
        spec = job.spec
        pgid = transport.get_pid()  # leader of its own new session and group
        assert protocol.stdout is not None and protocol.stderr is not None
        readers = [
            asyncio.create_task(self._pump(spec.job_id, "stdout", protocol.stdout)),
            asyncio.create_task(self._pump(spec.job_id, "stderr", protocol.stderr)),
        ]
        record = {"pid": pgid, "pgid": pgid, "identity": _proc_identity(pgid)}
        await asyncio.to_thread(job.pidfile.write_text, json.dumps(record))
        await self._report(spec.job_id, JobStatus.RUNNING)

        exited = asyncio.create_task(protocol.exited.wait())
        stop = asyncio.create_task(job.stop.wait())
        await asyncio.wait({exited, stop}, timeout=spec.deadline_seconds, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        stop.cancel()
        outcome: tuple[JobStatus, JobError | None] | None = None
        if not protocol.exited.is_set():
            if job.stop.is_set():
                outcome = self._stopped(job)
            else:
                budget = f"deadline exceeded: job ran longer than its {spec.deadline_seconds} s budget"
                outcome = JobStatus.FAILED, JobError(platform=budget)
            await _stop_group(pgid, self.grace_seconds, protocol.exited)
        else:
            # The main process is done; like a container, nothing it left behind survives it.
            _signal_group(pgid, signal.SIGKILL)

        # Every line before the terminal update; a descendant that escaped the group and still
        # holds the pipe only gets a short grace before we stop reading.
        _, pending = await asyncio.wait(readers, timeout=max(self.grace_seconds, 1.0))
        for reader in pending:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

        if outcome is not None:
            return outcome
        await protocol.exited.wait()
        code = transport.get_returncode() or 0
        if code == 0:
            return JobStatus.SUCCEEDED, None
        if code < 0:  # killed by a signal: report it the way a container runtime does
            terminated = {"reason": f"Signal {-code}", "exit_code": 128 - code}
        else:
            terminated = {"reason": "Error", "exit_code": code}
        return JobStatus.FAILED, JobError(container_terminated=terminated)

    async def _pump(self, job_id: str, stream: str, reader: asyncio.StreamReader) -> None:
        """Deliver `reader` line by line, in order; lines over MAX_LINE_BYTES arrive in pieces."""
        buf = b""
        while chunk := await reader.read(_READ_CHUNK):
            buf += chunk
            start = 0
            while True:
                nl = buf.find(b"\n", start, start + MAX_LINE_BYTES + 1)
                if nl >= 0:
                    end, start_next = nl, nl + 1
                elif len(buf) - start > MAX_LINE_BYTES:
                    end = start + MAX_LINE_BYTES
                    while end > start + MAX_LINE_BYTES - 3 and (buf[end] & 0xC0) == 0x80:
                        end -= 1  # do not cut a UTF-8 character in two
                    start_next = end
                else:
                    break
                await self._emit(job_id, stream, buf[start:end])
                start = start_next
            buf = buf[start:]
        if buf:
            await self._emit(job_id, stream, buf)

    async def _emit(self, job_id: str, stream: str, raw: bytes) -> None:
        await self._log_line(job_id, stream, raw.removesuffix(b"\r").decode("utf-8", "replace"))

    # ------------------------------------------------------------------ restart

    async def _fail_orphan(self, job_id: str, handle: dict[str, Any]) -> None:
        """A job the database thinks is active but no task here owns: stop its leftovers, fail it."""
        pidfile = handle.get("pidfile")
        record: dict[str, Any] = {}
        if pidfile:
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(await asyncio.to_thread(Path(pidfile).read_text))
        pgid = record.get("pgid")
        if isinstance(pgid, int) and pgid > 1 and self._still_ours(record):
            await _stop_group(pgid, self.grace_seconds)
        await self._report(job_id, JobStatus.FAILED, error=JobError(platform=RESTART_MESSAGE))
        if not self.keep_workdirs:
            await asyncio.to_thread(self._remove_leftovers, handle)

    def _remove_leftovers(self, handle: dict[str, Any]) -> None:
        for key in ("workdir", "pidfile"):
            path = Path(str(handle.get(key) or ""))
            if path.parent != self.work_root:  # only ever delete what this executor created
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    @staticmethod
    def _still_ours(record: dict[str, Any]) -> bool:
        # The group leader may be gone while its children live on (the group id stays reserved
        # then); if a process with that pid exists, it must be the one we started, not a reuse.
        if not _group_alive(record["pgid"]):
            return False
        current = _proc_identity(record["pgid"])
        return current is None or record.get("identity") in (None, current)
