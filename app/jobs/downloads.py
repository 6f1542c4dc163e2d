"""`GET /artifacts/{jobId}/{path}`: one artifact of a job, streamed from MLflow's proxied artifact
store (`Artifact.downloadUrl` in the graph).

The bytes pass through as they arrive (at most 64 KiB a read; memory flat in file size); a `Range` request is answered
206 by MLflow and passed on, so a broken download resumes. Errors are small JSON bodies
`{"code", "message"}`: 400 for an unsafe path (checked before any lookup), 404 for an unknown job,
a job without an MLflow run or a missing file, 416 for a range beyond the file's end
(`Content-Range: bytes */SIZE`), 503 when MLflow cannot be reached. Only one byte range is passed
on; any other `Range` (several ranges, another unit, malformed) is ignored, as RFC 9110 allows: the
whole file, 200, never a multipart body labelled as the file's type.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.core.errors import NotFound
from app.jobs.results import UnsafeArtifactPath, artifact_path, visible_job
from app.tracking.mlflow import ArtifactNotFound, TrackingError

ROUTE_PREFIX = "/artifacts/"
_SINGLE_RANGE = re.compile(r"bytes=(\d{1,19}-\d{0,19}|-\d{1,19})")


def _problem(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def content_disposition(name: str) -> str:
    """`attachment` with the file's name; RFC 5987 form when it is not plain ASCII."""
    quoted = quote(name, safe="")
    if quoted == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename*=utf-8''{quoted}"


def single_range(header: str | None) -> str | None:
    """`header` when it asks for one byte range (`bytes=FIRST-[LAST]` or `bytes=-SUFFIX`), else None."""
    return header if header and _SINGLE_RANGE.fullmatch(header.strip()) else None


async def download_artifact(request: Request) -> Response:
    try:
        path = artifact_path(request.path_params["path"])
    except UnsafeArtifactPath as exc:
        return _problem(400, "BAD_ARTIFACT_PATH", f"path: {exc.fields['path']}")
    try:
        job = await visible_job(request.path_params["job_id"])
    except NotFound:
        return _problem(404, "NOT_FOUND", "Job not found.")
    tracker = request.app.state.services.tracker
    if tracker is None or not job.mlflow_run_id:
        return _problem(404, "NOT_FOUND", "This job has no MLflow run, so no artifacts.")
    upstream = AsyncExitStack()
    try:
        stream = await upstream.enter_async_context(tracker.open_artifact(
            job.mlflow_run_id, path, single_range(request.headers.get("range")), request.headers.get("if-range")))
    except ArtifactNotFound:
        return _problem(404, "NOT_FOUND", "No such artifact file.")
    except TrackingError:
        return _problem(503, "SERVICE_UNAVAILABLE", "The tracking server is unreachable; retry later.")

    if stream.status == 416:  # MLflow's error page is no part of the file: say why, and the file's size
        await upstream.aclose()
        return _problem(416, "RANGE_NOT_SATISFIABLE", "The range starts beyond the end of the file.",
                        {k: v for k, v in stream.headers.items() if k == "content-range"})

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream.chunks:
                yield chunk
        finally:
            await upstream.aclose()

    name = posixpath.basename(path)
    headers = {
        **stream.headers,
        "content-disposition": content_disposition(name),
        "x-content-type-options": "nosniff",
    }
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if request.method == "HEAD":  # the headers only: never pull the file from MLflow for nothing
        await upstream.aclose()
        return Response(status_code=stream.status, headers=headers, media_type=media_type)
    return StreamingResponse(body(), status_code=stream.status, headers=headers, media_type=media_type,
                             background=BackgroundTask(upstream.aclose))  # when the body never started


def download_routes() -> list[Route]:
    return [Route(ROUTE_PREFIX + "{job_id}/{path:path}", download_artifact, methods=["GET"])]
