"""Jobs (the execution entity, up to two per run), their status timeline and their log lines."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import fields
from tortoise.models import Model

from app.core.models import Entity


class Job(Entity):
    # Typed as a plain model: jobs sit below runs, which import them (the row is reached as run_id).
    run: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Run", related_name="jobs", on_delete=fields.RESTRICT
    )
    run_id: uuid.UUID
    kind = fields.CharField(max_length=10)  # dryrun | funded
    status = fields.CharField(max_length=20, default="pending", db_index=True)
    executor = fields.CharField(max_length=20)
    # executor handle: pid/pgid/workdir or k8s name + namespace
    handle: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    spec: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    deadline_seconds = fields.IntField()
    mlflow_run_id = fields.CharField(max_length=64, null=True)
    mlflow_experiment_id = fields.CharField(max_length=64, null=True)
    pending_info = fields.TextField(null=True)
    error: fields.JSONField[Any] = fields.JSONField(null=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    # Set when someone asks to stop a local job another API process owns (see Lifecycle.cancel_job).
    cancel_requested_at = fields.DatetimeField(null=True)
    actual_cost_cents = fields.BigIntField(null=True)
    cost_detail: fields.JSONField[Any] = fields.JSONField(null=True)
    # Last log seq handed out; lines take seqs with UPDATE … RETURNING so writers never collide.
    log_seq = fields.BigIntField(default=0)
    event_seq = fields.IntField(default=0)

    class Meta:
        table = "jobs"
        # A run's jobs; the queue (pending, oldest first) and status lists, keyset ordered.
        indexes = (("run_id", "created_at", "id"), ("status", "created_at", "id"))


class JobLogLine(Model):
    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation[Job] = fields.ForeignKeyField(
        "models.Job", related_name="log_lines", on_delete=fields.CASCADE
    )
    job_id: uuid.UUID
    seq = fields.BigIntField()
    stream = fields.CharField(max_length=10)  # stdout | stderr | event
    line = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "job_log_lines"
        unique_together = (("job", "seq"),)


class JobEventMark(Model):
    """A Kubernetes Event already in a job's log, with the occurrences written: a restarted
    watcher re-lists every Event and writes only what is new (`JobRecorder.job_events`)."""

    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation[Job] = fields.ForeignKeyField(
        "models.Job", related_name="event_marks", on_delete=fields.CASCADE
    )
    job_id: uuid.UUID
    event_uid = fields.CharField(max_length=253)  # metadata.uid (the name when absent)
    occurrences = fields.IntField()

    class Meta:
        table = "job_event_marks"
        unique_together = (("job", "event_uid"),)


class JobEnvironment(Model):
    """What a job ran beyond its spec, as its executor saw it: the image digest the kubelet pulled,
    a local job's Python and package versions; merged key by key (`JobRecorder.job_environment`).
    A table of its own: a package list is kilobytes, and job rows are read by every list."""

    job: fields.OneToOneRelation[Job] = fields.OneToOneField(
        "models.Job", related_name="environment", on_delete=fields.CASCADE, primary_key=True
    )
    job_id: uuid.UUID
    facts: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "job_environments"


class JobTransition(Model):
    """The job's status timeline; `seq` orders it for resumable `jobStatus` streams."""

    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation[Job] = fields.ForeignKeyField(
        "models.Job", related_name="transitions", on_delete=fields.CASCADE
    )
    job_id: uuid.UUID
    seq = fields.IntField()
    status = fields.CharField(max_length=20)
    pending_info = fields.TextField(null=True)
    error: fields.JSONField[Any] = fields.JSONField(null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "job_transitions"
        unique_together = (("job", "seq"),)
