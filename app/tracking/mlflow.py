"""MLflow tracking over its REST API (async, no server-side package in the app's environment).

One MLflow experiment per project, one MLflow run per job, created before the job starts so
the job logs into it through MLFLOW_RUN_ID. The embedded server starts in the background and a
supervised one restarts on the same port: the calls a job's launch makes wait for a refused
connection to be accepted (up to `wait_seconds`) instead of failing the job.
"""

from __future__ import annotations

import asyncio
import enum
import math
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx


class TrackingError(Exception):
    pass


class ArtifactNotFound(TrackingError):
    pass


class MetricSpecial(enum.Enum):
    """A metric value JSON cannot carry as a number."""

    NAN = "NAN"
    INF = "INF"
    NEG_INF = "NEG_INF"


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: int

    @property
    def special(self) -> MetricSpecial | None:
        """NaN arrives as the string "NaN"; MLflow's SQL store saves ±Inf as ±DBL_MAX (it has no
        infinity), so ±DBL_MAX reads back as the infinity that was logged."""
        if math.isnan(self.value):
            return MetricSpecial.NAN
        if math.isinf(self.value) or abs(self.value) == sys.float_info.max:
            return MetricSpecial.INF if self.value > 0 else MetricSpecial.NEG_INF
        return None

    @classmethod
    def of(cls, raw: Mapping[str, Any], key: str | None = None) -> MetricPoint:
        return cls(key=key or raw["key"], value=float(raw["value"]), step=int(raw.get("step", 0)),
                   timestamp=int(raw.get("timestamp", 0)))


@dataclass(frozen=True)
class RunData:
    """What a job logged: parameters, tags and the latest value of each metric."""

    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[MetricPoint]
    artifact_uri: str


@dataclass(frozen=True)
class ArtifactEntry:
    path: str  # relative to the run's artifact root, "/"-separated
    is_dir: bool
    size: int | None  # bytes; None for directories


