"""Calendar items (MS-ASCAL): AirSync ApplicationData <-> stored iCalendar.

Versions: AirSyncBase:Body from 12.0 (Calendar:Body before); AttendeeStatus
and AttendeeType from 12.0; ResponseRequested, AppointmentReplyTime,
ResponseType, DisallowNewTimeProposal, OnlineMeeting* and the recurrence's
CalendarType/IsLeapMonth from 14.0, FirstDayOfWeek from 14.1; 16.x: the
AirSyncBase:Location object instead of Calendar:Location, AirSyncBase:InstanceId
instead of ExceptionStartTime, ClientUid from the device (kept as the UID).

Times go out as UTC Compact DateTimes.  All-day events go out as local
midnight of the event's zone (the one in the Timezone blob) in UTC, and are
read back as the local date in the zone the device sent, rounded to the
nearest midnight, so no zone east or west of UTC shifts the day; a value
without "Z" is taken as the wall date itself.

Ghosting (MS-ASCMD Supported): in a Change, a property the device left out
is cleared when it supports it (or sent no Supported list) and kept
otherwise.  Never cleared by omission: the body (devices leave out bodies
they got truncated), the UID, organizer and DtStamp (server-managed), the
time zone, and in 16.x the exceptions (changed there through InstanceId).

Recurrence: the stored RRULE stays authoritative.  When the device sends back
the pattern it was given (or nothing, for a rule it could not be given), the
RRULE is kept as is (see :mod:`.recurrence`).
"""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from easyncd.backends.groupware.event import (
    Attendee,
    DateOrTime,
    Event,
    Occurrence,
    Organizer,
)
from easyncd.backends.groupware.vobj.calendar import ICalendarError, parse_ics, write_ics
from easyncd.protocol.codecs import recurrence as rec_codec
from easyncd.protocol.codecs.base import CodecContext, CodecError, DecodedItem
from easyncd.protocol.codecs.body import body_element, read_body
from easyncd.protocol.codecs.recurrence import (
    Recurrence,
    format_compact,
    parse_eas_datetime,
)
from easyncd.protocol.codecs.timezone import blob_for_tzinfo, tzinfo_for_blob
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

__all__ = ["CalendarCodec", "FILTER_DAYS"]

_UTC = ZoneInfo("UTC")
_LEGACY_BODY = ("Calendar:Body", None, "Calendar:BodyTruncated")
#: AirSync FilterType -> days back (MS-ASCMD 2.2.3.73).
FILTER_DAYS = {1: 1, 2: 3, 3: 7, 4: 14, 5: 30, 6: 90, 7: 180}
#: 16.x AirSyncBase:Location children besides DisplayName/Latitude/Longitude.
_LOCATION_FIELDS = ("Annotation", "Street", "City", "State", "Country", "PostalCode",
                    "Accuracy", "Altitude", "AltitudeAccuracy", "LocationUri")
_CANCELLED_STATUSES = (5, 7, 13, 15)
_FREQ_DAYS = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC


def _event_zone(event: Event, ctx: CodecContext) -> tzinfo:
    if isinstance(event.start, datetime) and event.start.tzinfo is not None:
        return event.start.tzinfo
    return _zone(ctx.default_timezone)


