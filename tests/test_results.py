"""Results people paid for, read through the platform: a real job logs parameters, tags, metrics
(NaN and infinities included) and artifacts (a nested directory and a 50 MB file) to the real
MLflow server; the API lists them, serves the files byte-identical with Range support from a
separate API process whose memory stays flat, refuses hostile paths, and compares runs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.ids import encode_id
from app.embedded.ports import free_port
from app.jobs.models import Job
from app.runs.results import MAX_COMPARE_KEYS, MAX_COMPARE_RUNS
from app.tracking.mlflow import HISTORY_PAGE
from tests.api_process import ApiProcess, replica_env
from tests.client import GraphQLClient, Person
from tests.experiments import create_run, make_project, pk, wait_run
from tests.repos import Repo, git
from tests.test_money_support import give_credit

BIG_MB = 50
BIG_SEED = 16

MLPROJECT = """name: results
docker_env:
  image: ghcr.io/mlpatron/demo:1.0
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 3}
      lr: {type: float, default: 0.1}
      big_mb: {type: int, default: 0}
    command: "python train.py {epochs} {lr} {big_mb}"
"""

TRAIN = '''import json, os, random, sys
import mlflow

epochs, lr, big_mb = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
with mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"]):
    mlflow.log_params({"lr": lr, "epochs": epochs, "optimizer": "adam"})
    mlflow.set_tags({"team": "vision", "dataset": "cifar10"})
    for step in range(epochs):
        mlflow.log_metric("loss", lr + 1.0 / (step + 1), step=step)
    mlflow.log_metric("diverged", float("nan"), step=2)
    mlflow.log_metric("grad_norm", float("inf"), step=1)
    mlflow.log_metric("floor", float("-inf"), step=0)
    os.makedirs("out/plots/deep/nested", exist_ok=True)
    os.makedirs("out/model", exist_ok=True)
    for name, text in {"README.md": "# results", "config.json": json.dumps({"lr": lr}), "a.txt": "a",
                       "plots/deep/nested/curve.csv": "step,loss\\n0,1.1\\n",
                       "plots/r\\u00e9sum\\u00e9 final.txt": "unicode name"}.items():
        with open(os.path.join("out", name), "w", encoding="utf-8") as f:
            f.write(text)
    if big_mb:
        with open("out/model/weights.bin", "wb") as f:
            f.write(random.Random(BIG_SEED).randbytes(big_mb * 2**20))
    else:
        with open("out/only-in-the-other-run.txt", "w") as f:
            f.write("not yours")
    mlflow.log_artifacts("out")
'''.replace("BIG_SEED", str(BIG_SEED))

ARTIFACTS = """query($id: ID!, $path: String!, $first: Int, $after: String) { job(id: $id) {
  artifacts(path: $path, first: $first, after: $after) {
    nodes { name path isDir size downloadUrl } pageInfo { hasNextPage endCursor } } } }"""


@dataclass
class Results:
    owner: Person
    run_id: str  # logged the 50 MB file
    job_id: str
    other_run_id: str  # no big file; a file the first run does not have
    other_job_id: str


@pytest.fixture(scope="module")
async def results(api: str, work_dir: Path) -> Results:
    path = work_dir / f"results-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path)
    repo.commit({"MLproject": MLPROJECT, "train.py": TRAIN})
    owner = await Person.create(api, "results")
    project_id = await make_project(owner.agent, repo)
    runs = [await create_run(owner.agent, project_id, repo, parameters={"epochs": 6, "lr": lr, "big_mb": big},
                             dryrunOverrideParam="epochs", dryrunOverrideValue=3)
            for lr, big in ((0.5, BIG_MB), (0.25, 0))]
    done = [await wait_run(owner.agent, r["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"}, within=180) for r in runs]
    assert [r["status"] for r in done] == ["AWAITING_FUNDING"] * 2, done
    return Results(owner, done[0]["id"], done[0]["dryrunJob"]["id"], done[1]["id"], done[1]["dryrunJob"]["id"])


def big_sha256() -> str:
    return hashlib.sha256(random.Random(BIG_SEED).randbytes(BIG_MB * 2**20)).hexdigest()


async def artifacts(client: GraphQLClient, job_id: str, path: str = "", **page) -> dict:
    return (await client.data(ARTIFACTS, {"id": job_id, "path": path, **page}))["job"]["artifacts"]


async def test_params_tags_and_final_metrics_with_nan_and_infinities(results: Results, client: GraphQLClient) -> None:
    q = """query($id: ID!) { run(id: $id) {
      results { job { id kind } metrics { key value special step } }
      dryrunJob { params { key value } tags { key value } metrics { key value special }
                  metricHistory(key: "loss") { step value special } } } }"""
    run = (await client.data(q, {"id": results.run_id}))["run"]
    job = run["dryrunJob"]
    assert job["params"] == [{"key": "epochs", "value": "3"}, {"key": "lr", "value": "0.5"},
                             {"key": "optimizer", "value": "adam"}]
    # User tags only: neither MLflow's mlflow.* nor the platform's mlpatron.* ones.
    assert job["tags"] == [{"key": "dataset", "value": "cifar10"}, {"key": "team", "value": "vision"}]
    # No funded job yet: the results are the dryrun's, final value of each metric with its step.
    assert run["results"]["job"] == {"id": results.job_id, "kind": "DRYRUN"}
    assert run["results"]["metrics"] == [
        {"key": "diverged", "value": None, "special": "NAN", "step": 2},
        {"key": "floor", "value": None, "special": "NEG_INF", "step": 0},
        {"key": "grad_norm", "value": None, "special": "INF", "step": 1},
        {"key": "loss", "value": pytest.approx(0.5 + 1 / 3), "special": None, "step": 2},
    ]
    assert {m["key"]: m["special"] for m in job["metrics"]} == {"diverged": "NAN", "floor": "NEG_INF",
                                                                "grad_norm": "INF", "loss": None}
    assert [(p["step"], p["special"]) for p in job["metricHistory"]] == [(0, None), (1, None), (2, None)]


async def test_artifacts_are_listed_in_keyset_pages(results: Results, client: GraphQLClient, settings) -> None:
    seen, after = [], None
    while True:
        page = await artifacts(client, results.job_id, first=2, after=after)
        assert len(page["nodes"]) <= 2
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [(a["name"], a["isDir"], a["size"]) for a in seen] == [
        ("README.md", False, 9), ("a.txt", False, 1), ("config.json", False, 11), ("model", True, None),
        ("plots", True, None)]
    assert [a["downloadUrl"] is None for a in seen] == [False, False, False, True, True]
    job_gid = encode_id("Job", pk(results.job_id))
    assert seen[0]["downloadUrl"] == f"{settings.public_url}/artifacts/{job_gid}/README.md"

    [weights] = (await artifacts(client, results.job_id, "model"))["nodes"]
    assert weights == {"name": "weights.bin", "path": "model/weights.bin", "isDir": False,
                       "size": BIG_MB * 2**20, "downloadUrl": f"{settings.public_url}/artifacts/{job_gid}/model/weights.bin"}
    [nested] = (await artifacts(client, results.job_id, "plots/deep/nested"))["nodes"]
    assert nested["path"] == "plots/deep/nested/curve.csv" and nested["size"] == len("step,loss\n0,1.1\n")
    plots = (await artifacts(client, results.job_id, "plots"))["nodes"]
    assert [p["name"] for p in plots] == ["deep", "résumé final.txt"]
    assert plots[1]["downloadUrl"].endswith("/plots/r%C3%A9sum%C3%A9%20final.txt")
    # Not a directory, or nothing there: an empty page, not an error.
    assert (await artifacts(client, results.job_id, "model/weights.bin"))["nodes"] == []
    assert (await artifacts(client, results.job_id, "no/such/dir"))["nodes"] == []


async def test_artifacts_bad_input_is_typed(results: Results, client: GraphQLClient) -> None:
    for path in ("../other", "/etc", "plots/../..", "a\\b"):
        error = await client.error(ARTIFACTS, {"id": results.job_id, "path": path})
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and "path" in error["message"], (path, error)
    unknown = encode_id("Job", uuid.uuid4())
    assert (await client.error(ARTIFACTS, {"id": unknown, "path": ""}))["extensions"]["code"] == "NOT_FOUND"
    bad_cursor = await client.error(ARTIFACTS, {"id": results.job_id, "path": "", "after": "not-a-cursor"})
    assert bad_cursor["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.fixture(scope="module")
async def replica(results: Results, settings, work_dir: Path):
    """A separate API process: downloads are measured there, apart from the test's own process."""
    process = ApiProcess(replica_env(settings), work_dir / "results-api.log")
    try:
        await asyncio.to_thread(process.wait_ready)
        yield process
    finally:
        process.stop()


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def test_download_is_byte_identical_resumable_and_memory_flat(results: Results, replica: ApiProcess) -> None:
    url = f"{replica.url}/artifacts/{results.job_id}/model/weights.bin"
    async with httpx.AsyncClient(timeout=60) as http:
        # Warm the process's download path (code, pools, buffers) before measuring it.
        warm = await http.get(f"{replica.url}/artifacts/{results.job_id}/README.md")
        assert warm.status_code == 200 and warm.content == b"# results"
        assert (await http.get(url, headers={"Range": "bytes=0-1048575"})).status_code == 206

        # Peak resident memory of the API process during one 50 MB download, from a reset high-water mark.
        Path(f"/proc/{replica.proc.pid}/clear_refs").write_text("5")
        before = rss_kib(replica.proc.pid, "VmHWM")
        digest, size = hashlib.sha256(), 0
        async with http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(BIG_MB * 2**20)
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["content-disposition"] == 'attachment; filename="weights.bin"'
            assert response.headers["accept-ranges"] == "bytes"
            assert "content-encoding" not in response.headers
            async for chunk in response.aiter_raw():
                digest.update(chunk)
                size += len(chunk)
        growth_kib = rss_kib(replica.proc.pid, "VmHWM") - before
        assert size == BIG_MB * 2**20 and digest.hexdigest() == big_sha256()
        assert growth_kib < 10 * 1024, f"API process grew {growth_kib} KiB during a {BIG_MB} MB download"

        # An interrupted download resumes where it stopped.
        resumed, got = hashlib.sha256(), 0
        async with http.stream("GET", url) as response:
            async for chunk in response.aiter_raw():
                resumed.update(chunk)
                got += len(chunk)
                if got >= 7_000_000:
                    break
        async with http.stream("GET", url, headers={"Range": f"bytes={got}-"}) as response:
            assert response.status_code == 206
            assert response.headers["content-range"] == f"bytes {got}-{BIG_MB * 2**20 - 1}/{BIG_MB * 2**20}"
            assert response.headers["content-length"] == str(BIG_MB * 2**20 - got)
            async for chunk in response.aiter_raw():
                resumed.update(chunk)
        assert resumed.hexdigest() == big_sha256()

        # Nested files and non-ASCII names come back as logged, named for the browser.
        csv = await http.get(f"{replica.url}/artifacts/{results.job_id}/plots/deep/nested/curve.csv")
        assert csv.status_code == 200 and csv.text == "step,loss\n0,1.1\n"
        assert csv.headers["content-type"].startswith("text/csv")
        unicode = await http.get(f"{replica.url}/artifacts/{results.job_id}/plots/r%C3%A9sum%C3%A9%20final.txt")
        assert unicode.status_code == 200 and unicode.text == "unicode name"
        assert unicode.headers["content-disposition"] == "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20final.txt"
        head = await http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(BIG_MB * 2**20) and not head.content
        # A range beyond the end: a JSON reason and the file's size, never MLflow's error page as the file.
        refused = await http.get(url, headers={"Range": f"bytes={BIG_MB * 2**20}-"})
        assert refused.status_code == 416 and refused.json()["code"] == "RANGE_NOT_SATISFIABLE"
        assert refused.headers["content-range"] == f"bytes */{BIG_MB * 2**20}"
        assert "content-disposition" not in refused.headers
        # One byte range is served; several ranges, another unit or a malformed one: the whole file.
        readme = f"{replica.url}/artifacts/{results.job_id}/README.md"
        for asked, status, body in (("bytes=2-4", 206, b"res"), ("bytes=-3", 206, b"lts"),
                                    ("bytes=0-1,4-5", 200, b"# results"), ("bytes=abc", 200, b"# results"),
                                    ("lines=1-2", 200, b"# results")):
            got_range = await http.get(readme, headers={"Range": asked})
            assert (got_range.status_code, got_range.content) == (status, body), asked
            assert got_range.headers["content-type"] == warm.headers["content-type"], asked


