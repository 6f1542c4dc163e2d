"""A fake Kubernetes API server for the Kubernetes executor and watcher tests.

It speaks the real wire protocol to kubernetes-asyncio over HTTP on 127.0.0.1:

* `batch/v1` Jobs: create (409 AlreadyExists on a duplicate), get, list, delete with
  `propagationPolicy` (Foreground: `deletionTimestamp` + `foregroundDeletion` finalizer, pods
  deleted, then the Job; Background; Orphan);
* `v1` Pods and Events: get, list;
* lists carry `metadata.resourceVersion`; `labelSelector` (`k=v`, `k!=v`, `k`, `!k`) and
  `fieldSelector` (dotted paths, `=`/`!=`) filter them;
* `watch=true` (any capitalisation, kubernetes-asyncio sends `True`) answers a chunked stream of
  JSON lines `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}` from
  `resourceVersion` on (synthetic ADDED events when it is unset or "0"), `timeoutSeconds`,
  `allowWatchBookmarks`; a resourceVersion older than the compaction point gets an ERROR event
  with a 410 Expired Status, like a real API server;
* `pods/{name}/log` with `container`, `follow`, `previous`, `timestamps` (RFC3339Nano, trailing
  zeros trimmed like Go), `tailLines`; a follow stream stays open until the container instance
  ends, the pod is deleted or the test cuts it;
* injectable failures: `fail("POST", "/jobs", 403)` answers the next matching request(s) with a
  Status of that code.

Nothing happens by itself except what a Job controller does on create (one Pending pod) and on
delete (garbage collection): the test plays scheduler and kubelet through the methods in the
"scheduler API" section, and awaits conditions with `wait_until`. Events are core/v1 objects as a
real API server answers them (`count`, or `series.count` for events.k8s.io writers; `repeat_event`
bumps the count of the same Event, MODIFIED); a running container reports an `imageID`
(`repository@sha256:…`); `oom_kill` and `evict` emit the kubelet's OOMKilling / Evicted events.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

# A followed log is written at most this often: the lines written meanwhile go in one chunk. Written
# as they came (a chunk per line), 200 pods logging 50 lines/s cost this server and every follower
# 10,000 writes and reads a second; the watcher benchmark's floor follows through the same server.
LOG_FLUSH_SECONDS = 0.1

RESOURCES = {
    "jobs": ("batch/v1", "Job"),
    "pods": ("v1", "Pod"),
    "events": ("v1", "Event"),
}


def _flag(query: Any, name: str) -> bool:
    return str(query.get(name, "")).lower() in ("true", "1")


def image_id(image: str) -> str:
    """The `imageID` a container runtime reports for `image`: repository (no tag) @ a digest."""
    name, _, tag = image.rpartition(":")
    repository = name if name and "/" not in tag else image
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _copy(obj: Any) -> Any:
    """A deep copy of a JSON object (every object here is one), several times cheaper than
    `copy.deepcopy`: a thousand Jobs are created and changed at once."""
    return orjson.loads(orjson.dumps(obj))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Notifier:
    """Wake every waiter; a waiter takes `waiter()` *before* checking state, so no wake-up is lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._taken = False  # whether anyone holds `_event`: else a notification has no one to wake

    def notify(self) -> None:
        if self._taken:  # once a log line or more: most notifications find no waiter
            self._event.set()
            self._event = asyncio.Event()
            self._taken = False

    def waiter(self) -> asyncio.Event:
        self._taken = True
        return self._event


@dataclass
class _LogInstance:
    """The log of one container instance (one restartCount)."""

    lines: list[tuple[str, str]] = field(default_factory=list)  # (RFC3339Nano timestamp, text)
    done: bool = False
    # Its followers wait here, not on every change of the server: hundreds of followed pods stay cheap.
    changed: _Notifier = field(default_factory=lambda: _Notifier())


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    message: str


def _parse_label_selector(raw: str) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        if "!=" in part:
            k, v = part.split("!=", 1)
            out.append(("!=", k.strip(), v.strip()))
        elif "==" in part:
            k, v = part.split("==", 1)
            out.append(("=", k.strip(), v.strip()))
        elif "=" in part:
            k, v = part.split("=", 1)
            out.append(("=", k.strip(), v.strip()))
        elif part.startswith("!"):
            out.append(("!exists", part[1:].strip(), None))
        else:
            out.append(("exists", part, None))
    return out


