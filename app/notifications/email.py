"""Outgoing email over plain SMTP (stdlib smtplib, called from a worker thread by the outbox sender)."""

from __future__ import annotations

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


def deliver(host: str, port: int, sender: str, mails: list[OutgoingEmail]) -> list[str | None]:
    """Send over one SMTP connection (blocking: call it from a thread). Returns, per mail, None when the
    server accepted it, else why not; mails after a lost connection all carry that connection's error."""
    outcome: list[str | None] = []
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            for mail in mails:
                try:
                    smtp.send_message(_message(mail, sender))
                    outcome.append(None)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                    log.warning("SMTP refused mail to %s: %s", mail.to, exc)
                    outcome.append(f"refused: {exc}"[:500])
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("SMTP via %s:%s failed", host, port, exc_info=True)
        outcome += [f"{type(exc).__name__}: {exc}"[:500]] * (len(mails) - len(outcome))
    return outcome


def email_enabled() -> bool:
    return bool(get_settings().smtp_host)
