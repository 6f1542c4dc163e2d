"""What a job ran — code, command, parameters, image or Python — and the command line that runs
it again elsewhere. The facts only its executor could see (the image digest the kubelet pulled,
the local Python's packages) are `JobEnvironment.facts` (`JobRecorder.job_environment`); the
rest is the run's and the job's spec."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.jobs.models import Job, JobEnvironment
from app.runs.models import Run


@dataclass(frozen=True)
class Environment:
    repository_url: str
    commit_sha: str
    entry_point: str
    command: str | None  # null until the job was launched
    parameters: dict[str, str]
    image: str | None
    image_digest: str | None
    pinned_image: str | None
    python: str | None
    python_implementation: str | None
    packages: list[tuple[str, str]]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def facts_of(job_ids: Sequence[str]) -> list[dict[str, Any]]:
    """What the executors reported of each job ({} when nothing yet), in the order asked."""
    rows = await JobEnvironment.filter(job_id__in=list(job_ids))
    found = {str(r.job_id): r.facts for r in rows}
    return [found.get(str(j), {}) for j in job_ids]


def environment_of(job: Job, run: Run, facts: dict[str, Any]) -> Environment:
    packages = [(str(p[0]), str(p[1])) for p in facts.get("packages") or [] if isinstance(p, list) and len(p) == 2]
    return Environment(
        repository_url=run.uri, commit_sha=run.commit_sha, entry_point=run.entry_point,
        command=_text(job.spec.get("command")),
        parameters={str(k): str(v) for k, v in (job.spec.get("parameters") or {}).items()},
        # A local job ignores the MLproject's image: only a container names one.
        image=_text(facts.get("image")) or (_text(job.spec.get("image")) if job.executor == "kubernetes" else None),
        image_digest=_text(facts.get("imageDigest")), pinned_image=_text(facts.get("pinnedImage")),
        python=_text(facts.get("python")), python_implementation=_text(facts.get("pythonImplementation")),
        packages=packages,
    )  # fmt: skip


def reproduce_command(job: Job, run: Run) -> str:
    """`mlflow run` of the job's commit, entry point and parameters, every argument shell-quoted."""
    params = {str(k): str(v) for k, v in (job.spec.get("parameters") or {}).items()}
    args = ["mlflow", "run", run.uri, "--version", run.commit_sha, "--entry-point", run.entry_point]
    for key in sorted(params):
        args += ["-P", f"{key}={params[key]}"]
    return shlex.join(args)
