from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0004_run_discovery')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Run',
            name='copied_from_id',
            field=fields.UUIDField(null=True),
        ),
    ]
