"""copyRun: a new run from an existing one with overrides, its own dryrun, the link back to the
source, idempotency, only the project owner, and bad input that changes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.jobs.models import Job
from app.runs.models import Run
from tests.experiments import RUN_FIELDS, create_run, make_demo_repo, make_project, pk, wait_run
from tests.repos import Repo
from tests.test_money_support import gid

COPY_RUN = """mutation($i: CopyRunInput!) { copyRun(input: $i) { __typename
  ... on RunSuccess { run { RUN_FIELDS title version notes dryrunOverrideParam dryrunOverrideValue
                            copiedFrom { id } } }
  ... on ValidationFailed { code message fields { field message } }
  ... on MLprojectError { code reason message }
  ... on GitError { code reason message } } }""".replace("RUN_FIELDS", RUN_FIELDS)


@pytest.fixture
def repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


@pytest.fixture
async def researcher(make_person):
    return await make_person("copier")


async def copy(client, run_id: str, **overrides) -> dict:
    return (await client.data(COPY_RUN, {"i": {"runId": run_id, **overrides}}))["copyRun"]


async def test_copy_applies_overrides_and_runs_its_own_dryrun(researcher, repo: Repo) -> None:
    project = await make_project(researcher.agent, repo)
    source = await create_run(researcher.agent, project, repo, title="baseline")
    source = await wait_run(researcher.agent, source["id"], {"AWAITING_FUNDING"})

    copied = await copy(researcher.agent, source["id"], title="longer", parameters={"epochs": 6},
                        resources={"gpuType": "l4", "gpuCount": 2}, dryrunOverrideValue=2, notes="twice as long")
    assert copied["__typename"] == "RunSuccess", copied
    run = copied["run"]
    assert run["status"] == "DRYRUN" and run["copiedFrom"] == {"id": source["id"]}
    assert run["title"] == "longer" and run["notes"] == "twice as long"
    # Given parameters replace the source's; the others (lr 0.5, not the MLproject's default) are kept.
    assert run["parameters"] == source["parameters"] | {"epochs": "6"}
    assert run["resources"] == {"gpuType": "l4", "gpuCount": 2, "machineType": "g2-standard-24"}
    assert run["dryrunOverrideParam"] == "epochs" and run["dryrunOverrideValue"] == "2"
    assert run["dryrunJob"]["id"] != source["dryrunJob"]["id"]

    done = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert done["status"] == "AWAITING_FUNDING", done
    assert done["estimateDetail"]["dryrun_value"] == 2 and done["estimateDetail"]["full_value"] == 6

    plain = (await copy(researcher.agent, source["id"]))["run"]
    assert plain["title"] == "baseline (copy)" and plain["parameters"] == source["parameters"]
    assert plain["resources"] == source["resources"] and plain["notes"] == ""


async def test_copy_retries_a_failed_dryrun_on_the_moved_branch(researcher, repo: Repo) -> None:
    project = await make_project(researcher.agent, repo)
    failed = await create_run(researcher.agent, project, repo, parameters={"epochs": 3, "exit_code": 3})
    failed = await wait_run(researcher.agent, failed["id"], {"DRYRUN_FAILED", "AWAITING_FUNDING"})
    assert failed["status"] == "DRYRUN_FAILED"
    fixed_sha = repo.commit({"README.md": "fixed\n"}, "fix")

    retried = await copy(researcher.agent, failed["id"], parameters={"exit_code": 0})
    assert retried["__typename"] == "RunSuccess", retried
    assert retried["run"]["commitSha"] == fixed_sha != failed["commitSha"]
    done = await wait_run(researcher.agent, retried["run"]["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"})
    assert done["status"] == "AWAITING_FUNDING"

    pinned = await copy(researcher.agent, failed["id"], version=failed["commitSha"], parameters={"exit_code": 0})
    assert pinned["run"]["commitSha"] == failed["commitSha"]


async def test_copy_is_idempotent_with_a_key(researcher, repo: Repo) -> None:
    project = await make_project(researcher.agent, repo)
    source = await create_run(researcher.agent, project, repo)
    key = f"copy-{uuid.uuid4()}"
    first = await copy(researcher.agent, source["id"], idempotencyKey=key)
    again = await copy(researcher.agent, source["id"], idempotencyKey=key, title="ignored on replay")
    assert first["run"]["id"] == again["run"]["id"]
    assert await Run.filter(copied_from_id=pk(source["id"])).count() == 1
    assert await Job.filter(run_id=pk(first["run"]["id"])).count() == 1


async def test_bad_input_and_other_peoples_runs_change_nothing(researcher, repo: Repo, make_person) -> None:
    project = await make_project(researcher.agent, repo)
    source = await create_run(researcher.agent, project, repo)
    stranger = await make_person("stranger")
    before = (await Run.all().count(), await Job.all().count())

    forbidden = await stranger.agent.error(COPY_RUN, {"i": {"runId": source["id"]}})
    assert forbidden["extensions"]["code"] == "FORBIDDEN"
    for run_id, code in [(gid("Run", uuid.uuid4()), "NOT_FOUND"), ("garbage", "BAD_USER_INPUT"),
                         (project, "BAD_USER_INPUT")]:
        error = await researcher.agent.error(COPY_RUN, {"i": {"runId": run_id}})
        assert error["extensions"]["code"] == code, (run_id, error)

    typed = [  # (overrides, the field ValidationFailed names)
        ({"parameters": {"bogus": 1}}, "parameters.bogus"),
        ({"parameters": {"epochs": "many"}}, "parameters.epochs"),
        ({"parameters": {"epochs": 10**18}}, "parameters.epochs"),
        ({"parameters": [1, 2]}, "parameters"),
        ({"entryPoint": "nope"}, "entryPoint"),
        ({"resources": {"gpuType": "l4", "gpuCount": -1}}, "resources.gpuCount"),
        ({"resources": {"gpuType": "l4", "gpuCount": 1000}}, "resources.gpuCount"),
        ({"resources": {"gpuType": "tpu", "gpuCount": 1}}, "resources.gpuType"),
        ({"dryrunOverrideValue": -1}, "dryrunOverrideValue"),
        ({"dryrunOverrideParam": "note"}, "dryrunOverrideParam"),
        ({"title": " "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
    ]
    for overrides, field in typed:
        result = await copy(researcher.agent, source["id"], **overrides)
        assert result["__typename"] == "ValidationFailed", (overrides, result)
        assert field in [f["field"] for f in result["fields"]], (overrides, result)
    unknown_ref = await copy(researcher.agent, source["id"], version="no-such-branch")
    assert unknown_ref == {"__typename": "GitError", "code": "GIT_ERROR", "reason": "UNKNOWN_REF",
                           "message": unknown_ref["message"]}
    assert (await Run.all().count(), await Job.all().count()) == before
