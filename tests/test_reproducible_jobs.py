"""Every job records what it ran, and `Run.reproduce` runs it again elsewhere (issue 16, item 4).

A dryrun on the local executor (the in-process API) with a parameter full of shell syntax: its
`environment` names the commit, the exact command, the parameters and the job's Python with its
packages (the job's interpreter is this test's, so the test can ask it too); `Run.reproduce`
is a command line a real shell splits back into exactly those parameters.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import platform
import shlex
import uuid
from pathlib import Path

from app.api.ids import encode_id
from tests.client import GraphQLClient
from tests.experiments import create_run, logs, make_demo_repo, make_project, wait_run

NOTE = """it's a "quoted" note; $HOME `id` \\ & done"""
ENVIRONMENT = """query($id: ID!) { run(id: $id) { reproduce dryrunJob { executor environment {
  repositoryUrl commitSha entryPoint command parameters { key value } image imageDigest pinnedImage
  python pythonImplementation packages { name version } } } } }"""
JOB_ENVIRONMENT = "query($id: ID!) { job(id: $id) { environment { commitSha } } }"
# What a real shell makes of `mlflow run …`: the words after `mlflow`, as JSON.
ARGV = 'words() { python3 -c "import json, sys; print(json.dumps(sys.argv[1:]))" "$@"; }; words '


async def test_finished_local_job_shows_what_it_ran_and_reproduce_is_quoted(make_person, work_dir: Path) -> None:
    agent = (await make_person("repro")).agent
    repo = make_demo_repo(work_dir)
    project = await make_project(agent, repo)
    run = await create_run(agent, project, repo, parameters={"epochs": 2, "lr": 0.5, "seconds": 0.05,
                                                             "note": NOTE})  # fmt: skip
    run = await wait_run(agent, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert run["status"] == "AWAITING_FUNDING", run
    body = (await agent.data(ENVIRONMENT, {"id": run["id"]}))["run"]
    job_id = run["dryrunJob"]["id"]
    argv = next(json.loads(x["line"][5:]) for x in await logs(agent, job_id) if x["line"].startswith("ARGV "))

    job, env = body["dryrunJob"], body["dryrunJob"]["environment"]
    assert job["executor"] == "local"
    assert (env["repositoryUrl"], env["commitSha"], env["entryPoint"]) == (str(repo.path), run["commitSha"], "main")
    assert run["commitSha"] == repo.git("rev-parse", "HEAD")
    # The exact command: the shell gave the experiment these words (its ARGV line), note and all.
    assert shlex.split(env["command"]) == ["python", "train.py", *argv]
    assert argv[argv.index("--note") + 1] == NOTE and argv[argv.index("--epochs") + 1] == "1"  # dryrun override
    params = {p["key"]: p["value"] for p in env["parameters"]}
    assert params == {"epochs": "1", "lr": "0.5", "note": NOTE, "seconds": "0.05", "exit_code": "0"}
    assert env["image"] == env["imageDigest"] == env["pinnedImage"] is None  # no container locally

    # The job's Python (this test's interpreter: the local executor puts it first on PATH).
    assert env["python"] == platform.python_version()
    assert env["pythonImplementation"] == platform.python_implementation()
    packages = {p["name"].lower(): p["version"] for p in env["packages"]}
    assert len(packages) == len(env["packages"]) > 20
    assert [p["name"].lower() for p in env["packages"]] == sorted(packages)
    for name in ("mlflow-skinny", "strawberry-graphql", "tortoise-orm"):
        assert packages.get(name) == importlib.metadata.version(name), name

    # `mlflow run` of the same commit, entry point and parameters, every word quoted for a shell.
    command = body["reproduce"]
    assert command.startswith("mlflow run "), command
    shell = await asyncio.create_subprocess_exec("/bin/sh", "-c", ARGV + command.removeprefix("mlflow "),
                                                 stdout=asyncio.subprocess.PIPE)  # fmt: skip
    out, _ = await shell.communicate()
    assert shell.returncode == 0
    words = json.loads(out)
    assert words[:7] == ["run", str(repo.path), "--version", run["commitSha"], "--entry-point", "main", "-P"]
    assert words[6::2] == ["-P"] * len(params)
    assert dict(w.split("=", 1) for w in words[7::2]) == params


async def test_environment_of_unknown_or_malformed_job_is_a_typed_error(client: GraphQLClient) -> None:
    """Jobs are public (DESIGN: every project and run is); what does not name a job is NOT_FOUND or
    BAD_USER_INPUT, with no stack trace."""
    for job_id, code in ((encode_id("Job", uuid.uuid4()), "NOT_FOUND"),
                         (encode_id("Run", uuid.uuid4()), "BAD_USER_INPUT"),  # another type's id
                         ("not-a-global-id", "BAD_USER_INPUT")):  # fmt: skip
        error = await client.error(JOB_ENVIRONMENT, {"id": job_id})
        assert error["extensions"]["code"] == code, (job_id, error)
        assert "Traceback" not in json.dumps(error) and "stacktrace" not in error["extensions"], error
