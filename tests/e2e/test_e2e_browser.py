"""The whole product in a browser: a researcher signs up, creates an API key, a project and a
run on a local git repository, watches the dryrun's log live (across a dropped websocket);
a patron funds the run (after a typed InsufficientFunds), and both see it complete with a
metrics chart. Screenshots of each main page go to test-output/screenshots/."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from app.api.ids import encode_id
from tests.client import PASSWORD, GraphQLClient
from tests.e2e.pages import DESKTOP, PHONE, open_page
from tests.experiments import make_demo_repo
from tests.repos import Repo


@pytest.fixture(scope="module")
def e2e_repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


class Websockets:
    """Routes the page's websockets through the test, which can cut them (a lost connection)."""

    def __init__(self) -> None:
        self.online = True
        self.open: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    async def handle(self, ws: WebSocketRoute) -> None:
        if not self.online:
            await ws.close(code=1012, reason="test: offline")
            return
        self.open.append((ws, ws.connect_to_server()))

    async def cut(self) -> None:
        self.online = False
        routes, self.open = self.open, []
        for page_side, server_side in routes:
            await page_side.close(code=1012, reason="test: connection lost")
            await server_side.close()


async def sign_up(page: Page, handle: str, shots: Path | None = None) -> None:
    await page.goto("/signup")
    # Validation happens before anything is sent.
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_text("Enter an email address like")).to_be_visible()
    await page.get_by_label("Handle").fill(handle)
    await page.get_by_label("Email").fill(f"{handle}@example.test")
    await page.get_by_label("Password").fill(PASSWORD)
    if shots:
        await page.screenshot(path=shots / "signup.png")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("banner").get_by_role("link", name=handle)).to_be_visible()
    await expect(page.get_by_role("heading", name="Explore experiments")).to_be_visible()


def log_lines(page: Page, panel: str):
    return page.get_by_role("region", name=re.compile(panel)).get_by_test_id("log-lines")


