"""Runs that really execute: MLproject parsing, dryrun → estimate → funded job, MLflow metrics,
failures, deadlines, cancellation and shell-safe parameters. Real git, subprocesses and MLflow."""

from __future__ import annotations

import asyncio
import json
import math
import os
import uuid
from pathlib import Path

import pytest

from app.core.settings import get_settings, override_settings
from tests.experiments import (
    CREATE_RUN,
    MLPROJECT,
    RUN,
    create_run,
    logs,
    make_demo_repo,
    make_project,
    pk,
    run_input,
    wait_run,
)
from tests.helpers import eventually
from tests.repos import Repo, git


@pytest.fixture(scope="module")
def demo_repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


@pytest.fixture
async def researcher(make_person):
    return await make_person("researcher")


async def test_parse_mlproject(researcher, demo_repo: Repo) -> None:
    q = """query($u: String!, $v: String!) { parseMlproject(uri: $u, version: $v) { __typename
      ... on ParsedMLproject { commitSha image entryPoints { name parameters { name type default required }
            dryrunSuggestion { param value } } }
      ... on GitError { reason } ... on MLprojectError { reason } ... on ValidationFailed { fields { field } } } }"""
    ok = (await researcher.agent.data(q, {"u": str(demo_repo.path), "v": "v1"}))["parseMlproject"]
    assert ok["commitSha"] == demo_repo.git("rev-parse", "HEAD") and ok["image"] == "ghcr.io/mlpatron/demo:1.0"
    [main] = ok["entryPoints"]
    assert main["dryrunSuggestion"] == {"param": "epochs", "value": "1"}
    assert {"name": "lr", "type": "float", "default": "0.01", "required": False} in main["parameters"]
    missing = (await researcher.agent.data(q, {"u": str(demo_repo.path), "v": "no-such-branch"}))["parseMlproject"]
    assert missing == {"__typename": "GitError", "reason": "UNKNOWN_REF"}
    bad = (await researcher.agent.data(q, {"u": "ssh://git@example.com/x.git", "v": "main"}))["parseMlproject"]
    assert bad == {"__typename": "ValidationFailed", "fields": [{"field": "uri"}]}


async def test_parse_mlproject_default_branch(researcher, work_dir) -> None:
    """An empty version reads the repository's default branch and names it, whatever it is called."""
    path = work_dir / f"master-only-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    git(path, "init", "-q", "-b", "master")
    sha = Repo(path).commit({"MLproject": MLPROJECT, "train.py": "print(1)"})
    q = "query($u: String!) { parseMlproject(uri: $u, version: \"\") { __typename ... on ParsedMLproject { version commitSha } } }"
    parsed = (await researcher.agent.data(q, {"u": str(path)}))["parseMlproject"]
    assert parsed == {"__typename": "ParsedMLproject", "version": "master", "commitSha": sha}


