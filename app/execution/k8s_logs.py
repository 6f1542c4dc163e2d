"""Following one job's pod logs into the sink, without losing or repeating a line.

`JobLogs` follows the main container's instances in order
(`read_namespaced_pod_log(follow=True, timestamps=True)`), one instance per pod/restartCount.
Each instance keeps a cursor (last RFC3339Nano timestamp + lines at that timestamp); a
reconnect re-reads and drops what was delivered, so a cut stream, a container restart or log
rotation neither loses nor repeats lines. A new watcher asks the sink how many lines it already
has (`job_log_count(job_id, stream)`, optional) and skips those. Lines that arrive together are
stored together when the sink can (`job_logs(job_id, stream, lines)`, optional): one database
write per chunk read instead of one per line keeps a busy job's log from falling behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from app.execution.executor import JobSink
from app.execution.k8s_api import KubeApi, describe_api_error, is_transient, iter_line_batches
from app.execution.k8s_manifests import MAIN_CONTAINER
from app.execution.k8s_status import Obj, container_status, meta, rv, uid

log = logging.getLogger(__name__)

LOG_STREAM = "stdout"  # the API server interleaves a container's stdout and stderr into one stream
MAX_LINE_BYTES = 64 * 1024


# "YYYY-MM-DDTHH:MM:SS" → unix seconds: a busy log's lines share their second by the dozen, and
# converting it was most of the watcher's work per line.
_SECONDS: dict[bytes, int] = {}
_SECONDS_MAX = 4096


def parse_log_timestamp(value: bytes) -> tuple[int, int] | None:
    """`2025-01-02T03:04:05.123Z` (RFC3339Nano, trailing zeros trimmed) → (unix seconds, nanos)."""
    end = value[19:20]
    if value[-1:] == b"Z" and (end == b"." or (end == b"Z" and len(value) == 20)):
        frac = value[20:-1]
        if frac and not frac.isdigit():
            return None
        base = value[:19]
        secs = _SECONDS.get(base)
        if secs is None:
            try:
                secs = int(datetime.fromisoformat(base.decode("ascii") + "+00:00").timestamp())
            except (UnicodeDecodeError, ValueError):
                return None
            if len(_SECONDS) >= _SECONDS_MAX:
                _SECONDS.clear()
            _SECONDS[base] = secs
        return secs, int(frac[:9].ljust(9, b"0")) if frac else 0
    return _parse_other_timestamp(value)


def _parse_other_timestamp(value: bytes) -> tuple[int, int] | None:
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


@dataclass(frozen=True)
class LogOptions:
    read_timeout: float | None = 900.0  # a follow stream silent this long is reopened
    drain_timeout: float = 30.0  # how long a finished job's outcome waits for its last lines
    backoff: float = 0.2
    max_backoff: float = 10.0


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


class _Gone(Exception):
    """Nothing readable is left of this container instance."""


class JobLogs:
    """The log of one job. `pods` is the watcher's live picture of the job's pods (name → pod)."""

    def __init__(self, job_id: str, pods: dict[str, Obj], sink: JobSink, api: KubeApi, options: LogOptions) -> None:
        self.job_id = job_id
        self.pods = pods
        self.sink = sink
        self.api = api
        self.options = options
        self.instances: list[_Instance] = []
        self.cursors: dict[tuple[str, int], _Cursor] = {}
        self.changed = asyncio.Event()
        self.closing = False
        self.task: asyncio.Task[None] | None = None
        self.skip: int | None = None  # lines the sink already has (cold start); None: not asked yet
        # Seen unfinished by this process (watch or the executor's own submit). A job first seen
        # already finished by a fresh watcher had its logs delivered by an earlier one.
        self.seen_active = False

    def register(self, pod: Obj, *, may_start: bool) -> asyncio.Task[None] | None:
        """Queue every main-container instance of `pod` that has started; returns the follower
        task when this call started it (the caller owns it)."""
        status = container_status(pod, MAIN_CONTAINER)
        if not status:
            return None
        state = status.get("state") or {}
        restart = int(status.get("restartCount") or 0)
        top = restart if ("running" in state or "terminated" in state) else restart - 1
        known = {i.key for i in self.instances}
        added = False
        for r in range(max(top - 1, 0), top + 1):  # older instances can no longer be read
            inst = _Instance(meta(pod).get("name") or "", uid(pod), r)
            if inst.key not in known:
                self.instances.append(inst)
                added = True
        if not added:
            return None
        self.changed.set()
        if self.task is not None or not may_start:
            return None
        self.task = asyncio.create_task(self._pump(), name=f"k8s-logs-{self.job_id}")
        return self.task

    def close(self) -> None:
        """No new instances will come: the follower ends once the last one is read."""
        self.closing = True
        self.changed.set()

    async def drain(self) -> None:
        """Close and wait (at most `drain_timeout`) until every line was delivered."""
        self.close()
        if self.task is None:
            return
        try:
            async with asyncio.timeout(self.options.drain_timeout):
                await asyncio.shield(self.task)
        except TimeoutError:
            log.warning("job %s: logs still streaming after %.0f s; reporting the outcome anyway",
                        self.job_id, self.options.drain_timeout)  # fmt: skip
            self.task.cancel()

    async def _pump(self) -> None:
        """Follow the container instances one after the other, in order."""
        index = 0
        while True:
            if index < len(self.instances):
                inst = self.instances[index]
                index += 1
                try:
                    await self._follow(inst)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("job %s: following logs of %s#%d failed", self.job_id, inst.pod, inst.restart)
                continue
            if self.closing:
                return
            self.changed.clear()
            if index < len(self.instances) or self.closing:
                continue
            await self.changed.wait()

    async def _ready(self) -> bool:
        """Decide once how many lines to skip; False when an earlier watcher delivered them all."""
        if self.skip is not None:
            return True
        if self.cursors:  # this watcher delivered the earlier lines itself
            self.skip = 0
            return True
        known = await self._initial_skip()
        if known is None and not self.seen_active:
            return False  # finished before this watcher saw it: an earlier watcher delivered it
        self.skip = known or 0
        return True

    async def _initial_skip(self) -> int | None:
        """Lines the sink already holds for this job (a watcher that restarted mid-job); None when
        the sink cannot tell."""
        counter = getattr(self.sink, "job_log_count", None)
        if counter is None:
            return None
        try:
            return int(await counter(self.job_id, LOG_STREAM))
        except Exception:
            log.exception("job %s: sink could not count its log lines", self.job_id)
            return None

    async def _follow(self, inst: _Instance) -> None:
        """Deliver one container instance's log completely, then return."""
        if not await self._ready():
            return
        cursor = self.cursors.setdefault(inst.key, _Cursor())
        delay = self.options.backoff
        final = False
        pod: Obj | None = self.pods.get(inst.pod)
        while True:
            try:
                pod = await self._fresh_pod(inst, pod)
                previous, running = self._instance_state(inst, pod)
                follow = running and not final
                delivered_before = cursor.delivered
                resp = await self._open(inst, follow, previous)
                if resp is not None:
                    await self._read(cursor, resp, follow)
                    if not follow:
                        return
                # The follow stream ended: the container finished, or the stream was cut. Ask.
                ended = await self._ended(inst)
            except _Gone:
                return
            if ended:
                final = True  # one complete read picks up whatever a cut stream missed
                continue
            if resp is None or cursor.delivered == delivered_before:
                await asyncio.sleep(delay * (0.5 + random.random()))  # backoff before reconnecting
                delay = min(delay * 2, self.options.max_backoff)
            else:
                delay = self.options.backoff

    async def _fresh_pod(self, inst: _Instance, pod: Obj | None) -> Obj:
        """The newest picture of the instance's pod (the watch's, or the API's); `_Gone` once the
        pod, and its log, is gone."""
        cached = self.pods.get(inst.pod)
        if cached is not None and (pod is None or rv(cached) >= rv(pod)):
            pod = cached
        if pod is None:
            pod = await self.api.get_pod(inst.pod)
        if pod is None or uid(pod) != inst.pod_uid:
            raise _Gone()
        return pod

    def _instance_state(self, inst: _Instance, pod: Obj) -> tuple[bool, bool]:
        """(a later instance replaced it: read it as `previous`, it is still running: follow it)."""
        status = container_status(pod, MAIN_CONTAINER) or {}
        current = int(status.get("restartCount") or 0)
        if current - inst.restart > 1:
            log.warning("job %s: log of %s restart %d is no longer readable", self.job_id, inst.pod, inst.restart)
            raise _Gone()
        previous = current > inst.restart
        return previous, not (previous or "terminated" in (status.get("state") or {}))

    async def _open(self, inst: _Instance, follow: bool, previous: bool) -> Any:
        """The log response, or None after a transient failure (retry); `_Gone` when nothing is left."""
        try:
            return await self.api.open_log(
                inst.pod, MAIN_CONTAINER, follow=follow, previous=previous, timestamps=True,
                read_timeout=self.options.read_timeout if follow else 60.0,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404 or (exc.status == 400 and not follow):
                raise _Gone() from exc  # pod gone, or nothing readable is left of this instance
            if not (is_transient(exc) or exc.status == 400):
                raise
        except Exception as exc:
            if not is_transient(exc):
                raise
        return None

    async def _ended(self, inst: _Instance) -> bool:
        """Has the instance ended (restarted or terminated)? False also when the API cannot say
        now; `_Gone` when its pod is."""
        try:
            pod = await self.api.get_pod(inst.pod)
        except Exception as exc:
            log.warning("job %s: pod %s: %s", self.job_id, inst.pod, describe_api_error(exc))
            return False
        if pod is None or uid(pod) != inst.pod_uid:
            raise _Gone()
        status = container_status(pod, MAIN_CONTAINER) or {}
        return int(status.get("restartCount") or 0) > inst.restart or "terminated" in (status.get("state") or {})

    async def _read(self, cursor: _Cursor, resp: Any, follow: bool) -> None:
        try:
            read = _Read()
            batches = iter_line_batches(resp.content, MAX_LINE_BYTES)
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    await self._store(self._take(cursor, read, batch, follow))
        except Exception as exc:
            if not is_transient(exc):
                raise
        finally:
            resp.release()

    def _take(self, cursor: _Cursor, read: _Read, batch: list[tuple[bytes, bool]], follow: bool) -> list[str]:
        """The lines of `batch` that no earlier read of this instance delivered (a trailing fragment
        of a followed stream is left to the reconnect, which reads the whole line).

        Lines are identified by their kubelet timestamp: everything before the cursor's
        timestamp was delivered, and so were the first `at_last_ts` lines at that timestamp.
        A piece of a long line split by `iter_line_batches` carries no timestamp and counts as
        another line at the timestamp of the line it belongs to.
        """
        lines: list[str] = []
        last, at_last = cursor.last_ts, cursor.at_last_ts
        ts, ts_seen, same = read.ts, read.ts_seen, read.same
        delivered = 0
        skip = self.skip or 0
        for raw, complete in batch:
            if not complete and follow:
                break
            stamp, sep, text = raw.partition(b" ")
            parsed = parse_log_timestamp(stamp) if sep else None
            if parsed is None:
                text = raw
            else:
                ts = parsed
            if ts is not None:
                if ts_seen != ts:
                    ts_seen, same = ts, 0
                same += 1
                if last is not None and (ts < last or (ts == last and same <= at_last)):
                    continue  # an earlier read delivered it
                last, at_last = ts, same
            delivered += 1
            if skip:
                skip -= 1  # the sink has this line from an earlier watcher
                continue
            lines.append(text.removesuffix(b"\r").decode("utf-8", "replace"))
        cursor.last_ts, cursor.at_last_ts = last, at_last
        cursor.delivered += delivered
        read.ts, read.ts_seen, read.same = ts, ts_seen, same
        if self.skip:
            self.skip = skip
        return lines

    async def _store(self, lines: list[str]) -> None:
        if not lines:
            return
        store_many = getattr(self.sink, "job_logs", None)
        try:
            if store_many is not None:
                await store_many(self.job_id, LOG_STREAM, lines)
            else:
                for line in lines:
                    await self.sink.job_log(self.job_id, LOG_STREAM, line)
        except Exception:
            log.exception("job %s: sink rejected %d log lines", self.job_id, len(lines))
