from tortoise import migrations
from tortoise.migrations import operations as ops

# Query.runs (app/runs/discovery.py): one index per order, each led by the status filter.
# The expressions must stay identical to GAP_SQL / SHARE_SQL there, or PostgreSQL will not use them.
GAP = "GREATEST(COALESCE(estimated_cost_cents, 0) - funded_cents, 0)"
SHARE = "(funded_cents::float8 / GREATEST(COALESCE(estimated_cost_cents, 0), 1))"


class Migration(migrations.Migration):
    dependencies = [('models', '0003_read_indexes')]

    initial = False

    operations = [
        ops.RunSQL(
            [
                "CREATE INDEX IF NOT EXISTS idx_runs_status_created ON runs (status, created_at, id)",
                f"CREATE INDEX IF NOT EXISTS idx_runs_status_gap ON runs (status, ({GAP}), id)",
                f"CREATE INDEX IF NOT EXISTS idx_runs_status_share ON runs (status, ({SHARE}), id)",
            ],
            reverse_sql=[
                "DROP INDEX IF EXISTS idx_runs_status_created",
                "DROP INDEX IF EXISTS idx_runs_status_gap",
                "DROP INDEX IF EXISTS idx_runs_status_share",
            ],
        ),
    ]