def _labels_match(obj: dict[str, Any], selector: list[tuple[str, str, str | None]]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for op, key, value in selector:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True


def _fields_match(obj: dict[str, Any], raw: str) -> bool:
    for part in filter(None, (p.strip() for p in raw.split(","))):
        negate = "!=" in part
        path, value = part.split("!=" if negate else "=", 1)
        current: Any = obj
        for key in path.strip().split("."):
            current = current.get(key) if isinstance(current, dict) else None
        equal = str(current if current is not None else "") == value.strip()
        if equal == negate:
            return False
    return True


class FakeKubernetes:
    """One fake API server. `await start()` → base URL; `await stop()`."""

    def __init__(self) -> None:
        self.rv = 100
        self.compacted_rv = 0
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in RESOURCES}
        # (rv, resource, type, object, the watch event's line: serialised once for every watch)
        self._history: list[tuple[int, str, str, dict[str, Any], bytes]] = []
        self._history_rvs: list[int] = []
        self._logs: dict[tuple[str, str, str], list[_LogInstance]] = {}
        self._changed = _Notifier()  # any state change, watch control, log line, request
        # What a watch stream serves (history, watch control): not log lines or requests, which
        # with hundreds of followed pods would wake every watch stream thousands of times a second.
        self._watch_changed = _Notifier()
        # Name → keys, in creation order (`job(name)`), and Job name → its pods' keys: lookups
        # by name stay O(1) with a thousand Jobs logging.
        self._named: dict[str, dict[str, dict[tuple[str, str], None]]] = {r: {} for r in RESOURCES}
        self._job_pods: dict[str, dict[tuple[str, str], None]] = {}
        self._paused = False
        self._cut_gen = 0
        self._expire_gen = 0
        self._bookmark_gen = 0
        self._log_cut_gen = 0
        self._closing = False
        self._failures: list[_Failure] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock_ns = 0
        self._clock_base = (0, "")
        self.auto_pods = True
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.created_jobs: list[str] = []
        self.created_bodies: list[dict[str, Any]] = []  # Job manifests exactly as clients sent them
        self.deletions: list[tuple[str, str, str | None]] = []  # (resource, name, propagationPolicy)
        self.open_watches: dict[str, int] = {r: 0 for r in RESOURCES}
        self.open_log_streams = 0
        self.bookmarks_sent = 0
        self.job_created_hooks: list[Callable[[dict[str, Any]], None]] = []  # the simulated kubelet
        self.deleted_hooks: list[Callable[[str, str, str], None]] = []  # (resource, namespace, name)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0, routes: list[web.RouteDef] | None = None) -> str:
        """Serve on 127.0.0.1:`port` (0: any free port), plus extra `routes`; return the base URL."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_routes(routes or [])
        base = "/apis/batch/v1/namespaces/{ns}/jobs"
        app.router.add_get(base, self._list_or_watch("jobs"))
        app.router.add_post(base, self._create_job)
        app.router.add_get(base + "/{name}", self._get("jobs"))
        app.router.add_delete(base + "/{name}", self._delete_job)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._list_or_watch("pods"))
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}", self._get("pods"))
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self._pod_log)
        app.router.add_get("/api/v1/namespaces/{ns}/events", self._list_or_watch("events"))
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self._wake_logs()
        self._notify_watches()
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ test helpers

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait for a condition on the fake's state (re-checked on every change and request)."""
        async with asyncio.timeout(timeout):
            while True:
                waiter = self._changed.waiter()
                if predicate():
                    return
                await waiter.wait()

    def fail(self, method: str, path_regex: str, status: int, *, times: int = 1, message: str = "") -> None:
        """Answer the next `times` requests matching METHOD and path regex with `status`."""
        self._failures.append(_Failure(method.upper(), re.compile(path_regex), status, times, message))

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [_copy(o) for (ns, _), o in self.objects["jobs"].items() if namespace in (None, ns)]

    def job(self, name: str) -> dict[str, Any] | None:
        key = next(iter(self._named["jobs"].get(name, ())), None)
        return None if key is None else _copy(self.objects["jobs"][key])

    def pods_of(self, job_name: str) -> list[dict[str, Any]]:
        pods = [self.objects["pods"][key] for key in self._job_pods.get(job_name, ())]
        return sorted(pods, key=lambda p: int(p["metadata"]["resourceVersion"]))

    def pod(self, job_name: str) -> dict[str, Any]:
        keys = self._job_pods.get(job_name, {})
        if len(keys) == 1:  # the common case, once per log line: no list to sort
            only = self.objects["pods"][next(iter(keys))]
            if not only["metadata"].get("deletionTimestamp"):
                return only
        pods = [p for p in self.pods_of(job_name) if not p["metadata"].get("deletionTimestamp")]
        if not pods:
            raise LookupError(f"no pod for Job {job_name}")
        return pods[-1]

    def log_lines(self, pod_name: str, container: str = "main") -> list[str]:
        ns = next(iter(self._named["pods"][pod_name]))[0]
        return [text for inst in self._logs.get((ns, pod_name, container), []) for _, text in inst.lines]

    # ------------------------------------------------------------------ watch control

    def cut_watches(self) -> None:
        """Close every open watch stream (like a load balancer or API server restart)."""
        self._cut_gen += 1
        self._notify_watches()

    def pause_watches(self) -> None:
        """Stop delivering watch events (state still changes); `resume_watches` or `expire_watches`."""
        self._paused = True
        self._notify_watches()

    def resume_watches(self) -> None:
        self._paused = False
        self._notify_watches()

    def compact(self) -> None:
        """Forget history: watching from any resourceVersion before now answers 410 Expired."""
        self.compacted_rv = self.rv
        self._history.clear()
        self._history_rvs.clear()

    def expire_watches(self) -> None:
        """Compact, then end every open watch with an ERROR 410 event (watch cache too far behind)."""
        self.compact()
        self._paused = False
        self._expire_gen += 1
        self._notify_watches()

    def bookmark(self) -> None:
        """Send a BOOKMARK with the current resourceVersion on watches that allow bookmarks."""
        self._bookmark_gen += 1
        self._notify_watches()

    def cut_logs(self) -> None:
        """Close every open log stream without ending the containers."""
        self._log_cut_gen += 1
        self._wake_logs()
        self._changed.notify()

    # ------------------------------------------------------------------ scheduler / kubelet API

    def unschedulable(
        self, job_name: str, message: str = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    ) -> None:
        pod = self.pod(job_name)
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
             "lastTransitionTime": _now_iso(), "lastProbeTime": None}
        ]  # fmt: skip
        self._put("pods", pod, "MODIFIED")
        self.event(job_name, "FailedScheduling", message, type="Warning", component="default-scheduler")

    def schedule(self, job_name: str, node: str = "gpu-node-1") -> None:
        pod = self.pod(job_name)
        pod["spec"]["nodeName"] = node
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _now_iso()}]
        pod["status"]["hostIP"] = "10.0.0.7"
        pod["status"]["initContainerStatuses"] = [
            self._status(c, {"running": {"startedAt": _now_iso()}}) for c in pod["spec"].get("initContainers", [])
        ]
        pod["status"]["containerStatuses"] = [
            self._status(c, {"waiting": {"reason": "PodInitializing"}}) for c in pod["spec"]["containers"]
        ]
        for c in pod["spec"].get("initContainers", []):
            self._new_instance(pod, c["name"])
        self._put("pods", pod, "MODIFIED")

    def image_pull_backoff(self, job_name: str) -> None:
        pod = self._scheduled_pod(job_name, init_done=True)
        image = pod["spec"]["containers"][0]["image"]
        pod["status"]["containerStatuses"][0]["state"] = {
            "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
        }
        self._put("pods", pod, "MODIFIED")

    def run(self, job_name: str) -> None:
        """Init container done, main container running (phase Running)."""
        pod = self._scheduled_pod(job_name, init_done=True)
        main = pod["status"]["containerStatuses"][0]
        main["state"] = {"running": {"startedAt": _now_iso()}}
        main["ready"] = main["started"] = True
        main["imageID"] = image_id(main["image"])
        pod["status"]["phase"] = "Running"
        pod["status"]["conditions"].append({"type": "Ready", "status": "True", "lastTransitionTime": _now_iso()})
        self._new_instance(pod, main["name"])
        self._put("pods", pod, "MODIFIED")

    def log(self, job_name: str, *lines: str, container: str = "main") -> None:
        pod = self.pod(job_name)
        instances = self._logs[(pod["metadata"]["namespace"], pod["metadata"]["name"], container)]
        for line in lines:
            instances[-1].lines.append((self._timestamp(), line))
        instances[-1].changed.notify()
        self._changed.notify()

    def finish(self, job_name: str, exit_code: int = 0, reason: str | None = None) -> None:
        """The main container exits; the Job controller marks the Job Complete or Failed."""
        pod = self.pod(job_name)
        main = pod["status"]["containerStatuses"][0]
        started = (main["state"].get("running") or {}).get("startedAt") or _now_iso()
        reason = reason or ("Completed" if exit_code == 0 else "Error")
        main["state"] = {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started,
                                        "finishedAt": _now_iso(), "containerID": main.get("containerID", "")}}  # fmt: skip
        main["ready"] = main["started"] = False
        pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        self._end_instance(pod, main["name"])
        self._put("pods", pod, "MODIFIED")
        if exit_code == 0:
            self._finish_job(job_name, "Complete", None, None)
        else:
            self._finish_job(job_name, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    def oom_kill(self, job_name: str) -> None:
        self.event(job_name, "OOMKilling", "Memory cgroup out of memory: Killed process 4242 (python)",
                   type="Warning")  # fmt: skip
        self.finish(job_name, exit_code=137, reason="OOMKilled")

    def evict(self, job_name: str, message: str = "The node was low on resource: memory.") -> None:
        """The kubelet evicts the pod (node pressure): an Evicted event, the container killed, the pod
        Failed with reason Evicted, and the Job failed by the Job controller."""
        self.event(job_name, "Evicted", message, type="Warning")
        pod = self.pod(job_name)
        main = pod["status"]["containerStatuses"][0]
        started = (main["state"].get("running") or {}).get("startedAt") or _now_iso()
        main["state"] = {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": started,
                                        "finishedAt": _now_iso()}}  # fmt: skip
        pod["status"].update(phase="Failed", reason="Evicted", message=message)
        self._end_instance(pod, main["name"])
        self._put("pods", pod, "MODIFIED")
        self._finish_job(job_name, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    def exceed_deadline(self, job_name: str) -> None:
        """activeDeadlineSeconds passed: the Job fails with DeadlineExceeded and its pod is killed."""
        pod = self.pod(job_name)
        main = (pod["status"].get("containerStatuses") or [{"state": {}}])[0]  # may never have been scheduled
        if "running" in main["state"]:
            main["state"] = {"terminated": {"exitCode": 137, "reason": "Error",
                                            "startedAt": main["state"]["running"]["startedAt"], "finishedAt": _now_iso()}}  # fmt: skip
            self._end_instance(pod, main["name"])
        pod["status"]["phase"] = "Failed"
        self._put("pods", pod, "MODIFIED")
        self._finish_job(job_name, "Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        self._delete_object("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])

    def restart_container(self, job_name: str, exit_code: int = 1, reason: str = "Error") -> None:
        """The main container exits and the kubelet starts it again (restartCount + 1)."""
        pod = self.pod(job_name)
        main = pod["status"]["containerStatuses"][0]
        started = main["state"]["running"]["startedAt"]
        main["lastState"] = {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started,
                                            "finishedAt": _now_iso()}}  # fmt: skip
        main["restartCount"] += 1
        main["state"] = {"running": {"startedAt": _now_iso()}}
        self._end_instance(pod, main["name"])
        self._new_instance(pod, main["name"])
        self._put("pods", pod, "MODIFIED")

    def fail_clone(self, job_name: str, *lines: str, exit_code: int = 128) -> None:
        """The init container (git clone) fails: the pod fails, so does the Job."""
        pod = self._scheduled_pod(job_name)
        init = pod["status"]["initContainerStatuses"][0]
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], init["name"])
        for line in lines:
            self._logs[key][-1].lines.append((self._timestamp(), line))
        init["state"] = {"terminated": {"exitCode": exit_code, "reason": "Error", "startedAt": _now_iso(),
                                        "finishedAt": _now_iso()}}  # fmt: skip
        self._end_instance(pod, init["name"])
        pod["status"]["phase"] = "Failed"
        self._put("pods", pod, "MODIFIED")
        self._finish_job(job_name, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    def event(
        self, job_name: str, reason: str, message: str, *, type: str = "Normal", component: str = "kubelet",
        series: int | None = None,
    ) -> str:
        """A new Event about the job's pod; returns its name (for `repeat_event`). `series`: written
        through events.k8s.io/v1, whose repeats read back as `series.count` with no `count`."""
        pod = self.pod(job_name)
        ns = pod["metadata"]["namespace"]
        name = f"{pod['metadata']['name']}.{secrets.token_hex(8)}"
        obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "creationTimestamp": _now_iso()},
            "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": ns,
                               "uid": pod["metadata"]["uid"], "apiVersion": "v1"},
            "reason": reason, "message": message, "type": type, "count": 1,
            "firstTimestamp": _now_iso(), "lastTimestamp": _now_iso(), "source": {"component": component},
            "reportingComponent": component, "reportingInstance": "",
        }  # fmt: skip
        if series is not None:
            del obj["count"]
            obj["series"] = {"count": series, "lastObservedTime": _now_iso()}
        self._put("events", obj, "ADDED")
        return name

    def repeat_event(self, name: str) -> None:
        """The same thing happened again: like the kubelet's event recorder, count + 1 on the same Event."""
        obj = next(o for (_, n), o in self.objects["events"].items() if n == name)
        obj["count"] += 1
        obj["lastTimestamp"] = _now_iso()
        self._put("events", obj, "MODIFIED")

    def delete_pod(self, job_name: str) -> None:
        pod = self.pod(job_name)
        self._delete_object("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ------------------------------------------------------------------ internals: state

    def _timestamp(self) -> str:
        self._clock_ns = max(time.time_ns(), self._clock_ns + 1)
        secs, nanos = divmod(self._clock_ns, 1_000_000_000)
        if self._clock_base[0] != secs:  # formatted once a second, not once a log line
            self._clock_base = (secs, datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        base = self._clock_base[1]
        frac = f"{nanos:09d}".rstrip("0")  # Go's RFC3339Nano trims trailing zeros
        return f"{base}{'.' + frac if frac else ''}Z"

    @staticmethod
    def _status(container: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
        return {"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                "restartCount": 0, "started": False, "state": state, "lastState": {},
                "containerID": f"containerd://{secrets.token_hex(16)}"}  # fmt: skip

    def _scheduled_pod(self, job_name: str, *, init_done: bool = False) -> dict[str, Any]:
        pod = self.pod(job_name)
        if not pod["spec"].get("nodeName"):
            self.schedule(job_name)
            pod = self.pod(job_name)
        if init_done:
            for init in pod["status"].get("initContainerStatuses", []):
                if "terminated" not in init["state"]:
                    init["state"] = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": _now_iso(),
                                                    "finishedAt": _now_iso()}}  # fmt: skip
                    self._end_instance(pod, init["name"])
        return pod

    def _new_instance(self, pod: dict[str, Any], container: str) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        self._logs.setdefault(key, []).append(_LogInstance())

    def _end_instance(self, pod: dict[str, Any], container: str) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        if self._logs.get(key):
            self._logs[key][-1].done = True
            self._logs[key][-1].changed.notify()
        self._changed.notify()

    def _finish_job(self, job_name: str, kind: str, reason: str | None, message: str | None) -> None:
        job = self.job(job_name)
        if job is None:
            return
        now = _now_iso()
        status = job["status"]
        status["active"] = 0
        status["ready"] = 0
        if kind == "Complete":
            status["succeeded"] = 1
            status["completionTime"] = now
            status["conditions"] = [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
            ]  # fmt: skip
        else:
            status["failed"] = 1
            status["conditions"] = [
                {"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
                 "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": reason, "message": message,
                 "lastProbeTime": now, "lastTransitionTime": now},
            ]  # fmt: skip
        self._put("jobs", job, "MODIFIED")

    def _put(self, resource: str, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        self.rv += 1
        obj = _copy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.objects[resource][key] = obj
        self._named[resource].setdefault(key[1], {})[key] = None
        if resource == "pods":
            self._job_pods.setdefault(obj["metadata"]["labels"].get("job-name", ""), {})[key] = None
        self._record(resource, event_type, obj)
        return _copy(obj)

    def _delete_object(self, resource: str, ns: str, name: str) -> None:
        obj = self.objects[resource].pop((ns, name), None)
        if obj is None:
            return
        self._unindex(resource, obj)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._record(resource, "DELETED", obj)
        if resource == "pods":
            for (lns, pod, _), instances in self._logs.items():
                if (lns, pod) == (ns, name) and instances:
                    instances[-1].done = True
            self._wake_logs(ns, name)
        for hook in self.deleted_hooks:
            hook(resource, ns, name)

    def _unindex(self, resource: str, obj: dict[str, Any]) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        indexes = [(self._named[resource], key[1])]
        if resource == "pods":
            indexes.append((self._job_pods, obj["metadata"]["labels"].get("job-name", "")))
        for index, name in indexes:
            keys = index.get(name, {})
            keys.pop(key, None)
            if not keys:
                index.pop(name, None)

    def _wake_logs(self, ns: str | None = None, pod: str | None = None) -> None:
        """Wake the log followers (of one pod, or all) to notice a cut, a deletion or the end."""
        for (lns, lpod, _), instances in self._logs.items():
            if ns is None or (lns, lpod) == (ns, pod):
                for instance in instances:
                    instance.changed.notify()

    def _record(self, resource: str, event_type: str, obj: dict[str, Any]) -> None:
        api_version, kind = RESOURCES[resource]
        snapshot = {"apiVersion": api_version, "kind": kind, **_copy(obj)}
        line = orjson.dumps({"type": event_type, "object": snapshot}) + b"\n"
        self._history.append((self.rv, resource, event_type, snapshot, line))
        self._history_rvs.append(self.rv)
        self._notify_watches()

    def _notify_watches(self) -> None:
        self._watch_changed.notify()
        self._changed.notify()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ internals: HTTP

    @staticmethod
    def _error(code: int, reason: str, message: str) -> web.Response:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}  # fmt: skip
        return web.json_response(body, status=code)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        self._changed.notify()
        for failure in self._failures:
            if failure.method == request.method and failure.times > 0 and failure.pattern.search(request.path):
                failure.times -= 1
                reasons = {403: "Forbidden", 404: "NotFound", 409: "AlreadyExists", 429: "TooManyRequests",
                           500: "InternalError", 503: "ServiceUnavailable"}  # fmt: skip
                reason = reasons.get(failure.status, "InternalError")
                message = failure.message or f"injected {failure.status} for {request.method} {request.path}"
                return self._error(failure.status, reason, message)
        return await handler(request)

    def _list_or_watch(self, resource: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            if _flag(request.query, "watch"):
                return await self._watch(request, resource)
            api_version, kind = RESOURCES[resource]
            items = [_copy(o) for o in self._matching(resource, request)]
            items.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
            body = {"kind": f"{kind}List", "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(self.rv)}, "items": items}  # fmt: skip
            return web.json_response(body)

        return handler

    def _matching(self, resource: str, request: web.Request) -> list[dict[str, Any]]:
        ns = request.match_info["ns"]
        return [o for (ons, _), o in self.objects[resource].items() if ons == ns and self._selected(o, request)]

    @staticmethod
    def _selected(obj: dict[str, Any], request: web.Request) -> bool:
        labels = request.query.get("labelSelector", "")
        fields = request.query.get("fieldSelector", "")
        return _labels_match(obj, _parse_label_selector(labels)) and _fields_match(obj, fields)

    async def _watch(self, request: web.Request, resource: str) -> web.StreamResponse:
        ns = request.match_info["ns"]
        api_version, kind = RESOURCES[resource]
        rv_raw = request.query.get("resourceVersion", "")
        timeout = float(request.query.get("timeoutSeconds") or 0) or None
        bookmarks = _flag(request.query, "allowWatchBookmarks")
        cut_gen, expire_gen, bookmark_gen = self._cut_gen, self._expire_gen, self._bookmark_gen

        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(event_type: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        async def send_expired(rv: int) -> None:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": f"too old resource version: {rv} ({self.compacted_rv})",
                      "reason": "Expired", "code": 410}  # fmt: skip
            await send("ERROR", status)

        self.open_watches[resource] += 1
        self._changed.notify()
        try:
            if rv_raw in ("", "0"):
                cursor = self.rv
                initial = sorted(self._matching(resource, request), key=lambda o: int(o["metadata"]["resourceVersion"]))
                for obj in initial:
                    await send("ADDED", {"apiVersion": api_version, "kind": kind, **_copy(obj)})
            else:
                cursor = int(rv_raw)
                if cursor < self.compacted_rv:
                    await send_expired(cursor)
                    return response
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            while not self._closing:
                waiter = self._watch_changed.waiter()
                if self._cut_gen != cut_gen:
                    break
                if self._expire_gen != expire_gen or cursor < self.compacted_rv:
                    await send_expired(cursor)
                    break
                if not self._paused:
                    start = bisect.bisect_right(self._history_rvs, cursor)
                    for rv, res, _, obj, line in self._history[start:]:
                        cursor = rv
                        if res == resource and obj["metadata"]["namespace"] == ns and self._selected(obj, request):
                            await response.write(line)
                    if bookmarks and self._bookmark_gen != bookmark_gen:
                        bookmark_gen = self._bookmark_gen
                        cursor = self.rv
                        await send("BOOKMARK", {"apiVersion": api_version, "kind": kind,
                                                "metadata": {"resourceVersion": str(self.rv)}})  # fmt: skip
                        self.bookmarks_sent += 1
                        self._changed.notify()
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await waiter.wait()
                except TimeoutError:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.open_watches[resource] -= 1
            self._changed.notify()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _get(self, resource: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            key = (request.match_info["ns"], request.match_info["name"])
            obj = self.objects[resource].get(key)
            if obj is None:
                return self._error(404, "NotFound", f'{resource} "{key[1]}" not found')
            api_version, kind = RESOURCES[resource]
            return web.json_response({"apiVersion": api_version, "kind": kind, **_copy(obj)})

        return handler

    async def _create_job(self, request: web.Request) -> web.Response:
        ns = request.match_info["ns"]
        body = await request.json()
        self.created_bodies.append(_copy(body))
        if body.get("kind") != "Job" or body.get("apiVersion") != "batch/v1":
            return self._error(400, "BadRequest", "expected a batch/v1 Job")
        meta = body.setdefault("metadata", {})
        name = meta.get("name") or (meta.get("generateName", "") + secrets.token_hex(3))
        if not name:
            return self._error(422, "Invalid", "metadata.name: Required value")
        if (ns, name) in self.objects["jobs"]:
            return self._error(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        uid = str(uuid.uuid4())
        meta.update(name=name, namespace=ns, uid=uid, creationTimestamp=_now_iso(), generation=1)
        controller_labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                             "controller-uid": uid, "job-name": name}  # fmt: skip
        body["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template_meta = body["spec"]["template"].setdefault("metadata", {})
        template_meta["labels"] = {**template_meta.get("labels", {}), **controller_labels}
        body["status"] = {"active": 1, "ready": 0, "terminating": 0, "startTime": _now_iso(),
                          "uncountedTerminatedPods": {}}  # fmt: skip
        job = self._put("jobs", body, "ADDED")
        self.created_jobs.append(name)
        if self.auto_pods:
            self._create_pod(job)
        for hook in self.job_created_hooks:
            hook(job)
        return web.json_response({"apiVersion": "batch/v1", "kind": "Job", **job}, status=201)

    def _create_pod(self, job: dict[str, Any]) -> None:
        template = _copy(job["spec"]["template"])
        name = f"{job['metadata']['name']}-{secrets.token_hex(3)[:5]}"
        pod = {
            "metadata": {
                "name": name, "namespace": job["metadata"]["namespace"], "uid": str(uuid.uuid4()),
                "creationTimestamp": _now_iso(), "labels": template["metadata"]["labels"],
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                                     "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": template["spec"],
            "status": {"phase": "Pending", "qosClass": "Guaranteed"},
        }  # fmt: skip
        self._put("pods", pod, "ADDED")

    async def _delete_job(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        policy = request.query.get("propagationPolicy")
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                body = await request.json()
                policy = (body or {}).get("propagationPolicy") or policy
        job = self.objects["jobs"].get((ns, name))
        if job is None:
            return self._error(404, "NotFound", f'jobs.batch "{name}" not found')
        self.deletions.append(("jobs", name, policy))
        pods = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.pods_of(name)]
        if policy == "Foreground":
            job = _copy(job)
            job["metadata"]["deletionTimestamp"] = _now_iso()
            job["metadata"]["finalizers"] = ["foregroundDeletion"]
            job = self._put("jobs", job, "MODIFIED")

            async def collect() -> None:
                await asyncio.sleep(0)  # after the response, like the garbage collector
                for pod_ns, pod_name in pods:
                    self._delete_object("pods", pod_ns, pod_name)
                self._delete_object("jobs", ns, name)

            self._spawn(collect())
            return web.json_response({"apiVersion": "batch/v1", "kind": "Job", **job})
        self._delete_object("jobs", ns, name)
        if policy != "Orphan":
            for pod_ns, pod_name in pods:
                self._delete_object("pods", pod_ns, pod_name)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": {"name": name, "group": "batch", "kind": "jobs", "uid": job["metadata"]["uid"]}})  # fmt: skip

    async def _pod_log(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        pod = self.objects["pods"].get((ns, name))
        if pod is None:
            return self._error(404, "NotFound", f'pods "{name}" not found')
        q = request.query
        spec_containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
        container = q.get("container") or (pod["spec"]["containers"][0]["name"] if len(spec_containers) == 1 else "")
        if container not in {c["name"] for c in spec_containers}:
            return self._error(400, "BadRequest", f"a container name must be specified for pod {name}")
        statuses = pod["status"].get("initContainerStatuses", []) + pod["status"].get("containerStatuses", [])
        status = next((s for s in statuses if s["name"] == container), None)
        instances = self._logs.get((ns, name, container), [])
        previous = _flag(q, "previous")
        restart = status["restartCount"] if status else 0
        index = restart - 1 if previous else restart
        if index < 0 or index >= len(instances) or (status and "waiting" in status["state"] and not previous):
            if previous:
                return self._error(
                    400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found'
                )
            reason = ((status or {}).get("state", {}).get("waiting") or {}).get("reason", "ContainerCreating")
            return self._error(
                400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        instance = instances[index]
        follow = _flag(q, "follow") and not previous
        timestamps = _flag(q, "timestamps")
        position = 0
        if q.get("tailLines"):
            position = max(len(instance.lines) - int(q["tailLines"]), 0)

        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        cut_gen = self._log_cut_gen
        self.open_log_streams += 1
        self._changed.notify()
        try:
            while not self._closing:
                waiter = instance.changed.waiter()
                if self._log_cut_gen != cut_gen:
                    break
                chunk = b""
                for ts, text in instance.lines[position:]:
                    chunk += ((ts + " ") if timestamps else "").encode() + text.encode() + b"\n"
                position = len(instance.lines)
                if chunk:
                    await response.write(chunk)
                if not follow or instance.done or (ns, name) not in self.objects["pods"]:
                    break
                if chunk and LOG_FLUSH_SECONDS:
                    # What is written meanwhile goes out together (the first line after a quiet spell
                    # at once), as a kubelet's buffered stream does, instead of a chunk per line.
                    await asyncio.sleep(LOG_FLUSH_SECONDS)
                    continue
                await waiter.wait()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.open_log_streams -= 1
            self._changed.notify()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
