"""The contract of an item codec: EAS ApplicationData <-> stored item text.

One codec per AirSync class (Contacts, Calendar, Tasks, Notes; Email in the
mail issue).  Codecs are pure functions of their inputs: no I/O, no clock
(``now`` is passed in), no Twisted.  The stored text is what the groupware
backend keeps (vCard 3.0 or iCalendar); codecs turn it into the domain model
through :mod:`easyncd.backends.groupware.vobj` (the only place that imports
vobject) and the model into WBXML elements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from easyncd.wbxml import Element


class CodecError(ValueError):
    """The item cannot be converted (per-item Status 6 in Sync)."""


@dataclass(frozen=True)
class BodyPreference:
    """AirSyncBase:BodyPreference (12.0+): the body type wanted (1 plain text,
    2 HTML, 3 RTF, 4 MIME), the truncation size in bytes (None: whole), and
    whether a preview of ``preview`` characters is wanted (14.0+)."""

    body_type: int
    truncation_size: int | None = None
    all_or_none: bool = False
    preview: int | None = None


@dataclass(frozen=True)
class CodecContext:
    """What a conversion depends on besides the item."""

    protocol_version: str
    #: From the collection's Options; empty: the server's choice (plain text).
    body_preferences: tuple[BodyPreference, ...] = ()
    #: 2.5's Options/Truncation (old Body/BodyTruncated); None: whole body.
    truncation: int | None = None
    #: Ghosting (MS-ASCMD Supported): the element names ("Contacts:Birthday"...)
    #: the device said it supports.  None: no Supported list was sent, every
    #: property of the class is supported.  A property the device supports but
    #: leaves out of a Change is cleared; one it does not support is kept.
    supported: frozenset[str] | None = None
    #: The time of the request (POSIX seconds), for filters and defaults.
    now: float = 0.0
    #: The user's primary address (organizer, attendee status).
    user_address: str | None = None
    #: The IANA zone used for floating times and the device's default.
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class DecodedItem:
    """What ``from_eas`` gives back: the text to store and what the protocol
    layer must remember (the item's UID, for 16.x ClientUid)."""

    data: str
    uid: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


class ItemCodec(Protocol):
    """ApplicationData <-> stored text for one AirSync class."""

    #: The AirSync Class: "Contacts", "Calendar", "Tasks" or "Notes".
    eas_class: str

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        """The ``AirSync:ApplicationData`` element for a stored item.  Raises
        CodecError for data it cannot read."""

    def from_eas(self, application_data: Element, existing: str | None,
                 ctx: CodecContext) -> DecodedItem:
        """The text to store for an ``AirSync:ApplicationData`` sent by the
        device: a new item (``existing`` None) or a change merged into
        ``existing`` (ghosted properties kept).  Raises CodecError."""

    def in_filter(self, data: str, filter_type: int, now: float) -> bool:
        """Whether the item belongs in a sync with this AirSync FilterType
        (0 = everything; calendar 4-7 = from two weeks .. six months ago,
        tasks 8 = incomplete only).  Contacts and notes: always True."""
