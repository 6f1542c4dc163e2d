"""GraphQL types of what a job ran (`Job.environment`) and how to run it again (`Run.reproduce`)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from app.api.context import Info
from app.api.jobs.result_types import KeyValue
from app.jobs.models import Job
from app.runs.environment import environment_of, facts_of, reproduce_command
from app.runs.models import Run
from app.runs.results import results_job_id


@strawberry.type
class Package:
    name: str
    version: str


@strawberry.type(name="JobEnvironment", description="What the job ran: code, command, parameters, and the image "
                                                    "(Kubernetes) or the Python (local executor) it ran in.")
class JobEnvironmentType:
    repository_url: str
    commit_sha: str
    entry_point: str
    command: str | None = strawberry.field(description="The exact shell command the job ran (parameters "
                                                       "shell-quoted); null before the job was launched.")
    parameters: list[KeyValue] = strawberry.field(description="The job's effective parameters, by key (a dryrun's "
                                                              "include its override).")
    image: str | None = strawberry.field(description="Kubernetes: the image the container ran (as requested until "
                                                     "the pod reported it).")
    image_digest: str | None = strawberry.field(description="Kubernetes: the digest (`sha256:…`) of the image "
                                                            "actually pulled, from the pod's container status.")
    pinned_image: str | None = strawberry.field(description="Kubernetes: `repository@sha256:…`; pull this to get "
                                                            "exactly the image that ran.")
    python: str | None = strawberry.field(description="Local executor: the job's Python version.")
    python_implementation: str | None
    packages: list[Package] = strawberry.field(description="Local executor: every distribution installed in the "
                                                           "job's Python, by name (empty in Kubernetes: see "
                                                           "`pinnedImage`).")


async def job_environment(info: Info, job_id: str, run_id: str) -> JobEnvironmentType:
    loader: DataLoader[str, dict[str, Any]] = info.context.loaders.batch("Job.environment", facts_of)
    job, run = await info.context.loaders.require(Job, job_id), await info.context.loaders.require(Run, run_id)
    env = environment_of(job, run, await loader.load(job_id))
    return JobEnvironmentType(
        repository_url=env.repository_url, commit_sha=env.commit_sha, entry_point=env.entry_point,
        command=env.command, parameters=[KeyValue(key=k, value=v) for k, v in sorted(env.parameters.items())],
        image=env.image, image_digest=env.image_digest, pinned_image=env.pinned_image, python=env.python,
        python_implementation=env.python_implementation,
        packages=[Package(name=n, version=v) for n, v in env.packages],
    )  # fmt: skip


async def run_reproduce(info: Info, run_id: str) -> str | None:
    run = await info.context.loaders.require(Run, run_id)
    job_id = results_job_id(run)
    job = await info.context.loaders.get(Job, job_id) if job_id else None
    return reproduce_command(job, run) if job else None
