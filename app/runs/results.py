"""A run's results: the metrics of its funded job, else of its dryrun, and the metric histories of
several runs side by side (one comparison, read from MLflow concurrently)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from app.core import ids
from app.core.errors import ValidationError
from app.jobs.models import Job
from app.runs.models import Run
from app.tracking.mlflow import MetricPoint, MlflowTracker

MAX_COMPARE_RUNS = 10
MAX_COMPARE_KEYS = 5
# MLflow calls one comparison makes at once (up to runs times keys histories).
_COMPARE_CONCURRENCY = 8


def results_job_id(run: Run) -> uuid.UUID | None:
    """Whose metrics are the run's results: the funded job's, or the dryrun's before there is one."""
    return run.funded_job_id or run.dryrun_job_id


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