async def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """GET `target` byte for byte: no client normalises dots or re-encodes anything."""
    host = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(host.hostname, host.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host.netloc}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


HOSTILE = [
    "../../../etc/passwd",
    "model/../../other-run/artifacts/x",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "%252e%252e/%252e%252e/etc/passwd",
    "model%2F..%2F..%2Fx",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "..\\..\\etc\\passwd",
    "model%5C..%5C..%5Cx",
    "model/weights.bin%00.txt",
    "model/%00",
    "./README.md",
    "model/./weights.bin",
    "model//weights.bin",
    "model/",
    "",
    "C:/Windows/win.ini",
    "..",
    "%2e",
]


async def test_hostile_paths_are_refused_with_400(results: Results, replica: ApiProcess) -> None:
    for path in HOSTILE:
        status, body = await raw_get(replica.url, f"/artifacts/{results.job_id}/{path}")
        assert status == 400, (path, status, body[:200])
        assert json.loads(body)["code"] == "BAD_ARTIFACT_PATH", (path, body)
    # The same paths for a job that does not exist: refused before any lookup, never a 500.
    for path in HOSTILE[:3]:
        assert (await raw_get(replica.url, f"/artifacts/{encode_id('Job', uuid.uuid4())}/{path}"))[0] == 400


async def test_only_the_jobs_own_artifacts_are_served(results: Results, replica: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=replica.url, timeout=30) as http:
        other = await http.get(f"/artifacts/{results.other_job_id}/only-in-the-other-run.txt")
        assert other.status_code == 200 and other.text == "not yours"
        cases = {
            # Another job's file, under this job: not there.
            f"/artifacts/{results.job_id}/only-in-the-other-run.txt": "NOT_FOUND",
            f"/artifacts/{results.job_id}/model/missing.bin": "NOT_FOUND",
            f"/artifacts/{results.job_id}/model": "NOT_FOUND",  # a directory is no file
            f"/artifacts/{encode_id('Job', uuid.uuid4())}/README.md": "NOT_FOUND",  # unknown job
            f"/artifacts/{encode_id('Run', pk(results.run_id))}/README.md": "NOT_FOUND",  # a run's id is no job's
            f"/artifacts/{pk(results.job_id)}/README.md": "NOT_FOUND",  # not a global id
            "/artifacts/bm90LWEtam9i/README.md": "NOT_FOUND",
        }
        for target, code in cases.items():
            response = await http.get(target)
            assert response.status_code == 404, (target, response.status_code, response.text)
            body = response.json()
            assert body["code"] == code and "Traceback" not in response.text, (target, body)