async def test_dryrun_estimate_funded_job_metrics_and_logs(researcher, demo_repo: Repo, make_person) -> None:
    project_id = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project_id, demo_repo)
    assert run["status"] == "DRYRUN" and run["image"] == "ghcr.io/mlpatron/demo:1.0"
    assert run["parameters"]["epochs"] == "3" and run["resources"]["machineType"] == "g2-standard-4"

    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert run["status"] == "AWAITING_FUNDING", run
    detail = run["estimateDetail"]
    assert detail["dryrun_value"] == 1 and detail["full_value"] == 3 and detail["scale"] == 3
    assert run["estimatedDurationSeconds"] == math.ceil(detail["dryrun_seconds"] * 3) + 60
    assert run["estimatedCostCents"] == math.ceil(run["estimatedDurationSeconds"] * 71 / 3600)
    assert run["fundingGapCents"] == run["estimatedCostCents"]
    dry_logs = await logs(researcher.agent, run["dryrunJob"]["id"])
    assert [x["line"] for x in dry_logs if x["line"].startswith("epoch")] == ["epoch 0 loss 1.5000"]

    # A patron closes the gap with fundRun; the funded job starts by itself.
    from app.funding.wallets import grant_credit

    patron = await make_person("patron")
    await grant_credit(patron.user_id, 100_000, "test patron", granted_by="tests")
    funded = await patron.agent.data(
        "mutation($i: FundRunInput!) { fundRun(input: $i) { __typename ... on FundRunSuccess { funding { amountCents } } } }",
        {"i": {"runId": run["id"], "amountCents": run["fundingGapCents"] + 500, "surplusPolicy": "REFUND"}})
    assert funded["fundRun"] == {"__typename": "FundRunSuccess", "funding": {"amountCents": run["fundingGapCents"]}}
    run = await wait_run(researcher.agent, run["id"], {"COMPLETED", "FUNDED_FAILED"})
    assert run["status"] == "COMPLETED", run
    funded = run["fundedJob"]
    assert funded["status"] == "SUCCEEDED" and funded["actualCostCents"] <= run["estimatedCostCents"]
    assert funded["deadlineSeconds"] >= run["estimatedDurationSeconds"] - 1

    q = """query($id: ID!) { job(id: $id) { mlflowRunId mlflowExperimentId mlflowRunUrl metrics { key value }
      metricHistory(key: "loss") { step value } timeline { status } run { id } project { id } } }"""
    job = (await researcher.agent.data(q, {"id": funded["id"]}))["job"]
    assert [p["step"] for p in job["metricHistory"]] == [0, 1, 2]
    assert [round(p["value"], 4) for p in job["metricHistory"]] == [1.5, 1.0, round(1 / 3 + 0.5, 4)]
    assert job["metrics"] == [{"key": "loss", "value": pytest.approx(1 / 3 + 0.5)}]
    assert [t["status"] for t in job["timeline"]] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert job["project"]["id"] == project_id and job["run"]["id"] == run["id"]
    assert job["mlflowRunUrl"].endswith(f"/#/experiments/{job['mlflowExperimentId']}/runs/{job['mlflowRunId']}")

    q = """query($id: ID!) { project(id: $id) { viewerIsFollowing stats { runsByStatus { status count } totalRuns
      totalFundedCents totalSpentCents followers } } }"""
    project = (await researcher.agent.data(q, {"id": project_id}))["project"]
    assert project["stats"] == {"runsByStatus": [{"status": "completed", "count": 1}], "totalRuns": 1,
                                "totalFundedCents": run["fundedCents"], "totalSpentCents": funded["actualCostCents"],
                                "followers": 0}
    assert project["viewerIsFollowing"] is False

    all_lines = await logs(researcher.agent, funded["id"], tail=1000)
    seqs = [x["seq"] for x in all_lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [x["line"] for x in all_lines if x["line"].startswith("epoch")] == [
        "epoch 0 loss 1.5000", "epoch 1 loss 1.0000", "epoch 2 loss 0.8333"]
    assert {"stream": "stderr", "line": "stderr line"}.items() <= all_lines[-1].items()
    tail = await logs(researcher.agent, funded["id"], tail=2)
    assert tail == all_lines[-2:]
    after = await logs(researcher.agent, funded["id"], after=seqs[1], tail=2)
    assert after == all_lines[2:4]


async def test_failing_script_is_dryrun_failed_with_exit_code(researcher, demo_repo: Repo) -> None:
    project_id = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project_id, demo_repo,
                           parameters={"epochs": 2, "exit_code": 3, "seconds": 0})
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert run["status"] == "DRYRUN_FAILED"
    error = run["dryrunJob"]["error"]
    assert error["containerTerminated"] == {"reason": "Error", "exitCode": 3} and error["platform"] is None
    last = [x["line"] for x in await logs(researcher.agent, run["dryrunJob"]["id"], tail=4)]
    assert "epoch 0 loss 1.0100" in last and last[-1] == "stderr line"  # MLflow prints its own lines too


async def test_deadline_fails_with_platform_error(researcher, demo_repo: Repo) -> None:
    project_id = await make_project(researcher.agent, demo_repo)
    previous = get_settings().dryrun_deadline_seconds
    override_settings(dryrun_deadline_seconds=3)
    try:
        run = await create_run(researcher.agent, project_id, demo_repo, parameters={"epochs": 3, "seconds": 60})
    finally:
        override_settings(dryrun_deadline_seconds=previous)
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert run["status"] == "DRYRUN_FAILED"
    assert "deadline" in run["dryrunJob"]["error"]["platform"] and "3 s" in run["dryrunJob"]["error"]["platform"]


