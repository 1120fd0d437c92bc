"""16.x draft Add / Change in Drafts: the device's ComposeMail-style
ApplicationData (To, Cc, Bcc, Subject, Importance, AirSyncBase:Body) as a MIME
message to APPEND with ``\\Draft``."""
from __future__ import annotations

import email.utils
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser

from easyncd.wbxml import Element

#: Importance 0/1/2 -> X-Priority / Importance header values.
_IMPORTANCE = {"0": ("5", "low"), "2": ("1", "high")}
#: ApplicationData element -> header name.
_HEADERS = {"Email:To": "To", "Email:Cc": "Cc", "Email2:Bcc": "Bcc", "Email:Subject": "Subject"}
DRAFT_FIELDS = frozenset(_HEADERS) | {"AirSyncBase:Body", "Email:Importance"}
DRAFT_FLAGS = ("\\Draft", "\\Seen")


def _text(element: Element | None) -> str | None:
    if element is None:
        return None
    value = element.text
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def has_draft_fields(app: Element) -> bool:
    """Whether a Change carries draft content (not just flags)."""
    return any(child.tag in DRAFT_FIELDS for child in app.children)


def _existing(raw: bytes | None) -> tuple[dict[str, str], str | None, str | None]:
    """Headers, plain text and HTML of the draft being replaced."""
    if not raw:
        return {}, None, None
    message = BytesParser(policy=email_policy.default).parsebytes(raw)
    headers = {name: str(message[name]) for name in ("To", "Cc", "Bcc", "Subject",
                                                      "Importance", "X-Priority")
               if message[name] is not None}
    plain = html = None
    if isinstance(message, EmailMessage):
        part = message.get_body(("plain",))
        plain = part.get_content() if part is not None else None
        part = message.get_body(("html",))
        html = part.get_content() if part is not None else None
    return headers, plain, html


def build_draft(app: Element, sender: str | None, now: datetime,
                existing: bytes | None = None) -> bytes:
    """The MIME draft for ``app``; with ``existing`` (a Change) the fields the
    device left out are kept from the old draft."""
    headers, plain, html = _existing(existing)
    for tag, name in _HEADERS.items():
        value = _text(app.find(tag))
        if value is not None:
            headers[name] = value
    importance = _text(app.find("Email:Importance"))
    if importance is not None:
        headers.pop("Importance", None)
        headers.pop("X-Priority", None)
        if importance in _IMPORTANCE:
            headers["X-Priority"], headers["Importance"] = _IMPORTANCE[importance]
    body = app.find("AirSyncBase:Body")
    if body is not None:
        data = _text(body.find("AirSyncBase:Data")) or ""
        if _text(body.find("AirSyncBase:Type")) == "2":
            html, plain = data, None
        else:
            plain, html = data, None
    message = EmailMessage(policy=email_policy.SMTP)
    if sender:
        message["From"] = sender
    for name in ("To", "Cc", "Bcc", "Subject", "X-Priority", "Importance"):
        value = headers.get(name)
        if value:
            message[name] = value
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid(
        domain=sender.rpartition("@")[2] if sender and "@" in sender else None)
    message["MIME-Version"] = "1.0"
    if html is not None:
        message.set_content(html, subtype="html", charset="utf-8")
    else:
        message.set_content(plain or "", charset="utf-8")
    return message.as_bytes()


__all__ = ["DRAFT_FLAGS", "build_draft", "has_draft_fields"]
