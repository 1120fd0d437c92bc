"""iTIP (RFC 5546) for MeetingResponse: who the user is in an invitation,
the attendee's answer filed in the event, and the REPLY mail to the organizer.

Pure functions over :class:`~easyncd.backends.groupware.event.Event`; the
iCalendar text is read and written by
:mod:`easyncd.backends.groupware.vobj.calendar` (the only vobject user).

The reply is what RFC 5546 3.2.3 asks for: ``METHOD:REPLY`` and a VEVENT with
UID, SEQUENCE, DTSTAMP, ORGANIZER, the replying ATTENDEE only (with its
PARTSTAT), RECURRENCE-ID when it answers one occurrence, and the times and
summary so that clients without the original still show something.  A
proposal of a new time (16.x ProposedStartTime / ProposedEndTime) goes out
as ``METHOD:COUNTER`` (RFC 5546 3.2.7) with the proposed DTSTART/DTEND.  The
mail is ``multipart/alternative``: a text/plain part (the device's text or a
one-line summary) and ``text/calendar; method=REPLY``, as Outlook, Thunderbird
and Gmail send and understand it.
"""
from __future__ import annotations

import email.utils
from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from email import policy as email_policy
from email.message import EmailMessage
from typing import Iterable
from zoneinfo import ZoneInfo

from easyncd.backends.groupware.event import (
    STATUS_ACCEPTED,
    STATUS_DECLINED,
    STATUS_TENTATIVE,
    Attendee,
    DateOrTime,
    Event,
    Occurrence,
    Property,
    same_instant_key,
)
from easyncd.backends.groupware.vobj.calendar import write_ics

__all__ = [
    "RESPONSE_STATUS",
    "ReplyMail",
    "build_reply",
    "find_attendee",
    "is_organizer",
    "occurs_at",
    "original_start_for",
    "reply_ics",
    "set_status",
    "set_status_for_instance",
]

_UTC = ZoneInfo("UTC")

#: MeetingResponse UserResponse -> EAS AttendeeStatus (= iCalendar PARTSTAT).
RESPONSE_STATUS = {1: STATUS_ACCEPTED, 2: STATUS_TENTATIVE, 3: STATUS_DECLINED}
#: The subject prefix Outlook uses for each answer.
_SUBJECT_PREFIX = {STATUS_ACCEPTED: "Accepted", STATUS_TENTATIVE: "Tentative",
                   STATUS_DECLINED: "Declined"}
_VERB = {STATUS_ACCEPTED: "accepted", STATUS_TENTATIVE: "tentatively accepted",
         STATUS_DECLINED: "declined"}
#: EAS BusyStatus for a tentatively accepted meeting.
_BUSY_TENTATIVE = 1


def _norm(address: str) -> str:
    address = address.strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    return address.lower()


def is_organizer(event: Event, addresses: Iterable[str]) -> bool:
    """Whether one of ``addresses`` organizes the event."""
    mine = {_norm(a) for a in addresses if a}
    return event.organizer is not None and _norm(event.organizer.email) in mine


def find_attendee(event: Event, addresses: Iterable[str], account: str = "") -> Attendee | None:
    """The user's ATTENDEE: the first one whose address is one of
    ``addresses`` (the user's own and where the mail was delivered); failing
    that, the only attendee whose local part is the account name."""
    wanted = [_norm(a) for a in addresses if a and a.strip()]
    for address in wanted:
        for attendee in event.attendees:
            if _norm(attendee.email) == address:
                return attendee
    local = account.split("@", 1)[0].lower()
    if local:
        found = [a for a in event.attendees if _norm(a.email).split("@", 1)[0] == local]
        if len(found) == 1:
            return found[0]
    return None


def _with_status(attendees: Iterable[Attendee], me: str, status: int) -> list[Attendee]:
    me = _norm(me)
    return [replace(a, status=status, rsvp=False) if _norm(a.email) == me else a
            for a in attendees]


