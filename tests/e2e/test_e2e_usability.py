"""The usability pass (issue 20) in a browser: bad links, finding runs that need money, a failed
dryrun's next step, editing posts live across browsers, a 390 px phone, friendly errors, money
words, focus. Screenshots go to test-output/screenshots/usability-*.png."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

from app.api.ids import encode_id
from tests.client import Person
from tests.e2e.pages import DESKTOP, PHONE, log_in, open_page
from tests.experiments import create_run, make_demo_repo, make_project, pk, wait_run
from tests.repos import Repo
from tests.test_discussions import comment_on, discussion_in

# Every table cell, button and link in the page's main area lies inside the viewport and shows
# all of its content (no clipped text); the page itself does not scroll sideways.
LAYOUT_PROBLEMS = """() => {
  const width = document.documentElement.clientWidth
  const problems = []
  if (document.documentElement.scrollWidth > width) problems.push(`page is ${document.documentElement.scrollWidth}px wide`)
  for (const el of document.querySelectorAll('main td, main th[scope=row], main button, main a, main input')) {
    if (el.closest('thead, .sr-only, dialog:not([open])')) continue
    const box = el.getBoundingClientRect()
    if (box.width === 0 && box.height === 0) continue
    const what = `${el.tagName.toLowerCase()}[${el.dataset.label ?? ''}] "${el.textContent.trim().slice(0, 40)}"`
    if (box.left < -1 || box.right > width + 1) problems.push(`${what} at ${Math.round(box.left)}..${Math.round(box.right)}`)
    if (el.tagName === 'TD' && el.scrollWidth > el.clientWidth + 1) problems.push(`${what} clipped`)
  }
  return problems
}"""


@pytest.fixture(scope="module")
def repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


async def focused(page: Page) -> str:
    """The focused element, as "tag name|label text" to compare in assertions."""
    return await page.evaluate("""() => {
      const el = document.activeElement
      const label = el.labels?.[0]?.textContent ?? el.getAttribute('aria-label') ?? el.textContent
      return `${el.tagName.toLowerCase()}|${(label ?? '').trim()}`
    }""")


async def grant(admin: Person, person: Person, cents: int) -> None:
    done = await admin.web.data(
        "mutation($i: GrantCreditInput!) { grantCredit(input: $i) { __typename } }",
        {"i": {"userId": person.gid, "amountCents": cents, "reason": "e2e"}})
    assert done["grantCredit"]["__typename"] == "GrantCreditSuccess", done


async def test_bad_links_show_not_found_inside_the_layout(new_context, screenshots: Path) -> None:
    errors: list[str] = []
    page = await open_page(await new_context(viewport=DESKTOP), errors)
    missing_run = encode_id("Run", str(uuid.uuid4()))
    cases = [
        (f"/runs/{missing_run}", "Run"), ("/runs/garbage", "Run"), ("/projects/garbage", "Project"),
        ("/discussions/garbage", "Discussion"), ("/jobs/garbage/logs", "Job"),
        ("/no/such/page", "Page"),
    ]
    for path, what in cases:
        await page.goto(path)
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"{what} not found")
        await expect(page.get_by_role("navigation", name="Main")).to_be_visible()  # the normal layout
        await expect(page.get_by_role("link", name="Back to Explore")).to_be_visible()
        await expect(page).to_have_title(f"{what} not found · mlpatron")
        if path in ("/runs/garbage", "/jobs/garbage/logs"):
            await page.screenshot(path=screenshots / f"usability-not-found-{what.lower()}.png")
    await page.get_by_role("link", name="Back to Explore").click()
    await expect(page.get_by_role("heading", name="Explore experiments")).to_be_visible()
    for path, title in [("/login", "Log in"), ("/signup", "Sign up"), ("/jobs", "Jobs"), ("/", "Explore experiments")]:
        await page.goto(path)
        await expect(page).to_have_title(f"{title} · mlpatron")  # every tab says where it leads
    assert errors == [], errors


def answer_operation(name: str, body: dict):
    """A route handler that answers the GraphQL operation `name` with `body` (a broken or raw
    server answer) and lets every other request through."""
    async def handle(route: Route) -> None:
        sent = route.request.post_data_json if route.request.method == "POST" else None
        if isinstance(sent, dict) and re.search(rf"\b(query|mutation) {name}\b", sent.get("query", "")):
            await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))
        else:
            await route.continue_()
    return handle


async def test_failures_are_worded_for_people(new_context, make_person, screenshots: Path) -> None:
    errors: list[str] = []
    person = await make_person("oops")
    page = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(page, person)

    # A raw GraphQL input error (what an old client or a proxy might get back) becomes words.
    raw = {"errors": [{"message": "Variable '$input' got invalid value 9999999999 at 'input.amountCents'; "
                                  "Int cannot represent non 32-bit signed integer value: 9999999999",
                       "extensions": {"code": "BAD_USER_INPUT"}}]}
    await page.route(re.compile(r"/graphql$"), answer_operation("CreateDeposit", raw))
    await page.goto("/settings/wallet")
    await page.get_by_label("Deposit (USD)").fill("25")
    await page.get_by_role("button", name="Deposit by card").click()
    await expect(page.get_by_role("alert")).to_contain_text("That number is too large.")
    await expect(page.get_by_text(re.compile(r"Variable|32-bit|\$input"))).to_have_count(0)

    # A page that fails while rendering (here: a run answered without its fields) keeps the layout
    # and offers a way on, instead of a blank screen.
    await page.route(re.compile(r"/graphql$"), answer_operation("RunPage", {"data": {"run": {"id": "x"}}}))
    await page.goto(f"/runs/{encode_id('Run', str(uuid.uuid4()))}")
    await expect(page.get_by_role("heading", name="Something went wrong on this page")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    await expect(page.get_by_role("button", name="Reload the page")).to_be_visible()
    await page.screenshot(path=screenshots / "usability-error-boundary.png")
    await page.get_by_role("link", name="Go to Explore").click()
    await expect(page.get_by_role("heading", name="Explore experiments")).to_be_visible()
    assert errors == [], errors


async def test_editing_posts_shows_live_in_another_browser(new_context, make_person, repo: Repo,
                                                           screenshots: Path) -> None:
    errors: list[str] = []
    author, reader = await make_person("author"), await make_person("reader")
    project = await make_project(author.agent, repo)
    discussion = await discussion_in(author, project, title="Batch size?", body="Tried 512?")
    await comment_on(author, discussion["id"], "First thoughts.")
    a = await open_page(await new_context(viewport=DESKTOP), errors)
    b = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(a, author)
    await log_in(b, reader)
    for page in (a, b):
        await page.goto(f"/discussions/{discussion['id']}")
        await expect(page.get_by_text("First thoughts.")).to_be_visible()
    await expect(a).to_have_title("Batch size? · mlpatron")
    await expect(b.get_by_role("button", name="Edit comment")).to_have_count(0)  # only on one's own posts

    # The author edits the comment: the other reader sees it without reloading.
    await a.get_by_role("button", name="Edit comment").click()
    await a.get_by_label("Your comment (Markdown)").fill("Second thoughts: try **256**.")
    await a.get_by_role("button", name="Save comment").click()
    await expect(a.get_by_text("Saved.")).to_be_visible()
    assert await focused(a) == "button|Edit comment"  # the keyboard stays where it was
    await expect(b.locator(".comment strong")).to_have_text("256")
    await expect(b.get_by_text("First thoughts.")).to_have_count(0)
    await expect(b.locator(".comment").filter(has_text="Second thoughts")).to_contain_text("· edited")

    # The reader's new comment appears for the author live, with the same kind of name.
    await b.get_by_label("Add a comment (Markdown)").fill("Agreed, 256 it is.")
    await b.get_by_role("button", name="Comment", exact=True).click()
    await expect(a.get_by_text("Agreed, 256 it is.")).to_be_visible()
    await expect(a.locator(".comment").filter(has_text="Agreed")).to_contain_text(reader.handle)

    # The discussion itself: edited and renamed live.
    await a.get_by_role("button", name="Edit discussion").click()
    await a.get_by_label("Title").fill("Which batch size?")
    await a.get_by_role("button", name="Save discussion").click()
    await expect(b.get_by_role("heading", level=1)).to_have_text("Which batch size?")
    await b.screenshot(path=screenshots / "usability-discussion-live-edit.png", full_page=True)

    # Deleting the comment: gone for the other reader too.
    a.once("dialog", lambda dialog: dialog.accept())
    await a.locator(".comment").filter(has_text="Second thoughts").get_by_role(
        "button", name="Delete comment").click()
    await expect(b.get_by_text("Second thoughts")).to_have_count(0)
    await expect(b.locator(".comment").first).to_contain_text("[deleted]")

    # Deleting the discussion: the author lands on the project, the reader is told, live.
    a.once("dialog", lambda dialog: dialog.accept())
    await a.get_by_role("button", name="Delete discussion").click()
    await expect(a).to_have_url(re.compile(rf"/projects/{re.escape(project)}$"))
    await expect(a.locator("main")).to_be_focused()  # focus moves to the new page, not the body
    await expect(a.get_by_text("No discussions yet.")).to_be_visible()
    await expect(b.get_by_text("This discussion was deleted.")).to_be_visible()
    await expect(b.get_by_label("Add a comment (Markdown)")).to_have_count(0)
    await expect(b.get_by_role("button", name="Reply")).to_have_count(0)
    assert errors == [], errors


async def test_funding_money_words_focus_and_phone(new_context, make_person, repo: Repo, screenshots: Path) -> None:
    errors: list[str] = []
    researcher, patron = await make_person("res"), await make_person("pat")
    admin = await make_person("admin", admin=True)
    project = await make_project(researcher.agent, repo)
    fundable = await create_run(researcher.agent, project, repo, title="needs money")
    await wait_run(researcher.agent, fundable["id"], {"AWAITING_FUNDING"})
    crash = await create_run(researcher.agent, project, repo, title="crash",
                             parameters={"epochs": 3, "lr": 0.5, "seconds": 0.2, "exit_code": 3})
    await wait_run(researcher.agent, crash["id"], {"DRYRUN_FAILED"})
    await grant(admin, patron, 500)

    # ---- Explore: the failed latest run does not hide the one that needs money ------------
    anon = await open_page(await new_context(viewport=DESKTOP), errors)
    await anon.goto("/")
    await anon.get_by_role("searchbox").fill(researcher.handle)  # search by researcher
    await expect(anon).to_have_url(re.compile(rf"[?&]q={re.escape(researcher.handle)}"))
    card = anon.locator(".card").filter(has_text="crash")
    await expect(card).to_contain_text("Dryrun failed: no cost estimate")
    await expect(card.get_by_role("link", name="needs money")).to_be_visible()
    await anon.get_by_role("link", name="Runs that need funding").click()
    # The Discover page is a lazy route: until it is shown, Explore's cards (crash included) still are.
    await expect(anon).to_have_title("Runs that need funding · mlpatron")
    await expect(anon.locator(".card").filter(has_text="needs money")).to_contain_text("to go")
    await expect(anon.locator(".card").filter(has_text="crash")).to_have_count(0)
    await anon.screenshot(path=screenshots / "usability-explore-needs-funding.png", full_page=True)

    # ---- the failed dryrun's next step: edit and run again, with form checks -------------
    r = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(r, researcher)
    await r.goto(f"/runs/{crash['id']}")
    await expect(r).to_have_title("crash · mlpatron")
    await expect(r.get_by_text("The dryrun failed, so this run cannot be funded.")).to_be_visible()
    await r.get_by_role("link", name="Edit and run again").click()
    await expect(r.get_by_label("exit_code", exact=True)).to_have_value("3")
    await r.get_by_label("exit_code", exact=True).fill("0")
    await r.get_by_label("epochs", exact=True).fill("")
    await r.get_by_label("Dryrun value").fill("50")
    await r.get_by_label("lr", exact=True).fill("1e300")
    await r.get_by_role("button", name="Create run and start the dryrun").click()
    await expect(r.get_by_text("Enter a value (the default is 3).")).to_be_visible()  # a blank is not the default
    await expect(r.get_by_text("That number is too large")).to_be_visible()
    await r.get_by_label("epochs", exact=True).fill("3")
    await r.get_by_label("lr", exact=True).fill("0.5")
    await r.get_by_role("button", name="Create run and start the dryrun").click()
    await expect(r.get_by_text("The dryrun is a shorter version of the run: use at most epochs = 3")).to_be_visible()
    await r.screenshot(path=screenshots / "usability-new-run-checks.png", full_page=True)
    await r.get_by_label("Dryrun value").fill("1")
    await r.get_by_label("Run title").fill("crash, fixed")
    await r.get_by_role("button", name="Create run and start the dryrun").click()
    await expect(r.get_by_role("heading", level=1)).to_contain_text("crash, fixed")
    await expect(r.get_by_role("link", name="crash", exact=True)).to_be_visible()  # copyRun links back

    # ---- patron: friendly errors, the fund dialog's focus, money words -------------------
    p = await open_page(await new_context(viewport=DESKTOP), errors)
    await log_in(p, patron)
    await p.goto("/settings/wallet")
    await p.get_by_label("Deposit (USD)").fill("99,999,999")
    await p.get_by_role("button", name="Deposit by card").click()
    await expect(p.get_by_text("Enter an amount between $1.00 and $10,000.00.")).to_be_visible()
    await expect(p.get_by_text(re.compile("Variable|\\$input|cents", re.I))).to_have_count(0)
    await p.screenshot(path=screenshots / "usability-deposit-error.png")

    requests: list[str] = []
    p.on("request", lambda request: requests.append(request.url) if "/graphql" in request.url else None)
    await p.goto(f"/runs/{fundable['id']}")
    await expect(p.get_by_role("heading", level=1)).to_contain_text("Awaiting funding")
    await p.wait_for_load_state("networkidle")
    print(f"\nrun page: {len(requests)} GraphQL HTTP requests before it settles")
    await expect(p.get_by_test_id("overhead")).to_contain_text("start-up overhead")
    dryrun = p.get_by_role("region", name=re.compile("^Dryrun"))
    await expect(dryrun.get_by_test_id("metric-loss")).to_contain_text("logged once")  # not a one-point chart
    await expect(dryrun.get_by_test_id("log-lines")).to_contain_text("epoch 0 loss")
    await expect(dryrun.get_by_test_id("log-lines")).not_to_contain_text("View run")  # internal MLflow links

    fund_button = p.get_by_role("button", name="Fund this run")
    await fund_button.click()
    dialog = p.get_by_role("dialog", name="Fund this run")
    await expect(dialog.get_by_label("Amount (USD)")).to_be_focused()
    await dialog.get_by_label("Amount (USD)").fill("200000")
    await dialog.get_by_role("button", name=re.compile(r"^Fund")).click()
    await expect(dialog.get_by_text("Enter an amount between $0.01 and $100,000.00.")).to_be_visible()
    await dialog.get_by_label("Amount (USD)").fill("0.01")
    await dialog.get_by_role("button", name=re.compile(r"^Fund \$")).click()
    await expect(dialog.get_by_text("You funded $0.01")).to_be_visible()
    await dialog.get_by_role("button", name="Close").last.click()
    await expect(fund_button).to_be_focused()  # back where the patron was

    # ---- the researcher hears who funded how much ------------------------------------------
    await r.goto("/notifications")
    await expect(r.get_by_role("link", name=re.compile(
        rf'{patron.handle} funded \$0\.01 of "needs money" in demo: \$0\.01 funded, \$[\d.]+ to go'))).to_be_visible(
        timeout=30_000)
    await expect(r.get_by_text(re.compile(r"is now|\(was "))).to_have_count(0)
    await r.screenshot(path=screenshots / "usability-notifications.png", full_page=True)
    await r.goto("/settings/notifications")
    await r.get_by_role("checkbox", name="Run funded: by email").click()
    await expect(r.get_by_role("checkbox", name="Run funded: by email")).not_to_be_checked()
    await expect(r.get_by_role("status").filter(has_text="Saved")).to_contain_text(
        "“Run funded” notifications will no longer arrive by email.")

    # ---- run notes: focus after saving -----------------------------------------------------
    await r.goto(f"/runs/{fundable['id']}")
    notes = r.get_by_role("region", name="Run notes")
    await notes.get_by_role("button", name="Edit notes").click()
    await notes.get_by_label("Notes (Markdown)").fill("Waiting for patrons.")
    await notes.get_by_role("button", name="Save notes").click()
    await expect(notes.get_by_text("Notes saved.")).to_be_visible()
    await expect(notes.get_by_role("button", name="Edit notes")).to_be_focused()

    # ---- a 390 px phone: every column of every table, nothing clipped ----------------------
    phone = await open_page(await new_context(viewport=PHONE), errors)
    await log_in(phone, researcher)
    await phone.goto("/settings/api-keys")
    await phone.get_by_label("Key name").fill("a phone-made key with a long name")
    await phone.get_by_role("button", name="Create key").click()
    new_key = phone.get_by_role("row", name=re.compile("a phone-made key"))
    revoke = new_key.get_by_role("button", name="Revoke")
    await revoke.scroll_into_view_if_needed()
    await expect(revoke).to_be_in_viewport(ratio=1)  # reachable without scrolling sideways
    pages = [("/", "explore"), ("/?view=funding", "explore-funding"), ("/settings/wallet", "wallet"),
             ("/settings/api-keys", "api-keys"), (f"/projects/{project}", "project"),
             (f"/runs/{fundable['id']}", "run"), ("/jobs", "jobs"), ("/settings/notifications", "notification-settings")]
    for path, name in pages:
        await phone.goto(path)
        await expect(phone.get_by_role("heading", level=1)).to_be_visible()
        await phone.wait_for_load_state("networkidle")
        await phone.screenshot(path=screenshots / f"usability-phone-{name}.png", full_page=True)
        assert await phone.evaluate(LAYOUT_PROBLEMS) == [], name
    await phone.goto(f"/projects/{project}")
    await expect(phone).to_have_title("demo · mlpatron")
    row = phone.locator("tr").filter(has_text="needs money")
    for column in ("Run", "Status", "GPU", "Funding", "Created"):
        await expect(row.locator(f'td[data-label="{column}"]')).to_be_visible()
    await phone.goto(f"/runs/{fundable['id']}")
    await expect(phone.locator('td[data-label="Amount"]').first).to_have_text(re.compile(r"^[+-]?\$\d+\.\d\d$"))

    # ---- the owner's fund dialog: the project balance first, and no "refund me" -----------
    from tortoise.transactions import in_transaction

    from app.funding import ledger
    from app.funding.models import LedgerKind
    from app.projects.models import Project

    # A project balance the books agree with (the ledger check runs over the whole database).
    async with in_transaction():
        await Project.filter(id=pk(project)).update(balance_cents=500)
        await ledger.post(LedgerKind.CREDIT_GRANT, "test: project balance",
                          [(ledger.CREDIT_GRANTS, -500), (ledger.project_balance(pk(project)), 500)],
                          project_id=pk(project))  # fmt: skip
    await r.reload()
    await r.get_by_role("button", name="Fund this run").click()
    owner_dialog = r.get_by_role("dialog", name="Fund this run")
    await expect(owner_dialog.get_by_role("radio", name="The project balance ($5.00)")).to_be_checked()
    await expect(owner_dialog.get_by_label("Amount (USD)")).to_have_value("0.01")  # what is still needed
    await expect(owner_dialog.get_by_text("Refund me")).to_have_count(0)
    await r.screenshot(path=screenshots / "usability-owner-fund-dialog.png")
    await owner_dialog.get_by_role("button", name="Cancel").click()

    # ---- cancelled and refunded: no "to go", the refund said in dollars ----------------------
    r.once("dialog", lambda dialog: dialog.accept())
    await r.get_by_role("button", name="Cancel run").click()
    await expect(r.get_by_role("heading", level=1)).to_contain_text("Cancelled")
    funding = r.get_by_role("region", name="Funding")
    await expect(funding).to_contain_text("Cancelled · $0.01 had been funded")
    await expect(funding).not_to_contain_text("to go")
    await p.goto("/notifications")
    await expect(p.get_by_role("link", name=re.compile(
        r'"needs money" in demo was cancelled; \$0\.01 was refunded to its patrons'))).to_be_visible(timeout=30_000)
    await r.screenshot(path=screenshots / "usability-run-cancelled.png", full_page=True)
    assert errors == [], errors