@dataclass(frozen=True)
class ArtifactStream:
    """An artifact's bytes as MLflow answers them (200, or 206 for a Range), read chunk by chunk."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]


# What a download passes through from MLflow's answer (Content-Type is the platform's choice).
_PASSED_HEADERS = ("content-length", "content-range", "accept-ranges", "etag", "last-modified")
# The most points MLflow answers per metric-history request (its documented maximum).
HISTORY_PAGE = 25_000


class MlflowTracker:
    def __init__(self, tracking_uri: str, wait_seconds: float = 300.0) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.wait_seconds = wait_seconds
        self._http = httpx.AsyncClient(base_url=f"{self.tracking_uri}/api/2.0/mlflow/", timeout=15)

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, wait: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One REST call. `wait`: a refused connection (server starting or restarting; the
        request was never sent, so retrying is safe) is retried until `wait_seconds`."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                response = await self._http.request(method, path, **kwargs)
                break
            except httpx.ConnectError as exc:
                if not wait or time.monotonic() > deadline:
                    raise TrackingError(f"MLflow unreachable at {self.tracking_uri}: {exc}") from exc
                await asyncio.sleep(0.25)
            except httpx.HTTPError as exc:
                raise TrackingError(f"MLflow unreachable at {self.tracking_uri}: {exc}") from exc
        body = response.json() if response.content else {}
        if response.status_code >= 400:
            raise TrackingError(body.get("message") or f"MLflow answered {response.status_code}")
        return body

    async def ensure_experiment(self, name: str) -> str:
        try:
            found = await self._call("GET", "experiments/get-by-name", params={"experiment_name": name}, wait=True)
            return str(found["experiment"]["experiment_id"])
        except TrackingError:
            pass
        try:
            created = await self._call("POST", "experiments/create", json={"name": name}, wait=True)
            return str(created["experiment_id"])
        except TrackingError:  # created concurrently by another job of the same project
            found = await self._call("GET", "experiments/get-by-name", params={"experiment_name": name})
            return str(found["experiment"]["experiment_id"])

    async def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        body = await self._call("POST", "runs/create", wait=True, json={
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": int(time.time() * 1000),
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        })
        return str(body["run"]["info"]["run_id"])

    async def finish_run(self, run_id: str, status: str) -> None:
        """Mark the MLflow run FINISHED/FAILED/KILLED if the job itself did not."""
        await self._call("POST", "runs/update", wait=True, json={
            "run_id": run_id, "status": status, "end_time": int(time.time() * 1000),
        })

    async def run_data(self, run_id: str) -> RunData:
        run = (await self._call("GET", "runs/get", params={"run_id": run_id}))["run"]
        data = run.get("data", {})
        return RunData(
            params={p["key"]: p["value"] for p in data.get("params", [])},
            tags={t["key"]: t["value"] for t in data.get("tags", [])},
            metrics=[MetricPoint.of(m) for m in data.get("metrics", [])],
            artifact_uri=run["info"].get("artifact_uri", ""),
        )

    async def latest_metrics(self, run_id: str) -> list[MetricPoint]:
        return (await self.run_data(run_id)).metrics

    async def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of `key`, by step: MLflow answers in pages of at most 25,000 points."""
        points: list[MetricPoint] = []
        params = {"run_id": run_id, "metric_key": key, "max_results": str(HISTORY_PAGE)}
        while True:
            body = await self._call("GET", "metrics/get-history", params=params)
            points += [MetricPoint.of(m, key) for m in body.get("metrics", [])]
            if not body.get("next_page_token"):
                return sorted(points, key=lambda p: (p.step, p.timestamp))
            params["page_token"] = body["next_page_token"]

    async def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        """The entries of one directory of the run's artifacts (empty when `path` is no directory)."""
        entries: list[ArtifactEntry] = []
        params = {"run_id": run_id} | ({"path": path} if path else {})
        while True:
            body = await self._call("GET", "artifacts/list", params=params)
            entries += [ArtifactEntry(path=f["path"], is_dir=bool(f.get("is_dir")),
                                      size=None if f.get("is_dir") else int(f.get("file_size", 0)))
                        for f in body.get("files", [])]
            if not body.get("next_page_token"):
                return entries
            params["page_token"] = body["next_page_token"]

    @asynccontextmanager
    async def open_artifact(self, run_id: str, path: str, range_header: str | None = None,
                            if_range: str | None = None) -> AsyncIterator[ArtifactStream]:
        """Stream one file through the server's proxied artifact store (`mlflow-artifacts:`): the
        platform never reads the bucket. `path` must already be a safe relative path. Raises
        ArtifactNotFound when there is no such file (or it is a directory)."""
        root = (await self.run_data(run_id)).artifact_uri
        if not root.startswith("mlflow-artifacts:"):
            raise TrackingError("The run's artifacts are not served by the tracking server "
                                "(start it with --serve-artifacts).")
        location = urlsplit(root).path.strip("/")  # mlflow-artifacts:/1/<run>/artifacts, or with a host
        url = f"{self.tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{quote(f'{location}/{path}')}"
        # identity: MLflow must send the stored bytes, or Content-Length and ranges would not match them.
        headers = {"accept-encoding": "identity"}
        if range_header:
            headers["range"] = range_header
            if if_range:
                headers["if-range"] = if_range
        try:
            # read=300: from a remote store (S3, GCS) MLflow copies the whole file to its disk before
            # the first byte, minutes for a multi-GB checkpoint.
            async with self._http.stream("GET", url, headers=headers,
                                         timeout=httpx.Timeout(15, read=300)) as response:
                if response.status_code in (400, 404):  # a directory is a 400 INVALID_PARAMETER_VALUE
                    raise ArtifactNotFound(path)
                if response.status_code >= 400 and response.status_code != 416:
                    raise TrackingError(f"MLflow answered {response.status_code} for an artifact")
                yield ArtifactStream(
                    status=response.status_code,
                    headers={k: v for k in _PASSED_HEADERS if (v := response.headers.get(k)) is not None},
                    chunks=response.aiter_raw(),
                )
        except httpx.HTTPError as exc:
            raise TrackingError(f"MLflow unreachable at {self.tracking_uri}: {exc}") from exc