async def test_a_history_longer_than_one_mlflow_page_is_whole(results: Results, client: GraphQLClient,
                                                             mlflow_server: str) -> None:
    """MLflow answers a metric history 25,000 points at a time: every point comes back, in step order."""
    job = await Job.get(id=pk(results.other_job_id))
    total = HISTORY_PAGE + 7
    async with httpx.AsyncClient(base_url=f"{mlflow_server}/api/2.0/mlflow/", timeout=60) as mlflow:
        for start in range(0, total, 1000):  # log-batch takes at most 1,000 metrics
            batch = [{"key": "long", "value": step / 2, "timestamp": 1_700_000_000_000 + step, "step": step}
                     for step in reversed(range(start, min(start + 1000, total)))]
            (await mlflow.post("runs/log-batch", json={"run_id": job.mlflow_run_id, "metrics": batch})).raise_for_status()
    q = """query($id: ID!) { job(id: $id) { metricHistory(key: "long") { step value } } }"""
    points = (await client.data(q, {"id": results.other_job_id}))["job"]["metricHistory"]
    assert len(points) == total
    assert [p["step"] for p in points] == list(range(total))
    assert points[-1] == {"step": total - 1, "value": (total - 1) / 2}


async def test_compare_runs_in_one_round_trip(results: Results, client: GraphQLClient) -> None:
    q = """query($runs: [ID!]!, $keys: [String!]!) { compareRuns(runIds: $runs, keys: $keys) { __typename
      ... on RunComparison { runs { run { id } job { id kind } histories { key points { step value special } } } }
      ... on ValidationFailed { code fields { field message } } } }"""
    body = (await client.data(q, {"runs": [results.run_id, results.other_run_id, results.run_id],
                                  "keys": ["loss", "diverged", "never-logged"]}))["compareRuns"]
    assert body["__typename"] == "RunComparison"
    assert [r["run"]["id"] for r in body["runs"]] == [results.run_id, results.other_run_id]  # duplicates once
    assert [r["job"] for r in body["runs"]] == [{"id": results.job_id, "kind": "DRYRUN"},
                                                {"id": results.other_job_id, "kind": "DRYRUN"}]
    for run, lr in zip(body["runs"], (0.5, 0.25), strict=True):
        loss, diverged, never = run["histories"]
        assert loss["key"] == "loss" and [p["step"] for p in loss["points"]] == [0, 1, 2]
        assert [p["value"] for p in loss["points"]] == [pytest.approx(lr + 1 / (s + 1)) for s in range(3)]
        assert diverged["points"] == [{"step": 2, "value": None, "special": "NAN"}]
        assert never == {"key": "never-logged", "points": []}

    def fields(payload: dict) -> list[str]:
        assert payload["__typename"] == "ValidationFailed" and payload["code"] == "VALIDATION_FAILED", payload
        return [f["field"] for f in payload["fields"]]

    too_many_runs = [encode_id("Run", uuid.uuid4()) for _ in range(MAX_COMPARE_RUNS + 1)]
    assert fields((await client.data(q, {"runs": too_many_runs, "keys": ["loss"]}))["compareRuns"]) == ["runIds"]
    too_many_keys = [f"k{i}" for i in range(MAX_COMPARE_KEYS + 1)]
    assert fields((await client.data(q, {"runs": [results.run_id], "keys": too_many_keys}))["compareRuns"]) == ["keys"]
    assert fields((await client.data(q, {"runs": [], "keys": []}))["compareRuns"]) == ["runIds", "keys"]
    unknown = [results.run_id, encode_id("Run", uuid.uuid4()), results.job_id, "garbage"]
    assert fields((await client.data(q, {"runs": unknown, "keys": ["loss"]}))["compareRuns"]) == [
        "runIds.1", "runIds.2", "runIds.3"]
    long_key = await client.error(q, {"runs": [results.run_id], "keys": ["x" * 251]})
    assert long_key["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_unreachable_tracking_server_is_a_clear_503(results: Results, settings, work_dir: Path) -> None:
    env = replica_env(settings) | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    process = ApiProcess(env, work_dir / "results-no-mlflow.log")
    try:
        await asyncio.to_thread(process.wait_ready)
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
            response = await http.get(f"/artifacts/{results.job_id}/README.md")
            assert response.status_code == 503 and response.json()["code"] == "SERVICE_UNAVAILABLE", response.text
        # The download route answers for itself: nothing unhandled in the log. (GraphQL errors, expected
        # ones included, are logged with their cause by strawberry; the response is what is checked there.)
        assert "Traceback" not in process.log_text(), process.log_text()
        async with GraphQLClient(process.url) as client:
            error = await client.error("query($id: ID!) { job(id: $id) { params { key } } }", {"id": results.job_id})
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE" and error["extensions"]["retryAfterSeconds"] > 0
            assert "Traceback" not in json.dumps(error) and "127.0.0.1" not in error["message"]
    finally:
        process.stop()


async def test_results_follow_the_funded_job_once_there_is_one(results: Results, client: GraphQLClient,
                                                               make_person) -> None:
    # Last in the module: funding the other run turns its results (and comparisons) to the funded job.
    run = await wait_run(results.owner.agent, results.other_run_id, {"AWAITING_FUNDING"})
    patron = await make_person("results-patron")
    await give_credit(patron.user_id, 100_000)
    funded = await patron.agent.data(
        "mutation($i: FundRunInput!) { fundRun(input: $i) { __typename } }",
        {"i": {"runId": run["id"], "amountCents": run["fundingGapCents"], "surplusPolicy": "REFUND"}})
    assert funded["fundRun"]["__typename"] == "FundRunSuccess", funded
    run = await wait_run(results.owner.agent, run["id"], {"COMPLETED", "FUNDED_FAILED"}, within=180)
    assert run["status"] == "COMPLETED", run
    funded_job = run["fundedJob"]["id"]

    q = "query($id: ID!) { run(id: $id) { results { job { id kind } metrics { key value step } } } }"
    found = (await client.data(q, {"id": run["id"]}))["run"]["results"]
    assert found["job"] == {"id": funded_job, "kind": "FUNDED"}
    assert {m["key"]: (m["step"], m["value"]) for m in found["metrics"]}["loss"] == (5, pytest.approx(0.25 + 1 / 6))
    compare = """query($runs: [ID!]!) { compareRuns(runIds: $runs, keys: ["loss"]) {
      ... on RunComparison { runs { job { id kind } histories { points { step } } } } } }"""
    [other] = (await client.data(compare, {"runs": [run["id"]]}))["compareRuns"]["runs"]
    assert other["job"] == {"id": funded_job, "kind": "FUNDED"}
    assert [p["step"] for p in other["histories"][0]["points"]] == [0, 1, 2, 3, 4, 5]
