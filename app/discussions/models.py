"""Discussions (project-level or platform-level) and their threaded comments."""

from tortoise import fields

from app.core.models import Entity


class Discussion(Entity):
    project = fields.ForeignKeyField("models.Project", related_name="discussions", null=True,
                                     on_delete=fields.RESTRICT)  # null: a platform-level discussion
    author = fields.ForeignKeyField("models.User", related_name="discussions", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=200)
    body = fields.TextField()
    body_version = fields.IntField(default=1)
    is_pinned = fields.BooleanField(default=False)
    # Also numbers the comments (their thread path); soft-deleted comments stay counted.
    comment_count = fields.IntField(default=0)
    last_activity_at = fields.DatetimeField()
    # Pinned first, then latest activity, folded into one column so lists are a keyset range scan.
    sort_key = fields.BigIntField()
    deleted_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "discussions"
        indexes = (("project_id", "sort_key"),)  # column names: migrations do not map FK names


class Comment(Entity):
    discussion = fields.ForeignKeyField("models.Discussion", related_name="comments", on_delete=fields.RESTRICT)
    parent = fields.ForeignKeyField("models.Comment", related_name="replies", null=True, on_delete=fields.RESTRICT)
    author = fields.ForeignKeyField("models.User", related_name="comments", on_delete=fields.RESTRICT)
    body = fields.TextField()
    body_version = fields.IntField(default=1)
    # Materialised path of zero-padded comment numbers ("00000001.00000004"): ordering by it lists
    # the thread depth-first, oldest first among siblings, with a single keyset column.
    path = fields.CharField(max_length=300)
    depth = fields.IntField(default=0)
    deleted_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "comments"
        unique_together = (("discussion", "path"),)
