"""The task domain model: what a VTODO holds that EAS Tasks (MS-ASTASK) can say.

:class:`Task` is a plain value.  :mod:`easyncd.backends.groupware.vobj.todo`
reads it from and writes it to iCalendar; the Tasks codec turns it into WBXML.
Fields the device cannot express stay in the iCalendar text (``source``): the
writer starts from that text and only replaces what changed.

Dates and times follow iCalendar: a ``date`` is a whole day (no zone, no day
shift anywhere), a naive ``datetime`` is floating (wall time wherever the user
is), an aware one is an instant.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

#: EAS Importance (MS-ASTASK 2.2.2.13).
IMPORTANCE_LOW = 0
IMPORTANCE_NORMAL = 1
IMPORTANCE_HIGH = 2

#: EAS Sensitivity (MS-ASTASK 2.2.2.25) <-> iCalendar CLASS.  EAS "personal"
#: has no RFC 5545 value and gets an x-name.
SENSITIVITY_TO_CLASS = {0: "PUBLIC", 1: "X-PERSONAL", 2: "PRIVATE", 3: "CONFIDENTIAL"}
CLASS_TO_SENSITIVITY = {value: key for key, value in SENSITIVITY_TO_CLASS.items()}

DateOrTime = date | datetime


def importance_from_priority(priority: int | None) -> int | None:
    """RFC 5545 PRIORITY (1 highest .. 9 lowest, 0 undefined) -> EAS Importance."""
    if priority is None or priority <= 0:
        return None
    if priority <= 4:
        return IMPORTANCE_HIGH
    if priority == 5:
        return IMPORTANCE_NORMAL
    return IMPORTANCE_LOW


def priority_from_importance(importance: int | None) -> int | None:
    """EAS Importance -> the PRIORITY that Thunderbird, Apple Reminders and
    Nextcloud Tasks write for it (1 high, 5 normal, 9 low); None: no PRIORITY."""
    if importance is None:
        return None
    return {IMPORTANCE_LOW: 9, IMPORTANCE_NORMAL: 5, IMPORTANCE_HIGH: 1}.get(importance, 5)


@dataclass(frozen=True)
class Task:
    """One task (a VTODO).

    ``reminder`` is the absolute time of the first alarm (an aware datetime);
    ``reminder_set`` without a ``reminder`` means "remind at the due time".
    ``rrule`` is the RRULE value text (``"FREQ=WEEKLY;BYDAY=MO"``), with the
    EAS-only flags ``regenerate`` (the next occurrence is due a period after
    this one is completed) and ``dead_occur`` (the last occurrence).
    ``recurrence_start`` is the EAS Recurrence/Start the device gave, if any.
    ``source`` is the iCalendar text the task was read from (not compared).
    """

    uid: str
    summary: str | None = None
    description: str | None = None
    description_html: str | None = None
    start: DateOrTime | None = None
    due: DateOrTime | None = None
    completed: bool = False
    completed_at: datetime | None = None
    importance: int | None = None
    sensitivity: int | None = None
    reminder_set: bool = False
    reminder: datetime | None = None
    categories: tuple[str, ...] = ()
    rrule: str | None = None
    regenerate: bool = False
    dead_occur: bool = False
    recurrence_start: date | None = None
    created: datetime | None = None
    last_modified: datetime | None = None
    stamp: datetime | None = None
    source: str | None = field(default=None, compare=False, repr=False)