async def test_cancel_kills_the_process_tree(researcher, demo_repo: Repo) -> None:
    run, child = await start_spawning_run(researcher.agent, researcher, demo_repo)
    os.kill(child, 0)  # alive while the job runs
    done = await researcher.agent.data("mutation($i: RunIdInput!) { cancelRun(input: $i) { __typename "
                                       "... on RunSuccess { run { status } } } }", {"i": {"id": run["id"]}})
    assert done["cancelRun"] == {"__typename": "RunSuccess", "run": {"status": "CANCELLED"}}
    run = await eventually(lambda: researcher.agent.data(RUN, {"id": run["id"]}),
                           lambda d: d["run"]["dryrunJob"]["status"] == "CANCELLED")
    await eventually(lambda: _alive(child), lambda alive: not alive, within=10)
    again = await researcher.agent.data("mutation($i: RunIdInput!) { cancelRun(input: $i) { __typename } }",
                                        {"i": {"id": run["run"]["id"]}})
    assert again["cancelRun"]["__typename"] == "RunSuccess"  # idempotent


CANCEL_JOB = ("mutation($i: JobIdInput!) { cancelJob(input: $i) { job { id status run { status } } } }")


async def test_cancel_job_takes_the_job_id_and_cancels_its_run(researcher, demo_repo: Repo) -> None:
    run, child = await start_spawning_run(researcher.agent, researcher, demo_repo)
    job_id = run["dryrunJob"]["id"]
    wrong = await researcher.agent.error(CANCEL_JOB, {"i": {"id": run["id"]}})  # a run id is not a job id
    assert wrong["extensions"]["code"] == "BAD_USER_INPUT"
    done = await researcher.agent.data(CANCEL_JOB, {"i": {"id": job_id}})
    assert done["cancelJob"]["job"]["id"] == job_id and done["cancelJob"]["job"]["run"]["status"] == "CANCELLED"
    await eventually(lambda: researcher.agent.data(RUN, {"id": run["id"]}),
                     lambda d: d["run"]["dryrunJob"]["status"] == "CANCELLED")
    await eventually(lambda: _alive(child), lambda alive: not alive, within=10)


async def start_spawning_run(client, observer, demo_repo: Repo) -> tuple[dict, int]:
    """Through `client` (any API process), a dryrun whose script spawns a grandchild `sleep`;
    returns the run and the grandchild's pid once the job has logged it (read by `observer`)."""
    project_id = await make_project(client, demo_repo)
    run = await create_run(client, project_id, demo_repo, parameters={"epochs": 3, "seconds": 60, "note": "spawn"})
    lines = await eventually(lambda: logs(observer.agent, run["dryrunJob"]["id"]),
                             lambda ls: any(x["line"].startswith("CHILD ") for x in ls))
    return run, int(next(x["line"] for x in lines if x["line"].startswith("CHILD ")).split()[1])


async def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (only its parent can reap it).
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


async def test_hostile_parameter_values_reach_the_script_verbatim(researcher, demo_repo: Repo, tmp_path) -> None:
    marker = tmp_path / "pwned"
    note = f"a b 'q' \"dq\" ; touch {marker} $(touch {marker}) `touch {marker}` && echo"
    project_id = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project_id, demo_repo, parameters={"epochs": 2, "note": note, "seconds": 0})
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    argv_line = next(x["line"] for x in await logs(researcher.agent, run["dryrunJob"]["id"])
                     if x["line"].startswith("ARGV "))
    argv = json.loads(argv_line[5:])
    assert argv[argv.index("--note") + 1] == note
    assert not marker.exists()


async def test_idempotent_create_run(researcher, demo_repo: Repo) -> None:
    from app.jobs.models import Job

    project_id = await make_project(researcher.agent, demo_repo)
    key = f"key-{uuid.uuid4()}"
    first = await create_run(researcher.agent, project_id, demo_repo, idempotencyKey=key, parameters={"epochs": 1, "seconds": 0})
    second = await create_run(researcher.agent, project_id, demo_repo, idempotencyKey=key, parameters={"epochs": 1, "seconds": 0})
    assert first["id"] == second["id"]
    assert await Job.filter(run_id=pk(first["id"])).count() == 1


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"uri": "ssh://git@example.com/r.git"}, ("ValidationFailed", "uri")),
    ({"uri": "http://192.168.1.10/r.git"}, ("ValidationFailed", "uri")),
    ({"version": "nope"}, ("GitError", "UNKNOWN_REF")),
    ({"resources": {"gpuType": "tpu-v9", "gpuCount": 1}}, ("ValidationFailed", "resources.gpuType")),
    ({"resources": {"gpuType": "l4", "gpuCount": 8}}, ("ValidationFailed", "resources.gpuCount")),
    ({"resources": {"gpuType": "l4", "gpuCount": 1, "machineType": "g2-standard-24"}},
     ("ValidationFailed", "resources.machineType")),
    ({"parameters": {"epochs": "many"}}, ("ValidationFailed", "parameters.epochs")),
    ({"parameters": {"bogus": 1}}, ("ValidationFailed", "parameters.bogus")),
    ({"dryrunOverrideParam": "note"}, ("ValidationFailed", "dryrunOverrideParam")),
    ({"dryrunOverrideValue": "abc"}, ("ValidationFailed", "dryrunOverrideValue")),
    ({"entryPoint": "nope"}, ("ValidationFailed", "entryPoint")),
    ({"title": ""}, ("ValidationFailed", "title")),
])
async def test_bad_run_input_creates_nothing(researcher, demo_repo: Repo, overrides, expected) -> None:
    from app.jobs.models import Job
    from app.runs.models import Run

    project_id = await make_project(researcher.agent, demo_repo)
    runs, jobs = await Run.all().count(), await Job.all().count()
    result = (await researcher.agent.data(CREATE_RUN, {"i": run_input(project_id, demo_repo, **overrides)}))["createRun"]
    kind, detail = expected
    assert result["__typename"] == kind, result
    if kind == "ValidationFailed":
        assert detail in [f["field"] for f in result["fields"]], result
    else:
        assert result["reason"] == detail
    assert (await Run.all().count(), await Job.all().count()) == (runs, jobs)


