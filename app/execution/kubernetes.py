"""The Kubernetes executor: one `batch/v1` Job per job, on kubernetes-asyncio.

`submit` creates the Job (manifest from `k8s_manifests`), `cancel` deletes it with
`propagationPolicy=Foreground`, and status, logs and errors come from the watcher
(`k8s_watcher.KubernetesWatcher`), which runs either in this process (`watch=True`: the
embedded default and tests) or as the dedicated `mlpatron watcher` deployment (API replicas
then construct the executor with `watch=False`).

Job names are deterministic per job id (`k8s_manifests.job_name`), which makes `create`
idempotent: a resubmit of the same job — a retried request, a second replica, a retry after a
lost response — answers 409 AlreadyExists and the existing Job is adopted. Only idempotent calls
are retried (get, list, delete, and this create); 403 and other 4xx are final.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException

from app.execution.executor import Executor, JobSink, JobSpec
from app.execution.k8s_manifests import (
    JOB_ID_LABEL,
    KIND_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RUN_ID_LABEL,
    KubernetesConfig,
    ManifestError,
    build_job_manifest,
)
from app.jobs.status import JobError, JobStatus, JobUpdate

if TYPE_CHECKING:
    from app.execution.k8s_watcher import KubernetesWatcher

log = logging.getLogger(__name__)

__all__ = [
    "KubeApi",
    "KubernetesConfig",
    "KubernetesExecutor",
    "KubernetesSubmitError",
    "ManifestError",
    "create_api_client",
]

RETRYABLE_STATUS = {0, 408, 429, 500, 502, 503, 504}
TRANSIENT_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError, OSError)


class KubernetesSubmitError(RuntimeError):
    """Creating the Job failed; the job has already been reported FAILED with `platform`."""

    def __init__(self, platform: str) -> None:
        super().__init__(platform)
        self.platform = platform


def _now() -> datetime:
    return datetime.now(UTC)


def describe_api_error(exc: BaseException) -> str:
    """`403 Forbidden: jobs.batch is forbidden: ...` from an ApiException (or the exception text)."""
    if isinstance(exc, ApiException):
        message = ""
        body = exc.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if isinstance(body, str) and body:
            try:
                message = json.loads(body).get("message", "") or ""
            except (ValueError, AttributeError):
                message = body[:300]
        reason = exc.reason or ""
        head = f"{exc.status} {reason}".strip()
        return f"{head}: {message}" if message else head
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in RETRYABLE_STATUS
    return isinstance(exc, TRANSIENT_ERRORS)


async def create_api_client(config: KubernetesConfig) -> k8s_client.ApiClient:
    """An ApiClient from the pod's service account (in cluster) or a kubeconfig file."""
    from kubernetes_asyncio import config as k8s_config

    configuration = k8s_client.Configuration()
    in_cluster = config.in_cluster
    if in_cluster is None:
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not config.kubeconfig
    if in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        await k8s_config.load_kube_config(
            config_file=config.kubeconfig, context=config.context,
            client_configuration=configuration, persist_config=False,
        )  # fmt: skip
    return k8s_client.ApiClient(configuration)


