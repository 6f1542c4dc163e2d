"""Runs: the business entity (configuration, estimate, funding). Jobs live in `app.jobs.models`."""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Any

from tortoise import fields

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.projects.models import Project


class RunStatus(str, enum.Enum):  # noqa: UP042 - str() of a member stays 'RunStatus.X'
    DRYRUN = "dryrun"
    DRYRUN_FAILED = "dryrun_failed"
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    FUNDED_FAILED = "funded_failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.DRYRUN.value, RunStatus.AWAITING_FUNDING.value, RunStatus.FUNDED.value)
TERMINAL_RUN_STATUSES = (RunStatus.DRYRUN_FAILED.value, RunStatus.FUNDED_FAILED.value, RunStatus.COMPLETED.value,
                         RunStatus.CANCELLED.value)


class Run(Entity):
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="runs", on_delete=fields.RESTRICT
    )
    project_id: uuid.UUID
    creator: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="runs", on_delete=fields.RESTRICT
    )
    creator_id: uuid.UUID
    title = fields.CharField(max_length=200)
    status = fields.CharField(max_length=20, default="dryrun", db_index=True)
    uri = fields.CharField(max_length=500)
    version = fields.CharField(max_length=200)
    commit_sha = fields.CharField(max_length=40)
    entry_point = fields.CharField(max_length=100, default="main")
    # Effective parameters of the funded run (entry-point defaults filled in), as strings.
    parameters: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    gpu_type = fields.CharField(max_length=40)
    gpu_count = fields.IntField()
    machine_type = fields.CharField(max_length=60)
    spot = fields.BooleanField(default=False)
    image = fields.CharField(max_length=300, null=True)
    dryrun_override_param = fields.CharField(max_length=100)
    dryrun_override_value = fields.CharField(max_length=100)
    notes = fields.TextField(default="")
    notes_version = fields.IntField(default=1)
    estimated_cost_cents = fields.BigIntField(null=True)
    estimated_duration_seconds = fields.IntField(null=True)
    estimate_detail: fields.JSONField[Any] = fields.JSONField(null=True)
    funded_cents = fields.BigIntField(default=0)
    # Plain ids, not foreign keys: runs ↔ jobs would be a cycle, which tortoise's migration
    # writer silently drops columns for. Jobs point at their run with a real foreign key.
    dryrun_job_id = fields.UUIDField(null=True)
    funded_job_id = fields.UUIDField(null=True)
    # The run this one was copied from (copyRun); a plain id like the jobs', for the same reason.
    copied_from_id = fields.UUIDField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "runs"
        # A project's runs page, with or without a status filter (and its stats by status).
        indexes = (("project_id", "created_at", "id"), ("project_id", "status", "created_at", "id"))

    @property
    def funding_gap_cents(self) -> int:
        return funding_gap(self.estimated_cost_cents, self.funded_cents)


def funding_gap(estimated_cost_cents: int | None, funded_cents: int) -> int:
    """What a run still needs: its estimate less what it has raised (nothing before an estimate)."""
    if estimated_cost_cents is None:
        return 0
    return max(estimated_cost_cents - funded_cents, 0)
