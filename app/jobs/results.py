"""What a job produced, read from its MLflow run: parameters, user tags, final metrics,
artifacts (listed, and opened for download). A run's results and runs compared: app.runs.results.

Runs and jobs are public (the `job` and `run` queries answer anyone), so visibility here is
existence: an id that names nothing is "not found", whoever asks.
"""

from __future__ import annotations

import posixpath
import re

from app.core import ids
from app.core.errors import NotFound, ValidationError
from app.jobs.models import Job
from app.tracking.mlflow import ArtifactEntry, MlflowTracker

# Tags the platform (mlpatron.*) and MLflow itself (mlflow.*) set: already fields of the job, or noise.
INTERNAL_TAG_PREFIXES = ("mlflow.", "mlpatron.")
# Control characters (NUL included), backslashes (a separator on some stores) and "%" (a path that
# is still percent-encoded after the one decoding HTTP does is an attempt to smuggle "..").
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f\\%]")
MAX_ARTIFACT_PATH = 1024


class UnsafeArtifactPath(ValidationError):
    def __init__(self, why: str) -> None:
        super().__init__({"path": why})


def artifact_path(raw: str, *, allow_root: bool = False) -> str:
    """`raw` as a path relative to the run's artifact root, or UnsafeArtifactPath: no "..", ".",
    empty or absolute segments, no backslash, control character or leftover percent-encoding."""
    if not raw:
        if allow_root:
            return ""
        raise UnsafeArtifactPath("must name a file")
    if len(raw) > MAX_ARTIFACT_PATH:
        raise UnsafeArtifactPath(f"at most {MAX_ARTIFACT_PATH} characters")
    if _FORBIDDEN_CHARS.search(raw):
        raise UnsafeArtifactPath("must not contain control characters, backslashes or '%'")
    segments = raw.split("/")
    if any(s in ("", ".", "..") for s in segments) or re.match(r"^[A-Za-z]:", raw):
        raise UnsafeArtifactPath("must be a relative path without '.', '..' or empty segments")
    return raw


async def visible_job(job_id: str) -> Job:
    """The job behind a global Job id, or NotFound (malformed ids included)."""
    pk = ids.decode_id(job_id, "Job")
    job = await Job.get_or_none(id=pk) if pk else None
    if job is None:
        raise NotFound("Job")
    return job


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(tags.items()) if not k.startswith(INTERNAL_TAG_PREFIXES)}


def artifact_name(entry: ArtifactEntry) -> str:
    return posixpath.basename(entry.path)


async def artifacts_after(tracker: MlflowTracker, mlflow_run_id: str, path: str,
                          after: str | None) -> list[ArtifactEntry]:
    """One directory's entries by path (the keyset order), those after the cursor's path."""
    entries = sorted(await tracker.list_artifacts(mlflow_run_id, artifact_path(path, allow_root=True)),
                     key=lambda e: e.path)
    return [e for e in entries if after is None or e.path > after]