def _to_utc(value: DateOrTime, tz: tzinfo) -> datetime:
    """The UTC instant of a value: all-day dates at local midnight in ``tz``."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=tz).astimezone(_UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(_UTC)


def _compact(value: DateOrTime, tz: tzinfo) -> str:
    return format_compact(_to_utc(value, tz))


def _read_time(text: str, tz: tzinfo, all_day: bool) -> DateOrTime:
    """A device time: an all-day date (nearest local midnight) or an aware time."""
    naive, is_utc = parse_eas_datetime(text)
    if all_day:
        if is_utc:
            naive = naive.replace(tzinfo=_UTC).astimezone(tz).replace(tzinfo=None)
        return (naive + timedelta(hours=12)).date()
    if is_utc:
        aware = naive.replace(tzinfo=_UTC)
        return aware if tz is _UTC else aware.astimezone(tz)
    return naive.replace(tzinfo=tz)


def _is_me(email: str | None, ctx: CodecContext) -> bool:
    return bool(email and ctx.user_address and email.lower() == ctx.user_address.lower())


def _meeting_status(event: Event, ctx: CodecContext) -> int:
    if not event.attendees:
        return 0
    cancelled = (event.status or "").upper() == "CANCELLED"
    if event.organizer is None or _is_me(event.organizer.email, ctx):
        return 5 if cancelled else 1
    return 7 if cancelled else 3


def _response_type(event: Event, ctx: CodecContext) -> int:
    if event.organizer is None or _is_me(event.organizer.email, ctx):
        return 1
    for attendee in event.attendees:
        if _is_me(attendee.email, ctx):
            return attendee.status if attendee.status in (2, 3, 4, 5) else 0
    return 0


def _pattern_key(rec: Recurrence | None, tz: tzinfo) -> tuple[object, ...] | None:
    """What makes two EAS patterns the same series (Until as an instant)."""
    if rec is None:
        return None
    until: object = None
    if rec.until is not None:
        until = _to_utc(rec.until, tz).date() if not isinstance(rec.until, datetime) \
            else rec.until.astimezone(_UTC)
    return (rec.type, rec.interval, rec.occurrences, until, rec.day_of_week or None,
            rec.day_of_month, rec.week_of_month, rec.month_of_year)


class CalendarCodec:
    """ApplicationData <-> iCalendar for the AirSync class Calendar."""

    eas_class = "Calendar"

    # -- server -> device ----------------------------------------------------------

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        """The ``AirSync:ApplicationData`` for a stored VEVENT."""
        event = self._parse(data)
        version = ctx.protocol_version
        tz = _event_zone(event, ctx)
        start = event.start or datetime.fromtimestamp(ctx.now, _UTC)
        end = event.end or start
        all_day = event.all_day
        app = Element("AirSync:ApplicationData")
        app.add("Calendar:Timezone", blob_for_tzinfo(tz, start.year))
        app.add("Calendar:AllDayEvent", "1" if all_day else "0")
        for element in body_element(event.body or "", ctx, html=event.body_html,
                                    legacy_tags=_LEGACY_BODY):
            app.append(element)
        app.add("Calendar:BusyStatus", str(event.busy_status if event.busy_status is not None
                                           else 2))
        if event.organizer is not None:
            app.add("Calendar:OrganizerName", event.organizer.name or event.organizer.email)
            app.add("Calendar:OrganizerEmail", event.organizer.email)
        stamp = event.dtstamp or datetime.fromtimestamp(ctx.now, _UTC)
        app.add("Calendar:DtStamp", format_compact(stamp))
        app.add("Calendar:EndTime", _compact(end, tz))
        self._add_location(app, event.location, event, version)
        if event.reminder is not None:
            app.add("Calendar:Reminder", str(event.reminder))
        app.add("Calendar:Sensitivity", str(event.sensitivity or 0))
        if event.summary is not None:
            app.add("Calendar:Subject", event.summary)
        app.add("Calendar:StartTime", _compact(start, tz))
        if event.uid:
            app.add("Calendar:UID", event.uid)
        meeting = _meeting_status(event, ctx)
        app.add("Calendar:MeetingStatus", str(meeting))
        if event.attendees:
            app.append(self._attendees(event.attendees, version))
        if event.categories:
            categories = app.add("Calendar:Categories")
            for category in event.categories:
                categories.add("Calendar:Category", category)
        pattern = None
        if event.rrule:
            pattern, _exact = rec_codec.from_rrule(event.rrule, start, tz)
        if pattern is not None:
            app.append(rec_codec.to_element(pattern, version, "Calendar", tz=tz))
            if event.exceptions:
                app.append(self._exceptions(event, tz, ctx))
        if at_least(version, "14.0"):
            if meeting:
                app.add("Calendar:ResponseRequested", "1" if event.response_requested else "0")
            if event.appointment_reply_time is not None:
                app.add("Calendar:AppointmentReplyTime",
                        format_compact(event.appointment_reply_time))
            if meeting:
                app.add("Calendar:ResponseType", str(_response_type(event, ctx)))
                app.add("Calendar:DisallowNewTimeProposal",
                        "1" if event.disallow_new_time_proposal else "0")
            if event.online_meeting_link:
                app.add("Calendar:OnlineMeetingExternalLink", event.online_meeting_link)
        if at_least(version, "12.0") and (event.body or event.body_html):
            app.add("AirSyncBase:NativeBodyType", "2" if event.body_html else "1")
        return app

    def _add_location(self, parent: Element, location: str | None, event: Event | None,
                      version: str) -> None:
        if at_least(version, "16.0"):
            details = event.location_details if event is not None else {}
            geo = event.geo if event is not None else None
            if location is None and not details and geo is None:
                return
            loc = parent.add("AirSyncBase:Location")
            if location is not None:
                loc.add("AirSyncBase:DisplayName", location)
            for name in _LOCATION_FIELDS[:6]:
                if name.upper() in details:
                    loc.add(f"AirSyncBase:{name}", details[name.upper()])
            if geo is not None:
                loc.add("AirSyncBase:Latitude", repr(geo[0]))
                loc.add("AirSyncBase:Longitude", repr(geo[1]))
            for name in _LOCATION_FIELDS[6:]:
                if name.upper() in details:
                    loc.add(f"AirSyncBase:{name}", details[name.upper()])
        elif location is not None:
            parent.add("Calendar:Location", location)

    def _attendees(self, attendees: list[Attendee], version: str) -> Element:
        element = Element("Calendar:Attendees")
        for attendee in attendees:
            item = element.add("Calendar:Attendee")
            item.add("Calendar:Email", attendee.email)
            item.add("Calendar:Name", attendee.name or attendee.email)
            if at_least(version, "12.0"):
                item.add("Calendar:AttendeeStatus", str(attendee.status))
                item.add("Calendar:AttendeeType", str(attendee.type))
        return element

    def _exceptions(self, event: Event, tz: tzinfo, ctx: CodecContext) -> Element:
        version = ctx.protocol_version
        key_tag = "AirSyncBase:InstanceId" if at_least(version, "16.0") else \
            "Calendar:ExceptionStartTime"
        element = Element("Calendar:Exceptions")
        for occ in event.exceptions:
            item = element.add("Calendar:Exception")
            if occ.deleted:
                item.add("Calendar:Deleted", "1")
                item.add(key_tag, _compact(occ.original_start, tz))
                continue
            item.add(key_tag, _compact(occ.original_start, tz))
            if occ.summary is not None:
                item.add("Calendar:Subject", occ.summary)
            if occ.start is not None:
                item.add("Calendar:StartTime", _compact(occ.start, tz))
            if occ.end is not None:
                item.add("Calendar:EndTime", _compact(occ.end, tz))
            if occ.location is not None:
                self._add_location(item, occ.location, None, version)
            if occ.categories is not None:
                categories = item.add("Calendar:Categories")
                for category in occ.categories:
                    categories.add("Calendar:Category", category)
            if occ.sensitivity is not None:
                item.add("Calendar:Sensitivity", str(occ.sensitivity))
            if occ.busy_status is not None:
                item.add("Calendar:BusyStatus", str(occ.busy_status))
            occ_all_day = occ.start is not None and not isinstance(occ.start, datetime)
            if occ.start is not None and occ_all_day != event.all_day:
                item.add("Calendar:AllDayEvent", "1" if occ_all_day else "0")
            if occ.reminder is not None:
                item.add("Calendar:Reminder", str(occ.reminder))
            if occ.dtstamp is not None:
                item.add("Calendar:DtStamp", format_compact(occ.dtstamp))
            if occ.attendees is not None and at_least(version, "12.0"):
                item.append(self._attendees(occ.attendees, version))
            if occ.body is not None:
                for body in body_element(occ.body, ctx, legacy_tags=_LEGACY_BODY):
                    item.append(body)
        return element

    # -- device -> server ----------------------------------------------------------

    def from_eas(self, application_data: Element, existing: str | None,
                 ctx: CodecContext) -> DecodedItem:
        """The iCalendar to store for an Add (``existing`` None) or a Change."""
        app = application_data
        old = self._parse(existing) if existing is not None else None
        event = replace(old, exceptions=list(old.exceptions), attendees=list(old.attendees),
                        categories=list(old.categories), extra=list(old.extra)) \
            if old is not None else Event()

        def present(tag: str) -> bool:
            return app.find(tag) is not None

        def cleared(tag: str) -> bool:
            """Absent and to be erased (ghosting rules)."""
            if present(tag) or old is None:
                return False
            return ctx.supported is None or tag in ctx.supported

        # Zone, all-day flag, times.
        start_text = app.findtext("Calendar:StartTime")
        hint_year = datetime.fromtimestamp(ctx.now, _UTC).year
        if start_text:
            try:
                hint_year = parse_eas_datetime(start_text)[0].year
            except ValueError as exc:
                raise CodecError(str(exc)) from None
        blob = app.findtext("Calendar:Timezone")
        try:
            if blob:
                tz = tzinfo_for_blob(blob, hint_year)
            elif old is not None:
                tz = _event_zone(old, ctx)
            else:
                tz = _zone(ctx.default_timezone)
        except ValueError as exc:
            raise CodecError(f"bad Timezone: {exc}") from None
        all_day_text = app.findtext("Calendar:AllDayEvent")
        all_day = all_day_text == "1" if all_day_text is not None else (
            old.all_day if old is not None else False)
        try:
            self._apply_times(event, app, tz, all_day, ctx)
            self._apply_fields(event, app, ctx, present, cleared)
            self._apply_recurrence(event, old, app, tz, all_day, ctx, cleared)
        except ValueError as exc:
            raise CodecError(str(exc)) from None
        if not event.uid:
            event.uid = (app.findtext("Calendar:ClientUid") or app.findtext("Calendar:UID")
                         or str(uuid.uuid4()))
        return DecodedItem(data=write_ics(event), uid=event.uid)

    def _apply_times(self, event: Event, app: Element, tz: tzinfo, all_day: bool,
                     ctx: CodecContext) -> None:
        start_text = app.findtext("Calendar:StartTime")
        end_text = app.findtext("Calendar:EndTime")
        old_start, old_end = event.start, event.end
        if start_text:
            event.start = _read_time(start_text, tz, all_day)
        elif event.start is None:
            now = datetime.fromtimestamp(ctx.now, _UTC).astimezone(tz).replace(
                second=0, microsecond=0)
            event.start = now.date() if all_day else now
        elif all_day != event.all_day or tz is not _event_zone(event, ctx):
            event.start = _convert(event.start, tz, all_day)
        if end_text:
            event.end = _read_time(end_text, tz, all_day)
        elif old_start is not None and old_end is not None and not start_text:
            event.end = _convert(old_end, tz, all_day)
        elif old_start is not None and old_end is not None:
            event.end = event.start + (_convert(old_end, tz, all_day)
                                       - _convert(old_start, tz, all_day))  # type: ignore[operator]
        else:
            event.end = event.start + (timedelta(days=1) if all_day else timedelta(minutes=30))
        if all_day and event.end <= event.start:  # type: ignore[operator]
            event.end = event.start + timedelta(days=1)

    def _apply_fields(self, event: Event, app: Element, ctx: CodecContext,
                      is_present: Callable[[str], bool],
                      is_cleared: Callable[[str], bool]) -> None:
        if is_present("Calendar:Subject"):
            event.summary = app.findtext("Calendar:Subject")
        elif is_cleared("Calendar:Subject"):
            event.summary = None
        self._read_location(event, app, ctx, is_present, is_cleared)
        body = read_body(app, "Calendar:Body")
        if body is not None:
            if body != event.body:
                event.body_html = None
            event.body = body or None
        for tag, attr in (("Calendar:Reminder", "reminder"), ("Calendar:BusyStatus",
                                                               "busy_status"),
                          ("Calendar:Sensitivity", "sensitivity")):
            text = app.findtext(tag)
            if text is not None and text.strip():
                setattr(event, attr, int(text))
            elif is_cleared(tag):
                setattr(event, attr, None)
        if is_present("Calendar:Categories"):
            event.categories = [c.text for c in app.findall("Calendar:Categories/Calendar:Category")
                                if isinstance(c.text, str) and c.text]
        elif is_cleared("Calendar:Categories"):
            event.categories = []
        if is_present("Calendar:Attendees"):
            event.attendees = self._read_attendees(app.find("Calendar:Attendees"), event)
        elif is_cleared("Calendar:Attendees"):
            event.attendees = []
        email = app.findtext("Calendar:OrganizerEmail")
        if email:
            event.organizer = Organizer(email=email,
                                        name=app.findtext("Calendar:OrganizerName") or None)
        elif event.organizer is None and event.attendees and ctx.user_address:
            event.organizer = Organizer(email=ctx.user_address)
        stamp = app.findtext("Calendar:DtStamp")
        if stamp:
            naive, _ = parse_eas_datetime(stamp)
            event.dtstamp = naive.replace(tzinfo=_UTC)
        elif event.dtstamp is None:
            event.dtstamp = datetime.fromtimestamp(ctx.now, _UTC).replace(microsecond=0)
        status = app.findtext("Calendar:MeetingStatus")
        if status is not None and status.strip().isdigit():
            if int(status) in _CANCELLED_STATUSES:
                event.status = "CANCELLED"
            elif (event.status or "") == "CANCELLED":
                event.status = None
        requested = app.findtext("Calendar:ResponseRequested")
        if requested is not None:
            wanted = requested.strip() == "1"
            organizer = event.organizer.email.lower() if event.organizer else None
            event.attendees = [replace(a, rsvp=wanted and a.email.lower() != organizer)
                               for a in event.attendees]
        reply = app.findtext("Calendar:AppointmentReplyTime")
        if reply:
            naive, _ = parse_eas_datetime(reply)
            event.appointment_reply_time = naive.replace(tzinfo=_UTC)
        disallow = app.findtext("Calendar:DisallowNewTimeProposal")
        if disallow is not None:
            event.disallow_new_time_proposal = disallow.strip() == "1"
        if not event.uid:
            event.uid = app.findtext("Calendar:ClientUid") or app.findtext("Calendar:UID") \
                or None

    def _read_location(self, event: Event, app: Element, ctx: CodecContext,
                       is_present: Callable[[str], bool],
                       is_cleared: Callable[[str], bool]) -> None:
        loc = app.find("AirSyncBase:Location")
        if loc is not None:
            event.location = loc.findtext("AirSyncBase:DisplayName")
            details: dict[str, str] = {}
            for name in _LOCATION_FIELDS:
                text = loc.findtext(f"AirSyncBase:{name}")
                if text is not None:
                    details[name.upper()] = text
            event.location_details = details
            lat, lon = loc.findtext("AirSyncBase:Latitude"), loc.findtext("AirSyncBase:Longitude")
            try:
                event.geo = (float(lat), float(lon)) if lat and lon else None
            except ValueError:
                event.geo = None
        elif is_present("Calendar:Location"):
            event.location = app.findtext("Calendar:Location")
        elif is_cleared("AirSyncBase:Location" if at_least(ctx.protocol_version, "16.0")
                        else "Calendar:Location"):
            event.location = None
            event.location_details = {}
            event.geo = None

    def _read_attendees(self, element: Element | None, event: Event) -> list[Attendee]:
        if element is None:
            return []
        known = {a.email.lower(): a for a in event.attendees}
        found: list[Attendee] = []
        for item in element.findall("Calendar:Attendee"):
            email = (item.findtext("Calendar:Email") or "").strip()
            if not email:
                continue
            before = known.get(email.lower())
            status = item.findtext("Calendar:AttendeeStatus")
            kind = item.findtext("Calendar:AttendeeType")
            found.append(Attendee(
                email=email, name=item.findtext("Calendar:Name") or None,
                type=int(kind) if kind and kind.isdigit() else (before.type if before else 1),
                status=int(status) if status and status.isdigit() else (
                    before.status if before else 0),
                rsvp=before.rsvp if before else False))
        return found

    def _apply_recurrence(self, event: Event, old: Event | None, app: Element, tz: tzinfo,
                          all_day: bool, ctx: CodecContext,
                          cleared: Callable[[str], bool]) -> None:
        assert event.start is not None
        element = app.find("Calendar:Recurrence")
        old_pattern = None
        if old is not None and old.rrule and old.start is not None:
            old_pattern, _ = rec_codec.from_rrule(old.rrule, old.start, _event_zone(old, ctx))
        pattern_changed = False
        if element is not None:
            pattern = rec_codec.from_element(element, all_day=all_day, tz=tz)
            if old is not None and old.rrule and \
                    _pattern_key(pattern, tz) == _pattern_key(old_pattern, tz):
                event.rrule = old.rrule
            else:
                event.rrule = rec_codec.to_rrule(pattern, event.start, tz)
                pattern_changed = old is not None and old.rrule is not None
        elif old is not None and old.rrule and old_pattern is None:
            event.rrule = old.rrule  # never sent: the device could not have changed it
        elif cleared("Calendar:Recurrence"):
            event.rrule = None
        if not event.rrule:
            event.exceptions = []
            return
        is_16 = at_least(ctx.protocol_version, "16.0")
        exceptions = app.find("Calendar:Exceptions")
        if exceptions is not None:
            event.exceptions = [self._read_exception(item, event, tz, ctx)
                                for item in exceptions.findall("Calendar:Exception")]
        elif is_16:
            if pattern_changed or (old is not None and old.start != event.start):
                event.exceptions = []  # MS-ASCAL: such a change drops the exceptions
        elif cleared("Calendar:Exceptions"):
            event.exceptions = []
        if old is not None and old.start is not None and old.start != event.start \
                and exceptions is None:
            # Keep the remaining exceptions attached to the moved series' zone.
            event.exceptions = [replace(o, original_start=_convert(o.original_start, tz,
                                                                   all_day))
                                for o in event.exceptions]

    def _original_start(self, text: str, event: Event, tz: tzinfo) -> DateOrTime:
        return _read_time(text, tz, event.all_day)

    def _read_exception(self, item: Element, event: Event, tz: tzinfo,
                        ctx: CodecContext) -> Occurrence:
        key = item.findtext("Calendar:ExceptionStartTime") or \
            item.findtext("AirSyncBase:InstanceId")
        if not key:
            raise ValueError("Exception without ExceptionStartTime/InstanceId")
        original = self._original_start(key, event, tz)
        if (item.findtext("Calendar:Deleted") or "0").strip() == "1":
            return Occurrence(original_start=original, deleted=True)
        return self._occurrence(item, original, event, tz, ctx)

    def _occurrence(self, item: Element, original: DateOrTime, event: Event, tz: tzinfo,
                    ctx: CodecContext) -> Occurrence:
        all_day_text = item.findtext("Calendar:AllDayEvent")
        all_day = all_day_text == "1" if all_day_text is not None else event.all_day
        start_text = item.findtext("Calendar:StartTime")
        end_text = item.findtext("Calendar:EndTime")
        start = _read_time(start_text, tz, all_day) if start_text else original
        if end_text:
            end: DateOrTime | None = _read_time(end_text, tz, all_day)
        elif event.start is not None and event.end is not None:
            end = start + (event.end - event.start)  # type: ignore[operator]
        else:
            end = None
        loc = item.find("AirSyncBase:Location")
        location = loc.findtext("AirSyncBase:DisplayName") if loc is not None else \
            item.findtext("Calendar:Location")

        def number(tag: str) -> int | None:
            text = item.findtext(tag)
            return int(text) if text is not None and text.strip().isdigit() else None

        categories = None
        if item.find("Calendar:Categories") is not None:
            categories = [c.text for c in item.findall("Calendar:Categories/Calendar:Category")
                          if isinstance(c.text, str) and c.text]
        stamp = item.findtext("Calendar:DtStamp")
        attendees = None
        if item.find("Calendar:Attendees") is not None:
            attendees = self._read_attendees(item.find("Calendar:Attendees"), event)
        return Occurrence(
            original_start=original, start=start, end=end,
            summary=item.findtext("Calendar:Subject"), location=location,
            body=read_body(item, "Calendar:Body"), categories=categories,
            sensitivity=number("Calendar:Sensitivity"),
            busy_status=number("Calendar:BusyStatus"), reminder=number("Calendar:Reminder"),
            dtstamp=parse_eas_datetime(stamp)[0].replace(tzinfo=_UTC) if stamp else None,
            attendees=attendees)

    # -- 16.x single occurrences (Sync Change/Delete with AirSyncBase:InstanceId) ----

    def change_instance(self, application_data: Element, instance_id: str, existing: str,
                        ctx: CodecContext) -> DecodedItem:
        """16.x: the stored text after a Change of one occurrence (the Sync
        Change carried ``AirSyncBase:InstanceId``)."""
        event = self._parse(existing)
        if not event.rrule:
            raise CodecError("InstanceId on an item that does not recur")
        tz = _event_zone(event, ctx)
        try:
            original = self._original_start(instance_id, event, tz)
            occurrence = self._occurrence(application_data, original, event, tz, ctx)
        except ValueError as exc:
            raise CodecError(str(exc)) from None
        self._put_exception(event, occurrence)
        return DecodedItem(data=write_ics(event), uid=event.uid)

    def delete_instance(self, instance_id: str, existing: str, ctx: CodecContext
                        ) -> DecodedItem:
        """16.x: the stored text after deleting one occurrence."""
        event = self._parse(existing)
        if not event.rrule:
            raise CodecError("InstanceId on an item that does not recur")
        try:
            original = self._original_start(instance_id, event, _event_zone(event, ctx))
        except ValueError as exc:
            raise CodecError(str(exc)) from None
        self._put_exception(event, Occurrence(original_start=original, deleted=True))
        return DecodedItem(data=write_ics(event), uid=event.uid)

    @staticmethod
    def _put_exception(event: Event, occurrence: Occurrence) -> None:
        existing = event.exception_for(occurrence.original_start)
        if existing is not None:
            event.exceptions.remove(existing)
        event.exceptions.append(occurrence)

    # -- filters ---------------------------------------------------------------------

    def in_filter(self, data: str, filter_type: int, now: float) -> bool:
        """FilterType 1-7: the event (or any occurrence) ends after now - period."""
        days = FILTER_DAYS.get(filter_type)
        if days is None:
            return True
        try:
            event = parse_ics(data)
        except ICalendarError:
            return True  # let to_eas report it
        cutoff = datetime.fromtimestamp(now, _UTC) - timedelta(days=days)
        if event.start is None:
            return True
        # A day of slack covers all-day and floating times in any zone.
        slack = timedelta(days=1)
        end = event.end or event.start
        if _loose_utc(end) + slack >= cutoff:
            return True
        if any(o.end is not None and not o.deleted and _loose_utc(o.end) + slack >= cutoff
               for o in event.exceptions):
            return True
        if not event.rrule:
            return False
        return _series_end(event.rrule, event.start, end) + slack >= cutoff

    def _parse(self, data: str) -> Event:
        try:
            return parse_ics(data)
        except ICalendarError as exc:
            raise CodecError(str(exc)) from None


def _convert(value: DateOrTime, tz: tzinfo, all_day: bool) -> DateOrTime:
    """A stored time in another zone / all-day state (for changes that send
    no new StartTime)."""
    if all_day:
        if isinstance(value, datetime):
            local = value.astimezone(tz) if value.tzinfo else value
            return local.date()
        return value
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if value.tzinfo is None:
        return value.replace(tzinfo=tz)
    return value.astimezone(tz)


def _loose_utc(value: DateOrTime) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=_UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _series_end(rrule: str, start: DateOrTime, end: DateOrTime) -> datetime:
    """An upper bound of the last occurrence's end (far future: no end)."""
    parts = dict(p.partition("=")[::2] for p in rrule.upper().split(";"))
    duration = _loose_utc(end) - _loose_utc(start)
    if "UNTIL" in parts:
        try:
            naive, _ = parse_eas_datetime(parts["UNTIL"])
        except ValueError:
            return datetime.max.replace(tzinfo=_UTC)
        return naive.replace(tzinfo=_UTC) + duration + timedelta(days=1)
    if "COUNT" in parts:
        try:
            count = int(parts["COUNT"])
            interval = int(parts.get("INTERVAL", "1") or 1)
        except ValueError:
            return datetime.max.replace(tzinfo=_UTC)
        span = _FREQ_DAYS.get(parts.get("FREQ", ""), 0)
        if not span:
            return datetime.max.replace(tzinfo=_UTC)
        return _loose_utc(start) + timedelta(days=span * interval * count) + duration
    return datetime.max.replace(tzinfo=_UTC) - timedelta(days=366)

