"""Projects: create, update (owner only), list with filters."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.core import limits
from app.core.errors import Forbidden, ValidationError
from app.core.settings import get_settings
from app.execution.git import GitError, validate_git_url
from app.projects.models import Project
from app.revisions import services as revisions

TITLE_MAX = limits.TITLE
NOTES_MAX = limits.BODY


def _validate(title: str | None, git_url: str | None, notes: str | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    if title is not None:
        title = title.strip()
        if not (1 <= len(title) <= TITLE_MAX):
            errors["title"] = f"1-{TITLE_MAX} characters"
        clean["title"] = title
    if git_url is not None:
        try:
            clean["git_url"] = validate_git_url(git_url.strip(), allow_local=get_settings().allow_local_repos)
        except GitError as exc:
            errors["gitUrl"] = str(exc)
    if notes is not None:
        if len(notes) > NOTES_MAX:
            errors["notes"] = f"at most {NOTES_MAX} characters"
        clean["notes"] = notes
    if errors:
        raise ValidationError(errors)
    return clean


async def create_project(owner: User, *, title: str, git_url: str, notes: str = "") -> Project:
    fields = _validate(title, git_url, notes)
    async with in_transaction():
        project = await Project.create(owner=owner, **fields)
        await revisions.record("project", project.id, 1, project.notes, owner, "created")
    return project


async def update_project(
    actor: User, project: Project, *, title: str | None = None, git_url: str | None = None,
    notes: str | None = None, notes_base_version: int | None = None, edit_summary: str = "",
) -> Project:
    if project.owner_id != actor.id:
        raise Forbidden("Only the project owner can update it.")
    fields = _validate(title, git_url, notes)
    body = fields.pop("notes", None)
    return await revisions.replace_body(
        project, "notes", "notes_version", "project", body, actor, edit_summary, notes_base_version,
        max_length=NOTES_MAX, field="notes", extra_fields=fields,
    )


def search(*, owner_id: Any = None, text: str | None = None) -> QuerySet[Project]:
    qs = Project.all()
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if text:
        # What people type: words of the title or notebook, or who runs it.
        qs = qs.filter(Q(title__icontains=text) | Q(notes__icontains=text) | Q(owner__handle__icontains=text)
                       | Q(owner__display_name__icontains=text))
    return qs
