from tortoise import migrations
from tortoise.migrations import operations as ops

# Indexes for the per-parent keyset windows and queue positions (app/api/windows.py, app/api/jobs/loaders.py).
# Plain SQL: partial indexes, and whole keyset keys (sort column + id) so pages need no sort step.
INDEXES = {
    "idx_fundings_run_keyset": "fundings (run_id, created_at, id)",
    "idx_fundings_funder_keyset": "fundings (funder_id, created_at, id)",
    "idx_jobs_pending_queue": "jobs (created_at, id) WHERE status = 'pending'",
    "idx_discussions_listed": "discussions (project_id, sort_key, id) WHERE deleted_at IS NULL",
    "idx_notifications_unread": "notifications (user_id, created_at, id) WHERE read_at IS NULL",
    # A comment's replies; also what deleting comments checks its self-reference with.
    "idx_comments_parent": "comments (parent_id)",
}


class Migration(migrations.Migration):
    dependencies = [('models', '0005_run_copied_from')]

    initial = False

    operations = [
        ops.RunSQL(
            [f"CREATE INDEX IF NOT EXISTS {name} ON {target}" for name, target in INDEXES.items()],
            reverse_sql=[f"DROP INDEX IF EXISTS {name}" for name in INDEXES],
        ),
    ]
