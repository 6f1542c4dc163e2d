from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

# Issue 16: what a job ran (job_environments) and which Kubernetes Events its log already holds.
class Migration(migrations.Migration):
    dependencies = [('models', '0007_funding_notices')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobEnvironment',
            fields=[
                ('job', fields.OneToOneField('models.Job', source_field='job_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='environment', on_delete=OnDelete.CASCADE)),
                ('facts', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'job_environments', 'app': 'models', 'pk_attr': 'job_id', 'table_description': 'What a job ran beyond its spec, as its executor saw it: the image digest the kubelet pulled,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JobEventMark',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.ForeignKeyField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='event_marks', on_delete=OnDelete.CASCADE)),
                ('event_uid', fields.CharField(max_length=253)),
                ('occurrences', fields.IntField()),
            ],
            options={'table': 'job_event_marks', 'app': 'models', 'unique_together': (('job', 'event_uid'),), 'pk_attr': 'id', 'table_description': "A Kubernetes Event already in a job's log, with the occurrences written: a restarted"},
            bases=['Model'],
        ),
    ]