class KubeApi:
    """The handful of API calls the executor and watcher make, on raw JSON (dicts, camelCase).

    Every call uses `_preload_content=False` and checks the status itself, so objects stay as
    the API server sent them and streams (watch, log follow) are read line by line.
    """

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        namespace: str,
        *,
        attempts: int = 4,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.batch = k8s_client.BatchV1Api(api_client)
        self.core = k8s_client.CoreV1Api(api_client)
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    async def _checked(coro: Any) -> aiohttp.ClientResponse:
        resp: aiohttp.ClientResponse = await coro
        if resp.status >= 400:
            try:
                body = await resp.text()
            finally:
                resp.release()
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.body = body
            raise exc
        return resp

    async def _json(self, coro: Any) -> dict[str, Any]:
        resp = await self._checked(coro)
        try:
            return await resp.json(content_type=None)
        finally:
            resp.release()

    async def retry(self, what: str, make: Any) -> Any:
        """Run `await make()` again on transient errors (idempotent calls only)."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return await make()
            except Exception as exc:
                if attempt == self.attempts or not is_transient(exc):
                    raise
                log.warning(
                    "kubernetes %s failed (%s); retry %d/%d", what, describe_api_error(exc), attempt, self.attempts - 1
                )
            await asyncio.sleep(delay * (0.5 + random.random()))  # backoff between attempts, with jitter
            delay = min(delay * 3, self.max_backoff)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ jobs

    async def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create; retried because the name is deterministic (a duplicate answers 409)."""
        return await self.retry(
            "create job",
            lambda: self._json(self.batch.create_namespaced_job(self.namespace, body, _preload_content=False)),
        )

    async def get_job(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.retry(
                "get job",
                lambda: self._json(self.batch.read_namespaced_job(name, self.namespace, _preload_content=False)),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def delete_job(self, name: str, propagation_policy: str = "Foreground") -> bool:
        """False when the Job was already gone."""
        try:
            await self.retry(
                "delete job",
                lambda: self._json(
                    self.batch.delete_namespaced_job(
                        name, self.namespace, propagation_policy=propagation_policy, _preload_content=False
                    )
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ collections

    def _list_fn(self, resource: str) -> Any:
        return {
            "jobs": self.batch.list_namespaced_job,
            "pods": self.core.list_namespaced_pod,
            "events": self.core.list_namespaced_event,
        }[resource]

    async def list(
        self, resource: str, *, label_selector: str | None = None, field_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """All items (following `continue`) and the list's resourceVersion."""
        fn = self._list_fn(resource)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500}
            if label_selector:
                kwargs["label_selector"] = label_selector
            if field_selector:
                kwargs["field_selector"] = field_selector
            if token:
                kwargs["_continue"] = token
            page = await self.retry(
                f"list {resource}",
                lambda kw=kwargs: self._json(fn(self.namespace, _preload_content=False, **kw)),  # type: ignore[misc]
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    async def watch(
        self,
        resource: str,
        resource_version: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (dicts with `type` and `object`) from `resource_version` until the server
        ends the stream. An in-stream ERROR event is yielded as is (the caller handles 410)."""
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds,
            "_request_timeout": aiohttp.ClientTimeout(sock_connect=15, sock_read=timeout_seconds + 60),
        }
        if label_selector:
            kwargs["label_selector"] = label_selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        fn = self._list_fn(resource)
        resp = await self._checked(fn(self.namespace, _preload_content=False, **kwargs))
        try:
            async for line, _ in iter_lines(resp.content):
                if line.strip():
                    yield json.loads(line)
        finally:
            resp.release()

    # ------------------------------------------------------------------ pods

    async def get_pod(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.retry(
                "get pod",
                lambda: self._json(self.core.read_namespaced_pod(name, self.namespace, _preload_content=False)),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def open_log(
        self,
        pod: str,
        container: str,
        *,
        follow: bool,
        previous: bool = False,
        timestamps: bool = True,
        tail_lines: int | None = None,
        read_timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """The raw log response of one container instance; the caller reads it and releases it."""
        kwargs: dict[str, Any] = {"container": container, "timestamps": timestamps}
        if follow:
            kwargs["follow"] = True
        if previous:
            kwargs["previous"] = True
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        kwargs["_request_timeout"] = aiohttp.ClientTimeout(sock_connect=15, sock_read=read_timeout)
        call = self.core.read_namespaced_pod_log(pod, self.namespace, _preload_content=False, **kwargs)
        return await self._checked(call)


async def iter_lines(content: aiohttp.StreamReader, max_line: int | None = None) -> AsyncIterator[tuple[bytes, bool]]:
    """`(line, complete)` for each line of a streamed body, without its newline.

    `complete` is False only for a trailing fragment the body ended in without a newline (a
    cut stream may continue it on reconnect). With `max_line`, longer lines arrive in pieces
    of at most that many bytes (memory stays bounded, nothing is dropped); the split points
    depend only on the bytes, so a re-read splits the same way.
    """
    buf = b""
    async for chunk in content.iter_any():
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl >= 0 and (max_line is None or nl - start <= max_line):
                yield buf[start:nl], True
                start = nl + 1
            elif max_line is not None and len(buf) - start > max_line:
                end = start + max_line
                while end > start + max_line - 3 and (buf[end] & 0xC0) == 0x80:
                    end -= 1  # do not cut a UTF-8 character in two
                yield buf[start:end], True
                start = end
            else:
                break
        buf = buf[start:]
    if buf:
        yield buf, False


class KubernetesExecutor(Executor):
    """Runs jobs as Kubernetes Jobs.

    `KubernetesExecutor(sink, config=None, *, api_client=None, watch=None)`:
    * `config`: `KubernetesConfig` (default: `KubernetesConfig.from_env()`);
    * `api_client`: a kubernetes-asyncio `ApiClient` (default: built from `config` on first use,
      in-cluster service account or kubeconfig, and closed by `close()`);
    * `watch`: run a `KubernetesWatcher` in this process (default: the RUN_WATCHER setting —
      True for the embedded default, False for `serve --api-only` replicas, whose Jobs the
      separate `mlpatron watcher` deployment follows);
    * `watcher_options` / `api_options`: keyword arguments for `KubernetesWatcher` / `KubeApi`
      (timeouts and retry backoff; tests make them fast).
    """

    name = "kubernetes"

    def __init__(
        self,
        sink: JobSink,
        config: KubernetesConfig | None = None,
        *,
        api_client: k8s_client.ApiClient | None = None,
        watch: bool | None = None,
        watcher_options: dict[str, Any] | None = None,
        api_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(sink)
        self.config = config or KubernetesConfig.from_env()
        self._api_client = api_client
        self._owns_client = api_client is None
        self._api: KubeApi | None = None
        if watch is None:
            from app.core.settings import get_settings

            watch = get_settings().run_watcher
        self._watch = watch
        self._watcher_options = watcher_options or {}
        self._api_options = api_options or {}
        self._watcher: KubernetesWatcher | None = None
        self._init_lock = asyncio.Lock()
        self._handles: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ wiring

    async def api(self) -> KubeApi:
        async with self._init_lock:
            if self._api is None:
                if self._api_client is None:
                    self._api_client = await create_api_client(self.config)
                self._api = KubeApi(self._api_client, self.config.namespace, **self._api_options)
            if self._watch and self._watcher is None:
                from app.execution.k8s_watcher import KubernetesWatcher

                self._watcher = KubernetesWatcher(self.sink, self._api, **self._watcher_options)
                try:
                    await self._watcher.start()
                except TimeoutError:  # it keeps trying in the background; submit/cancel need not wait
                    log.warning("Kubernetes watcher not synced yet (API server unreachable?); continuing")
            return self._api

    @property
    def watcher(self) -> KubernetesWatcher | None:
        return self._watcher

    async def _report(
        self, job_id: str, status: JobStatus, *, error: JobError | None = None, pending_info: str | None = None
    ) -> None:
        update = JobUpdate(job_id=job_id, status=status, at=_now(), pending_info=pending_info, error=error)
        try:
            if self._watcher is not None:  # keeps in-process reports in order with the watcher's
                await self._watcher.report(update)
            else:
                await self.sink.job_update(update)
        except Exception:
            log.exception("job %s: sink rejected %s update", job_id, status.value)

    # ------------------------------------------------------------------ contract

    async def submit(self, spec: JobSpec) -> dict[str, Any]:
        """Create the Job; report PENDING. A failure is reported FAILED, then raised
        (`ManifestError` for a spec that cannot become a Job, else `KubernetesSubmitError`)."""
        if spec.job_id in self._handles:  # a retried submit in this process: nothing to do
            return dict(self._handles[spec.job_id])
        try:
            manifest = build_job_manifest(spec, self.config)
        except ManifestError as exc:
            await self._report(spec.job_id, JobStatus.FAILED, error=JobError(platform=f"invalid job spec: {exc}"))
            raise
        name = manifest["metadata"]["name"]
        try:
            api = await self.api()
        except Exception as exc:  # no kubeconfig / service account: nothing was created
            platform = f"cannot reach the Kubernetes API: {describe_api_error(exc)}"
            await self._report(spec.job_id, JobStatus.FAILED, error=JobError(platform=platform))
            raise KubernetesSubmitError(platform) from exc
        try:
            await api.create_job(manifest)
            log.info("job %s: created Kubernetes Job %s/%s", spec.job_id, self.config.namespace, name)
        except ApiException as exc:
            if exc.status != 409:
                await self._submit_failed(api, spec, name, exc)
            await self._adopt(api, spec, manifest)
        except Exception as exc:
            await self._submit_failed(api, spec, name, exc)
        handle = {"name": name, "namespace": self.config.namespace}
        self._handles[spec.job_id] = handle
        while len(self._handles) > 10_000:  # only guards retried submits: recent ones suffice
            self._handles.pop(next(iter(self._handles)))
        await self._report(spec.job_id, JobStatus.PENDING, pending_info=f"Kubernetes Job {name} created")
        return dict(handle)

    async def _adopt(self, api: KubeApi, spec: JobSpec, manifest: dict[str, Any]) -> None:
        """409 on create: the Job of this job id exists already (a resubmit); never make a second."""
        name = manifest["metadata"]["name"]
        try:
            existing = await api.get_job(name)
            if existing is None:  # deleted between the 409 and now: creating it is the honest retry
                await api.create_job(manifest)
                return
        except Exception as exc:
            await self._submit_failed(api, spec, name, exc)
        owner = ((existing.get("metadata") or {}).get("labels") or {}).get(JOB_ID_LABEL)
        if owner != spec.job_id:
            clash = RuntimeError(f"a Job named {name} exists for job {owner!r}")
            await self._submit_failed(api, spec, name, clash, cleanup=False)
        log.info("job %s: Kubernetes Job %s already exists; adopted it", spec.job_id, name)

    async def _submit_failed(
        self, api: KubeApi, spec: JobSpec, name: str, exc: BaseException, *, cleanup: bool = True
    ) -> NoReturn:
        """Report FAILED (platform names the API error) and raise `KubernetesSubmitError`."""
        platform = f"Kubernetes API refused to create Job {name}: {describe_api_error(exc)}"
        if cleanup and is_transient(exc):
            # The create may have happened after all (lost response): never leave it running.
            try:
                await api.delete_job(name)
            except Exception as cleanup_exc:
                log.warning("job %s: could not clean up Job %s: %s", spec.job_id, name, describe_api_error(cleanup_exc))
        log.error("job %s: %s", spec.job_id, platform)
        await self._report(spec.job_id, JobStatus.FAILED, error=JobError(platform=platform))
        raise KubernetesSubmitError(platform) from exc

    async def cancel(self, job_id: str, handle: dict[str, Any]) -> None:
        """Delete the Job (Foreground: pods go first) and report CANCELLED; gone already is fine."""
        api = await self.api()
        if self._watcher is not None:
            self._watcher.expect_cancel(job_id)
        names = [handle["name"]] if handle.get("name") else await self._names_for(api, job_id)
        for name in names:
            deleted = await api.delete_job(name, "Foreground")
            log.info("job %s: Kubernetes Job %s %s", job_id, name, "deleted" if deleted else "was already gone")
        self._handles.pop(job_id, None)
        await self._report(job_id, JobStatus.CANCELLED)

    async def _names_for(self, api: KubeApi, job_id: str) -> list[str]:
        items, _ = await api.list("jobs", label_selector=f"{JOB_ID_LABEL}={job_id}")
        return [i["metadata"]["name"] for i in items]

    async def reconcile(self, active: list[tuple[str, dict[str, Any]]]) -> None:
        """Hand the database's active jobs to the in-process watcher (no-op without one: the
        `mlpatron watcher` process reconciles when it becomes leader)."""
        await self.api()
        if self._watcher is not None:
            await self._watcher.reconcile(active)

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
            self._watcher = None
        if self._owns_client and self._api_client is not None:
            await self._api_client.close()
            self._api_client = None
            self._api = None

    # ------------------------------------------------------------------ orphans

    async def list_jobs(self) -> list[dict[str, Any]]:
        """Every mlpatron Job in the namespace: name, job/run id, kind, phase, created."""
        api = await self.api()
        items, _ = await api.list("jobs", label_selector=JOB_ID_LABEL)
        out = []
        for item in items:
            meta = item.get("metadata") or {}
            labels = meta.get("labels") or {}
            conditions = {
                c.get("type") for c in (item.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
            }
            phase = "succeeded" if "Complete" in conditions else "failed" if "Failed" in conditions else "active"
            out.append({
                "name": meta.get("name"), "job_id": labels.get(JOB_ID_LABEL), "run_id": labels.get(RUN_ID_LABEL),
                "kind": labels.get(KIND_LABEL), "phase": phase, "created": meta.get("creationTimestamp"),
                "deleting": bool(meta.get("deletionTimestamp")),
            })  # fmt: skip
        return out

    async def cancel_orphan(self, name: str) -> str | None:
        """Delete a labelled mlpatron Job the database does not know (Foreground).

        Returns its job-id label, or None when it was already gone. Refuses Jobs without the
        mlpatron labels: this namespace is not ours alone.
        """
        api = await self.api()
        job = await api.get_job(name)
        if job is None:
            return None
        labels = (job.get("metadata") or {}).get("labels") or {}
        job_id = labels.get(JOB_ID_LABEL)
        if not job_id or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise ValueError(f"Kubernetes Job {name} is not an mlpatron job (no {JOB_ID_LABEL} label); not deleting it")
        await api.delete_job(name, "Foreground")
        log.info("orphan Kubernetes Job %s (job id %s) deleted", name, job_id)
        return job_id
