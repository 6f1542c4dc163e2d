"""A real `localstripe` server for tests, bound to loopback only, plus a webhook capture endpoint.

localstripe has no `--host` option (it binds every interface) and pickles its state to a fixed
`/tmp/localstripe.pickle` shared by every instance; the launcher below (`python -m
tests.stripe_server PORT`) serves its aiohttp app on 127.0.0.1 with that persistence disabled.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from app.embedded.ports import free_port, port_is_open

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "sk_test_mlpatron"


class LocalStripe:
    """`localstripe` in a child process on 127.0.0.1:PORT; `api_base` for stripe-python."""

    def __init__(self) -> None:
        self.port = free_port()
        self.api_base = f"http://127.0.0.1:{self.port}"
        self._proc: asyncio.subprocess.Process | None = None
        self.http = httpx.AsyncClient(base_url=self.api_base, auth=(SECRET_KEY, ""), timeout=10)

    async def start(self) -> LocalStripe:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.stripe_server", str(self.port), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(20):
            while not port_is_open(self.port):
                if self._proc.returncode is not None:
                    raise RuntimeError(f"localstripe exited with {self._proc.returncode}")
                await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        await self.http.aclose()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    async def register_webhook(self, name: str, url: str, secret: str) -> None:
        r = await self.http.post(f"/_config/webhooks/{name}", data={"url": url, "secret": secret})
        r.raise_for_status()

    async def pay(self, payment_intent_id: str, card: str = "pm_card_visa") -> httpx.Response:
        """What Stripe.js does in the browser: attach a test card and confirm the intent."""
        r = await self.http.post(f"/v1/payment_intents/{payment_intent_id}", data={"payment_method": card})
        r.raise_for_status()
        return await self.http.post(f"/v1/payment_intents/{payment_intent_id}/confirm")


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]

    @property
    def signature(self) -> str:
        return self.headers["Stripe-Signature"]


@dataclass
class WebhookRecorder:
    """A loopback endpoint localstripe also delivers to: tests replay its exact signed bodies."""

    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> WebhookRecorder:
        async def receive(request: web.Request) -> web.Response:
            self.deliveries.append(Delivery(await request.read(), dict(request.headers)))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/", receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def of_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if json.loads(d.body).get("type") == event_type]


def _serve(port: int) -> None:
    from localstripe import resources
    from localstripe.server import app

    def _no_pickle(self: Any) -> None:
        """Keep state in memory: the pickle path is fixed and shared by every localstripe."""

    resources.Store.dump_to_disk = _no_pickle
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
