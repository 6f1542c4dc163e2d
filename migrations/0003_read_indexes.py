from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_email_outbox')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='ApiKey',
            index=Index(fields=['user_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='Job',
            index=Index(fields=['run_id', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Job',
            index=Index(fields=['status', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='LedgerPosting',
            index=Index(fields=['account', 'transaction_id']),
        ),
        ops.AddIndex(
            model_name='Project',
            index=Index(fields=['owner_id', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Project',
            index=Index(fields=['updated_at', 'id']),
        ),
        ops.AddIndex(
            model_name='ProjectSubscription',
            index=Index(fields=['project_id', 'user_id']),
        ),
        ops.AddIndex(
            model_name='Run',
            index=Index(fields=['project_id', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Run',
            index=Index(fields=['project_id', 'status', 'created_at', 'id']),
        ),
    ]
