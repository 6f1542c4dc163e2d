from tortoise import fields

from app.core.models import Entity


class Revision(Entity):
    """One version of a versioned body (project/run notes, discussion/comment bodies)."""

    entity_type = fields.CharField(max_length=20)
    entity_id = fields.UUIDField()
    version = fields.IntField()
    body = fields.TextField()
    editor = fields.ForeignKeyField("models.User", related_name="revisions", null=True, on_delete=fields.SET_NULL)
    edit_summary = fields.CharField(max_length=300, default="")

    class Meta:
        table = "revisions"
        unique_together = (("entity_type", "entity_id", "version"),)
