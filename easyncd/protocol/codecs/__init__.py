"""Item codecs by groupware kind (see :mod:`easyncd.protocol.codecs.base`)."""
from __future__ import annotations

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS, KIND_NOTES, KIND_TASKS
from easyncd.protocol.codecs.base import (
    BodyPreference,
    CodecContext,
    CodecError,
    DecodedItem,
    ItemCodec,
)
from easyncd.protocol.codecs.calendar import CalendarCodec
from easyncd.protocol.codecs.contacts import ContactsCodec
from easyncd.protocol.codecs.notes import NotesCodec
from easyncd.protocol.codecs.tasks import TasksCodec

CODECS: dict[str, ItemCodec] = {
    KIND_CONTACTS: ContactsCodec(),
    KIND_CALENDAR: CalendarCodec(),
    KIND_TASKS: TasksCodec(),
    KIND_NOTES: NotesCodec(),
}

__all__ = ["BodyPreference", "CODECS", "CodecContext", "CodecError", "DecodedItem", "ItemCodec"]
