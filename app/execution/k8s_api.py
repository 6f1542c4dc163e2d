"""The Kubernetes API calls the executor and the watcher make, on raw JSON, with retries of the
idempotent ones, and the error words both log (`describe_api_error`, `is_transient`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.client.exceptions import ApiException

from app.execution.k8s_manifests import KubernetesConfig

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {0, 408, 429, 500, 502, 503, 504}
TRANSIENT_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError, OSError)


def describe_api_error(exc: BaseException) -> str:
    """`403 Forbidden: jobs.batch is forbidden: ...` from an ApiException (or the exception text)."""
    if isinstance(exc, ApiException):
        message = ""
        body: object = exc.body
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
    # One connection per open stream (aiohttp speaks HTTP/1.1, no multiplexing): the watcher holds
    # three watches and a log follow per running pod. kubernetes-asyncio's default pool of 100
    # made the 98th running pod's log wait, silently, until another pod's stream ended.
    configuration.connection_pool_maxsize = 0  # aiohttp: no limit
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
            exc.body = body  # type: ignore[assignment]  # the client stores the text it read
            raise exc
        return resp

    async def _json(self, coro: Any) -> dict[str, Any]:
        resp = await self._checked(coro)
        try:
            return await resp.json(content_type=None, loads=orjson.loads)
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
            lambda: self._json(self.batch.create_namespaced_job(
                self.namespace, body, _preload_content=False)),  # type: ignore[arg-type]  # raw JSON, not V1Job
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
                lambda kw=kwargs: self._json(fn(self.namespace, _preload_content=False, **kw)),
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
    ) -> AsyncGenerator[dict[str, Any]]:
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
                    yield orjson.loads(line)  # a fifth of the watcher's time with the json module
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


async def iter_line_batches(
    content: aiohttp.StreamReader, max_line: int | None = None
) -> AsyncGenerator[list[tuple[bytes, bool]]]:
    """The lines of a streamed body as `iter_lines` splits them, a list per chunk received: a
    reader can store everything that arrived together in one write."""
    buf = b""
    async for chunk in content.iter_any():
        buf += chunk
        start = 0
        batch: list[tuple[bytes, bool]] = []
        while True:
            nl = buf.find(b"\n", start)
            if nl >= 0 and (max_line is None or nl - start <= max_line):
                batch.append((buf[start:nl], True))
                start = nl + 1
            elif max_line is not None and len(buf) - start > max_line:
                end = start + max_line
                while end > start + max_line - 3 and (buf[end] & 0xC0) == 0x80:
                    end -= 1  # do not cut a UTF-8 character in two
                batch.append((buf[start:end], True))
                start = end
            else:
                break
        buf = buf[start:]
        if batch:
            yield batch
    if buf:
        yield [(buf, False)]


async def iter_lines(content: aiohttp.StreamReader, max_line: int | None = None) -> AsyncGenerator[tuple[bytes, bool]]:
    """`(line, complete)` for each line of a streamed body, without its newline.

    `complete` is False only for a trailing fragment the body ended in without a newline (a
    cut stream may continue it on reconnect). With `max_line`, longer lines arrive in pieces
    of at most that many bytes (memory stays bounded, nothing is dropped); the split points
    depend only on the bytes, so a re-read splits the same way.
    """
    batches = iter_line_batches(content, max_line)
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for item in batch:
                yield item
