"""EAS Notes (MS-ASNOTE, 14.0+) <-> VJOURNAL text.

Elements: Notes:Subject, AirSyncBase:Body, Notes:MessageClass (always
``IPM.StickyNote`` or a variant of it), Notes:LastModifiedDate (a Compact
DateTime, MS-ASDTYPE 2.7.2: ``20240315T083000Z``) and Notes:Categories.
Ghosting follows the Tasks codec: in a Change, a property the device left out
is cleared when it supports it and kept when it does not; a body left out is
kept.  An HTML body (Type 2) is stored twice: as text in DESCRIPTION (what
other iCalendar programs show) and as X-ALT-DESC.
"""
from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone

from easyncd.backends.groupware.note import NOTE_MESSAGE_CLASS, Note
from easyncd.backends.groupware.vobj.journal import VObjectError, parse_vjournal, write_vjournal
from easyncd.protocol.codecs.base import CodecContext, CodecError, DecodedItem
from easyncd.protocol.codecs.body import BODY_HTML, body_element, read_body
from easyncd.wbxml import Element

__all__ = ["NotesCodec", "format_compact_datetime", "parse_compact_datetime"]

#: Ghostable properties -> the elements that carry them.
FIELDS: dict[str, tuple[str, ...]] = {
    "subject": ("Notes:Subject",),
    "categories": ("Notes:Categories",),
    "message_class": ("Notes:MessageClass",),
}


def format_compact_datetime(value: datetime) -> str:
    """``20240315T083000Z`` (aware values converted to UTC, naive taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y%m%dT%H%M%SZ")


def parse_compact_datetime(text: str | None) -> datetime | None:
    """An aware UTC datetime from a Compact DateTime (or the long dateTime
    form some clients send); None for None or empty; CodecError otherwise."""
    if text is None or not text.strip():
        return None
    raw = text.strip().rstrip("Zz")
    for pattern in ("%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(raw, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise CodecError(f"not a Compact DateTime: {text!r}")


def _text(element: Element) -> str:
    if isinstance(element.text, bytes):
        return element.text.decode("utf-8", errors="replace")
    return element.text or ""


class NotesCodec:
    """ApplicationData of the AirSync class ``Notes`` <-> VJOURNAL text."""

    eas_class = "Notes"

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        """The ``AirSync:ApplicationData`` for a stored VJOURNAL."""
        try:
            note = parse_vjournal(data)
        except VObjectError as error:
            raise CodecError(str(error)) from error
        app = Element("AirSync:ApplicationData")
        app.add("Notes:Subject", note.subject or "")
        for element in body_element(note.body or "", ctx, html=note.body_html):
            app.append(element)
        app.add("Notes:MessageClass", note.message_class or NOTE_MESSAGE_CLASS)
        modified = note.last_modified or note.stamp or note.created
        if modified is None:
            modified = datetime.fromtimestamp(ctx.now, timezone.utc)
        app.add("Notes:LastModifiedDate", format_compact_datetime(modified))
        if note.categories:
            categories = app.add("Notes:Categories")
            for category in note.categories:
                categories.add("Notes:Category", category)
        return app

    def from_eas(self, application_data: Element, existing: str | None,
                 ctx: CodecContext) -> DecodedItem:
        """The VJOURNAL text for what the device sent, merged into ``existing``."""
        try:
            old = parse_vjournal(existing) if existing else None
        except VObjectError as error:
            raise CodecError(str(error)) from error
        app = application_data
        now = datetime.fromtimestamp(ctx.now, timezone.utc).replace(microsecond=0)
        base = old if old is not None else Note(uid=str(uuid.uuid4()).upper(), created=now)

        def take(field: str) -> bool:
            tags = FIELDS[field]
            if old is None or any(app.find(tag) is not None for tag in tags):
                return True
            return ctx.supported is None or any(tag in ctx.supported for tag in tags)

        changes: dict[str, object] = {"stamp": now}
        sent_modified = parse_compact_datetime(app.findtext("Notes:LastModifiedDate"))
        changes["last_modified"] = sent_modified or now
        if take("subject"):
            changes["subject"] = app.findtext("Notes:Subject") or None
        text = read_body(app, None)
        if text is not None:
            changes["body"] = text or None
            body = app.find("AirSyncBase:Body")
            html: str | None = None
            if body is not None and (body.findtext("AirSyncBase:Type") or "").strip() == \
                    str(BODY_HTML):
                html = body.findtext("AirSyncBase:Data") or None
            elif old is not None and old.body == (text or None):
                html = old.body_html
            changes["body_html"] = html
        if take("categories"):
            changes["categories"] = tuple(
                _text(c) for c in app.findall("Notes:Categories/Notes:Category") if _text(c))
        if take("message_class"):
            message_class = (app.findtext("Notes:MessageClass") or "").strip()
            if message_class and not message_class.startswith(NOTE_MESSAGE_CLASS):
                raise CodecError(f"a note's MessageClass cannot be {message_class!r}")
            changes["message_class"] = message_class or NOTE_MESSAGE_CLASS
        note = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        return DecodedItem(data=write_vjournal(note), uid=note.uid)

    def in_filter(self, data: str, filter_type: int, now: float) -> bool:
        """Notes have no filter: always True."""
        return True
