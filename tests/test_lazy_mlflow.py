"""The embedded MLflow server starts in the background: the platform serves at once, and the
tracking calls of a job's launch wait for MLflow instead of failing."""

from __future__ import annotations

import os
from pathlib import Path

from app.embedded.stack import EmbeddedStack
from app.tracking.mlflow import MlflowTracker


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_mlflow_starts_in_the_background_and_tracking_waits_for_it(work_dir: Path) -> None:
    stack = EmbeddedStack(work_dir / "lazy-mlflow")
    urls = stack.start(postgres=False, redis=False, mlflow=True)
    tracker = MlflowTracker(urls["mlflow"], wait_seconds=180)
    try:
        assert stack.mlflow is not None
        assert not stack.mlflow.ready.is_set()  # start() returned before MLflow answers
        # A job's launch now: the first call meets a refused connection and waits for the server.
        experiment = await tracker.ensure_experiment("lazy-start")
        run_id = await tracker.create_run(experiment, "first job", {"mlpatron.kind": "dryrun"})
        assert stack.mlflow.ready.is_set() and run_id
        pid = stack.mlflow.pid
        assert pid is not None
    finally:
        await tracker.close()
        stack.stop()
    assert not group_alive(pid)


def test_stopping_while_mlflow_starts_leaves_nothing_behind(work_dir: Path) -> None:
    stack = EmbeddedStack(work_dir / "lazy-mlflow-stop")
    stack.start(postgres=False, redis=False, mlflow=True)
    server = stack.mlflow
    assert server is not None
    # Catch the server process while it is starting, then stop the platform (Ctrl-C at start-up).
    pid = None
    while pid is None and server._starter is not None and server._starter.is_alive():
        pid = server.pid
        server._starter.join(0.01)
    assert pid is not None and not server.ready.is_set(), "MLflow was not caught while starting"
    stack.stop()  # returns once the start is aborted and the process group is gone
    assert not group_alive(pid)
    assert server.pid is None and server._starter is not None and not server._starter.is_alive()
