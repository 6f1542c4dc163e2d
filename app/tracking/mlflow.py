"""MLflow tracking over its REST API (async, no server-side package in the app's environment).

One MLflow experiment per project, one MLflow run per job, created before the job starts so
the job logs into it through MLFLOW_RUN_ID. The embedded server starts in the background and a
supervised one restarts on the same port: the calls a job's launch makes wait for a refused
connection to be accepted (up to `wait_seconds`) instead of failing the job.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx


class TrackingError(Exception):
    pass


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: int


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

    async def latest_metrics(self, run_id: str) -> list[MetricPoint]:
        body = await self._call("GET", "runs/get", params={"run_id": run_id})
        return [
            MetricPoint(key=m["key"], value=float(m["value"]), step=int(m.get("step", 0)),
                        timestamp=int(m.get("timestamp", 0)))
            for m in body["run"].get("data", {}).get("metrics", [])
        ]

    async def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        body = await self._call("GET", "metrics/get-history", params={"run_id": run_id, "metric_key": key,
                                                                         "max_results": 25000})
        points = [
            MetricPoint(key=key, value=float(m["value"]), step=int(m.get("step", 0)),
                        timestamp=int(m.get("timestamp", 0)))
            for m in body.get("metrics", [])
        ]
        return sorted(points, key=lambda p: (p.step, p.timestamp))
