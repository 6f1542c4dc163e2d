"""Projects API: list/search, fetch, create, update (owner only)."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry
from tortoise.queryset import QuerySet

from app.accounts.models import User
from app.api.compiled import Root, reads
from app.api.context import Info
from app.api.errors import Forbidden, ValidationFailed, typed_errors
from app.api.ids import decode_id
from app.api.pagination import Connection, Keyset, page_of
from app.api.projects.types import ProjectType
from app.api.revisions.types import (
    EditNotApplicableError,
    PatchTextInput,
    VersionConflictError,
    VersionedBody,
    patch_body,
)
from app.projects import services
from app.projects.models import Project

PROJECT_NOTES = VersionedBody(Project, "Project", "project", "notes", "notes_version", max_length=services.NOTES_MAX)


@strawberry.enum
class ProjectOrder(enum.Enum):
    NEWEST = "-created_at"
    OLDEST = "created_at"
    RECENTLY_UPDATED = "-updated_at"


def projects_page(first: int | None = None, after: str | None = None, last: int | None = None,
                  before: str | None = None, owner_id: strawberry.ID | None = None, search: str | None = None,
                  order_by: ProjectOrder = ProjectOrder.NEWEST) -> tuple[QuerySet[Project], Keyset]:
    """The projects `projects(...)` pages, and how (what its resolver and compiled reads both read)."""
    owner = decode_id(owner_id, "User") if owner_id else None
    qs = services.search(owner_id=owner, text=search.strip() if search else None)
    return qs, Keyset.of(first, after, last, before, sort=order_by.value)


@strawberry.type
class ProjectsQuery:
    @strawberry.field(description="Projects, newest first by default; filter by owner or text.")
    @reads(Root(projects_page))
    async def projects(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None,
        before: str | None = None, owner_id: strawberry.ID | None = None, search: str | None = None,
        order_by: ProjectOrder = ProjectOrder.NEWEST,
    ) -> Connection[ProjectType]:
        qs, keyset = projects_page(first, after, last, before, owner_id, search, order_by)
        return await page_of(qs, keyset, ProjectType.from_model)

    @strawberry.field
    async def project(self, info: Info, id: strawberry.ID) -> ProjectType:
        return ProjectType.from_model(await info.context.loaders.node(Project, id, "Project"))


@strawberry.input
class CreateProjectInput:
    title: str
    git_url: str
    notes: str = ""


@strawberry.input
class UpdateProjectInput:
    id: strawberry.ID
    title: str | None = None
    git_url: str | None = None
    notes: str | None = None
    notes_base_version: int | None = strawberry.field(
        default=None, description="Optimistic lock for `notes`; omit for last-write-wins."
    )
    edit_summary: str = ""


@strawberry.type
class ProjectSuccess:
    project: ProjectType


CreateProjectPayload = Annotated[ProjectSuccess | ValidationFailed, strawberry.union("CreateProjectPayload")]
UpdateProjectPayload = Annotated[
    ProjectSuccess | ValidationFailed | VersionConflictError, strawberry.union("UpdateProjectPayload")
]
PatchProjectNotesPayload = Annotated[
    ProjectSuccess | VersionConflictError | EditNotApplicableError | ValidationFailed,
    strawberry.union("PatchProjectNotesPayload"),
]


def _owner_only(user: User, project: Project) -> None:
    if project.owner_id != user.id:
        raise Forbidden("Only the project owner can edit its notes.")


@strawberry.type
class ProjectsMutation:
    @strawberry.mutation
    @typed_errors
    async def create_project(self, info: Info, input: CreateProjectInput) -> CreateProjectPayload:
        user = info.context.require_user()
        project = await services.create_project(user, title=input.title, git_url=input.git_url,
                                                notes=input.notes)
        return ProjectSuccess(project=ProjectType.from_model(project))

    @strawberry.mutation(description="Owner only. Fields left out keep their value.")
    @typed_errors
    async def update_project(self, info: Info, input: UpdateProjectInput) -> UpdateProjectPayload:
        user = info.context.require_user()
        project = await info.context.loaders.node(Project, input.id, "Project")
        project = await services.update_project(
            user, project, title=input.title, git_url=input.git_url, notes=input.notes,
            notes_base_version=input.notes_base_version, edit_summary=input.edit_summary,
        )
        return ProjectSuccess(project=ProjectType.from_model(project))

    @strawberry.mutation(description="Owner only. Search/replace edits on the notes at `baseVersion`.")
    async def patch_project_notes(self, info: Info, input: PatchTextInput) -> PatchProjectNotesPayload:
        return await patch_body(info, input, PROJECT_NOTES, authorize=_owner_only,
                                success=lambda p: ProjectSuccess(project=ProjectType.from_model(p)))
