"""What Kubernetes objects say about a job, as pure functions of their JSON (camelCase dicts):
object metadata, Job conditions, container states, why a pending pod waits (`derive_pending_info`)
and why a Job failed (`derive_error`). The watcher (`k8s_watcher`) keeps the objects; this module
only reads them, so a re-list or a fresh watcher derives the same answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.execution.k8s_manifests import CLONE_CONTAINER, JOB_ID_LABEL, MAIN_CONTAINER
from app.jobs.status import STATUS_RANK, JobError, JobStatus, JobUpdate

Obj = dict[str, Any]

# Waiting reasons that are simply "starting" and say nothing a user could act on.
BORING_WAITING = {"ContainerCreating", "PodInitializing"}
# Event reasons worth showing while a pod is pending (the scheduler's own message is on the pod).
_EVENT_REASONS = {
    "FailedScheduling", "TriggeredScaleUp", "NotTriggerScaleUp", "FailedMount", "FailedAttachVolume",
    "FailedCreatePodSandBox", "Failed", "BackOff", "ErrImageNeverPull", "InspectFailed", "Preempted",
}  # fmt: skip
# Pod status reasons of a pod the node stopped (the job's failure is the platform's, not the code's).
_STOPPED_POD_REASONS = ("Evicted", "Preempting", "Shutdown", "Terminated", "NodeLost")


def now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | None) -> datetime | None:
    """RFC3339 (with optional fraction) → aware datetime; None for junk."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def uid(obj: Obj | None) -> str:
    return meta(obj).get("uid") or meta(obj).get("name") or ""


def rv(obj: Obj | None) -> int:
    """The object's resourceVersion as a number (0 when absent or not a number)."""
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def job_id_of(obj: Obj | None) -> str | None:
    return (meta(obj).get("labels") or {}).get(JOB_ID_LABEL)


def condition(job: Obj | None, kind: str) -> Obj | None:
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def container_status(pod: Obj | None, name: str, *, init: bool = False) -> Obj | None:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in ((pod or {}).get("status") or {}).get(key) or []:
        if status.get("name") == name:
            return status
    return None


def main_started(status: Obj | None) -> str | None:
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


def started_at(pods: list[Obj]) -> datetime | None:
    """When the main container first started in any of `pods`; None if it never did."""
    for pod in pods:
        started = main_started(container_status(pod, MAIN_CONTAINER))
        if started is not None:
            return parse_time(started) or now()
    return None


def pods_in_order(pods: dict[str, Obj]) -> list[Obj]:
    return sorted(pods.values(), key=lambda p: (meta(p).get("creationTimestamp") or "", meta(p).get("name") or ""))


def may_update(last: JobStatus | None, last_info: str | None, update: JobUpdate) -> bool:
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


# ------------------------------------------------------------------------------- pending


def _reason_words(reason: str, message: str | None) -> str:
    return f"{reason}: {message}" if message else reason


def _waiting_reason(status: Obj) -> str | None:
    """The first container (init containers first) waiting for a reason worth telling."""
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") and waiting["reason"] not in BORING_WAITING:
            return _reason_words(waiting["reason"], waiting.get("message"))
    return None


def _unschedulable(status: Obj) -> list[str]:
    return [_reason_words(cond.get("reason") or "Unschedulable", cond.get("message"))
            for cond in status.get("conditions") or []
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False"]


def _latest_event(events: list[Obj], parts: list[str]) -> str | None:
    """The latest relevant event, unless the pod already says the same."""
    relevant = [e for e in events if e.get("reason") in _EVENT_REASONS]
    if not relevant:
        return None
    latest = max(relevant, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "", rv(e)))
    message = latest.get("message") or ""
    # The scheduler's event says what the pod condition says (which may not have arrived yet).
    reason = "Unschedulable" if latest.get("reason") == "FailedScheduling" else latest.get("reason")
    if any(message and message in p for p in parts):
        return None
    return f"{reason}: {message}" if message else str(reason)


def _progress(pod: Obj) -> str:
    """Nothing is wrong: how far the pod got."""
    init = container_status(pod, CLONE_CONTAINER, init=True)
    if init and "running" in (init.get("state") or {}):
        return "cloning the repository (init container)"
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return f"starting containers on node {node}"
    return "waiting for the scheduler"


def derive_pending_info(pods: list[Obj], events: list[Obj]) -> str:
    """What a pending job is waiting for, in words an experimenter can act on."""
    live = [p for p in pods if not meta(p).get("deletionTimestamp")]
    if not live:
        return "waiting for the Job controller to create the pod"
    pod = live[-1]
    status = pod.get("status") or {}
    waiting = _waiting_reason(status)
    parts = [waiting] if waiting else _unschedulable(status)
    event = _latest_event(events, parts)
    if event:
        parts.append(event)
    return "; ".join(parts) if parts else _progress(pod)


