"""What every browser test needs: viewports, a page that records script errors, logging in."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Page, expect

from tests.client import PASSWORD, Person

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


async def open_page(context: BrowserContext, errors: list[str]) -> Page:
    """A new page whose uncaught script errors land in `errors` (tests assert it stays empty)."""
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


async def log_in(page: Page, person: Person) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(person.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("banner").get_by_role("link", name=person.handle)).to_be_visible()
