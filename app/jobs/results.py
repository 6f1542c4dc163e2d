"""What a job produced, read from its MLflow run: parameters, user tags, final metrics,
artifacts (listed, and opened for download) and metric histories of several runs side by side.

Runs and jobs are public (the `job` and `run` queries answer anyone), so visibility here is
existence: an id that names nothing is "not found", whoever asks.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import uuid
from dataclasses import dataclass

from app.core import ids
from app.core.errors import NotFound, ValidationError
from app.jobs.models import Job
from app.runs.models import Run
from app.tracking.mlflow import ArtifactEntry, MetricPoint, MlflowTracker

# Tags the platform (mlpatron.*) and MLflow itself (mlflow.*) set: already fields of the job, or noise.
INTERNAL_TAG_PREFIXES = ("mlflow.", "mlpatron.")
MAX_COMPARE_RUNS = 10
MAX_COMPARE_KEYS = 5
# MLflow calls one comparison makes at once (up to runs times keys histories).
_COMPARE_CONCURRENCY = 8
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


def results_job_id(run: Run) -> uuid.UUID | None:
    """Whose metrics are the run's results: the funded job's, or the dryrun's before there is one."""
    return run.funded_job_id or run.dryrun_job_id


def artifact_name(entry: ArtifactEntry) -> str:
    return posixpath.basename(entry.path)


async def artifacts_after(tracker: MlflowTracker, mlflow_run_id: str, path: str,
                          after: str | None) -> list[ArtifactEntry]:
    """One directory's entries by path (the keyset order), those after the cursor's path."""
    entries = sorted(await tracker.list_artifacts(mlflow_run_id, artifact_path(path, allow_root=True)),
                     key=lambda e: e.path)
    return [e for e in entries if after is None or e.path > after]


@dataclass(frozen=True)
class RunHistories:
    run: Run
    job: Job | None  # the results job (None before any job has an MLflow run)
    histories: dict[str, list[MetricPoint]]  # key → points by step; every requested key


def _check_compare(run_ids: list[str], keys: list[str]) -> None:
    problems: dict[str, str] = {}
    if not 1 <= len(run_ids) <= MAX_COMPARE_RUNS:
        problems["runIds"] = f"between 1 and {MAX_COMPARE_RUNS} runs"
    if not 1 <= len(keys) <= MAX_COMPARE_KEYS:
        problems["keys"] = f"between 1 and {MAX_COMPARE_KEYS} metric keys"
    if problems:
        raise ValidationError(problems)


async def compare_runs(tracker: MlflowTracker | None, run_ids: list[str], keys: list[str]) -> list[RunHistories]:
    """The histories of `keys` in each run's results job, runs in the order asked (duplicates once)."""
    run_ids, keys = list(dict.fromkeys(run_ids)), list(dict.fromkeys(keys))
    _check_compare(run_ids, keys)
    pks = [ids.decode_id(r, "Run") for r in run_ids]
    runs = {r.id: r for r in await Run.filter(id__in=[pk for pk in pks if pk])}
    if missing := {f"runIds.{i}": "no such run" for i, pk in enumerate(pks) if pk not in runs}:
        raise ValidationError(missing)
    ordered = [runs[pk] for pk in pks if pk]
    jobs = {j.id: j for j in await Job.filter(id__in=[results_job_id(r) for r in ordered if results_job_id(r)])}
    gate = asyncio.Semaphore(_COMPARE_CONCURRENCY)

    async def history(job: Job | None, key: str) -> list[MetricPoint]:
        if tracker is None or job is None or not job.mlflow_run_id:
            return []
        async with gate:
            return await tracker.metric_history(job.mlflow_run_id, key)

    async def one(run: Run) -> RunHistories:
        job_id = results_job_id(run)
        job = jobs.get(job_id) if job_id else None
        points = await asyncio.gather(*(history(job, k) for k in keys))
        return RunHistories(run=run, job=job if job and job.mlflow_run_id else None,
                            histories=dict(zip(keys, points, strict=True)))

    return list(await asyncio.gather(*(one(r) for r in ordered)))