# ------------------------------------------------------------------------------- events, image


def event_occurrences(event: Obj) -> int:
    """How often the event happened: the kubelet and scheduler fold repeats into one Event whose
    `count` (or `series.count`, events.k8s.io style) grows."""
    series = event.get("series") or {}
    return max(int(event.get("count") or 0), int(series.get("count") or 0), 1)


def event_time(event: Obj) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""


def event_line(event: Obj) -> str:
    """The event as a log line: `Warning FailedScheduling: 0/4 nodes are available…` (` (x3)` once repeated)."""
    n = event_occurrences(event)
    head = f"{event.get('type') or 'Normal'} {event.get('reason') or 'Event'}{f' (x{n})' if n > 1 else ''}"
    message = (event.get("message") or "").strip()
    return f"{head}: {message}" if message else head


def pulled_image(pods: list[Obj]) -> dict[str, str] | None:
    """The image the main container ran, as the kubelet resolved it (`imageID`), from the newest pod
    that says: `image` (the reference), `imageDigest` (`sha256:…`) and `pinnedImage` (`repo@sha256:…`,
    what to pull to get exactly those bytes; absent for an image known only by its local id)."""
    for pod in reversed(pods):
        status = container_status(pod, MAIN_CONTAINER) or {}
        image_id = (status.get("imageID") or "").split("://", 1)[-1]  # docker-pullable://repo@sha256:…
        if not image_id:
            continue
        facts = {"image": status.get("image") or "", "imageDigest": image_id.rpartition("@")[2]}
        if "@" in image_id:
            facts["pinnedImage"] = image_id
        return facts
    return None


# ------------------------------------------------------------------------------- failure


def _deadline(job: Obj | None, cond: Obj) -> str:
    budget = ((job or {}).get("spec") or {}).get("activeDeadlineSeconds")
    detail = cond.get("message") or "Job was active longer than specified deadline"
    return f"deadline exceeded: the job ran longer than its {budget} s budget ({detail})"


def _containers(pod: Obj, platform: list[str]) -> dict[str, Any] | None:
    """How the main container (or the checkout before it) ended; platform causes go to `platform`."""
    main = container_status(pod, MAIN_CONTAINER)
    init = container_status(pod, CLONE_CONTAINER, init=True)
    state = (main or {}).get("state") or {}
    term = state.get("terminated") or ((main or {}).get("lastState") or {}).get("terminated")
    init_term = ((init or {}).get("state") or {}).get("terminated")
    if term:
        return {"reason": term.get("reason") or "Error", "exit_code": int(term.get("exitCode") or 0)}
    if init_term and int(init_term.get("exitCode") or 0) != 0:
        code = int(init_term.get("exitCode") or 0)
        platform.append(f"repository checkout failed: init container '{CLONE_CONTAINER}' exited with code {code}")
        return {"reason": init_term.get("reason") or "Error", "exit_code": code}
    if state.get("waiting") and state["waiting"].get("reason") not in BORING_WAITING:
        waiting = state["waiting"]
        detail = f"{waiting.get('reason')}: {waiting.get('message') or ''}".rstrip(": ")
        platform.append(f"the container never started: {detail}")
    return None


def _pod_stopped(pod: Obj) -> str | None:
    status = pod.get("status") or {}
    if status.get("reason") in _STOPPED_POD_REASONS:
        return f"pod {status['reason']}: {status.get('message') or 'the node stopped the pod'}"
    disrupted = next((c for c in status.get("conditions") or []
                      if c.get("type") == "DisruptionTarget" and c.get("status") == "True"), None)
    if disrupted:
        return f"pod disrupted ({disrupted.get('reason')}): {disrupted.get('message') or ''}".rstrip(": ")
    return None


def derive_error(job: Obj | None, pods: list[Obj]) -> JobError:
    """The structured diagnosis of a failed Job, root cause first (see `JobError`)."""
    cond = condition(job, "Failed")
    k8s_condition = None
    platform: list[str] = []
    if cond:
        k8s_condition = {"type": "Failed", "reason": cond.get("reason") or "", "message": cond.get("message") or ""}
        if cond.get("reason") == "DeadlineExceeded":
            platform.append(_deadline(job, cond))
    terminated = None
    if pods:
        terminated = _containers(pods[-1], platform)
        stopped = _pod_stopped(pods[-1])
        if stopped:
            platform.append(stopped)
    return JobError(platform="; ".join(platform) or None, container_terminated=terminated,
                    k8s_job_condition=k8s_condition)
