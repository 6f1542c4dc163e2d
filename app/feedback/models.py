from tortoise import fields

from app.core.models import Entity


class Feedback(Entity):
    """A bug report, feature request or question sent to the platform team."""

    user = fields.ForeignKeyField("models.User", related_name="feedback", on_delete=fields.CASCADE)
    type = fields.CharField(max_length=20)  # bug | feature | question
    title = fields.CharField(max_length=200)
    description = fields.TextField()

    class Meta:
        table = "feedback"