def set_status(event: Event, me: Attendee, status: int, now: datetime) -> Event:
    """The event as the user's calendar keeps it after answering the whole
    series: the user's PARTSTAT set (in every modified occurrence too), the
    reply time noted, a tentative answer shown as tentatively busy."""
    if not any(_norm(a.email) == _norm(me.email) for a in event.attendees):
        event.attendees.append(replace(me, status=status, rsvp=False))
    event.attendees = _with_status(event.attendees, me.email, status)
    for occurrence in event.exceptions:
        if occurrence.attendees is not None:
            occurrence.attendees = _with_status(occurrence.attendees, me.email, status)
    event.appointment_reply_time = now
    if status == STATUS_TENTATIVE:
        event.busy_status = _BUSY_TENTATIVE
    return event


def set_status_for_instance(event: Event, me: Attendee, status: int,
                            original: DateOrTime, now: datetime) -> Event:
    """The event after answering one occurrence (16.x InstanceId): declining
    removes the occurrence from the user's calendar (an EXDATE); accepting or
    tentatively accepting makes it an exception carrying the user's PARTSTAT."""
    existing = event.exception_for(original)
    if existing is not None:
        event.exceptions.remove(existing)
    if status == STATUS_DECLINED:
        event.exceptions.append(Occurrence(original_start=original, deleted=True))
    else:
        if existing is None or existing.deleted:
            existing = Occurrence(original_start=original, start=original,
                                  end=_instance_end(event, original))
        base = existing.attendees if existing.attendees is not None else event.attendees
        existing.attendees = _with_status(base, me.email, status)
        if status == STATUS_TENTATIVE:
            existing.busy_status = _BUSY_TENTATIVE
        event.exceptions.append(existing)
    event.exceptions.sort(key=lambda o: same_instant_key(o.original_start))
    event.appointment_reply_time = now
    return event


def _instance_end(event: Event, original: DateOrTime) -> DateOrTime | None:
    if event.start is None or event.end is None:
        return None
    try:
        return original + (event.end - event.start)  # type: ignore[operator]
    except TypeError:
        return None


# -- occurrences ------------------------------------------------------------------------

def original_start_for(event: Event, instant: datetime) -> DateOrTime:
    """The series' own form of an occurrence start given as a UTC instant
    (an InstanceId): in the series' zone, floating, or a date for all-day."""
    start = event.start
    if isinstance(start, datetime):
        if start.tzinfo is not None:
            return instant.astimezone(start.tzinfo)
        return instant.astimezone(_UTC).replace(tzinfo=None)
    return (instant.astimezone(_UTC) + timedelta(hours=12)).date()


def occurs_at(event: Event, original: DateOrTime) -> bool:
    """Whether the series has an occurrence starting at ``original`` (from
    its RRULE, not counting EXDATEs; an existing exception also counts)."""
    from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

    if event.start is None or not event.rrule:
        return False
    if event.exception_for(original) is not None:
        return True
    start = event.start
    if isinstance(start, datetime):
        dtstart = start
    else:
        dtstart = datetime(start.year, start.month, start.day)
    wanted = original if isinstance(original, datetime) else \
        datetime(original.year, original.month, original.day)
    if isinstance(wanted, datetime) and (wanted.tzinfo is None) != (dtstart.tzinfo is None):
        return False
    try:
        rule = rrulestr(event.rrule, dtstart=dtstart)
        window = timedelta(seconds=1)
        return bool(rule.between(wanted - window, wanted + window, inc=True))
    except (ValueError, TypeError):
        return False


# -- the reply -----------------------------------------------------------------------

def _utc_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC).strftime("%Y%m%dT%H%M%SZ")


def _recurrence_property(original: DateOrTime) -> Property:
    if isinstance(original, datetime):
        if original.tzinfo is None:
            return Property("RECURRENCE-ID", original.strftime("%Y%m%dT%H%M%S"))
        return Property("RECURRENCE-ID", _utc_text(original))
    return Property("RECURRENCE-ID", original.strftime("%Y%m%d"), {"VALUE": ["DATE"]})


