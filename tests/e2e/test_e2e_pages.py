"""The pages of issue 18 in a browser, on a real server with data made through the API: Discover
(runs awaiting funding across projects, funded from the card, updated live), profiles, platform
discussions, feedback, pinning, copy-and-rerun, emoji in job logs, the history of notes, discussions
and comments; and axe-core on every page of the app, logged out and in, at desktop and phone widths.
Screenshots: test-output/screenshots/pages-*.png."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.client import Person
from tests.e2e.axe import assert_accessible, serious_violations
from tests.e2e.pages import DESKTOP, PHONE, log_in, open_page
from tests.experiments import create_run, make_demo_repo, make_project, wait_run
from tests.repos import Repo
from tests.test_discussions import PATCH_DISCUSSION, UPDATE_COMMENT, comment_on, discussion_in


@pytest.fixture(scope="module")
def repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


async def grant(admin: Person, person: Person, cents: int) -> None:
    done = await admin.web.data(
        "mutation($i: GrantCreditInput!) { grantCredit(input: $i) { __typename } }",
        {"i": {"userId": person.gid, "amountCents": cents, "reason": "e2e"}})
    assert done["grantCredit"]["__typename"] == "GrantCreditSuccess", done


async def settled(page: Page, path: str) -> None:
    """Open `path` and wait until its heading shows and its requests are done."""
    await page.goto(path)
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await page.wait_for_load_state("networkidle")


async def test_every_page_passes_axe(new_context, make_person, repo: Repo, screenshots: Path) -> None:
    """axe-core on each page of the app: logged out and logged in, desktop and phone widths,
    plus the fund dialog and the notes editor open. No serious or critical violation."""
    errors: list[str] = []
    researcher, patron = await make_person("a11yres"), await make_person("a11ypat")
    project = await make_project(researcher.agent, repo)
    run = await create_run(researcher.agent, project, repo, title="accessible run")
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})
    discussion = await discussion_in(patron, project, title="Contrast?", body="Is it **readable**?")
    public = ["/", "/discover", "/discussions", f"/discussions/{discussion['id']}", f"/projects/{project}",
              f"/runs/{run['id']}", f"/jobs/{run['dryrunJob']['id']}/logs", "/jobs", f"/users/{researcher.gid}",
              "/feedback", "/login", "/signup", "/no/such/page"]
    private = ["/projects/new", f"/projects/{project}/runs/new", "/notifications", "/settings/profile",
               "/settings/wallet", "/settings/api-keys", "/settings/notifications"]
    checked = 0
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        anon = await open_page(await new_context(viewport=viewport), errors)
        for path in public:
            await settled(anon, path)
            await assert_accessible(anon, f"{width}, logged out: {path}")
            checked += 1
        me = await open_page(await new_context(viewport=viewport), errors)
        await log_in(me, researcher)
        for path in public + private:
            await settled(me, path)
            await assert_accessible(me, f"{width}, logged in: {path}")
            checked += 1
        # The two editors people spend time in: the fund dialog and the notes editor.
        await settled(me, f"/runs/{run['id']}")
        await me.get_by_role("button", name="Fund this run").click()
        await expect(me.get_by_role("dialog", name="Fund this run").get_by_label("Amount (USD)")).to_be_focused()
        await assert_accessible(me, f"{width}: fund dialog")
        await me.keyboard.press("Escape")
        await me.get_by_role("region", name="Run notes").get_by_role("button", name="Edit notes").click()
        await assert_accessible(me, f"{width}: notes editor")
        await me.screenshot(path=screenshots / f"pages-a11y-notes-editor-{width}.png", full_page=True)
        checked += 2
    print(f"\naxe-core: {checked} page states checked, 0 serious or critical violations")
    # The check itself sees problems: a button without a name is a critical violation.
    await me.evaluate("document.querySelector('main').append(document.createElement('button'))")
    assert any("button-name" in v for v in await serious_violations(me))
    assert errors == [], errors


async def test_discover_fund_from_the_card_live_profiles_and_copy(new_context, make_person, repo: Repo,
                                                                   screenshots: Path) -> None:
    errors: list[str] = []
    word = f"kiwi{uuid.uuid4().hex[:6]}"  # the search keeps other tests' runs out of the list
    researcher, patron, admin = await make_person("dres"), await make_person("dpat"), await make_person("dadm", admin=True)
    await grant(admin, patron, 1000)
    project = await make_project(researcher.agent, repo)
    alpha = await create_run(researcher.agent, project, repo, title=f"alpha {word}")
    beta = await create_run(researcher.agent, project, repo, title=f"beta {word}",
                            parameters={"epochs": 30, "lr": 0.5, "seconds": 0.2})
    alpha = await wait_run(researcher.agent, alpha["id"], {"AWAITING_FUNDING"})
    beta = await wait_run(researcher.agent, beta["id"], {"AWAITING_FUNDING"})
    assert alpha["fundingGapCents"] < beta["fundingGapCents"]

    # ---- a visitor watches the list (logged out) --------------------------------------------
    watcher = await open_page(await new_context(viewport=PHONE), errors)
    await watcher.goto(f"/discover?q={word}")
    cards = watcher.locator(".card")
    await expect(cards).to_have_count(2)
    await expect(cards.first).to_contain_text(f"alpha {word}")  # closest to fully funded first
    await expect(watcher.get_by_role("link", name=f"Log in to fund “alpha {word}”")).to_be_visible()

    # ---- the patron finds it from the navigation, sorts, funds from the card -----------------
    p = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(p, patron)
    await p.get_by_role("navigation", name="Main").get_by_role("link", name="Needs funding").click()
    await expect(p.get_by_role("heading", level=1)).to_have_text("Runs that need funding")
    await p.get_by_role("searchbox").fill(word)
    await expect(p.locator(".card")).to_have_count(2)
    await p.get_by_label("Sort").select_option(label="Newest first")
    await expect(p).to_have_url(re.compile(r"sort=newest"))
    await expect(p.locator(".card").first).to_contain_text(f"beta {word}")
    beta_card = p.locator(".card").filter(has_text=f"beta {word}")
    await expect(beta_card.get_by_test_id("funding-gap")).to_contain_text(f"${beta['fundingGapCents'] / 100:.2f}")
    await p.screenshot(path=screenshots / "pages-discover.png", full_page=True)

    # Keyboard only: Tab from the search box to the card's button, Enter, type, Enter, Escape.
    fund_beta = p.get_by_role("button", name=f"Fund “beta {word}”")
    await p.get_by_role("searchbox").focus()
    for _ in range(30):
        await p.keyboard.press("Tab")
        if await fund_beta.evaluate("el => el === document.activeElement"):
            break
    await expect(fund_beta).to_be_focused()
    await p.keyboard.press("Enter")
    dialog = p.get_by_role("dialog", name="Fund this run")
    amount = dialog.get_by_label("Amount (USD)")
    await expect(amount).to_be_focused()
    await p.keyboard.type("0.01")  # the amount is selected on focus: typing replaces it
    await p.keyboard.press("Tab")  # to the surplus choice: arrows move within it
    await expect(dialog.get_by_role("radio", name="Keep it in the project")).to_be_focused()
    await p.keyboard.press("ArrowDown")
    await expect(dialog.get_by_role("radio", name="Refund me")).to_be_checked()
    await p.keyboard.press("Enter")  # submits the form
    await expect(dialog.get_by_text("You funded $0.01")).to_be_visible()
    await p.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(fund_beta).to_be_focused()  # back where the patron was
    # The visitor's list shows it without a reload.
    await expect(watcher.locator(".card").filter(has_text=f"beta {word}")).to_contain_text("$0.01 of")

    # With the mouse: fund alpha's whole gap; it leaves both lists, live.
    await p.get_by_role("button", name=f"Fund “alpha {word}”").click()
    await expect(dialog.get_by_label("Amount (USD)")).to_have_value(f"{alpha['fundingGapCents'] / 100:.2f}")
    await dialog.get_by_role("button", name=re.compile(r"^Fund \$")).click()
    await expect(dialog.get_by_text(re.compile(r"You funded"))).to_be_visible()
    await p.screenshot(path=screenshots / "pages-discover-funded.png")
    await dialog.get_by_role("button", name="Close").last.click()
    await expect(p.locator(".card")).to_have_count(1)
    await expect(watcher.locator(".card")).to_have_count(1)
    await expect(watcher.locator(".card")).to_contain_text(f"beta {word}")
    await watcher.screenshot(path=screenshots / "pages-discover-phone-live.png", full_page=True)

    # ---- profiles: the researcher's projects, the patron's fundings ----------------------------
    await p.locator(".card").get_by_role("link", name=researcher.handle).click()
    await expect(p.get_by_role("heading", level=1)).to_have_text(researcher.handle)
    await expect(p.get_by_role("region", name="Projects").get_by_role("link", name="demo")).to_be_visible()
    await watcher.goto(f"/users/{patron.gid}")
    funded = watcher.get_by_role("region", name="Runs funded")
    await expect(funded.get_by_role("listitem")).to_have_count(2)
    await expect(funded.get_by_role("listitem").filter(has_text=f"beta {word}")).to_contain_text("$0.01")
    await watcher.screenshot(path=screenshots / "pages-profile-phone.png", full_page=True)

    # ---- copy and rerun: the owner starts a new run from a finished one ------------------------
    r = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(r, researcher)
    await r.goto(f"/runs/{alpha['id']}")
    await expect(p.get_by_role("link", name="Copy and run again")).to_have_count(0)  # not for patrons
    await r.get_by_role("link", name="Copy and run again").click()
    await expect(r.get_by_label("epochs", exact=True)).to_have_value("3")
    await r.get_by_label("Run title").fill(f"alpha again {word}")
    await r.get_by_role("button", name="Create run and start the dryrun").click()
    await expect(r.get_by_role("heading", level=1)).to_contain_text(f"alpha again {word}")
    await expect(r.get_by_role("link", name=f"alpha {word}", exact=True)).to_be_visible()  # copiedFrom
    await r.screenshot(path=screenshots / "pages-run-copied.png", full_page=True)
    assert errors == [], errors


async def test_platform_discussions_feedback_and_pinning(new_context, make_person, repo: Repo,
                                                         screenshots: Path) -> None:
    errors: list[str] = []
    owner, reader, admin = await make_person("pown"), await make_person("pread"), await make_person("padm", admin=True)
    project = await make_project(owner.agent, repo)
    older = await discussion_in(reader, project, title="Older question", body="first")
    await discussion_in(reader, project, title="Newer question", body="second")

    # ---- the project's owner pins the older one: it lists first; a reader cannot pin ----------
    o = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(o, owner)
    await o.goto(f"/discussions/{older['id']}")
    await o.get_by_role("button", name="Pin to top").click()
    await expect(o.get_by_role("status").filter(has_text="Pinned")).to_contain_text("it now lists first")
    await expect(o.get_by_role("button", name="Unpin")).to_have_attribute("aria-pressed", "true")
    await o.screenshot(path=screenshots / "pages-discussion-pinned.png")
    await o.get_by_role("link", name="← demo").click()
    items = o.get_by_role("region", name="Discussions").get_by_role("listitem")
    await expect(items.first).to_contain_text("Older question")
    await expect(items.first).to_contain_text("Pinned")
    rd = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(rd, reader)
    await rd.goto(f"/discussions/{older['id']}")
    await expect(rd.get_by_role("heading", level=1)).to_contain_text("Pinned")
    await expect(rd.get_by_role("button", name=re.compile("Pin|Unpin"))).to_have_count(0)
    await o.goto(f"/discussions/{older['id']}")
    await o.get_by_role("button", name="Unpin").click()
    await expect(o.get_by_role("button", name="Pin to top")).to_be_visible()
    await o.goto(f"/projects/{project}")
    await expect(items.first).to_contain_text("Newer question")

    # ---- platform discussions, from the navigation ---------------------------------------------
    title = f"Dark mode? {uuid.uuid4().hex[:6]}"
    await rd.get_by_role("navigation", name="Main").get_by_role("link", name="Discussions").click()
    await expect(rd.get_by_role("heading", level=1)).to_have_text("Discussions")
    await rd.get_by_role("button", name="Start a discussion").click()
    await rd.get_by_label("Title").fill(title)
    await rd.get_by_label("Message (Markdown)").fill("Easier on the eyes at night.")
    await rd.get_by_role("button", name="Start discussion").click()
    await expect(rd.get_by_role("heading", level=1)).to_have_text(title)
    await rd.get_by_role("navigation", name="Main").get_by_role("link", name="Discussions").click()
    await expect(rd.get_by_role("link", name=title)).to_be_visible()
    await rd.screenshot(path=screenshots / "pages-platform-discussions.png", full_page=True)
    platform = await admin.web.data("{ discussions(first: 50) { nodes { title project { id } } } }")
    assert {"title": title, "project": None} in platform["discussions"]["nodes"]

    # ---- feedback: logged out it asks to log in; logged in it reaches the admins -------------
    anon = await open_page(await new_context(viewport=PHONE), errors)
    await anon.goto("/")
    await anon.get_by_role("link", name="Send feedback").click()
    await expect(anon.get_by_text("Log in to see the feedback form.")).to_be_visible()
    await rd.get_by_role("link", name="Send feedback").click()
    await rd.get_by_role("button", name="Send feedback").click()
    await expect(rd.get_by_text("Give it a short title.")).to_be_visible()
    await rd.get_by_role("radio", name="An idea or a missing feature").check()
    subject = f"Export charts as SVG {uuid.uuid4().hex[:6]}"
    await rd.get_by_label("Title").fill(subject)
    await rd.get_by_label("Details").fill("For papers.")
    await rd.get_by_role("button", name="Send feedback").click()
    await expect(rd.get_by_text(f"Thank you: “{subject}” reached the administrators.")).to_be_visible()
    await expect(rd.get_by_role("button", name="Send more feedback")).to_be_focused()
    await rd.screenshot(path=screenshots / "pages-feedback-sent.png")
    sent = await admin.web.data("{ feedback(first: 20) { nodes { type title user { handle } } } }")
    assert {"type": "FEATURE", "title": subject, "user": {"handle": reader.handle}} in sent["feedback"]["nodes"]
    assert errors == [], errors


PROJECT_NOTES = """mutation($i: UpdateProjectInput!) { updateProject(input: $i) {
  __typename ... on ProjectSuccess { project { notesVersion } } } }"""
PATCH_PROJECT_NOTES = """mutation($i: PatchTextInput!) { patchProjectNotes(input: $i) {
  __typename ... on ProjectSuccess { project { notesVersion } } } }"""


async def tab_to(page: Page, target, limit: int = 40) -> None:
    """Press Tab until `target` has the focus (a keyboard user's way there)."""
    for _ in range(limit):
        if await target.evaluate("el => el === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    await expect(target).to_be_focused()


async def test_notes_history_diff_restore_by_keyboard(new_context, make_person, repo: Repo, screenshots: Path) -> None:
    errors: list[str] = []
    owner, reader = await make_person("hown"), await make_person("hread")
    project = await make_project(owner.agent, repo)

    async def write(mutation: str, name: str, i: dict) -> int:
        done = (await owner.agent.data(mutation, {"i": i}))[name]
        assert done["__typename"] == "ProjectSuccess", done
        return done["project"]["notesVersion"]

    first = await write(PROJECT_NOTES, "updateProject", {"id": project, "notes": "# Plan\n\nlr 0.1\nbatch 32\n",
                                                         "editSummary": "first plan"})
    second = await write(PATCH_PROJECT_NOTES, "patchProjectNotes", {
        "id": project, "baseVersion": first, "edits": [{"oldText": "lr 0.1", "newText": "lr 0.3"}],
        "editSummary": "raise lr"})

    # ---- keyboard only: edit, summary, save; then open the history --------------------------
    page = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(page, owner)
    await page.goto(f"/projects/{project}")
    notes = page.get_by_role("region", name="Lab notebook")
    await expect(notes.get_by_text("lr 0.3")).to_be_visible()
    await page.locator("main").focus()
    await tab_to(page, notes.get_by_role("button", name="Edit notes"))
    await page.keyboard.press("Enter")
    editor = notes.get_by_label("Notes (Markdown)")
    await expect(editor).to_be_focused()
    await page.keyboard.press("Control+End")
    await page.keyboard.type("warmup 5\n")
    await page.keyboard.press("Tab")
    await expect(notes.get_by_label("Edit summary (optional)")).to_be_focused()
    await page.keyboard.type("add warmup")
    await page.keyboard.press("Tab")
    await expect(notes.get_by_role("button", name="Save notes")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(notes.get_by_text("Notes saved.")).to_be_visible()
    await expect(notes.get_by_role("button", name="Edit notes")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(notes.get_by_role("button", name="History")).to_be_focused()
    await page.keyboard.press("Enter")

    history = page.get_by_role("region", name="Notes history")
    rows = history.get_by_role("row")
    await expect(rows.nth(1)).to_contain_text("add warmup")  # newest first, after the header row
    await expect(rows.nth(1)).to_contain_text("current")
    await expect(rows.filter(has_text="raise lr")).to_contain_text(owner.handle)
    await expect(rows.filter(has_text="first plan")).to_have_count(1)
    # The latest change by default, then any two versions.
    changes = history.get_by_role("list", name=re.compile("^Changes from version"))
    await expect(changes.locator(".diff-added")).to_have_text(["Added: +warmup 5"])
    await history.get_by_label("Compare version").select_option(str(first))
    await history.get_by_label("with version").select_option(str(second))
    await expect(changes).to_have_accessible_name(f"Changes from version {first} to version {second}")
    await expect(changes.locator(".diff-removed")).to_have_text(["Removed: \u2212lr 0.1"])
    await expect(changes.locator(".diff-added")).to_have_text(["Added: +lr 0.3"])
    await expect(history.get_by_text("1 line added, 1 removed")).to_be_visible()
    await assert_accessible(page, "notes history")
    await page.screenshot(path=screenshots / "pages-notes-history.png", full_page=True)

    # ---- restore the first plan: a new edit, through the same patch, with a conflict ----------
    await history.get_by_role("button", name=f"Restore version {first}").click()
    await expect(editor).to_have_value("# Plan\n\nlr 0.1\nbatch 32\n")
    await expect(notes.get_by_label("Edit summary (optional)")).to_have_value(f"Restored version {first}")
    current = (await owner.agent.data("query($id: ID!) { project(id: $id) { notesVersion } }", {"id": project}))[
        "project"]["notesVersion"]
    await write(PATCH_PROJECT_NOTES, "patchProjectNotes", {  # meanwhile, the same line changes elsewhere
        "id": project, "baseVersion": current, "edits": [{"oldText": "lr 0.3", "newText": "lr 0.5"}],
        "editSummary": "agent: lr 0.5"})
    await notes.get_by_role("button", name="Save notes").click()
    await expect(notes.get_by_text("Someone changed the same part of these notes")).to_be_visible()
    await page.screenshot(path=screenshots / "pages-notes-restore-conflict.png", full_page=True)
    await notes.get_by_role("button", name="Save mine over theirs").click()
    await expect(notes.get_by_text("Notes saved.")).to_be_visible()
    await expect(notes.locator(".prose")).to_contain_text("lr 0.1")
    await expect(notes.locator(".prose")).not_to_contain_text("warmup")
    await expect(rows.nth(1)).to_contain_text(f"Restored version {first}")
    await expect(rows.nth(2)).to_contain_text("agent: lr 0.5")
    final = await owner.agent.data("query($id: ID!) { project(id: $id) { notes notesHistory(first: 1) { nodes { "
                                   "body editSummary } } } }", {"id": project})
    assert final["project"]["notes"] == "# Plan\n\nlr 0.1\nbatch 32\n"
    assert final["project"]["notesHistory"]["nodes"] == [{"body": final["project"]["notes"],
                                                          "editSummary": f"Restored version {first}"}]

    # ---- a reader sees the history and the diff, and cannot restore ---------------------------
    other = await open_page(await new_context(viewport=PHONE), errors)
    await log_in(other, reader)
    await other.goto(f"/projects/{project}")
    await other.get_by_role("button", name="History").click()
    versions = (await reader.web.data("query($id: ID!) { project(id: $id) { notesHistory(first: 100) { nodes { "
                                      "version } } } }", {"id": project}))["project"]["notesHistory"]["nodes"]
    assert len(versions) >= 5  # first plan, raise lr, add warmup, the agent's, the restore
    await expect(other.get_by_role("region", name="Notes history").get_by_role("row")).to_have_count(1 + len(versions))
    await expect(other.get_by_role("button", name=re.compile("^Restore"))).to_have_count(0)
    await other.screenshot(path=screenshots / "pages-notes-history-phone.png", full_page=True)
    assert errors == [], errors


async def test_discussion_and_comment_history_diff_restore(new_context, make_person, repo: Repo,
                                                          screenshots: Path) -> None:
    errors: list[str] = []
    author, reader = await make_person("dhist"), await make_person("chist")
    project = await make_project(author.agent, repo)
    first_body = "Which settings?\n\nbatch 512\nlr 0.1\n"
    discussion = await discussion_in(author, project, title="Settings for the sweep", body=first_body)
    did = discussion["id"]

    async def patch(base: int, old: str, new: str, why: str) -> int:
        done = (await author.agent.data(PATCH_DISCUSSION, {"i": {
            "id": did, "baseVersion": base, "edits": [{"oldText": old, "newText": new}], "editSummary": why}}))
        assert done["patchDiscussionBody"]["__typename"] == "DiscussionSuccess", done
        return done["patchDiscussionBody"]["discussion"]["bodyVersion"]

    second = await patch(1, "batch 512", "batch 256", "smaller batch")
    third = await patch(second, "lr 0.1", "lr 0.3", "raise lr")
    comment = await comment_on(reader, did, "Try 128 first.")
    edited = await reader.web.data(UPDATE_COMMENT, {"i": {"id": comment["id"], "body": "Try 64 first.",
                                                          "bodyBaseVersion": 1, "editSummary": "even smaller"}})
    assert edited["updateComment"]["__typename"] == "CommentSuccess", edited

    # ---- the author: versions, the latest change, any two versions ------------------------------
    page = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(page, author)
    await page.goto(f"/discussions/{did}")
    await expect(page.get_by_text("lr 0.3")).to_be_visible()
    await page.get_by_role("button", name="History", exact=True).first.click()
    history = page.get_by_role("region", name="Discussion history")
    rows = history.get_by_role("row")
    await expect(rows).to_have_count(4)  # the header row and three versions, newest first
    await expect(rows.nth(1)).to_contain_text("raise lr")
    await expect(rows.nth(1)).to_contain_text("current")
    await expect(rows.nth(2)).to_contain_text("smaller batch")
    await expect(rows.nth(3)).to_contain_text(author.handle)
    changes = history.get_by_role("list", name=re.compile("^Changes from version"))
    await expect(changes.locator(".diff-removed")).to_have_text(["Removed: \u2212lr 0.1"])
    await expect(changes.locator(".diff-added")).to_have_text(["Added: +lr 0.3"])
    await history.get_by_label("Compare version").select_option("1")
    await history.get_by_label("with version").select_option(str(third))
    await expect(changes).to_have_accessible_name(f"Changes from version 1 to version {third}")
    await expect(history.get_by_text("2 lines added, 2 removed")).to_be_visible()
    await assert_accessible(page, "discussion history")
    await page.screenshot(path=screenshots / "pages-discussion-history.png", full_page=True)

    # ---- restore version 1: a new edit at the version it started from; a conflict on the way ----
    await history.get_by_role("button", name="Restore version 1").click()
    edit = page.get_by_role("form", name="Edit discussion")
    await expect(edit.get_by_label("Message (Markdown)")).to_have_value(first_body)
    await expect(edit.get_by_label("Edit summary (optional)")).to_have_value("Restored version 1")
    fourth = await patch(third, "lr 0.3", "lr 0.5", "agent: lr 0.5")  # meanwhile, through the API
    await edit.get_by_role("button", name="Save discussion").click()
    await expect(edit.get_by_text("Someone changed this discussion while you were editing")).to_contain_text(
        f"now version {fourth}")
    await page.screenshot(path=screenshots / "pages-discussion-restore-conflict.png", full_page=True)
    await edit.get_by_role("button", name="Save mine over theirs").click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    await expect(page.locator("article .prose").first).to_contain_text("batch 512")
    await expect(rows.nth(1)).to_contain_text("Restored version 1")
    await expect(rows.nth(1)).to_contain_text("current")
    await expect(rows.nth(2)).to_contain_text("agent: lr 0.5")
    final = (await author.agent.data("query($id: ID!) { discussion(id: $id) { body bodyHistory(first: 1) { nodes { "
                                     "version body editSummary } } } }", {"id": did}))["discussion"]
    assert final["body"] == first_body
    assert final["bodyHistory"]["nodes"] == [{"version": fourth + 1, "body": first_body,
                                              "editSummary": "Restored version 1"}]
    # The author of the discussion sees the reader's comment history, without restore.
    item = page.locator("li.comment").filter(has_text="Try 64 first.")
    await item.get_by_role("button", name="History", exact=True).click()
    await expect(item.get_by_role("region", name="Comment history").get_by_role("row")).to_have_count(3)
    await expect(item.get_by_role("button", name=re.compile("^Restore"))).to_have_count(0)

    # ---- the comment's author, on a phone: restores the first wording --------------------------
    phone = await open_page(await new_context(viewport=PHONE), errors)
    await log_in(phone, reader)
    await phone.goto(f"/discussions/{did}")
    mine = phone.locator("li.comment").filter(has_text="Try 64 first.")
    await mine.get_by_role("button", name="History", exact=True).click()
    versions = mine.get_by_role("region", name="Comment history")
    await expect(versions.get_by_role("row").nth(1)).to_contain_text("even smaller")
    await expect(versions.locator(".diff-added")).to_have_text(["Added: +Try 64 first."])
    await assert_accessible(phone, "comment history, phone")
    await phone.screenshot(path=screenshots / "pages-comment-history-phone.png", full_page=True)
    await versions.get_by_role("button", name="Restore version 1").click()
    await expect(phone.get_by_label("Edit summary (optional)")).to_have_value("Restored version 1")
    await phone.get_by_role("button", name="Save comment").click()
    restored = phone.locator("li.comment").filter(has_text="Try 128 first.")
    await expect(restored.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    await expect(restored.get_by_role("region", name="Comment history").get_by_role("row").nth(1)).to_contain_text(
        "Restored version 1")
    thread = await reader.web.data("query($id: ID!) { discussion(id: $id) { comments(first: 5) { nodes { body "
                                   "bodyVersion } } } }", {"id": did})
    assert thread["discussion"]["comments"]["nodes"] == [{"body": "Try 128 first.", "bodyVersion": 3}]
    assert errors == [], errors


EMOJI_MLPROJECT = """name: emoji
docker_env:
  image: ghcr.io/mlpatron/demo:1.0
entry_points:
  main:
    parameters:
      epochs: {type: int, default: 2}
    command: "python train.py {epochs}"
"""
EMOJI_TRAIN = """import sys
for epoch in range(int(sys.argv[1])):
    print(f"🚀 epoch {epoch} ✅ loss down 🎉", flush=True)
"""

# Draws the first emoji of the log in the log's own font: a colour emoji font gives coloured
# pixels; a missing glyph (an empty box) is drawn in the text colour only.
COLOURED_PIXELS = """(el) => {
  const canvas = document.createElement('canvas')
  canvas.width = canvas.height = 64
  const g = canvas.getContext('2d')
  const style = getComputedStyle(el)
  g.font = `40px ${style.fontFamily}`
  g.textBaseline = 'top'
  g.fillStyle = '#000'
  g.fillText('🚀', 4, 4)
  const d = g.getImageData(0, 0, 64, 64).data
  let coloured = 0
  for (let i = 0; i < d.length; i += 4) {
    const [r, gr, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]]
    if (a > 0 && Math.max(r, gr, b) - Math.min(r, gr, b) > 40) coloured += 1
  }
  return coloured
}"""


async def test_emoji_in_job_logs_render(new_context, make_person, work_dir: Path, screenshots: Path) -> None:
    errors: list[str] = []
    researcher = await make_person("emoji")
    emoji_repo = Repo(work_dir / f"emoji-{uuid.uuid4().hex[:6]}")
    emoji_repo.path.mkdir()
    emoji_repo.git("init", "-q", "-b", "main")
    emoji_repo.commit({"MLproject": EMOJI_MLPROJECT, "train.py": EMOJI_TRAIN}, "emoji")
    project = await make_project(researcher.agent, emoji_repo)
    run = await create_run(researcher.agent, project, emoji_repo, parameters={"epochs": 2})
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})
    page = await open_page(await new_context(viewport=DESKTOP), errors)
    await page.goto(f"/jobs/{run['dryrunJob']['id']}/logs")
    lines = page.get_by_test_id("log-lines")
    await expect(lines).to_contain_text("🚀 epoch 0 ✅ loss down 🎉")
    coloured = await lines.evaluate(COLOURED_PIXELS)
    print(f"\nemoji in the log's font: {coloured} coloured pixels of 64x64")
    assert coloured > 100, "no colour emoji font: install fonts-noto-color-emoji (make chromium)"
    await page.screenshot(path=screenshots / "pages-job-log-emoji.png", full_page=True)
    assert errors == [], errors
