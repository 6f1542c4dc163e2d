"""Outgoing email over plain SMTP (stdlib smtplib in a worker thread: the sends are short and rare)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from app.core.settings import get_settings

log = logging.getLogger("mlpatron.email")
SMTP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    unsubscribe_url: str


def _message(mail: OutgoingEmail, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    # Mail clients show their own "unsubscribe" button for this header.
    msg["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
    msg.set_content(f"{mail.text}\n\n--\nUnsubscribe from these emails: {mail.unsubscribe_url}\n")
    return msg


def _send_batch(host: str, port: int, sender: str, mails: list[OutgoingEmail]) -> int:
    sent = 0
    with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        for mail in mails:
            try:
                smtp.send_message(_message(mail, sender))
                sent += 1
            except smtplib.SMTPRecipientsRefused:
                log.warning("recipient refused: %s", mail.to)
    return sent


def email_enabled() -> bool:
    return bool(get_settings().smtp_host)


async def send(mails: list[OutgoingEmail]) -> int:
    """Send over one SMTP connection; returns how many were accepted. Failures are logged, never raised:
    a notification email must not fail the run transition or mutation that caused it."""
    settings = get_settings()
    if not mails or not settings.smtp_host:
        return 0
    try:
        return await asyncio.to_thread(_send_batch, settings.smtp_host, settings.smtp_port, settings.email_from, mails)
    except (OSError, smtplib.SMTPException):
        log.warning("sending %d email(s) via %s:%s failed", len(mails), settings.smtp_host, settings.smtp_port,
                    exc_info=True)
        return 0
