"""The calendar event domain model: what a VEVENT holds that EAS Calendar
(MS-ASCAL) can say.

:class:`Event` is a plain value.  :mod:`easyncd.backends.groupware.vobj.calendar`
reads it from and writes it to iCalendar; the Calendar codec turns it into
WBXML.  Properties the model does not know stay in ``extra`` (raw iCalendar
properties) and are written back unchanged.

Dates and times follow iCalendar: a ``date`` is a whole day (all-day events:
no zone, no day shift anywhere), a naive ``datetime`` is floating, an aware
one is an instant in its zone (a ``ZoneInfo`` for IANA zones, or a
:class:`~easyncd.backends.groupware.zones.RuleTimeZone` for zones known only
by their rules; the zone model is :mod:`easyncd.backends.groupware.zones`).
The recurrence is kept as its RRULE text, the authority: the EAS pattern is
derived from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

DateOrTime = date | datetime

#: EAS AttendeeType (MS-ASCAL 2.2.2.4).
ATTENDEE_REQUIRED = 1
ATTENDEE_OPTIONAL = 2
ATTENDEE_RESOURCE = 3

#: EAS AttendeeStatus (MS-ASCAL 2.2.2.3) <-> iCalendar PARTSTAT.
STATUS_UNKNOWN = 0
STATUS_TENTATIVE = 2
STATUS_ACCEPTED = 3
STATUS_DECLINED = 4
STATUS_NOT_RESPONDED = 5
PARTSTAT_TO_STATUS = {"TENTATIVE": STATUS_TENTATIVE, "ACCEPTED": STATUS_ACCEPTED,
                      "DECLINED": STATUS_DECLINED, "NEEDS-ACTION": STATUS_NOT_RESPONDED}
STATUS_TO_PARTSTAT = {value: key for key, value in PARTSTAT_TO_STATUS.items()}

#: EAS BusyStatus (MS-ASCAL 2.2.2.10) <-> X-MICROSOFT-CDO-BUSYSTATUS.
BUSY_NAMES = {0: "FREE", 1: "TENTATIVE", 2: "BUSY", 3: "OOF", 4: "WORKINGELSEWHERE"}
BUSY_VALUES = {value: key for key, value in BUSY_NAMES.items()}

#: EAS Sensitivity (MS-ASCAL 2.2.2.41) <-> CLASS ("personal" has no RFC 5545 value).
SENSITIVITY_TO_CLASS = {0: "PUBLIC", 1: "X-PERSONAL", 2: "PRIVATE", 3: "CONFIDENTIAL"}
CLASS_TO_SENSITIVITY = {value: key for key, value in SENSITIVITY_TO_CLASS.items()}


@dataclass
class Property:
    """A raw iCalendar property kept as is: name, parameters, value text."""

    name: str
    value: str
    params: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Attendee:
    """An ATTENDEE: address, display name, EAS type and status, RSVP wanted."""

    email: str
    name: str | None = None
    type: int = ATTENDEE_REQUIRED
    status: int = STATUS_UNKNOWN
    rsvp: bool = False


@dataclass
class Organizer:
    """The ORGANIZER."""

    email: str
    name: str | None = None


@dataclass
class Occurrence:
    """An exception to the series: the occurrence that started at
    ``original_start`` (RECURRENCE-ID / EAS ExceptionStartTime) is deleted
    (EXDATE) or modified.  For a modified one, ``start`` and ``end`` are its
    times and every other field is None when it is the same as the master's."""

    original_start: DateOrTime
    deleted: bool = False
    start: DateOrTime | None = None
    end: DateOrTime | None = None
    summary: str | None = None
    location: str | None = None
    body: str | None = None
    categories: list[str] | None = None
    sensitivity: int | None = None
    busy_status: int | None = None
    reminder: int | None = None
    dtstamp: datetime | None = None
    attendees: list[Attendee] | None = None
    status: str | None = None
    extra: list[Property] = field(default_factory=list)


@dataclass
class Event:
    """One calendar item (a VEVENT with its exceptions)."""

    uid: str | None = None
    summary: str | None = None
    location: str | None = None
    #: 16.x AirSyncBase:Location details other than DisplayName/GEO
    #: (Street, City, ...), kept as X-EAS-LOCATION-* properties.
    location_details: dict[str, str] = field(default_factory=dict)
    geo: tuple[float, float] | None = None
    start: DateOrTime | None = None
    end: DateOrTime | None = None
    dtstamp: datetime | None = None
    organizer: Organizer | None = None
    attendees: list[Attendee] = field(default_factory=list)
    #: Minutes before the start (the first VALARM), None: no reminder.
    reminder: int | None = None
    busy_status: int | None = None
    sensitivity: int | None = None
    categories: list[str] = field(default_factory=list)
    body: str | None = None
    body_html: str | None = None
    rrule: str | None = None
    exceptions: list[Occurrence] = field(default_factory=list)
    #: iCalendar STATUS (TENTATIVE, CONFIRMED, CANCELLED).
    status: str | None = None
    disallow_new_time_proposal: bool = False
    appointment_reply_time: datetime | None = None
    #: Read from CONFERENCE / X-MICROSOFT-SKYPETEAMSMEETINGURL / X-GOOGLE-CONFERENCE
    #: (the source property stays in ``extra``).
    online_meeting_link: str | None = None
    extra: list[Property] = field(default_factory=list)

    @property
    def all_day(self) -> bool:
        """Whether the event is on whole days (DATE values)."""
        return self.start is not None and not isinstance(self.start, datetime)

    @property
    def response_requested(self) -> bool:
        """Whether any attendee is asked to answer (RSVP=TRUE)."""
        return any(a.rsvp for a in self.attendees)

    def exception_for(self, original_start: DateOrTime) -> Occurrence | None:
        """The exception for an original start, compared as instants."""
        wanted = same_instant_key(original_start)
        for occurrence in self.exceptions:
            if same_instant_key(occurrence.original_start) == wanted:
                return occurrence
        return None


def same_instant_key(value: DateOrTime) -> tuple[int, ...]:
    """A comparison key: the UTC instant of an aware datetime, the wall time
    of a naive one, the day of a date."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            stamp = value.timestamp()
            return (1, int(stamp))
        return (2, value.year, value.month, value.day, value.hour, value.minute,
                value.second)
    return (0, value.year, value.month, value.day)
