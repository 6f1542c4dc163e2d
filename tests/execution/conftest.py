"""Fixtures for executor tests: throwaway git repositories and a recording JobSink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.jobs.status import JobStatus, JobUpdate
from tests.repos import Repo, git


@pytest.fixture
def git_cli() -> Callable[..., str]:
    """`git_cli(repo_dir, *args)` -> stdout, with a throwaway identity and no host config."""
    return git


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Repo]:
    def factory(name: str = "repo", files: dict[str, str] | None = None) -> Repo:
        path = tmp_path / name
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
        repo = Repo(path)
        if files:
            repo.commit(files, "initial")
        return repo

    return factory


@dataclass
class RecordingSink:
    """Keeps every update and log line in arrival order; tests await conditions on it."""

    events: list[tuple[str, object]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def job_update(self, update: JobUpdate) -> None:
        async with self.changed:
            self.events.append(("update", update))
            self.changed.notify_all()

    async def job_log(self, job_id: str, stream: str, line: str) -> None:
        async with self.changed:
            self.events.append(("log", (job_id, stream, line)))
            self.changed.notify_all()

    def updates(self, job_id: str) -> list[JobUpdate]:
        return [e for kind, e in self.events if kind == "update" and e.job_id == job_id]  # type: ignore[union-attr]

    def statuses(self, job_id: str) -> list[JobStatus]:
        return [u.status for u in self.updates(job_id)]

    def lines(self, job_id: str, stream: str) -> list[str]:
        return [e[2] for kind, e in self.events if kind == "log" and e[:2] == (job_id, stream)]  # type: ignore[index]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(predicate)

    async def terminal(self, job_id: str, within: float = 15.0) -> JobUpdate:
        await self.wait_for(lambda: any(u.status.terminal for u in self.updates(job_id)), within)
        return self.updates(job_id)[-1]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()
