"""The one contract every executor (local subprocess, Kubernetes) implements.

Executors know nothing about runs, money or the database: they take a `JobSpec`,
and report what happens through a `JobSink` that the run lifecycle provides.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class JobStatus(str, enum.Enum):  # noqa: UP042 - keep str() == 'JobStatus.X' semantics unchanged
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


# Forward-only order: a late or repeated event never moves a job backwards.
STATUS_RANK = {
    JobStatus.PENDING: 0,
    JobStatus.RUNNING: 1,
    JobStatus.SUCCEEDED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 2,
}


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


@dataclass(frozen=True)
class JobError:
    """Structured diagnosis, in the order a reader should check it."""

    platform: str | None = None
    container_terminated: dict[str, Any] | None = None  # {"reason": str, "exit_code": int}
    k8s_job_condition: dict[str, Any] | None = None  # {"type": str, "reason": str, "message": str}

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "container_terminated": self.container_terminated,
            "k8s_job_condition": self.k8s_job_condition,
        }


@dataclass(frozen=True)
class JobUpdate:
    job_id: str
    status: JobStatus
    at: datetime
    pending_info: str | None = None
    error: JobError | None = None


class JobSink(Protocol):
    """Where executors report. Implementations persist first, then publish."""

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
