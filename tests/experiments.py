"""The demo experiment (a local git repo with an MLproject that logs to MLflow) and API helpers
to create projects and runs on it and wait for them."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from tests.helpers import eventually
from tests.repos import Repo, git

MLPROJECT = """name: demo
docker_env:
  image: ghcr.io/mlpatron/demo:1.0
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 3}
      lr: {type: float, default: 0.01}
      note: {type: string, default: "plain"}
      seconds: {type: float, default: 0.2}
      exit_code: {type: int, default: 0}
    command: "python train.py --epochs {epochs} --lr {lr} --note {note} --seconds {seconds} --exit-code {exit_code}"
"""

TRAIN = '''import argparse, json, os, subprocess, sys, time
import mlflow

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int)
p.add_argument("--lr", type=float)
p.add_argument("--note")
p.add_argument("--seconds", type=float)
p.add_argument("--exit-code", type=int)
a = p.parse_args()
print("ARGV " + json.dumps(sys.argv[1:]), flush=True)
if a.note == "spawn":
    child = subprocess.Popen(["sleep", "300"])
    print(f"CHILD {child.pid}", flush=True)
with mlflow.start_run(run_id=os.environ.get("MLFLOW_RUN_ID")):
    for epoch in range(a.epochs):
        loss = 1.0 / (epoch + 1) + a.lr
        mlflow.log_metric("loss", loss, step=epoch)
        print(f"epoch {epoch} loss {loss:.4f}", flush=True)
        time.sleep(a.seconds)
print("stderr line", file=sys.stderr, flush=True)
sys.exit(a.exit_code)
'''

RUN_FIELDS = """id status estimatedCostCents estimatedDurationSeconds estimateDetail fundingGapCents fundedCents
  commitSha image parameters activeJobStatus resources { gpuType gpuCount machineType }
  dryrunJob { id status error { platform containerTerminated { reason exitCode } } mlflowRunId }
  fundedJob { id status deadlineSeconds actualCostCents costDetail error { platform } mlflowRunId }"""

CREATE_RUN = """mutation($i: CreateRunInput!) { createRun(input: $i) { __typename
  ... on RunSuccess { run { RUN_FIELDS } }
  ... on ValidationFailed { code message fields { field message } }
  ... on MLprojectError { code reason message }
  ... on GitError { code reason message } } }""".replace("RUN_FIELDS", RUN_FIELDS)

RUN = "query($id: ID!) { run(id: $id) { RUN_FIELDS } }".replace("RUN_FIELDS", RUN_FIELDS)


def make_demo_repo(work_dir: Path) -> Repo:
    path = work_dir / f"demo-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path)
    repo.commit({"MLproject": MLPROJECT, "train.py": TRAIN}, "initial")
    repo.git("tag", "v1")
    return repo


async def make_project(client, repo: Repo) -> str:
    data = await client.data(
        'mutation($i: CreateProjectInput!) { createProject(input: $i) { ... on ProjectSuccess { project { id } } } }',
        {"i": {"title": "demo", "gitUrl": str(repo.path)}})
    return data["createProject"]["project"]["id"]


def run_input(project_id: str, repo: Repo, **overrides) -> dict:
    base = {"projectId": project_id, "title": "run", "uri": str(repo.path), "version": "main",
            "parameters": {"epochs": 3, "lr": 0.5, "seconds": 0.2}, "resources": {"gpuType": "l4", "gpuCount": 1},
            "dryrunOverrideParam": "epochs", "dryrunOverrideValue": 1}
    return base | overrides


async def create_run(client, project_id: str, repo: Repo, **overrides) -> dict:
    result = (await client.data(CREATE_RUN, {"i": run_input(project_id, repo, **overrides)}))["createRun"]
    assert result["__typename"] == "RunSuccess", result
    return result["run"]


async def wait_run(client, run_id: str, statuses: set[str], within: float = 60) -> dict:
    body = await eventually(lambda: client.data(RUN, {"id": run_id}), lambda d: d["run"]["status"] in statuses,
                            within=within)
    return body["run"]


async def logs(client, job_id: str, **args) -> list[dict]:
    q = "query($id: ID!, $tail: Int!, $after: Int) { job(id: $id) { logs(tail: $tail, afterSeq: $after) { seq stream line } } }"
    return (await client.data(q, {"id": job_id, "tail": args.get("tail", 100), "after": args.get("after")}))["job"]["logs"]


def pk(global_id: str) -> str:
    """The database key inside a global id."""
    return base64.b64decode(global_id).decode().split(":", 1)[1]
