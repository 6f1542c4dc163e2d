"""The SPA on a real network: hashed assets compressed and cached for a year, index.html
revalidated on every load, client-side routes answered with index.html, and the JavaScript the
first page needs printed in compressed bytes (the goal is at most 150 KB)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
FIRST_PAGE_JS_BUDGET = 150 * 1024


@pytest.fixture(scope="module")
def built() -> None:
    if not (DIST / "index.html").is_file():
        pytest.fail("the SPA is not built: run `make frontend`")


async def wire_bytes(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, int]:
    """The response and how many bytes crossed the network (before decompression)."""
    async with http.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        size = sum([len(chunk) async for chunk in response.aiter_raw()])
    return response, size


async def test_assets_compressed_and_immutable_index_revalidated(api: str, built: None) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        for path in ("/", "/runs/some-run", "/projects/garbage"):  # client-side routes get index.html
            index = await http.get(path)
            assert index.status_code == 200 and '<div id="root">' in index.text
            assert index.headers["cache-control"] == "no-cache"

        # What the first page loads: the entry script and the chunks it preloads (route chunks come later).
        first_page = re.findall(r'(?:src|href)="(/assets/[^"]+\.js)"', index.text)
        assert first_page, index.text
        total = 0
        for path in first_page:
            response, size = await wire_bytes(http, path)
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip", path
            assert response.headers["cache-control"] == IMMUTABLE, path
            assert response.headers["content-type"].startswith(("text/javascript", "application/javascript"))
            total += size
        print(f"\nfirst page JavaScript: {len(first_page)} files, {total / 1024:.1f} KB compressed "
              f"(goal <= {FIRST_PAGE_JS_BUDGET // 1024} KB)")
        assert total <= FIRST_PAGE_JS_BUDGET

        # Every hashed asset (route chunks, CSS) carries the same headers.
        for asset in sorted((DIST / "assets").iterdir()):
            response, _ = await wire_bytes(http, f"/assets/{asset.name}")
            assert response.headers["cache-control"] == IMMUTABLE, asset.name
            if asset.stat().st_size >= 1000:
                assert response.headers.get("content-encoding") == "gzip", asset.name


async def test_graphql_json_compressed(api: str) -> None:
    # A large answer (the GPU catalog, repeated via aliases) is compressed; a small one is sent as is.
    query = "{ " + " ".join(f"c{i}: gpuCatalog {{ gpuType displayName machineTypes {{ machineType vcpu memoryGib }} }}" for i in range(20)) + " }"
    async with httpx.AsyncClient(base_url=api) as http:
        big = await http.post("/graphql", json={"query": query}, headers={"Accept-Encoding": "gzip"})
        assert big.status_code == 200 and "errors" not in big.json(), big.text
        assert big.headers["content-encoding"] == "gzip"
        small = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