async def test_researcher_and_patron_journey(new_context, api: str, e2e_repo: Repo, make_person,
                                            screenshots: Path) -> None:
    errors: list[str] = []
    suffix = uuid.uuid4().hex[:6]

    # ---- researcher: sign up, API key ------------------------------------------------------
    researcher_ctx = await new_context(viewport=DESKTOP)
    sockets = Websockets()
    r = await open_page(researcher_ctx, errors)
    await r.route_web_socket(re.compile(r"/graphql$"), sockets.handle)
    researcher = f"res-{suffix}"
    await sign_up(r, researcher, screenshots)

    await r.get_by_role("banner").get_by_role("link", name=researcher).click()
    await r.get_by_role("link", name="API keys").click()
    await r.get_by_label("Key name").fill("e2e agent")
    await r.get_by_role("button", name="Create key").click()
    secret = await r.get_by_test_id("api-key-secret").inner_text()
    assert secret.startswith("mlp_sk_")
    async with GraphQLClient(api, secret) as agent:
        assert (await agent.data("{ viewer { handle } }"))["viewer"]["handle"] == researcher
    await expect(r.get_by_role("cell", name="e2e agent")).to_be_visible()
    await r.screenshot(path=screenshots / "settings-api-keys.png", full_page=True)

    # ---- researcher: project and run -------------------------------------------------------
    await r.get_by_role("link", name="New project").click()
    await r.get_by_role("button", name="Create project").click()
    await expect(r.get_by_text("Give the project a title.")).to_be_visible()
    await r.get_by_label("Title").fill(f"Loss curves {suffix}")
    await r.get_by_label("Git repository").fill(str(e2e_repo.path))
    await r.get_by_label("Lab notebook (Markdown)").fill("# Hypothesis\n\nThe loss **goes down**.\n\n<script>x</script>")
    await r.get_by_role("button", name="Create project").click()

    await expect(r.get_by_role("heading", name="New run")).to_be_visible()
    await r.get_by_label("Version (branch, tag or commit)").fill("no-such-branch")
    await r.get_by_role("button", name="Read MLproject").click()
    await expect(r.locator(".field-error")).to_contain_text(re.compile("no-such-branch|ref|version", re.I))
    await r.get_by_label("Version (branch, tag or commit)").fill("main")
    await r.get_by_role("button", name="Read MLproject").click()
    await expect(r.get_by_label("Entry point")).to_have_value("main")
    await expect(r.get_by_text("Suggested: epochs = 1")).to_be_visible()
    await r.get_by_label("epochs").fill("3")
    await r.get_by_label("seconds").fill("3")
    await r.get_by_label("GPU type").select_option("l4")
    await expect(r.get_by_label("Machine type")).to_contain_text("/h")
    await r.get_by_label("Run title").fill("first run")
    await r.screenshot(path=screenshots / "new-run.png", full_page=True)
    await r.get_by_role("button", name="Create run and start the dryrun").click()
    await expect(r).to_have_url(re.compile(r":\d+/runs/[^/]+$"))
    run_url = r.url

    # ---- the dryrun's log, live, across a lost websocket -----------------------------------
    dryrun_log = log_lines(r, "Dryrun")
    await expect(dryrun_log).to_contain_text("ARGV", timeout=30_000)
    await expect(r.get_by_role("heading", level=1)).to_contain_text("Dryrun")
    await r.screenshot(path=screenshots / "run-dryrun-live.png", full_page=True)
    await sockets.cut()
    await expect(r.get_by_text("Live connection lost — reconnecting")).to_be_visible()
    await r.screenshot(path=screenshots / "run-reconnecting.png")
    sockets.online = True
    await expect(r.get_by_text("Live connection lost — reconnecting")).to_be_hidden(timeout=20_000)
    await expect(dryrun_log).to_contain_text("epoch 0 loss 1.0100", timeout=30_000)
    await expect(r.get_by_role("heading", level=1)).to_contain_text("Awaiting funding", timeout=30_000)
    await expect(dryrun_log.get_by_text(re.compile("^ARGV"))).to_have_count(1)  # resumed: nothing repeated
    await expect(r.get_by_text(re.compile(r"for about"))).to_be_visible()

    # ---- patron: typed InsufficientFunds, credit, funding ----------------------------------
    patron_ctx = await new_context(viewport=DESKTOP)
    p = await open_page(patron_ctx, errors)
    patron = f"pat-{suffix}"
    await sign_up(p, patron)
    await p.goto(run_url)
    await p.get_by_role("button", name="Fund this run").click()
    dialog = p.get_by_role("dialog", name="Fund this run")
    await expect(dialog.get_by_test_id("fund-split")).to_contain_text("credit")
    await dialog.get_by_role("button", name=re.compile(r"^Fund \$")).click()
    await expect(dialog.get_by_text("Not enough money in your wallet")).to_be_visible()
    await expect(dialog.get_by_role("link", name="Add funds to your wallet")).to_be_visible()
    await p.screenshot(path=screenshots / "fund-insufficient.png")

    admin = await make_person("admin", admin=True)
    from app.accounts.models import User

    patron_id = encode_id("User", (await User.get(handle=patron)).id)
    granted = await admin.web.data(
        "mutation($i: GrantCreditInput!) { grantCredit(input: $i) { __typename } }",
        {"i": {"userId": patron_id, "amountCents": 500, "reason": "e2e"}})
    assert granted["grantCredit"]["__typename"] == "GrantCreditSuccess"

    await dialog.get_by_role("button", name=re.compile(r"^Fund \$")).click()
    await expect(dialog.get_by_text(re.compile(r"You funded \$\d+\.\d\d \(\$\d+\.\d\d credit, \$0\.00 cash\)"))).to_be_visible()
    await p.screenshot(path=screenshots / "fund-success.png")
    await dialog.get_by_role("button", name="Close").first.click()

    # ---- the researcher's jobs dashboard while the funded job runs -------------------------
    await r.get_by_role("link", name="Jobs").click()
    await expect(r.get_by_role("row", name=re.compile("first run"))).to_be_visible(timeout=30_000)
    await r.screenshot(path=screenshots / "jobs.png", full_page=True)
    await r.go_back()

    # ---- completed, with a metrics chart (both watching live) ------------------------------
    for page in (p, r):
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Completed", timeout=120_000)
    funded = p.get_by_role("region", name=re.compile("Funded job"))
    await expect(funded.get_by_test_id("chart-loss")).to_be_visible(timeout=30_000)
    await expect(funded.get_by_test_id("chart-loss")).to_have_attribute("aria-label", re.compile("3 points"))
    await expect(log_lines(p, "Funded job")).to_contain_text("epoch 2 loss")
    await p.screenshot(path=screenshots / "run-completed.png", full_page=True)

    # ---- run notes: patches, a merged concurrent edit, a conflict ---------------------------
    run_id = run_url.rsplit("/", 1)[1]
    notes = r.get_by_role("region", name="Run notes")
    rendered = notes.locator(".prose")

    async def edit_notes(text: str) -> None:
        await notes.get_by_role("button", name="Edit notes").click()
        await notes.get_by_label("Notes (Markdown)").fill(text)

    async def agent_patch(old: str, new: str) -> None:
        async with GraphQLClient(api, secret) as agent:
            version = (await agent.data("query($id: ID!) { run(id: $id) { notesVersion } }",
                                        {"id": run_id}))["run"]["notesVersion"]
            done = await agent.data(
                "mutation($i: PatchTextInput!) { patchRunNotes(input: $i) { __typename } }",
                {"i": {"id": run_id, "baseVersion": version, "edits": [{"oldText": old, "newText": new}]}})
            assert done["patchRunNotes"]["__typename"] == "RunSuccess", done

    await edit_notes("## Result\n\nLoss fell to 0.34.")
    await notes.get_by_role("button", name="Save notes").click()
    await expect(notes.get_by_role("heading", name="Result")).to_be_visible()

    await edit_notes("## Result\n\nLoss fell to 0.34.\n\nNext: try lr 0.1.")
    await agent_patch("## Result", "## Results after 3 epochs")  # meanwhile, elsewhere in the notes
    await notes.get_by_role("button", name="Save notes").click()
    await expect(rendered).to_contain_text("Results after 3 epochs")
    await expect(rendered).to_contain_text("Next: try lr 0.1.")

    await edit_notes("## Results after 3 epochs\n\nLoss fell to 0.343.\n\nNext: try lr 0.1.")
    await agent_patch("0.34.", "0.35.")  # the same sentence: a real conflict
    await notes.get_by_role("button", name="Save notes").click()
    await expect(notes.get_by_text("Someone changed the same part of these notes")).to_be_visible()
    await r.screenshot(path=screenshots / "run-notes-conflict.png", full_page=True)
    await notes.get_by_role("button", name="Save mine over theirs").click()
    await expect(rendered).to_contain_text("Loss fell to 0.343.")

    # ---- project page: sanitised notebook, runs, discussion, follow ------------------------
    await p.get_by_role("link", name=f"Loss curves {suffix}").first.click()
    await expect(p.locator(".prose strong")).to_have_text("goes down")
    assert await p.locator(".prose script").count() == 0
    await p.get_by_role("button", name="Follow").click()
    await expect(p.get_by_role("button", name="Following ✓")).to_be_visible()
    await p.get_by_role("button", name="Start a discussion").click()
    await p.get_by_label("Title").fill("Try a larger learning rate?")
    await p.get_by_label("Message (Markdown)").fill("The curve flattens after epoch 1.")
    await p.get_by_role("button", name="Start discussion").click()
    await p.get_by_label("Add a comment (Markdown)").fill("Happy to fund the next run.")
    await p.get_by_role("button", name="Comment", exact=True).click()
    await expect(p.get_by_text("Happy to fund the next run.")).to_be_visible()
    await p.get_by_role("button", name="Reply", exact=True).click()
    await p.get_by_label("Your reply").fill("A reply in the thread.")
    await p.get_by_role("button", name="Reply", exact=True).last.click()
    await expect(p.locator(".comment").filter(has_text="A reply in the thread.")).to_have_attribute(
        "style", re.compile(r"--depth: ?1"))
    await p.screenshot(path=screenshots / "discussion.png", full_page=True)

    # ---- patron: wallet (payments not configured here) -------------------------------------
    await p.goto("/settings/wallet")
    await expect(p.get_by_test_id("wallet-total")).not_to_have_text("$5.00")
    await p.get_by_role("button", name="Deposit by card").click()
    await expect(p.get_by_text("Payments are not configured on this server")).to_be_visible()
    await expect(p.locator(".ledger li", has_text="Credit grant")).to_contain_text("+$5.00")
    await p.screenshot(path=screenshots / "settings-wallet.png", full_page=True)

    # ---- researcher: project page, notifications ---------------------------------------------
    await r.get_by_role("link", name=f"Loss curves {suffix}").first.click()
    await expect(r.get_by_role("row", name=re.compile("first run.*Completed"))).to_be_visible()
    await expect(r.get_by_role("link", name="Try a larger learning rate?")).to_be_visible()
    await r.screenshot(path=screenshots / "project.png", full_page=True)
    await expect(r.get_by_role("link", name=re.compile(r"Notifications, [1-9]\d* unread"))).to_be_visible(
        timeout=30_000)
    await r.get_by_role("link", name=re.compile("Notifications, ")).click()
    await expect(r.get_by_role("link", name=re.compile("started a discussion"))).to_be_visible()
    await r.screenshot(path=screenshots / "notifications.png", full_page=True)

    for path, name in [("/", "explore"), ("/settings/profile", "settings-profile"),
                       ("/settings/notifications", "settings-notifications")]:
        await r.goto(path)
        await expect(r.get_by_role("heading", level=1)).to_be_visible()
        await r.wait_for_load_state("networkidle")
        await r.screenshot(path=screenshots / f"{name}.png", full_page=True)

    # ---- log out, a wrong password, log in --------------------------------------------------
    await r.get_by_role("button", name="Log out").click()
    await expect(r.get_by_role("link", name="Log in")).to_be_visible()
    await r.get_by_role("link", name="Log in").click()
    await r.get_by_label("Email").fill(f"{researcher}@example.test")
    await r.get_by_label("Password").fill("not the password")
    await r.get_by_role("button", name="Log in").click()
    await expect(r.get_by_role("alert")).to_contain_text("Email or password is wrong")
    await r.get_by_label("Password").fill(PASSWORD)
    await r.get_by_role("button", name="Log in").click()
    await expect(r.get_by_role("banner").get_by_role("link", name=researcher)).to_be_visible()

    # ---- a phone-sized screen --------------------------------------------------------------
    phone = await open_page(await new_context(viewport=PHONE), errors)
    for path, name in [("/", "phone-explore"), (run_url, "phone-run")]:
        await phone.goto(path)
        await expect(phone.get_by_role("heading", level=1)).to_be_visible()
        await phone.wait_for_load_state("networkidle")
        await phone.screenshot(path=screenshots / f"{name}.png", full_page=True)
    await phone.goto("/login")
    await phone.screenshot(path=screenshots / "phone-login.png")

    assert errors == [], errors
