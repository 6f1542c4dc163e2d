from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OutboxEmail',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('to_address', fields.CharField(max_length=254)),
                ('subject', fields.CharField(max_length=500)),
                ('body', fields.TextField(unique=False)),
                ('unsubscribe_url', fields.CharField(max_length=500)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(default='', max_length=500)),
            ],
            options={'table': 'email_outbox', 'app': 'models', 'indexes': [Index(fields=['sent_at', 'next_attempt_at'])], 'pk_attr': 'id', 'table_description': "An email waiting for (or done with) delivery, written in the notification's transaction."},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='Wallet',
            options={'table': 'wallets', 'app': 'models', 'pk_attr': 'user_id'},
        ),
    ]
