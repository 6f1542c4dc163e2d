"""Pick the executor from settings: `local` (subprocess, embedded default) or `kubernetes`."""

from __future__ import annotations

from pathlib import Path

from app.core.settings import Settings
from app.execution.executor import Executor, JobSink


def build_executor(settings: Settings, sink: JobSink) -> Executor:
    if settings.executor == "kubernetes":
        from app.execution.kubernetes import KubernetesExecutor

        return KubernetesExecutor(sink)
    from app.execution.local import LocalExecutor

    return LocalExecutor(
        sink,
        work_root=settings.data_dir / "jobs",
        python_bin_dir=Path(settings.job_python_bin) if settings.job_python_bin else None,
        grace_seconds=settings.cancel_grace_seconds,
    )
