"""Live streams of runs and projects: run updates, project activity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.api.context import Info
from app.api.errors import NotFound
from app.api.ids import decode_id
from app.api.loaders import Loaders
from app.api.runs.types import RunType
from app.events import streams
from app.events.models import Event
from app.events.services import RUNS_TOPIC
from app.projects.models import Project
from app.runs.models import TERMINAL_RUN_STATUSES, Run


@strawberry.type
class RunUpdate:
    seq: int = strawberry.field(description="Position in the run's event stream; resume with afterSeq.")
    kind: str = strawberry.field(description="snapshot, status, funding, job_status")
    payload: JSON
    run: RunType


@strawberry.type
class ProjectActivity:
    seq: int
    kind: str = strawberry.field(description="run_created, run_status, discussion, comment, …")
    payload: JSON
    at: datetime


@strawberry.type
class RunsChanged:
    at: datetime


# A burst of changes (a run funded: funding, status and job events) wakes a listener once.
RUNS_COALESCE_SECONDS = 0.2


def _fresh(info: Info) -> None:
    # A websocket context lives as long as the connection: cached rows would go stale.
    info.context.loaders = Loaders()


@strawberry.type
class RunsSubscription:
    @strawberry.subscription(description="A snapshot, then status, funding and job changes of the run.")
    async def run_updates(self, info: Info, run_id: strawberry.ID,
                          after_seq: int | None = None) -> AsyncGenerator[RunUpdate, None]:
        run_pk = decode_id(run_id, "Run")
        run = await Run.get_or_none(id=run_pk)
        if run is None:
            raise NotFound("Run")
        stream = f"run:{run.id}"
        position = info.context.position
        after_seq = position.start(after_seq)
        start = after_seq if after_seq is not None else await streams.last_event_seq(stream)
        if after_seq is None:
            position.seq = start
            yield RunUpdate(seq=start, kind="snapshot", payload=JSON({}), run=RunType.from_model(run))

        async def finished() -> bool:
            # The stream's own last status event, not the run row: the row commits before its
            # event is appended, and ending on the row would skip that final event.
            last = await Event.filter(stream=stream, kind="status").order_by("-seq").first()
            return last is not None and last.payload.get("status") in TERMINAL_RUN_STATUSES

        async for event in streams.follow(info.context.hub, [stream], lambda a, n: streams.events_after(stream, a, n),
                                          lambda e: e.seq, start, finished=finished, on_item=lambda: _fresh(info),
                                          position=position):
            yield RunUpdate(seq=event.seq, kind=event.kind, payload=JSON(event.payload),
                            run=RunType.from_model(await Run.get(id=run_pk)))

    @strawberry.subscription(description="Runs created or changing state, discussions and comments.")
    async def project_activity(self, info: Info, project_id: strawberry.ID,
                               after_seq: int | None = None) -> AsyncGenerator[ProjectActivity, None]:
        project = await Project.get_or_none(id=decode_id(project_id, "Project"))
        if project is None:
            raise NotFound("Project")
        stream = f"project:{project.id}"
        after_seq = info.context.position.start(after_seq)
        start = after_seq if after_seq is not None else await streams.last_event_seq(stream)
        async for event in streams.follow(info.context.hub, [stream], lambda a, n: streams.events_after(stream, a, n),
                                          lambda e: e.seq, start, position=info.context.position):
            yield ProjectActivity(seq=event.seq, kind=event.kind, payload=JSON(event.payload), at=event.created_at)

    @strawberry.subscription(description="A tick once listening, then one whenever any run changes status or "
                                         "funding (bursts coalesced): cross-project views such as run discovery "
                                         "re-read `runs` on each. Public.")
    async def runs_changed(self, info: Info) -> AsyncGenerator[RunsChanged, None]:
        async with info.context.hub.listen(RUNS_TOPIC) as signal:
            while True:
                yield RunsChanged(at=datetime.now().astimezone())
                await signal.wait()
                await asyncio.sleep(RUNS_COALESCE_SECONDS)