def reply_ics(event: Event, me: Attendee, status: int, now: datetime, *,
              recurrence_id: Property | None = None, instance: DateOrTime | None = None,
              proposed: tuple[datetime, datetime] | None = None,
              comment: str | None = None) -> tuple[str, str]:
    """(METHOD, iCalendar text) of the answer: REPLY, or COUNTER when a new
    time is proposed.  ``recurrence_id`` is the invitation's own (an
    invitation to one occurrence); ``instance`` the occurrence answered
    (InstanceId)."""
    method = "COUNTER" if proposed is not None else "REPLY"
    start: DateOrTime | None = event.start
    end: DateOrTime | None = event.end
    if instance is not None:
        occurrence = event.exception_for(instance)
        start = occurrence.start if occurrence is not None and occurrence.start else instance
        end = occurrence.end if occurrence is not None and occurrence.end else \
            _instance_end(event, instance)
    if proposed is not None:
        start, end = proposed
    extra = [p for p in event.extra if p.name == "SEQUENCE"]
    if instance is not None:
        extra.append(_recurrence_property(instance))
    elif recurrence_id is not None:
        extra.append(recurrence_id)
    if comment:
        extra.append(Property("COMMENT", comment))
    reply = Event(uid=event.uid, summary=event.summary, location=event.location,
                  start=start, end=end, dtstamp=now.astimezone(_UTC).replace(microsecond=0),
                  organizer=event.organizer,
                  attendees=[Attendee(email=me.email, name=me.name, type=me.type,
                                      status=status)],
                  extra=extra)
    return method, write_ics(reply, method=method)


class ReplyMail:
    """The mail carrying an iTIP answer: envelope and bytes (CRLF)."""

    def __init__(self, sender: str, recipients: tuple[str, ...], message: bytes,
                 message_id: str) -> None:
        self.sender = sender
        self.recipients = recipients
        self.message = message
        self.message_id = message_id


def _when(value: DateOrTime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.strftime("%Y-%m-%d %H:%M %Z").strip()
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def build_reply(event: Event, me: Attendee, status: int, now: datetime, *,
                sender_name: str | None = None, text: str | None = None,
                recurrence_id: Property | None = None, instance: DateOrTime | None = None,
                proposed: tuple[datetime, datetime] | None = None) -> ReplyMail:
    """The answer mail from the user (``me``) to the organizer.  ValueError
    when the event has no organizer."""
    if event.organizer is None or not event.organizer.email.strip():
        raise ValueError("the invitation names no organizer")
    method, ics = reply_ics(event, me, status, now, recurrence_id=recurrence_id,
                            instance=instance, proposed=proposed)
    organizer = event.organizer.email.strip()
    sender = me.email.strip()
    summary = event.summary or ""
    prefix = _SUBJECT_PREFIX.get(status, "Reply")
    if proposed is not None:
        prefix = "New Time Proposed"
    message = EmailMessage(policy=email_policy.SMTP)
    message["From"] = email.utils.formataddr((sender_name or me.name or "", sender))
    message["To"] = email.utils.formataddr((event.organizer.name or "", organizer))
    message["Subject"] = f"{prefix}: {summary}" if summary else prefix
    message["Date"] = email.utils.format_datetime(now.astimezone(_UTC))
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = email.utils.make_msgid(domain=domain)
    message["Message-ID"] = message_id
    if text is None or not text.strip():
        who = sender_name or me.name or sender
        line = f"{who} has {_VERB.get(status, 'answered')}: {summary}".rstrip(": ")
        when = _when(instance if instance is not None else event.start)
        text = line + (f" ({when})" if when else "")
        if proposed is not None:
            text += f"\nProposed new time: {_when(proposed[0])} - {_when(proposed[1])}"
    message.set_content(text if text.endswith("\n") else text + "\n")
    message.add_alternative(ics, subtype="calendar", params={"method": method})
    return ReplyMail(sender, (organizer,), message.as_bytes(), message_id)
