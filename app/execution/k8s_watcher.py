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

The events of a job's pods become its log lines with stream `event` (`Warning FailedScheduling: …`),
written as they arrive, so they sit in order with the container's output, and all of them before the
terminal update; the sink writes each event (uid, occurrences) once, so a re-list or a fresh watcher
adds only what is new. The image the main container runs, by digest (`imageID`), is reported once
per job (`job_environment`).

Updates are emitted forward only: the last reported status per job is kept in memory and a
PENDING is repeated only when its `pending_info` changes; across watcher restarts the sink's
own monotonic guard drops what was already reported. A RUNNING that happened unseen (a job
that started and finished while a watch was down) is still reported before the terminal
update, and every log line is delivered before it.

What the objects say is read by `k8s_status`; each job's log is followed by a `k8s_logs.JobLogs`
(one task per job, delivering every line before the job's terminal update); API calls are
`k8s_api`'s.

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
from datetime import datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from app.execution.executor import JobSink
from app.execution.k8s_api import KubeApi, create_api_client, describe_api_error, is_transient
from app.execution.k8s_logs import JobLogs, LogOptions
from app.execution.k8s_manifests import JOB_ID_LABEL, MAIN_CONTAINER, KubernetesConfig
from app.execution.k8s_status import (
    Obj,
    condition,
    container_status,
    derive_error,
    derive_pending_info,
    event_line,
    event_occurrences,
    event_time,
    job_id_of,
    may_update,
    meta,
    now,
    parse_time,
    pods_in_order,
    pulled_image,
    rv,
    started_at,
    uid,
)
from app.execution.leader import AdvisoryLock, run_as_leader
from app.jobs.status import JobError, JobEvent, JobStatus, JobUpdate

log = logging.getLogger(__name__)

RESOURCES = ("jobs", "pods", "events")
EVENT_STREAM = "event"


@dataclass
class _Job:
    job_id: str
    logs: JobLogs
    pods: dict[str, Obj]  # the same dict `logs` reads
    job: Obj | None = None
    job_gone: bool = False  # the Job object was seen and then deleted
    gone_pods: dict[str, Obj] = field(default_factory=dict)  # last state of deleted pods
    status: JobStatus | None = None
    pending_info: str | None = None
    finishing: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cancel_requested: bool = False  # this process deletes the Job on purpose: not a surprise
    dirty: bool = False  # changed since its evaluator last looked
    evaluator: asyncio.Task[None] | None = None
    events_written: dict[str, int] = field(default_factory=dict)  # event uid → occurrences in the log
    image_reported: bool = False
    facts_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # the evaluator and the finisher both record


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
        self.watch_timeout_seconds = watch_timeout_seconds
        self._log_options = LogOptions(read_timeout=log_read_timeout, drain_timeout=log_drain_timeout,
                                       backoff=backoff, max_backoff=max_backoff)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._jobs: dict[str, _Job] = {}
        self._pod_job: dict[str, str] = {}  # pod name → job id
        self._events: dict[str, dict[str, Obj]] = {}  # pod name → event name → event
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

    async def report(self, update: JobUpdate) -> None:
        """An update decided outside the watch (the executor's submit/cancel), kept in order.

        A PENDING after the watch already reported something would only add noise: dropped.
        """
        job = self._job(update.job_id)
        if not update.status.terminal:
            job.logs.seen_active = True
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
        await self._emit(job, JobUpdate(job_id, JobStatus.FAILED, now(), error=JobError(platform=platform)))
        self._drop_if_unknown(job)
        return True

    # ------------------------------------------------------------------ watching

    def _selectors(self, resource: str) -> dict[str, str]:
        if resource == "events":
            return {"field_selector": "involvedObject.kind=Pod"}
        return {"label_selector": JOB_ID_LABEL}

    async def _watch_loop(self, resource: str) -> None:
        """List, then watch from the list's resourceVersion, forever: resume where a stream ended,
        re-list on 410 Gone, back off (with jitter) while the API server fails."""
        rv: str | None = None
        delay = self.backoff
        first = True
        while not self._stopping:
            try:
                if rv is None:
                    rv = await self._list(resource, first)
                    first = False
                opened = asyncio.get_running_loop().time()
                rv, got_events = await self._watch(resource, rv)
                if got_events or rv is None or asyncio.get_running_loop().time() - opened > 1.0:
                    delay = self.backoff
                    continue
                # An empty stream that ended at once: do not spin against a struggling server.
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                log.warning("watch %s: %s; retrying", resource, describe_api_error(exc))
            except Exception as exc:
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                log.log(
                    level, "watch %s: %s; retrying", resource, describe_api_error(exc), exc_info=not is_transient(exc)
                )
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.max_backoff)

    async def _list(self, resource: str, first: bool) -> str:
        """List `resource` onto the queue; returns the list's resourceVersion."""
        items, rv = await self.api.list(resource, **self._selectors(resource))
        await self._queue.put(("list", resource, items))
        if first:
            await self._queue.put(("synced", resource))
        else:
            self.relists[resource] += 1
        return rv

    async def _watch(self, resource: str, rv: str) -> tuple[str | None, bool]:
        """One watch stream onto the queue: (the last resourceVersion, None to re-list; whether
        anything came)."""
        got_events = False
        stream = self.api.watch(resource, rv, timeout_seconds=self._watch_timeout(), **self._selectors(resource))
        async with contextlib.aclosing(stream):
            async for event in stream:
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        log.info("watch %s: resourceVersion %s expired; re-listing", resource, rv)
                        return None, got_events
                    raise ApiException(status=code or 500, reason=f"{obj.get('reason')}: {obj.get('message')}")
                new_rv = meta(obj).get("resourceVersion")
                if kind != "BOOKMARK":
                    await self._queue.put(("event", resource, kind, obj))
                if new_rv:
                    rv = new_rv
                got_events = True
        return rv, got_events

    def _watch_timeout(self) -> int:
        # Spread reconnects of many watchers; the server closes the stream at this time.
        return int(self.watch_timeout_seconds * (0.9 + 0.2 * random.random())) or 1

    # ------------------------------------------------------------------ applying changes

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            pods: dict[str, Obj] = {}
            logs = JobLogs(job_id, pods, self.sink, self.api, self._log_options)
            job = self._jobs[job_id] = _Job(job_id, logs, pods, status=self._finished.get(job_id))
        return job

    async def _process(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                for job_id in self._apply(item):
                    self._evaluate_soon(self._jobs[job_id])
            except Exception:  # one bad object must not stop the watcher
                log.exception("watcher: failed to apply %s", item[:2])

    def _evaluate_soon(self, job: _Job) -> None:
        """Evaluate `job` in its own task, off the apply loop: each report is a database transaction,
        and awaiting them here queued every later event of every job behind them (a thousand Jobs
        changing state lagged by tens of seconds). One job's evaluations stay in order; changes that
        arrive meanwhile are folded into one more evaluation (the status is derived from the latest
        picture, never from the event sequence)."""
        job.dirty = True
        if job.evaluator is None:
            job.evaluator = asyncio.create_task(self._evaluate_while_dirty(job), name=f"k8s-evaluate-{job.job_id}")
            self._track(job.evaluator)

    async def _evaluate_while_dirty(self, job: _Job) -> None:
        try:
            while job.dirty:
                job.dirty = False
                await self._evaluate(job)
        except Exception:
            log.exception("watcher: failed to evaluate job %s", job.job_id)
        finally:
            job.evaluator = None

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

    def _apply_list(self, resource: str, items: list[Obj]) -> list[str]:
        touched: set[str] = set()
        if resource == "jobs":
            listed = {job_id_of(i) for i in items}
            for job in list(self._jobs.values()):
                if job.job is not None and job.job_id not in listed:  # deleted while we were not watching
                    touched |= set(self._apply_object("jobs", "DELETED", job.job))
        elif resource == "pods":
            names = {meta(i).get("name") for i in items}
            for job in list(self._jobs.values()):
                for name, pod in list(job.pods.items()):
                    if name not in names:
                        touched |= set(self._apply_object("pods", "DELETED", pod))
        else:
            self._events.clear()
        for obj in items:
            touched |= set(self._apply_object(resource, "ADDED", obj))
        return sorted(touched)

    def _apply_object(self, resource: str, kind: str, obj: Obj) -> list[str]:
        if resource == "events":
            return self._apply_event(kind, obj)
        job_id = job_id_of(obj)
        if not job_id:
            return []
        job = self._job(job_id)
        if resource == "jobs":
            return self._apply_job(job, kind, obj)
        self._apply_pod(job, kind, obj)
        return [job_id]

    def _apply_event(self, kind: str, obj: Obj) -> list[str]:
        name = meta(obj).get("name") or ""
        pod_name = (obj.get("involvedObject") or {}).get("name") or ""
        if kind == "DELETED":
            self._events.get(pod_name, {}).pop(name, None)
            return []
        if len(self._events) > 5000 and pod_name not in self._events:  # bounded: unknown pods
            self._events.pop(next(iter(self._events)))
        self._events.setdefault(pod_name, {})[name] = obj
        job_id = self._pod_job.get(pod_name)
        return [job_id] if job_id else []

    def _apply_job(self, job: _Job, kind: str, obj: Obj) -> list[str]:
        if kind == "DELETED":
            job.job_gone = True
            job.job = job.job or obj
            if job.status is not None and job.status.terminal and not job.finishing:
                self._forget(job)
                return []
        elif job.job is None or rv(obj) >= rv(job.job):
            job.job = obj
        return [job.job_id]

    def _apply_pod(self, job: _Job, kind: str, obj: Obj) -> None:
        name = meta(obj).get("name") or ""
        if kind == "DELETED":
            last = job.pods.pop(name, None)
            job.gone_pods[name] = obj if last is None or rv(obj) >= rv(last) else last
            if len(job.gone_pods) > 5:
                job.gone_pods.pop(next(iter(job.gone_pods)))
            self._pod_job.pop(name, None)
            self._events.pop(name, None)
        elif name not in job.pods or rv(obj) >= rv(job.pods[name]):
            self._keep_pod(job, name, obj)

    def _keep_pod(self, job: _Job, name: str, pod: Obj) -> None:
        job.pods[name] = pod
        self._pod_job[name] = job.job_id
        task = job.logs.register(pod, may_start=not self._stopping)
        if task is not None:
            self._track(task)

    def _track(self, task: asyncio.Task[None]) -> None:
        """A task `stop` ends."""
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

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
        pods = pods_in_order(job.pods)
        await self._record_facts(job)
        if job.job is None:
            return  # pods before their Job (different streams): wait for the Job
        complete, failed = condition(job.job, "Complete"), condition(job.job, "Failed")
        if complete or failed:
            status = JobStatus.SUCCEEDED if complete else JobStatus.FAILED
            self._finish(job, status, None, parse_time((complete or failed or {}).get("lastTransitionTime")))
            return
        job.logs.seen_active = True
        if job.job_gone or meta(job.job).get("deletionTimestamp"):
            name = meta(job.job).get("name") or "?"
            error = None
            if not job.cancel_requested:
                error = JobError(platform=f"cancelled: Kubernetes Job {name} was deleted before it finished")
            self._finish(job, JobStatus.CANCELLED, error, None)
            return
        started = started_at(pods)
        if started is not None:
            await self._emit(job, JobUpdate(job.job_id, JobStatus.RUNNING, started))
            return
        if not pods and job.status is not None:
            return  # the Job controller has not made the pod yet: nothing new to say
        events = [e for p in pods for e in self._events.get(meta(p).get("name") or "", {}).values()]
        info = derive_pending_info(pods, events)
        await self._emit(job, JobUpdate(job.job_id, JobStatus.PENDING, now(), pending_info=info))

    async def _emit(self, job: _Job, update: JobUpdate) -> None:
        async with job.lock:
            if not may_update(job.status, job.pending_info, update):
                return
            job.status, job.pending_info = update.status, update.pending_info
            if update.status.terminal:
                self._finished[job.job_id] = update.status
                while len(self._finished) > 10_000:
                    self._finished.pop(next(iter(self._finished)))
                job.logs.close()  # the log task ends once the last container is read
            try:
                await self.sink.job_update(update)
            except Exception:
                log.exception("job %s: sink rejected %s update", job.job_id, update.status.value)

    def _finish(self, job: _Job, status: JobStatus, error: JobError | None, at: datetime | None) -> None:
        job.finishing = True
        self._track(asyncio.create_task(self._finish_job(job, status, error, at), name=f"k8s-finish-{job.job_id}"))

    async def _finish_job(self, job: _Job, status: JobStatus, error: JobError | None, at: datetime | None) -> None:
        """Fresh pod status, RUNNING if it ran unseen, every log line, then the terminal update."""
        try:
            if not self._main_ended(job):
                await self._refresh_pods(job)
            # Deleted pods count too: the Job controller removes the pod of a Job past its deadline.
            started = started_at(pods_in_order({**job.gone_pods, **job.pods}))
            if started is not None:
                await self._emit(job, JobUpdate(job.job_id, JobStatus.RUNNING, started))
            await job.logs.drain()
            if status == JobStatus.FAILED:
                await self._refresh_pods(job)  # containers may have been terminating until now
                error = derive_error(job.job, pods_in_order({**job.gone_pods, **job.pods}))
            await self._record_facts(job)
            await self._emit(job, JobUpdate(job.job_id, status, at or now(), error=error))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: could not report its %s outcome", job.job_id, status.value)
        finally:
            job.finishing = False
            if job.job_gone:
                self._forget(job)

    async def _record_facts(self, job: _Job) -> None:
        """The pods' new Events into the log, and the pulled image once (a failed write is retried
        on the next change: nothing is marked written before the sink took it)."""
        async with job.facts_lock:
            pods = pods_in_order({**job.gone_pods, **job.pods})
            events = [e for p in pods for e in self._events.get(meta(p).get("name") or "", {}).values()]
            fresh = [JobEvent(uid(e), event_occurrences(e), event_line(e))
                     for e in sorted(events, key=lambda e: (event_time(e), rv(e)))
                     if event_occurrences(e) > job.events_written.get(uid(e), 0)]  # fmt: skip
            if fresh and await self._store_events(job.job_id, fresh):
                job.events_written.update((e.uid, e.occurrences) for e in fresh)
            image = None if job.image_reported else pulled_image(pods)
            report = getattr(self.sink, "job_environment", None)
            if image and report is not None:
                try:
                    await report(job.job_id, image)
                    job.image_reported = True
                except Exception:
                    log.exception("job %s: sink rejected its image", job.job_id)

    async def _store_events(self, job_id: str, events: list[JobEvent]) -> bool:
        store = getattr(self.sink, "job_events", None)  # deduplicating sinks; plain ones take lines
        try:
            if store is not None:
                await store(job_id, events)
            else:
                for event in events:
                    await self.sink.job_log(job_id, EVENT_STREAM, event.line)
        except Exception:
            log.exception("job %s: sink rejected %d event lines", job_id, len(events))
            return False
        return True

    @staticmethod
    def _main_ended(job: _Job) -> bool:
        """The pod watch already shows the main container ended: a fresh read would say no more
        (with a thousand Jobs ending together, that list per Job cost up to a second each)."""
        pods = pods_in_order(job.pods)
        state = ((container_status(pods[-1], MAIN_CONTAINER) or {}).get("state") or {}) if pods else {}
        return "terminated" in state

    async def _refresh_pods(self, job: _Job) -> None:
        """Read the job's pods now: the pod watch may lag the Job watch."""
        try:
            items, _ = await self.api.list("pods", label_selector=f"{JOB_ID_LABEL}={job.job_id}")
        except Exception as exc:  # the cached pods are the fallback
            log.warning("job %s: could not list its pods: %s", job.job_id, describe_api_error(exc))
            return
        for pod in items:
            name = meta(pod).get("name") or ""
            if name in job.gone_pods:
                continue
            if name not in job.pods or rv(pod) >= rv(job.pods[name]):
                self._keep_pod(job, name, pod)


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
