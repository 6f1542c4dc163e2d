"""axe-core in the page under test: the npm package from tests/js/node_modules (installed by
`make tests/js/node_modules/.package-lock.json`, which `make test` runs), injected as a script;
nothing is downloaded at run time. Serious and critical violations fail the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"

# Every violation of impact serious or critical, with the first few elements it names.
RUN_AXE = """async () => {
  const result = await window.axe.run(document, { resultTypes: ['violations'] })
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} [${v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join(' | ')}]`)
}"""


async def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings for what `page` shows now."""
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make tests/js/node_modules/.package-lock.json`")
    if not await page.evaluate("() => Boolean(window.axe)"):
        await page.add_script_tag(path=AXE)
    return await page.evaluate(RUN_AXE)


async def assert_accessible(page: Page, where: str) -> None:
    found = await serious_violations(page)
    assert found == [], f"{where}: {found}"
