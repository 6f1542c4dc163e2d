"""The Kubernetes watcher: Jobs, Pods and Events in, ordered job updates and log lines out.

One `KubernetesWatcher` lists and then watches three collections in the jobs namespace —
Jobs and Pods by the label `mlpatron.io/job-id`, pod Events (`involvedObject.kind=Pod`) — each
resuming from its last `resourceVersion` when a stream ends and re-listing on 410 Gone. Every
change lands on one queue that a single task applies to an in-memory picture per job, from
which the status is *derived* (never taken from the event sequence), so a watch restart, a
re-list or a fresh watcher converges to the same answer:

* Job condition Complete → SUCCEEDED; Failed → FAILED with a structured `JobError`;
  Job deleted (or being deleted) before either → CANCELLED;
* main container started (running or already terminated) → RUNNING;
* otherwise PENDING with `pending_info` from the pod (waiting reasons such as
  ImagePullBackOff, the scheduler's Unschedulable message) and its latest relevant Event.

Updates are emitted forward only: the last reported status per job is kept in memory and a
PENDING is repeated only when its `pending_info` changes; across watcher restarts the sink's
own monotonic guard drops what was already reported. A RUNNING that happened unseen (a job
that started and finished while a watch was down) is still reported before the terminal
update, and every log line is delivered before it.

Logs: one task per job follows the main container's instances in order
(`read_namespaced_pod_log(follow=True, timestamps=True)`), one instance per pod/restartCount.
Each instance keeps a cursor (last RFC3339Nano timestamp + lines at that timestamp); a
reconnect re-reads and drops what was delivered, so a cut stream, a container restart or log
rotation neither loses nor repeats lines. A new watcher asks the sink how many lines it already
has (`job_log_count(job_id, stream)`, optional) and skips those.

Several watchers may run; `run_watcher_service` makes exactly one act, holding a PostgreSQL
advisory lock (`leader.AdvisoryLock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from app.execution.executor import JobSink
from app.execution.k8s_manifests import CLONE_CONTAINER, JOB_ID_LABEL, MAIN_CONTAINER, KubernetesConfig
from app.execution.kubernetes import KubeApi, create_api_client, describe_api_error, is_transient, iter_lines
from app.jobs.status import STATUS_RANK, JobError, JobStatus, JobUpdate

log = logging.getLogger(__name__)

LOG_STREAM = "stdout"  # the API server interleaves a container's stdout and stderr into one stream
MAX_LINE_BYTES = 64 * 1024
RESOURCES = ("jobs", "pods", "events")
# Waiting reasons that are simply "starting" and say nothing a user could act on.
_BORING_WAITING = {"ContainerCreating", "PodInitializing"}
# Event reasons worth showing while a pod is pending (the scheduler's own message is on the pod).
_EVENT_REASONS = {
    "FailedScheduling", "TriggeredScaleUp", "NotTriggerScaleUp", "FailedMount", "FailedAttachVolume",
    "FailedCreatePodSandBox", "Failed", "BackOff", "ErrImageNeverPull", "InspectFailed", "Preempted",
}  # fmt: skip


# ------------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | None) -> datetime | None:
    """RFC3339 (with optional fraction) → aware datetime; None for junk."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_log_timestamp(value: bytes) -> tuple[int, int] | None:
    """`2025-01-02T03:04:05.123Z` (RFC3339Nano, trailing zeros trimmed) → (unix seconds, nanos)."""
    try:
        text = value.decode("ascii")
        if not text.endswith("Z"):
            dt = datetime.fromisoformat(text)
            return int(dt.timestamp()), dt.microsecond * 1000
        base, _, frac = text[:-1].partition(".")
        secs = int(datetime.fromisoformat(base + "+00:00").timestamp())
        if frac and not frac.isdigit():
            return None
        return secs, int((frac or "0").ljust(9, "0")[:9])
    except (UnicodeDecodeError, ValueError):
        return None


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def _uid(obj: dict[str, Any] | None) -> str:
    return _meta(obj).get("uid") or _meta(obj).get("name") or ""


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(_meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _job_id_of(obj: dict[str, Any] | None) -> str | None:
    return (_meta(obj).get("labels") or {}).get(JOB_ID_LABEL)


def _condition(job: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def _container_status(pod: dict[str, Any] | None, name: str, *, init: bool = False) -> dict[str, Any] | None:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in ((pod or {}).get("status") or {}).get(key) or []:
        if status.get("name") == name:
            return status
    return None


def _main_started(status: dict[str, Any] | None) -> str | None:
    """startedAt of the main container's first run (or "" when it ran but the time is unknown)."""
    if not status:
        return None
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    if last:
        return last.get("startedAt") or ""
    for key in ("running", "terminated"):
        if key in state and state[key] is not None:
            return state[key].get("startedAt") or ""
    return None


def _pods_in_order(pods: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods.values(), key=lambda p: (_meta(p).get("creationTimestamp") or "", _meta(p).get("name") or ""))


def derive_pending_info(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """What a pending job is waiting for, in words an experimenter can act on."""
    live = [p for p in pods if not _meta(p).get("deletionTimestamp")]
    if not live:
        return "waiting for the Job controller to create the pod"
    pod = live[-1]
    status = pod.get("status") or {}
    parts: list[str] = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") and waiting["reason"] not in _BORING_WAITING:
            message = waiting.get("message")
            parts.append(f"{waiting['reason']}: {message}" if message else waiting["reason"])
            break
    if not parts:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                reason, message = cond.get("reason") or "Unschedulable", cond.get("message")
                parts.append(f"{reason}: {message}" if message else reason)
    relevant = [e for e in events if e.get("reason") in _EVENT_REASONS]
    if relevant:
        latest = max(relevant, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "", _rv(e)))
        message = latest.get("message") or ""
        # The scheduler's event says what the pod condition says (which may not have arrived yet).
        reason = "Unschedulable" if latest.get("reason") == "FailedScheduling" else latest.get("reason")
        if not any(message and message in p for p in parts):
            parts.append(f"{reason}: {message}" if message else str(reason))
    if parts:
        return "; ".join(parts)
    init = _container_status(pod, CLONE_CONTAINER, init=True)
    if init and "running" in (init.get("state") or {}):
        return "cloning the repository (init container)"
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return f"starting containers on node {node}"
    return "waiting for the scheduler"


def derive_error(job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> JobError:
    """The structured diagnosis of a failed Job, root cause first (see `JobError`)."""
    cond = _condition(job, "Failed")
    condition = None
    platform: list[str] = []
    if cond:
        condition = {"type": "Failed", "reason": cond.get("reason") or "", "message": cond.get("message") or ""}
        if cond.get("reason") == "DeadlineExceeded":
            budget = ((job or {}).get("spec") or {}).get("activeDeadlineSeconds")
            detail = cond.get("message") or "Job was active longer than specified deadline"
            platform.append(f"deadline exceeded: the job ran longer than its {budget} s budget ({detail})")
    terminated = None
    pod = pods[-1] if pods else None
    if pod is not None:
        main = _container_status(pod, MAIN_CONTAINER)
        init = _container_status(pod, CLONE_CONTAINER, init=True)
        state = (main or {}).get("state") or {}
        term = state.get("terminated") or ((main or {}).get("lastState") or {}).get("terminated")
        init_term = ((init or {}).get("state") or {}).get("terminated")
        if term:
            terminated = {"reason": term.get("reason") or "Error", "exit_code": int(term.get("exitCode") or 0)}
        elif init_term and int(init_term.get("exitCode") or 0) != 0:
            code = int(init_term.get("exitCode") or 0)
            terminated = {"reason": init_term.get("reason") or "Error", "exit_code": code}
            platform.append(f"repository checkout failed: init container '{CLONE_CONTAINER}' exited with code {code}")
        elif state.get("waiting") and state["waiting"].get("reason") not in _BORING_WAITING:
            waiting = state["waiting"]
            detail = f"{waiting.get('reason')}: {waiting.get('message') or ''}".rstrip(": ")
            platform.append(f"the container never started: {detail}")
        status = pod.get("status") or {}
        conditions = status.get("conditions") or []
        disrupted = next(
            (c for c in conditions if c.get("type") == "DisruptionTarget" and c.get("status") == "True"), None
        )
        if status.get("reason") in ("Evicted", "Preempting", "Shutdown", "Terminated", "NodeLost"):
            platform.append(f"pod {status['reason']}: {status.get('message') or 'the node stopped the pod'}")
        elif disrupted:
            platform.append(f"pod disrupted ({disrupted.get('reason')}): {disrupted.get('message') or ''}".rstrip(": "))
    return JobError(platform="; ".join(platform) or None, container_terminated=terminated, k8s_job_condition=condition)


def _may_update(last: JobStatus | None, last_info: str | None, update: JobUpdate) -> bool:
    """Forward only: no terminal twice, nothing backwards, PENDING again only with new info."""
    if last is None:
        return True
    if last.terminal:
        return False
    if STATUS_RANK[update.status] < STATUS_RANK[last]:
        return False
    if update.status == last:
        return update.status == JobStatus.PENDING and update.pending_info != last_info
    return True


# ------------------------------------------------------------------------------- state


@dataclass
class _Cursor:
    """How far the log of one container instance was delivered."""

    last_ts: tuple[int, int] | None = None
    at_last_ts: int = 0  # lines delivered that carry exactly `last_ts`
    delivered: int = 0


@dataclass
class _Read:
    """Position within one read of a log: the current timestamp and lines seen at it."""

    ts: tuple[int, int] | None = None
    ts_seen: tuple[int, int] | None = None
    same: int = 0


@dataclass
class _Instance:
    pod: str
    pod_uid: str
    restart: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.pod_uid, self.restart)


@dataclass
class _Job:
    job_id: str
    job: dict[str, Any] | None = None
    job_gone: bool = False  # the Job object was seen and then deleted
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    gone_pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # last state of deleted pods
    status: JobStatus | None = None
    pending_info: str | None = None
    finishing: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    instances: list[_Instance] = field(default_factory=list)
    cursors: dict[tuple[str, int], _Cursor] = field(default_factory=dict)
    logs_changed: asyncio.Event = field(default_factory=asyncio.Event)
    logs_closing: bool = False
    log_task: asyncio.Task[None] | None = None
    skip: int | None = None  # lines the sink already has (cold start); None: not asked yet
    # Seen unfinished by this process (watch or the executor's own submit). A job first seen
    # already finished by a fresh watcher had its logs delivered by an earlier one.
    seen_active: bool = False
    cancel_requested: bool = False  # this process deletes the Job on purpose: not a surprise


class KubernetesWatcher:
    """Watch the jobs namespace and report to `sink`.

    `KubernetesWatcher(sink, api, *, log_drain_timeout=30, watch_timeout_seconds=300)` where
    `api` is a `kubernetes.KubeApi` (namespace + ApiClient; the caller owns the client).
    `await start()` lists everything and returns once the first lists are applied;
    `await reconcile(active)` fails jobs the database thinks are active but whose Job is gone;
    `await stop()` ends every task (the cluster keeps running, a later watcher takes over).
    """

    def __init__(
        self,
        sink: JobSink,
        api: KubeApi,
        *,
        log_drain_timeout: float = 30.0,
        watch_timeout_seconds: int = 300,
        log_read_timeout: float | None = 900.0,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        self.sink = sink
        self.api = api
        self.log_drain_timeout = log_drain_timeout
        self.watch_timeout_seconds = watch_timeout_seconds
        self.log_read_timeout = log_read_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._jobs: dict[str, _Job] = {}
        self._pod_job: dict[str, str] = {}  # pod name → job id
        self._events: dict[str, dict[str, dict[str, Any]]] = {}  # pod name → event name → event
        self._finished: dict[str, JobStatus] = {}  # recent terminal statuses, outliving forgotten jobs
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._synced_resources: set[str] = set()
        self._synced = asyncio.Event()
        self._started = False
        self._stopping = False
        self.relists: dict[str, int] = {r: 0 for r in RESOURCES}  # for tests and metrics

    # ------------------------------------------------------------------ public

    async def start(self, sync_timeout: float | None = 60.0) -> None:
        """Start watching; return once Jobs, Pods and Events are listed and applied (TimeoutError
        after `sync_timeout` seconds; the watch keeps trying in the background)."""
        if not self._started:
            self._started = True
            self._tasks = [asyncio.create_task(self._process(), name="k8s-watcher-process")]
            self._tasks += [asyncio.create_task(self._watch_loop(r), name=f"k8s-watcher-{r}") for r in RESOURCES]
        async with asyncio.timeout(sync_timeout):
            await self._synced.wait()

    async def stop(self) -> None:
        self._stopping = True
        tasks = self._tasks + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []

    async def run(self, stop: asyncio.Event) -> None:
        """Start, then watch until `stop` is set (or a watch task dies), then stop."""
        await self.start()
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            await self.stop()

    def status_of(self, job_id: str) -> JobStatus | None:
        job = self._jobs.get(job_id)
        return job.status if job else None

    async def report(self, update: JobUpdate) -> None:
        """An update decided outside the watch (the executor's submit/cancel), kept in order.

        A PENDING after the watch already reported something would only add noise: dropped.
        """
        job = self._job(update.job_id)
        if not update.status.terminal:
            job.seen_active = True
            if update.status == JobStatus.PENDING and job.status is not None:
                return
        await self._emit(job, update)
        self._drop_if_unknown(job)

    def expect_cancel(self, job_id: str) -> None:
        """The executor is about to delete this job's Job: its disappearance is a plain CANCELLED."""
        self._job(job_id).cancel_requested = True

    def _drop_if_unknown(self, job: _Job) -> None:
        """A terminal job the cluster never showed us needs no state (`_finished` remembers it)."""
        if job.status is not None and job.status.terminal and job.job is None and not job.pods:
            self._jobs.pop(job.job_id, None)

    async def reconcile(self, active: list[tuple[str, dict[str, Any]]]) -> None:
        """For each job the database believes active: if its Job no longer exists, report FAILED.

        A Job that exists needs nothing: the watch reports it (even one that finished while no
        watcher ran). Jobs the API cannot answer for now are retried in the background.
        """
        undecided = await asyncio.gather(*(self._reconcile_one(job_id, handle) for job_id, handle in active))
        later = [item for item, done in zip(active, undecided, strict=True) if not done]
        if later and not self._stopping:
            task = asyncio.create_task(self._reconcile_later(later), name="k8s-reconcile-retry")
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def _reconcile_later(self, pending: list[tuple[str, dict[str, Any]]]) -> None:
        delay = self.backoff
        while pending:
            await asyncio.sleep(delay)  # the API server was failing: back off before asking again
            delay = min(delay * 2, self.max_backoff)
            done = await asyncio.gather(*(self._reconcile_one(job_id, handle) for job_id, handle in pending))
            pending = [item for item, ok in zip(pending, done, strict=True) if not ok]

    async def _reconcile_one(self, job_id: str, handle: dict[str, Any]) -> bool:
        """True once decided (the Job exists, or FAILED was reported)."""
        name = (handle or {}).get("name")
        try:
            if name:
                exists = await self.api.get_job(name) is not None
            else:
                items, _ = await self.api.list("jobs", label_selector=f"{JOB_ID_LABEL}={job_id}")
                exists = bool(items)
        except Exception as exc:
            log.warning("reconcile job %s: cannot tell whether its Job exists: %s", job_id, describe_api_error(exc))
            return False
        if exists:
            return True
        job = self._job(job_id)
        what = f"Kubernetes Job {name}" if name else "its Kubernetes Job"
        platform = f"{what} no longer exists (deleted or expired while no watcher was running)"
        await self._emit(job, JobUpdate(job_id, JobStatus.FAILED, _now(), error=JobError(platform=platform)))
        self._drop_if_unknown(job)
        return True

    # ------------------------------------------------------------------ watching

    def _selectors(self, resource: str) -> dict[str, str]:
        if resource == "events":
            return {"field_selector": "involvedObject.kind=Pod"}
        return {"label_selector": JOB_ID_LABEL}

    async def _watch_loop(self, resource: str) -> None:
        rv: str | None = None
        delay = self.backoff
        first = True
        while not self._stopping:
            try:
                if rv is None:
                    items, rv = await self.api.list(resource, **self._selectors(resource))
                    await self._queue.put(("list", resource, items))
                    if first:
                        await self._queue.put(("synced", resource))
                        first = False
                    else:
                        self.relists[resource] += 1
                got_events = False
                opened = asyncio.get_running_loop().time()
                stream = self.api.watch(
                    resource, rv, timeout_seconds=self._watch_timeout(), **self._selectors(resource)
                )
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        kind = event.get("type")
                        obj = event.get("object") or {}
                        if kind == "ERROR":
                            code = obj.get("code")
                            if code == 410:
                                log.info("watch %s: resourceVersion %s expired; re-listing", resource, rv)
                                rv = None
                                break
                            raise ApiException(status=code or 500, reason=f"{obj.get('reason')}: {obj.get('message')}")
                        new_rv = _meta(obj).get("resourceVersion")
                        if kind != "BOOKMARK":
                            await self._queue.put(("event", resource, kind, obj))
                        if new_rv:
                            rv = new_rv
                        got_events = True
                if got_events or rv is None or asyncio.get_running_loop().time() - opened > 1.0:
                    delay = self.backoff
                    continue
                # An empty stream that ended at once: do not spin against a struggling server.
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                log.warning("watch %s: %s; retrying", resource, describe_api_error(exc))
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
            except Exception as exc:
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                log.log(
                    level, "watch %s: %s; retrying", resource, describe_api_error(exc), exc_info=not is_transient(exc)
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)

    def _watch_timeout(self) -> int:
        # Spread reconnects of many watchers; the server closes the stream at this time.
        return int(self.watch_timeout_seconds * (0.9 + 0.2 * random.random())) or 1

    # ------------------------------------------------------------------ applying changes

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            job = self._jobs[job_id] = _Job(job_id, status=self._finished.get(job_id))
        return job

    async def _process(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                for job_id in self._apply(item):
                    await self._evaluate(self._jobs[job_id])
            except Exception:  # one bad object must not stop the watcher
                log.exception("watcher: failed to apply %s", item[:2])

    def _apply(self, item: tuple[Any, ...]) -> list[str]:
        """Update the picture; return the job ids to re-evaluate."""
        if item[0] == "synced":
            self._synced_resources.add(item[1])
            if self._synced_resources == set(RESOURCES):
                self._synced.set()
            return []
        if item[0] == "list":
            return self._apply_list(item[1], item[2])
        _, resource, kind, obj = item
        return self._apply_object(resource, kind, obj)

    def _apply_list(self, resource: str, items: list[dict[str, Any]]) -> list[str]:
        touched: set[str] = set()
        if resource == "jobs":
            listed = {_job_id_of(i) for i in items}
            for job in list(self._jobs.values()):
                if job.job is not None and job.job_id not in listed:  # deleted while we were not watching
                    touched |= set(self._apply_object("jobs", "DELETED", job.job))
        elif resource == "pods":
            names = {_meta(i).get("name") for i in items}
            for job in list(self._jobs.values()):
                for name, pod in list(job.pods.items()):
                    if name not in names:
                        touched |= set(self._apply_object("pods", "DELETED", pod))
        else:
            self._events.clear()
        for obj in items:
            touched |= set(self._apply_object(resource, "ADDED", obj))
        return sorted(touched)

    def _apply_object(self, resource: str, kind: str, obj: dict[str, Any]) -> list[str]:
        meta = _meta(obj)
        name = meta.get("name") or ""
        if resource == "events":
            involved = obj.get("involvedObject") or {}
            pod_name = involved.get("name") or ""
            if kind == "DELETED":
                self._events.get(pod_name, {}).pop(name, None)
                return []
            if len(self._events) > 5000 and pod_name not in self._events:  # bounded: unknown pods
                self._events.pop(next(iter(self._events)))
            self._events.setdefault(pod_name, {})[name] = obj
            job_id = self._pod_job.get(pod_name)
            return [job_id] if job_id else []
        job_id = _job_id_of(obj)
        if not job_id:
            return []
        job = self._job(job_id)
        if resource == "jobs":
            if kind == "DELETED":
                job.job_gone = True
                job.job = job.job or obj
                if job.status is not None and job.status.terminal and not job.finishing:
                    self._forget(job)
                    return []
            elif job.job is None or _rv(obj) >= _rv(job.job):
                job.job = obj
            return [job_id]
        # pods
        if kind == "DELETED":
            last = job.pods.pop(name, None)
            job.gone_pods[name] = obj if _rv(obj) >= _rv(last) else last  # type: ignore[assignment]
            if len(job.gone_pods) > 5:
                job.gone_pods.pop(next(iter(job.gone_pods)))
            self._pod_job.pop(name, None)
            self._events.pop(name, None)
        elif name not in job.pods or _rv(obj) >= _rv(job.pods[name]):
            job.pods[name] = obj
            self._pod_job[name] = job_id
            self._register_instances(job, obj)
        return [job_id]

    def _forget(self, job: _Job) -> None:
        """A finished job whose Job object is gone (TTL): nothing more can happen to it."""
        self._jobs.pop(job.job_id, None)
        for name in list(job.pods):
            self._pod_job.pop(name, None)
            self._events.pop(name, None)

    async def _evaluate(self, job: _Job) -> None:
        if job.finishing or (job.status is not None and job.status.terminal):
            if job.job_gone and not job.finishing:
                self._forget(job)
            return
        pods = _pods_in_order(job.pods)
        if job.job is None:
            return  # pods before their Job (different streams): wait for the Job
        complete, failed = _condition(job.job, "Complete"), _condition(job.job, "Failed")
        if complete or failed:
            status = JobStatus.SUCCEEDED if complete else JobStatus.FAILED
            self._finish(job, status, None, parse_time((complete or failed or {}).get("lastTransitionTime")))
            return
        job.seen_active = True
        if job.job_gone or _meta(job.job).get("deletionTimestamp"):
            name = _meta(job.job).get("name") or "?"
            error = None
            if not job.cancel_requested:
                error = JobError(platform=f"cancelled: Kubernetes Job {name} was deleted before it finished")
            self._finish(job, JobStatus.CANCELLED, error, None)
            return
        started = self._started_at(pods)
        if started is not None:
            await self._emit(job, JobUpdate(job.job_id, JobStatus.RUNNING, started))
            return
        if not pods and job.status is not None:
            return  # the Job controller has not made the pod yet: nothing new to say
        events = [e for p in pods for e in self._events.get(_meta(p).get("name") or "", {}).values()]
        info = derive_pending_info(pods, events)
        await self._emit(job, JobUpdate(job.job_id, JobStatus.PENDING, _now(), pending_info=info))

    @staticmethod
    def _started_at(pods: list[dict[str, Any]]) -> datetime | None:
        for pod in pods:
            started = _main_started(_container_status(pod, MAIN_CONTAINER))
            if started is not None:
                return parse_time(started) or _now()
        return None

    async def _emit(self, job: _Job, update: JobUpdate) -> None:
        async with job.lock:
            if not _may_update(job.status, job.pending_info, update):
                return
            job.status, job.pending_info = update.status, update.pending_info
            if update.status.terminal:
                self._finished[job.job_id] = update.status
                while len(self._finished) > 10_000:
                    self._finished.pop(next(iter(self._finished)))
                job.logs_closing = True  # the log task ends once the last container is read
                job.logs_changed.set()
            try:
                await self.sink.job_update(update)
            except Exception:
                log.exception("job %s: sink rejected %s update", job.job_id, update.status.value)

    def _finish(self, job: _Job, status: JobStatus, error: JobError | None, at: datetime | None) -> None:
        job.finishing = True
        task = asyncio.create_task(self._finish_job(job, status, error, at), name=f"k8s-finish-{job.job_id}")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _finish_job(self, job: _Job, status: JobStatus, error: JobError | None, at: datetime | None) -> None:
        """Fresh pod status, RUNNING if it ran unseen, every log line, then the terminal update."""
        try:
            await self._refresh_pods(job)
            # Deleted pods count too: the Job controller removes the pod of a Job past its deadline.
            started = self._started_at(_pods_in_order({**job.gone_pods, **job.pods}))
            if started is not None:
                await self._emit(job, JobUpdate(job.job_id, JobStatus.RUNNING, started))
            await self._drain_logs(job)
            if status == JobStatus.FAILED:
                await self._refresh_pods(job)  # containers may have been terminating until now
                error = derive_error(job.job, _pods_in_order({**job.gone_pods, **job.pods}))
            await self._emit(job, JobUpdate(job.job_id, status, at or _now(), error=error))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: could not report its %s outcome", job.job_id, status.value)
        finally:
            job.finishing = False
            if job.job_gone:
                self._forget(job)

    async def _refresh_pods(self, job: _Job) -> None:
        """Read the job's pods now: the pod watch may lag the Job watch."""
        try:
            items, _ = await self.api.list("pods", label_selector=f"{JOB_ID_LABEL}={job.job_id}")
        except Exception as exc:  # the cached pods are the fallback
            log.warning("job %s: could not list its pods: %s", job.job_id, describe_api_error(exc))
            return
        for pod in items:
            name = _meta(pod).get("name") or ""
            if name in job.gone_pods:
                continue
            if name not in job.pods or _rv(pod) >= _rv(job.pods[name]):
                job.pods[name] = pod
                self._pod_job[name] = job.job_id
                self._register_instances(job, pod)

    # ------------------------------------------------------------------ logs

    def _register_instances(self, job: _Job, pod: dict[str, Any]) -> None:
        """Queue every main-container instance of `pod` that has started for log following."""
        status = _container_status(pod, MAIN_CONTAINER)
        if not status:
            return
        state = status.get("state") or {}
        restart = int(status.get("restartCount") or 0)
        top = restart if ("running" in state or "terminated" in state) else restart - 1
        meta = _meta(pod)
        known = {i.key for i in job.instances}
        added = False
        for r in range(max(top - 1, 0), top + 1):  # older instances can no longer be read
            inst = _Instance(meta.get("name") or "", _uid(pod), r)
            if inst.key not in known:
                job.instances.append(inst)
                added = True
        if added:
            job.logs_changed.set()
            if job.log_task is None and not self._stopping:
                job.log_task = asyncio.create_task(self._log_pump(job), name=f"k8s-logs-{job.job_id}")
                self._side_tasks.add(job.log_task)
                job.log_task.add_done_callback(self._side_tasks.discard)

    async def _drain_logs(self, job: _Job) -> None:
        job.logs_closing = True
        job.logs_changed.set()
        if job.log_task is None:
            return
        try:
            async with asyncio.timeout(self.log_drain_timeout):
                await asyncio.shield(job.log_task)
        except TimeoutError:
            log.warning("job %s: logs still streaming after %.0f s; reporting the outcome anyway",
                        job.job_id, self.log_drain_timeout)  # fmt: skip
            job.log_task.cancel()

    async def _log_pump(self, job: _Job) -> None:
        """Follow the job's container instances one after the other, in order."""
        index = 0
        while True:
            if index < len(job.instances):
                inst = job.instances[index]
                index += 1
                try:
                    await self._follow(job, inst)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("job %s: following logs of %s#%d failed", job.job_id, inst.pod, inst.restart)
                continue
            if job.logs_closing:
                return
            job.logs_changed.clear()
            if index < len(job.instances) or job.logs_closing:
                continue
            await job.logs_changed.wait()

    async def _initial_skip(self, job: _Job) -> int | None:
        """Lines the sink already holds for this job (a watcher that restarted mid-job); None when
        the sink cannot tell."""
        counter = getattr(self.sink, "job_log_count", None)
        if counter is None:
            return None
        try:
            return int(await counter(job.job_id, LOG_STREAM))
        except Exception:
            log.exception("job %s: sink could not count its log lines", job.job_id)
            return None

    async def _follow(self, job: _Job, inst: _Instance) -> None:
        """Deliver one container instance's log completely, then return."""
        if job.skip is None:
            if job.cursors:  # this watcher delivered the earlier lines itself
                job.skip = 0
            else:
                known = await self._initial_skip(job)
                if known is None and not job.seen_active:
                    return  # finished before this watcher saw it: an earlier watcher delivered it
                job.skip = known or 0
        cursor = job.cursors.setdefault(inst.key, _Cursor())
        delay = self.backoff
        final = False
        pod: dict[str, Any] | None = job.pods.get(inst.pod)
        while True:
            cached = job.pods.get(inst.pod)
            if cached is not None and (pod is None or _rv(cached) >= _rv(pod)):
                pod = cached
            if pod is None:
                pod = await self.api.get_pod(inst.pod)
            if pod is None or _uid(pod) != inst.pod_uid:
                return  # the pod, and its log, is gone
            status = _container_status(pod, MAIN_CONTAINER) or {}
            current = int(status.get("restartCount") or 0)
            if current - inst.restart > 1:
                log.warning("job %s: log of %s restart %d is no longer readable", job.job_id, inst.pod, inst.restart)
                return
            previous = current > inst.restart
            ended = previous or "terminated" in (status.get("state") or {})
            follow = not (ended or final)
            delivered_before = cursor.delivered
            resp = None
            try:
                resp = await self.api.open_log(
                    inst.pod, MAIN_CONTAINER, follow=follow, previous=previous, timestamps=True,
                    read_timeout=self.log_read_timeout if follow else 60.0,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status == 404 or (exc.status == 400 and not follow):
                    return  # pod gone, or nothing readable is left of this instance
                if not (is_transient(exc) or exc.status == 400):
                    raise
            except Exception as exc:
                if not is_transient(exc):
                    raise
            if resp is not None:
                try:
                    await self._read_log(job, cursor, resp, follow)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                finally:
                    resp.release()
                if not follow:
                    return
            # The follow stream ended: the container finished, or the stream was cut. Ask.
            try:
                pod = await self.api.get_pod(inst.pod)
            except Exception as exc:
                log.warning("job %s: pod %s: %s", job.job_id, inst.pod, describe_api_error(exc))
            else:
                if pod is None or _uid(pod) != inst.pod_uid:
                    return
                status = _container_status(pod, MAIN_CONTAINER) or {}
                if int(status.get("restartCount") or 0) > inst.restart or "terminated" in (status.get("state") or {}):
                    final = True  # one complete read picks up whatever a cut stream missed
                    continue
            if resp is None or cursor.delivered == delivered_before:
                await asyncio.sleep(delay * (0.5 + random.random()))  # backoff before reconnecting
                delay = min(delay * 2, self.max_backoff)
            else:
                delay = self.backoff

    async def _read_log(self, job: _Job, cursor: _Cursor, resp: Any, follow: bool) -> None:
        read = _Read()
        lines = iter_lines(resp.content, MAX_LINE_BYTES)
        async with contextlib.aclosing(lines):
            async for raw, complete in lines:
                if not complete and follow:
                    return  # a fragment of a cut stream: the reconnect reads the whole line
                await self._deliver(job, cursor, read, raw)

    async def _deliver(self, job: _Job, cursor: _Cursor, read: _Read, raw: bytes) -> None:
        """Deliver one line unless an earlier read of this instance delivered it already.

        Lines are identified by their kubelet timestamp: everything before the cursor's
        timestamp was delivered, and so were the first `at_last_ts` lines at that timestamp.
        A piece of a long line split by `iter_lines` carries no timestamp and counts as
        another line at the timestamp of the line it belongs to.
        """
        stamp, sep, text = raw.partition(b" ")
        parsed = parse_log_timestamp(stamp) if sep else None
        if parsed is None:
            text = raw
        else:
            read.ts = parsed
        ts = read.ts
        if ts is not None:
            if read.ts_seen != ts:
                read.ts_seen, read.same = ts, 0
            read.same += 1
            last = cursor.last_ts
            if last is not None and (ts < last or (ts == last and read.same <= cursor.at_last_ts)):
                return  # an earlier read delivered it
            cursor.last_ts, cursor.at_last_ts = ts, read.same
        cursor.delivered += 1
        if job.skip:
            job.skip -= 1  # the sink has this line from an earlier watcher
            return
        line = text.removesuffix(b"\r").decode("utf-8", "replace")
        try:
            await self.sink.job_log(job.job_id, LOG_STREAM, line)
        except Exception:
            log.exception("job %s: sink rejected a log line", job.job_id)


# ------------------------------------------------------------------------------- service


async def run_watcher_service(
    sink: JobSink,
    *,
    active_jobs: Callable[[], Awaitable[list[tuple[str, dict[str, Any]]]]],
    stop: asyncio.Event,
    database_url: str | None = None,
    config: KubernetesConfig | None = None,
    api_client: Any = None,
    watcher_options: dict[str, Any] | None = None,
) -> None:
    """What `mlpatron watcher` runs until `stop` is set.

    With `database_url`, only the holder of the PostgreSQL advisory lock acts: acquire (waiting
    as long as another watcher holds it), start a watcher, reconcile `await active_jobs()`,
    watch; on losing the lock stop acting and wait for it again. Without it: just watch.
    """
    from app.execution.leader import AdvisoryLock, run_as_leader

    config = config or KubernetesConfig.from_env()
    owns_client = api_client is None
    client = api_client or await create_api_client(config)
    api = KubeApi(client, config.namespace)

    async def act() -> None:
        watcher = KubernetesWatcher(sink, api, **(watcher_options or {}))
        try:
            await watcher.start(sync_timeout=None)
            await watcher.reconcile(await active_jobs())
            log.info("watcher: watching namespace %s", config.namespace)
            await asyncio.Event().wait()  # until cancelled (stop, or leadership lost)
        finally:
            await watcher.stop()

    try:
        if database_url:
            await run_as_leader(AdvisoryLock(database_url), act, stop)
        else:
            task = asyncio.create_task(act())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in (task, stopper):
                t.cancel()
            await asyncio.gather(task, stopper, return_exceptions=True)
    finally:
        if owns_client:
            await client.close()
