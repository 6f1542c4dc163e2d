"""The one contract every executor (local subprocess, Kubernetes) implements.

Executors know nothing about runs, money or the database: they take a `JobSpec`, and report
`JobUpdate`s (`app.jobs.status`) through a `JobSink` (the job recorder, `app.jobs.recorder`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.jobs.status import JobUpdate


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    run_id: str
    kind: str  # "dryrun" | "funded"
    repo_url: str
    commit_sha: str
    command: str  # already rendered, every parameter shell-quoted
    env: dict[str, str]
    deadline_seconds: int
    image: str | None = None
    gpu_type: str | None = None
    gpu_count: int = 0
    machine_type: str | None = None
    spot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class JobSink(Protocol):
    """Where executors report. Implementations persist first, then publish.

    Optional methods, used when present (`app.jobs.recorder.JobRecorder` has them all):
    `job_logs(job_id, stream, lines)` and `job_log_count(job_id, stream)` (`k8s_logs`),
    `job_events(job_id, events)` (Kubernetes Events, each written once) and
    `job_environment(job_id, facts)` (what the job ran: image digest, Python packages).
    """

    async def job_update(self, update: JobUpdate) -> None: ...

    async def job_log(self, job_id: str, stream: str, line: str) -> None: ...


class Executor(abc.ABC):
    name: str

    def __init__(self, sink: JobSink) -> None:
        self.sink = sink

    @abc.abstractmethod
    async def submit(self, spec: JobSpec) -> dict[str, Any]:
        """Start the job; return an opaque handle stored with the job (e.g. pid, k8s name)."""

    @abc.abstractmethod
    async def cancel(self, job_id: str, handle: dict[str, Any]) -> None:
        """Stop the job; the executor reports the CANCELLED update. Idempotent."""

    @abc.abstractmethod
    async def reconcile(self, active: list[tuple[str, dict[str, Any]]]) -> None:
        """After a restart: re-attach to or fail the jobs the database believes are active."""

    async def close(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release resources (processes keep running only where the executor can re-attach)."""