async def test_only_the_owner_creates_runs_and_only_managers_cancel(researcher, demo_repo: Repo, make_person) -> None:
    stranger = await make_person("stranger")
    project_id = await make_project(researcher.agent, demo_repo)
    err = await stranger.agent.error(CREATE_RUN, {"i": run_input(project_id, demo_repo)})
    assert err["extensions"]["code"] == "FORBIDDEN"
    run = await create_run(researcher.agent, project_id, demo_repo, parameters={"epochs": 1, "seconds": 0})
    err = await stranger.agent.error("mutation($i: RunIdInput!) { cancelRun(input: $i) { __typename } }",
                                     {"i": {"id": run["id"]}})
    assert err["extensions"]["code"] == "FORBIDDEN"
    await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})


async def test_jobs_of_a_dead_api_process_are_failed_and_stopped(settings, services, work_dir: Path, researcher,
                                                                  demo_repo: Repo) -> None:
    """A replica dies mid-job (SIGKILL: no clean shutdown). The reconciler finds the job whose
    owner is gone, kills its surviving process group and fails it with a platform error."""
    import signal

    from tests.api_process import ApiProcess, replica_env
    from tests.client import GraphQLClient

    replica = ApiProcess(replica_env(settings), work_dir / "api-doomed.log")
    try:
        await asyncio.to_thread(replica.wait_ready)
        async with GraphQLClient(replica.url, researcher.api_key) as via_replica:
            run, child = await start_spawning_run(via_replica, researcher, demo_repo)
        replica.proc.send_signal(signal.SIGKILL)
        replica.proc.wait()
        assert await _alive(child)  # the job outlived its API process
        await services.lifecycle.reconcile()
        run = await wait_run(researcher.agent, run["id"], {"DRYRUN_FAILED"}, within=20)
        assert "platform restarted" in run["dryrunJob"]["error"]["platform"]
        await eventually(lambda: _alive(child), lambda alive: not alive, within=15)
    finally:
        replica.stop()


async def test_cancel_reaches_a_job_running_in_another_replica(settings, work_dir: Path, researcher,
                                                               demo_repo: Repo) -> None:
    """The job runs in replica B's process tree; the cancel arrives through this process."""
    from tests.api_process import ApiProcess, replica_env
    from tests.client import GraphQLClient

    replica = ApiProcess(replica_env(settings), work_dir / "api-cancel.log")
    try:
        await asyncio.to_thread(replica.wait_ready)
        async with GraphQLClient(replica.url, researcher.api_key) as via_replica:
            run, child = await start_spawning_run(via_replica, researcher, demo_repo)
        done = await researcher.agent.data("mutation($i: RunIdInput!) { cancelRun(input: $i) { __typename "
                                           "... on RunSuccess { run { status } } } }", {"i": {"id": run["id"]}})
        assert done["cancelRun"]["run"]["status"] == "CANCELLED"
        run = await eventually(lambda: researcher.agent.data(RUN, {"id": run["id"]}),
                               lambda d: d["run"]["dryrunJob"]["status"] == "CANCELLED", within=20)
        await eventually(lambda: _alive(child), lambda alive: not alive, within=15)
    finally:
        replica.stop()
