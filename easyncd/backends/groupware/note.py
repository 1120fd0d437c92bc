"""The note domain model: what a VJOURNAL holds that EAS Notes (MS-ASNOTE) can say.

:mod:`easyncd.backends.groupware.vobj.journal` reads and writes it; the Notes
codec turns it into WBXML.  Properties EAS cannot express stay in the
iCalendar text (``source``) and survive a change from the device.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: The only message class of a note (MS-ASNOTE 2.2.2.5).
NOTE_MESSAGE_CLASS = "IPM.StickyNote"


@dataclass(frozen=True)
class Note:
    """One note (a VJOURNAL).

    ``body`` is plain text (DESCRIPTION); ``body_html`` the HTML form when
    one is known (``X-ALT-DESC;FMTTYPE=text/html``).  ``last_modified`` is an
    aware datetime.  ``message_class`` is kept when a device sends a variant
    (``IPM.StickyNote.*``).  ``source`` is the iCalendar text the note was
    read from (not compared).
    """

    uid: str
    subject: str | None = None
    body: str | None = None
    body_html: str | None = None
    categories: tuple[str, ...] = ()
    last_modified: datetime | None = None
    created: datetime | None = None
    stamp: datetime | None = None
    message_class: str = NOTE_MESSAGE_CLASS
    source: str | None = field(default=None, compare=False, repr=False)
