from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# RUN_FUNDED notices leave the funding's request path (app/notifications/funded.py): a funding
# written by fundRun carries the run's funded total until its notice is written. The partial
# index keeps the notifier's claim a lookup of the few pending rows, never a scan of all fundings.


class Migration(migrations.Migration):
    dependencies = [('models', '0006_read_windows')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Funding',
            name='notice_funded_cents',
            field=fields.BigIntField(null=True),
        ),
        ops.RunSQL(
            ["CREATE INDEX IF NOT EXISTS idx_fundings_notice_pending ON fundings (created_at) "
             "WHERE notice_funded_cents IS NOT NULL"],
            reverse_sql=["DROP INDEX IF EXISTS idx_fundings_notice_pending"],
        ),
    ]
