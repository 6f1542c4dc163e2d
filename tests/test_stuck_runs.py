"""A run never stays behind its job: estimates too long or too costly (even overflowing ones)
make the run DRYRUN_FAILED with a platform error saying why, and the reconciler moves on a run
whose job ended while the transition's consequence failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import get_settings, override_settings
from app.jobs.status import JobStatus
from app.runs import estimates
from app.runs.models import Run
from tests.experiments import RUN, create_run, make_demo_repo, make_project, pk, wait_run
from tests.helpers import eventually
from tests.repos import Repo


@pytest.fixture(scope="module")
def demo_repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


@pytest.fixture
async def researcher(make_person):
    return await make_person("stuck")


@pytest.mark.parametrize(("epochs", "caps", "passed"), [
    (10**15, {}, "MAX_ESTIMATE_SECONDS"),  # the overflow: 1e15 epochs from a 1-epoch dryrun
    (100_000, {"max_estimate_seconds": 3600}, "MAX_ESTIMATE_SECONDS"),
    (100_000, {"max_estimate_cents": 100}, "MAX_ESTIMATE_CENTS"),
])
async def test_estimates_beyond_the_caps_fail_the_dryrun_with_the_reason(
        researcher, demo_repo: Repo, epochs: int, caps: dict, passed: str) -> None:
    before = get_settings()
    override_settings(**caps)
    try:
        project_id = await make_project(researcher.agent, demo_repo)
        run = await create_run(researcher.agent, project_id, demo_repo,
                               parameters={"epochs": epochs, "seconds": 0.05})
        run = await wait_run(researcher.agent, run["id"], {"DRYRUN_FAILED", "AWAITING_FUNDING"})
    finally:
        override_settings(max_estimate_seconds=before.max_estimate_seconds,
                          max_estimate_cents=before.max_estimate_cents)
    assert run["status"] == "DRYRUN_FAILED"
    assert run["dryrunJob"]["status"] == "SUCCEEDED"  # the code worked; the run it measures is refused
    assert "estimate refused" in run["dryrunJob"]["error"]["platform"]
    assert passed in run["dryrunJob"]["error"]["platform"]
    assert run["estimatedCostCents"] is None


def test_the_estimate_never_overflows() -> None:
    from app.catalog.catalog import resolve_machine

    _, machine = resolve_machine("l4", 1, None)
    for full in (1e15, 1e300, float("inf")):
        with pytest.raises(estimates.EstimateTooLarge):
            estimates.estimate(dryrun_seconds=1.0, dryrun_value=1, full_value=full, startup_overhead_seconds=60,
                               machine=machine, spot=False, max_seconds=10**9, max_cents=10**12)


async def test_the_reconciler_repairs_a_run_whose_dryrun_ended_unnoticed(researcher, demo_repo: Repo,
                                                                         services) -> None:
    lifecycle = services.lifecycle
    callbacks = lifecycle.recorder._callbacks
    at = callbacks.index(lifecycle.job_transition)

    async def broken(job, old: JobStatus, new: JobStatus) -> None:
        raise RuntimeError("injected: the transition's consequence fails")

    callbacks[at] = broken  # the fault the issue saw: "transition callback failed", run left behind
    try:
        project_id = await make_project(researcher.agent, demo_repo)
        run = await create_run(researcher.agent, project_id, demo_repo, parameters={"epochs": 3, "seconds": 0.05})
        stuck = await eventually(lambda: researcher.agent.data(RUN, {"id": run["id"]}),
                                 lambda d: d["run"]["dryrunJob"]["status"] == "SUCCEEDED")
        assert stuck["run"]["status"] == "DRYRUN"
    finally:
        callbacks[at] = lifecycle.job_transition
    await lifecycle.reconcile()  # the periodic pass, run now
    repaired = (await researcher.agent.data(RUN, {"id": run["id"]}))["run"]
    assert repaired["status"] == "AWAITING_FUNDING"
    assert repaired["estimatedCostCents"] > 0
    await lifecycle.reconcile()  # idempotent: nothing left to repair, nothing repeated
    assert (await Run.get(id=pk(run["id"]))).status == "awaiting_funding"
