"""The run page's results (issue 16 item 6) in a browser, on a real server and the real MLflow
server: a dryrun logs parameters, metrics (NaN and infinities included) and a nested artifact
directory; the page shows the final-metrics table and the parameters, browses the artifact
folders, downloads files byte-identical, and copies the reproduction command; the project page
overlays two runs' loss curves. Screenshots: test-output/screenshots/results-*.png."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.client import Person
from tests.e2e.axe import assert_accessible
from tests.e2e.pages import DESKTOP
from tests.experiments import create_run, make_project, wait_run
from tests.repos import Repo, git
from tests.test_results import MLPROJECT, TRAIN

# The bytes of a file the dryrun logged, read through the link's href in the page.
FETCH_BYTES = "async (href) => Array.from(new Uint8Array(await (await fetch(href)).arrayBuffer()))"


@dataclass
class Experiment:
    researcher: Person
    project_id: str
    runs: list[dict]  # lr 0.5 then 0.25, both dryruns done


@pytest.fixture(scope="module")
async def experiment(api: str, work_dir: Path) -> Experiment:
    researcher = await Person.create(api, "results")
    path = work_dir / f"results-ui-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path)
    repo.commit({"MLproject": MLPROJECT, "train.py": TRAIN})
    project = await make_project(researcher.agent, repo)
    runs = [await create_run(researcher.agent, project, repo, title=f"lr {lr}",
                             parameters={"epochs": 6, "lr": lr, "big_mb": 0},
                             dryrunOverrideParam="epochs", dryrunOverrideValue=3) for lr in (0.5, 0.25)]
    done = [await wait_run(researcher.agent, r["id"], {"AWAITING_FUNDING", "DRYRUN_FAILED"}, within=180) for r in runs]
    assert [r["status"] for r in done] == ["AWAITING_FUNDING"] * 2, done
    return Experiment(researcher, project, done)


async def test_run_page_shows_results_downloads_artifacts_and_copies_reproduce(
        new_context, experiment: Experiment, screenshots: Path) -> None:
    errors: list[str] = []
    run = experiment.runs[0]
    reproduce = (await experiment.researcher.agent.data("query($id: ID!) { run(id: $id) { reproduce } }",
                                                        {"id": run["id"]}))["run"]["reproduce"]
    assert reproduce and reproduce.startswith("mlflow run"), reproduce

    # Logged out: results are as public as the run.
    context = await new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"/runs/{run['id']}")
    results = page.get_by_role("region", name="Results")
    await expect(results.get_by_text("From the dryrun.")).to_be_visible()

    # Final metrics: the last value of each and its step; NaN and the infinities by name.
    table = results.get_by_role("table", name="Final metrics")
    expected = {"diverged": ("NaN", "2"), "floor": ("\u2212∞", "0"), "grad_norm": ("+∞", "1"), "loss": ("0.833", "2")}
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(len(expected))
    for key, (value, step) in expected.items():
        await expect(table.get_by_role("row", name=key)).to_have_text(f"{key}{value}{step}")
    # The parameters the job logged (the dryrun's epochs override, not the run's 6).
    params = results.locator("dl.kv")
    for key, value in {"epochs": "3", "lr": "0.5", "optimizer": "adam"}.items():
        await expect(params.locator("div", has=page.locator("dt", has_text=key))).to_contain_text(value)

    # The artifact root: a file downloads (the browser's download, then compared byte for byte).
    folders = results.get_by_role("navigation", name="Artifact folders")
    await expect(results.get_by_role("link", name="config.json")).to_be_visible()
    async with page.expect_download() as download_info:
        await results.get_by_role("link", name="config.json").click()
    download = await download_info.value
    assert download.suggested_filename == "config.json"
    assert Path(await download.path()).read_bytes() == json.dumps({"lr": 0.5}).encode()

    # Down three folders, a file fetched from its href, and back to the root by the breadcrumb.
    for folder in ("plots", "deep", "nested"):
        await results.get_by_role("button", name=f"{folder}/").click()
        await expect(folders.locator("[aria-current=location]")).to_have_text(folder)
    curve = results.get_by_role("link", name="curve.csv")
    href = await curve.get_attribute("href")
    assert href and href.startswith("/artifacts/"), href
    assert bytes(await page.evaluate(FETCH_BYTES, href)) == b"step,loss\n0,1.1\n"
    await expect(results.get_by_role("link", name="README.md")).to_have_count(0)
    await folders.get_by_role("button", name="plots").click()
    await expect(results.get_by_role("link", name="résumé final.txt")).to_be_visible()
    await folders.get_by_role("button", name="artifacts").click()
    await expect(results.get_by_role("link", name="README.md")).to_be_visible()

    # The reproduction command, shown and copied; the button says so.
    await expect(results.get_by_test_id("reproduce")).to_have_text(reproduce)
    copy = results.get_by_role("button", name="Copy the reproduction command")
    await copy.click()
    await expect(results.get_by_role("button", name="Copied the reproduction command")).to_have_text("Copied ✓")
    assert await page.evaluate("navigator.clipboard.readText()") == reproduce

    await assert_accessible(page, "run page with results")
    await results.scroll_into_view_if_needed()
    await page.screenshot(path=screenshots / "results-run-page.png", full_page=True)
    assert errors == [], errors


async def test_project_page_overlays_two_runs_loss_curves(new_context, experiment: Experiment,
                                                          screenshots: Path) -> None:
    errors: list[str] = []
    page = await (await new_context(viewport=DESKTOP)).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"/projects/{experiment.project_id}")
    compare = page.get_by_role("region", name="Compare runs")
    await compare.get_by_label("First run").select_option(label="lr 0.5")
    await compare.get_by_label("Second run").select_option(label="lr 0.25")
    chart = compare.get_by_test_id("chart-loss")
    # Two curves of three steps each, on shared axes; the legend names each run's last loss.
    await expect(chart.locator("polyline")).to_have_count(2)
    await expect(chart.locator("circle")).to_have_count(6)
    await expect(compare.locator("figcaption")).to_contain_text("lr 0.5: last 0.833 (step 2)")
    await expect(compare.locator("figcaption")).to_contain_text("lr 0.25: last 0.583 (step 2)")
    drawn = await chart.locator("polyline").evaluate_all("(ls) => ls.map((l) => l.getAttribute('points'))")
    assert len(set(drawn)) == 2 and all(len(p.split()) == 3 for p in drawn), drawn
    # A metric neither run logged says so; the same run twice is refused before asking.
    await compare.get_by_label("Metric").fill("accuracy")
    await expect(compare.get_by_text("Neither run logged “accuracy”.")).to_be_visible()
    await compare.get_by_label("Metric").fill("loss")
    await expect(chart.locator("polyline")).to_have_count(2)
    await assert_accessible(page, "project page comparing runs")
    await compare.scroll_into_view_if_needed()
    await page.screenshot(path=screenshots / "results-compare-runs.png", full_page=True)
    await compare.get_by_label("Second run").select_option(label="lr 0.5")
    await expect(compare.get_by_text("Choose two different runs.")).to_be_visible()
    assert errors == [], errors
