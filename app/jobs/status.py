"""A job's status and the updates that move it, in the words executors report them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class JobStatus(str, enum.Enum):  # noqa: UP042 - keep str() == 'JobStatus.X' semantics unchanged
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE_JOB_STATUSES = (JobStatus.PENDING.value, JobStatus.RUNNING.value)

# Forward-only order: a late or repeated event never moves a job backwards.
STATUS_RANK = {
    JobStatus.PENDING: 0,
    JobStatus.RUNNING: 1,
    JobStatus.SUCCEEDED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 2,
}


class JobKind(str, enum.Enum):  # noqa: UP042 - same str semantics as JobStatus
    DRYRUN = "dryrun"
    FUNDED = "funded"


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


@dataclass(frozen=True)
class JobEvent:
    """A Kubernetes Event of the job's pod as one log line. `uid` + `occurrences` identify what
    was written: the same event seen again (a re-list) adds nothing, a repeat of it (its count
    grew) adds one line."""

    uid: str
    occurrences: int
    line: str
