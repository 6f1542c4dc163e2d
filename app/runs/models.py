"""Runs (the business entity) and jobs (the execution entity, up to two per run)."""

from tortoise import fields

from app.models_base import Entity


class Run(Entity):
    project = fields.ForeignKeyField("models.Project", related_name="runs", on_delete=fields.RESTRICT)
    creator = fields.ForeignKeyField("models.User", related_name="runs", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=200)
    status = fields.CharField(max_length=20, default="dryrun", db_index=True)
    uri = fields.CharField(max_length=500)
    version = fields.CharField(max_length=200)
    commit_sha = fields.CharField(max_length=40)
    entry_point = fields.CharField(max_length=100, default="main")
    parameters = fields.JSONField(default=dict)
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
    estimate_detail = fields.JSONField(null=True)
    funded_cents = fields.BigIntField(default=0)
    dryrun_job = fields.ForeignKeyField("models.Job", related_name=False, null=True, on_delete=fields.SET_NULL)
    funded_job = fields.ForeignKeyField("models.Job", related_name=False, null=True, on_delete=fields.SET_NULL)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "runs"

    @property
    def funding_gap_cents(self) -> int:
        if self.estimated_cost_cents is None:
            return 0
        return max(self.estimated_cost_cents - self.funded_cents, 0)


class Job(Entity):
    run = fields.ForeignKeyField("models.Run", related_name="jobs", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=10)  # dryrun | funded
    status = fields.CharField(max_length=20, default="pending", db_index=True)
    executor = fields.CharField(max_length=20)
    handle = fields.JSONField(default=dict)  # executor handle: pid/pgid/workdir or k8s name + namespace
    spec = fields.JSONField(default=dict)
    deadline_seconds = fields.IntField()
    mlflow_run_id = fields.CharField(max_length=64, null=True)
    mlflow_experiment_id = fields.CharField(max_length=64, null=True)
    pending_info = fields.TextField(null=True)
    error = fields.JSONField(null=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    actual_cost_cents = fields.BigIntField(null=True)
    cost_detail = fields.JSONField(null=True)
    # Last log seq handed out; lines take seqs with UPDATE … RETURNING so writers never collide.
    log_seq = fields.BigIntField(default=0)
    event_seq = fields.IntField(default=0)

    class Meta:
        table = "jobs"
