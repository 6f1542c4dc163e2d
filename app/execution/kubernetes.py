"""The Kubernetes executor: one `batch/v1` Job per job, on kubernetes-asyncio.

`submit` creates the Job (manifest from `k8s_manifests`), `cancel` deletes it with
`propagationPolicy=Foreground`, and status, logs and errors come from the watcher
(`k8s_watcher.KubernetesWatcher`; API calls in `k8s_api`), which runs either in this process (`watch=True`: the
embedded default and tests) or as the dedicated `mlpatron watcher` deployment (API replicas
then construct the executor with `watch=False`).

Job names are deterministic per job id (`k8s_manifests.job_name`), which makes `create`
idempotent: a resubmit of the same job — a retried request, a second replica, a retry after a
lost response — answers 409 AlreadyExists and the existing Job is adopted. Only idempotent calls
are retried (get, list, delete, and this create); 403 and other 4xx are final.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException

from app.core.settings import get_settings
from app.execution import git
from app.execution.executor import Executor, JobSink, JobSpec
from app.execution.k8s_api import KubeApi, create_api_client, describe_api_error, is_transient
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
from app.execution.k8s_watcher import KubernetesWatcher
from app.jobs.status import JobError, JobStatus, JobUpdate

log = logging.getLogger(__name__)

__all__ = ["KubernetesConfig", "KubernetesExecutor", "KubernetesSubmitError", "ManifestError"]

class KubernetesSubmitError(RuntimeError):
    """Creating the Job failed; the job has already been reported FAILED with `platform`."""

    def __init__(self, platform: str) -> None:
        super().__init__(platform)
        self.platform = platform


def _now() -> datetime:
    return datetime.now(UTC)


async def pin_repository(spec: JobSpec) -> JobSpec:
    """The clone connects to the address checked here (public, resolved once); a non-public
    answer refuses the job. A name with no answer here (createRun saw a public one) is left
    to the cluster's DNS: a residual rebinding window, documented in the README."""
    try:
        config = await git.pinned_config(spec.repo_url)
    except git.UnresolvedHost:
        return spec
    except git.GitError as exc:
        raise ManifestError(exc.message) from None
    return dataclasses.replace(spec, extra={**spec.extra, "git_config": config}) if config else spec


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
            spec = await pin_repository(spec)
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

    async def cancel_orphan(self, name: str, guard: Callable[[str], Awaitable[None]] | None = None) -> str | None:
        """Delete a labelled mlpatron Job the database does not know (Foreground).

        Returns its job-id label, or None when it was already gone. Refuses Jobs without the
        mlpatron labels: this namespace is not ours alone. `guard` is awaited with the job-id
        label before deleting; it raises to keep a Job the platform still tracks.
        """
        api = await self.api()
        job = await api.get_job(name)
        if job is None:
            return None
        labels = (job.get("metadata") or {}).get("labels") or {}
        job_id = labels.get(JOB_ID_LABEL)
        if not job_id or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise ValueError(f"Kubernetes Job {name} is not an mlpatron job (no {JOB_ID_LABEL} label); not deleting it")
        if guard is not None:
            await guard(job_id)
        await api.delete_job(name, "Foreground")
        log.info("orphan Kubernetes Job %s (job id %s) deleted", name, job_id)
        return job_id
