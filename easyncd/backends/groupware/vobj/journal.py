"""VJOURNAL (RFC 5545 3.6.3) <-> :class:`~easyncd.backends.groupware.note.Note`.

SUMMARY is the subject, DESCRIPTION the plain body (RFC 5545 allows several
DESCRIPTION lines in a VJOURNAL; Evolution writes one, and several are read
joined by blank lines), ``X-ALT-DESC;FMTTYPE=text/html`` the HTML body,
CATEGORIES, LAST-MODIFIED, CREATED, DTSTAMP, UID, and ``X-EASYNCD-MESSAGE-CLASS``
for a device's own message class.  Like the VTODO writer, the writer edits
the note's ``source`` and rewrites only what changed.
"""
from __future__ import annotations

from typing import Any

from easyncd.backends.groupware.note import NOTE_MESSAGE_CLASS, Note
from easyncd.backends.groupware.vobj.todo import (
    VObjectError,
    categories_of,
    html_description,
    new_calendar,
    read_calendar,
    remove,
    serialize,
    set_categories,
    set_html_description,
    set_text,
    set_utc,
    text_value,
    utc_value,
)

__all__ = ["VObjectError", "parse_vjournal", "write_vjournal"]

X_MESSAGE_CLASS = "X-EASYNCD-MESSAGE-CLASS"


def _description(comp: Any) -> str | None:
    lines = comp.contents.get("description", [])
    texts = [str(line.value) for line in lines if line.value is not None]
    if not texts:
        return None
    return "\n\n".join(texts)


def _note_from(comp: Any, source: str) -> Note:
    return Note(
        uid=text_value(comp, "uid") or "",
        subject=text_value(comp, "summary"),
        body=_description(comp),
        body_html=html_description(comp),
        categories=categories_of(comp),
        last_modified=utc_value(comp, "last-modified"),
        created=utc_value(comp, "created"),
        stamp=utc_value(comp, "dtstamp"),
        message_class=text_value(comp, X_MESSAGE_CLASS) or NOTE_MESSAGE_CLASS,
        source=source,
    )


def parse_vjournal(text: str) -> Note:
    """The note in an iCalendar text holding a VJOURNAL.  VObjectError if none."""
    _cal, comp = read_calendar(text, "VJOURNAL")
    return _note_from(comp, text)


def write_vjournal(note: Note) -> str:
    """iCalendar text for ``note``: its ``source`` with the changed properties
    rewritten, or a new VCALENDAR when it has none."""
    if note.source:
        cal, comp = read_calendar(note.source, "VJOURNAL")
        old: Note | None = _note_from(comp, note.source)
    else:
        cal, comp = new_calendar("VJOURNAL")
        old = None

    def changed(name: str) -> bool:
        return old is None or getattr(old, name) != getattr(note, name)

    if changed("uid"):
        set_text(comp, "uid", note.uid)
    if changed("stamp"):
        set_utc(comp, "dtstamp", note.stamp)
    if changed("created"):
        set_utc(comp, "created", note.created)
    if changed("last_modified"):
        set_utc(comp, "last-modified", note.last_modified)
    if changed("subject"):
        set_text(comp, "summary", note.subject)
    if changed("body"):
        remove(comp, "description")
        set_text(comp, "description", note.body)
    if changed("body_html"):
        set_html_description(comp, note.body_html)
    if changed("categories"):
        set_categories(comp, note.categories)
    if changed("message_class"):
        set_text(comp, X_MESSAGE_CLASS,
                 None if note.message_class == NOTE_MESSAGE_CLASS else note.message_class)
    return serialize(cal)
