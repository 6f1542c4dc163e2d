"""A real SMTP server (aiosmtpd, its own thread) on a loopback port, wired into the settings.

Use it in a test module with `from tests.smtp import mailbox_fixture  # noqa: F401` and a
`mailbox` parameter; the settings point at it only for that test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from app.core.settings import get_settings, override_settings
from app.embedded.ports import free_port
from tests.helpers import eventually

_TOKEN = re.compile(r"/unsubscribe\?token=([A-Za-z0-9_\-]+)")


class Mailbox:
    """Collects every message the server accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted"

    async def settle(self, addresses: Iterable[str], timeout: float = 20.0) -> list[str]:
        """Wait until the outbox holds no unsent mail to `addresses` (the sender runs in the background),
        then return the recipients among them of every message received, sorted."""
        from app.notifications.models import OutboxEmail

        wanted = set(addresses)
        await eventually(OutboxEmail.filter(to_address__in=wanted, sent_at__isnull=True).exists, lambda x: not x,
                         within=timeout, every=0.05)
        return sorted(m["To"] for m in self.messages if m["To"] in wanted)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def unsubscribe_token(message: EmailMessage) -> str:
        found = _TOKEN.search(message.get_content())
        assert found, "no unsubscribe link in the email"
        assert f"token={found.group(1)}" in message["List-Unsubscribe"]
        return found.group(1)


@pytest.fixture(name="mailbox")
def mailbox_fixture(settings: Any) -> Iterator[Mailbox]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    previous = get_settings()
    override_settings(smtp_host="127.0.0.1", smtp_port=port)
    try:
        yield box
    finally:
        override_settings(smtp_host=previous.smtp_host, smtp_port=previous.smtp_port)
        controller.stop()
