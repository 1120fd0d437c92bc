"""iCalendar VEVENT text <-> :class:`~easyncd.backends.groupware.event.Event`.

Reading is done on vobject's un-transformed tree (``transform=False``): the
values stay text and the TZID parameters stay visible, so zones are resolved
here, not by vobject:

- a TZID that is an IANA name (also behind a prefix such as
  ``/mozilla.org/20050126_1/Europe/Berlin``) or a Windows name ("W. Europe
  Standard Time") becomes a ``ZoneInfo``;
- any other TZID is read from its VTIMEZONE (through dateutil), matched to
  the IANA zone with the same rules, or kept as a RuleTimeZone of that name.

Moved occurrences (VEVENTs with RECURRENCE-ID) are merged into the master's
``exceptions`` (fields equal to the master's become None); EXDATEs become
deleted exceptions.  Writing emits a VTIMEZONE per zone used, with the zone's
own name as TZID (never an abbreviation), STANDARD/DAYLIGHT yearly rules for
the year of the event, and the master followed by one VEVENT per modified
occurrence.  Properties the model does not know are written back unchanged.
"""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, tzinfo
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import vobject  # type: ignore[import-untyped]
from dateutil import tz as dateutil_tz  # type: ignore[import-untyped]
from vobject.base import ContentLine  # type: ignore[import-untyped]

from easyncd.backends.groupware.event import (
    BUSY_NAMES,
    BUSY_VALUES,
    CLASS_TO_SENSITIVITY,
    PARTSTAT_TO_STATUS,
    SENSITIVITY_TO_CLASS,
    STATUS_TO_PARTSTAT,
    STATUS_UNKNOWN,
    ATTENDEE_OPTIONAL,
    ATTENDEE_REQUIRED,
    ATTENDEE_RESOURCE,
    Attendee,
    DateOrTime,
    Event,
    Occurrence,
    Organizer,
    Property,
)
from easyncd.backends.groupware.zones import (
    RuleTimeZone,
    iana_for_windows,
    info_for_tzinfo,
    info_for_zone,
    match_zone,
    zone_name,
)

__all__ = ["ICalendarError", "parse_ics", "parse_itip", "write_ics"]

PRODID = "-//easyncd//easyncd calendar//EN"
_UTC = ZoneInfo("UTC")

#: Master properties the model reads; everything else is kept in ``extra``.
_KNOWN = {
    "UID", "SUMMARY", "LOCATION", "GEO", "DTSTART", "DTEND", "DURATION", "DTSTAMP",
    "ORGANIZER", "ATTENDEE", "TRANSP", "X-MICROSOFT-CDO-BUSYSTATUS", "CLASS",
    "CATEGORIES", "DESCRIPTION", "X-ALT-DESC", "RRULE", "EXDATE", "STATUS",
    "X-MICROSOFT-DISALLOW-COUNTER", "X-EAS-REPLYTIME", "RECURRENCE-ID",
}
_LOCATION_PREFIX = "X-EAS-LOCATION-"
_MEETING_LINKS = ("CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL", "X-GOOGLE-CONFERENCE",
                  "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK")


class ICalendarError(ValueError):
    """The text is not an iCalendar object with a VEVENT."""


# -- reading ------------------------------------------------------------------------

def _lines(comp: Any, name: str) -> list[Any]:
    return list(comp.contents.get(name.lower(), []))


def _first(comp: Any, name: str) -> Any | None:
    found = comp.contents.get(name.lower())
    return found[0] if found else None


def _text(comp: Any, name: str) -> str | None:
    line = _first(comp, name)
    if line is None:
        return None
    value = line.value
    if isinstance(value, list):
        value = ",".join(value)
    return str(value)


def _param(line: Any, name: str) -> str | None:
    values = line.params.get(name.upper())
    return str(values[0]) if values else None


class _Zones:
    """TZID -> tzinfo for one iCalendar object."""

    def __init__(self, cal: Any, year: int) -> None:
        self._vtimezones = {str(_text(v, "TZID") or ""): v for v in _lines(cal, "VTIMEZONE")}
        self._year = year
        self._cache: dict[str, tzinfo] = {}

    def get(self, tzid: str) -> tzinfo:
        if tzid not in self._cache:
            self._cache[tzid] = self._resolve(tzid)
        return self._cache[tzid]

    def _resolve(self, tzid: str) -> tzinfo:
        name = iana_for_windows(tzid)
        if name is None and "/" in tzid:
            # Prefixed IANA names: "/mozilla.org/20050126_1/Europe/Berlin".
            pieces = tzid.strip("/").split("/")
            for i in range(len(pieces) - 1):
                name = iana_for_windows("/".join(pieces[i:]))
                if name:
                    break
        if name is not None:
            return ZoneInfo(name)
        vtz = self._vtimezones.get(tzid)
        if vtz is not None:
            try:
                text = "BEGIN:VCALENDAR\r\n" + vtz.serialize() + "END:VCALENDAR\r\n"
                found = dateutil_tz.tzical(io.StringIO(text)).get()
            except Exception:  # noqa: BLE001 - any broken VTIMEZONE: fall back
                found = None
            if found is not None:
                info = info_for_tzinfo(found, self._year, tzid)
                matched = match_zone(info, self._year)
                if matched is not None:
                    return ZoneInfo(matched)
                return RuleTimeZone(info, name=tzid)
        return _UTC


def _parse_value(text: str, tzid: str | None, zones: _Zones, is_date: bool = False
                 ) -> DateOrTime:
    text = text.strip()
    if is_date or len(text) == 8:
        return datetime.strptime(text[:8], "%Y%m%d").date()
    utc = text.upper().endswith("Z")
    naive = datetime.strptime(text.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
    if utc:
        return naive.replace(tzinfo=_UTC)
    if tzid:
        return naive.replace(tzinfo=zones.get(tzid))
    return naive


def _time(comp: Any, name: str, zones: _Zones) -> DateOrTime | None:
    line = _first(comp, name)
    if line is None or not str(line.value).strip():
        return None
    return _parse_value(str(line.value), _param(line, "TZID"), zones,
                        (_param(line, "VALUE") or "").upper() == "DATE")


def _times(line: Any, zones: _Zones) -> list[DateOrTime]:
    value = line.value
    texts = value if isinstance(value, list) else str(value).split(",")
    is_date = (_param(line, "VALUE") or "").upper() == "DATE"
    return [_parse_value(t, _param(line, "TZID"), zones, is_date) for t in texts if t.strip()]


_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$")


def _duration(text: str) -> timedelta | None:
    match = _DURATION.match(text.strip().upper())
    if not match:
        return None
    parts = {k: int(v) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0),
                      hours=parts.get("hours", 0), minutes=parts.get("minutes", 0),
                      seconds=parts.get("seconds", 0))
    return -delta if match.group("sign") == "-" else delta


def _format_duration(minutes_before: int) -> str:
    if minutes_before == 0:
        return "PT0S"
    sign = "-" if minutes_before > 0 else ""
    minutes = abs(minutes_before)
    if minutes % 1440 == 0:
        return f"{sign}P{minutes // 1440}D"
    return f"{sign}PT{minutes}M"


def _reminder(comp: Any, start: DateOrTime | None, zones: _Zones) -> int | None:
    for alarm in _lines(comp, "VALARM"):
        trigger = _first(alarm, "TRIGGER")
        if trigger is None:
            continue
        if (_param(trigger, "VALUE") or "").upper() == "DATE-TIME":
            if isinstance(start, datetime) and start.tzinfo is not None:
                when = _parse_value(str(trigger.value), None, zones)
                if isinstance(when, datetime) and when.tzinfo is not None:
                    return max(int((start - when).total_seconds() // 60), 0)
            continue
        delta = _duration(str(trigger.value))
        if delta is None or (_param(trigger, "RELATED") or "START").upper() == "END":
            continue
        return max(int(-delta.total_seconds() // 60), 0)
    return None


def _address(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value


def _attendee(line: Any) -> Attendee:
    role = (_param(line, "ROLE") or "REQ-PARTICIPANT").upper()
    cutype = (_param(line, "CUTYPE") or "INDIVIDUAL").upper()
    if cutype in ("RESOURCE", "ROOM"):
        kind = ATTENDEE_RESOURCE
    elif role in ("OPT-PARTICIPANT", "NON-PARTICIPANT"):
        kind = ATTENDEE_OPTIONAL
    else:
        kind = ATTENDEE_REQUIRED
    partstat = (_param(line, "PARTSTAT") or "").upper()
    return Attendee(email=_address(str(line.value)), name=_param(line, "CN"), type=kind,
                    status=PARTSTAT_TO_STATUS.get(partstat, STATUS_UNKNOWN),
                    rsvp=(_param(line, "RSVP") or "").upper() == "TRUE")


def _busy(comp: Any) -> int | None:
    cdo = _text(comp, "X-MICROSOFT-CDO-BUSYSTATUS")
    if cdo and cdo.upper() in BUSY_VALUES:
        return BUSY_VALUES[cdo.upper()]
    transp = _text(comp, "TRANSP")
    if transp:
        return 0 if transp.upper() == "TRANSPARENT" else 2
    return None


def _categories(comp: Any) -> list[str]:
    found: list[str] = []
    for line in _lines(comp, "CATEGORIES"):
        values = line.value if isinstance(line.value, list) else str(line.value).split(",")
        found.extend(v.strip() for v in values if v.strip())
    return found


def _extra(comp: Any, known: set[str]) -> list[Property]:
    kept: list[Property] = []
    for name, lines in comp.contents.items():
        upper = name.upper()
        if upper in known or upper == "VALARM" or upper.startswith(_LOCATION_PREFIX):
            continue
        for line in lines:
            if not isinstance(line, ContentLine):
                continue  # unknown sub-components are not kept
            value = line.value
            kept.append(Property(line.name.upper(), value if isinstance(value, str)
                                 else ",".join(value),
                                 {k: list(v) for k, v in line.params.items()}))
    return kept


def _event_from(comp: Any, zones: _Zones) -> Event:
    start = _time(comp, "DTSTART", zones)
    end = _time(comp, "DTEND", zones)
    if end is None and start is not None:
        duration = _duration(_text(comp, "DURATION") or "")
        if duration is not None:
            end = start + duration
        elif isinstance(start, datetime):
            end = start
        else:
            end = start + timedelta(days=1)
    organizer = None
    org_line = _first(comp, "ORGANIZER")
    if org_line is not None and str(org_line.value).strip():
        organizer = Organizer(email=_address(str(org_line.value)), name=_param(org_line, "CN"))
    html = None
    alt = _first(comp, "X-ALT-DESC")
    if alt is not None and (_param(alt, "FMTTYPE") or "").lower() == "text/html":
        html = str(alt.value)
    geo = None
    geo_text = _text(comp, "GEO")
    if geo_text:
        lat, _, lon = geo_text.replace(",", ";").partition(";")
        try:
            geo = (float(lat), float(lon))
        except ValueError:
            geo = None
    dtstamp = _time(comp, "DTSTAMP", zones)
    reply = _time(comp, "X-EAS-REPLYTIME", zones)
    rrule = _text(comp, "RRULE")
    link = None
    for name in _MEETING_LINKS:
        link = _text(comp, name)
        if link:
            break
    klass = (_text(comp, "CLASS") or "").upper()
    details = {name.upper()[len(_LOCATION_PREFIX):]: str(lines[0].value)
               for name, lines in comp.contents.items()
               if name.upper().startswith(_LOCATION_PREFIX) and lines}
    event = Event(
        uid=_text(comp, "UID"), summary=_text(comp, "SUMMARY"),
        location=_text(comp, "LOCATION"), location_details=details, geo=geo,
        start=start, end=end,
        dtstamp=dtstamp if isinstance(dtstamp, datetime) else None,
        organizer=organizer,
        attendees=[_attendee(line) for line in _lines(comp, "ATTENDEE")],
        reminder=_reminder(comp, start, zones), busy_status=_busy(comp),
        sensitivity=CLASS_TO_SENSITIVITY.get(klass) if klass else None,
        categories=_categories(comp), body=_text(comp, "DESCRIPTION"), body_html=html,
        rrule=rrule.strip() if rrule else None,
        status=(_text(comp, "STATUS") or "").upper() or None,
        disallow_new_time_proposal=(_text(comp, "X-MICROSOFT-DISALLOW-COUNTER") or ""
                                    ).upper() == "TRUE",
        appointment_reply_time=reply if isinstance(reply, datetime) else None,
        online_meeting_link=link, extra=_extra(comp, _KNOWN))
    return event


def _occurrence_from(comp: Any, master: Event, zones: _Zones) -> Occurrence | None:
    original = _time(comp, "RECURRENCE-ID", zones)
    if original is None:
        return None
    moved = _event_from(comp, zones)

    def differs(value: Any, master_value: Any) -> Any:
        return None if value == master_value else value

    return Occurrence(
        original_start=original, start=moved.start, end=moved.end,
        summary=differs(moved.summary, master.summary),
        location=differs(moved.location, master.location),
        body=differs(moved.body, master.body),
        categories=differs(moved.categories, master.categories),
        sensitivity=differs(moved.sensitivity, master.sensitivity),
        busy_status=differs(moved.busy_status, master.busy_status),
        reminder=differs(moved.reminder, master.reminder),
        dtstamp=differs(moved.dtstamp, master.dtstamp),
        attendees=differs(moved.attendees, master.attendees),
        status=differs(moved.status, master.status),
        extra=[p for p in moved.extra if p.name not in ("SEQUENCE", "CREATED", "LAST-MODIFIED")])


def parse_ics(text: str) -> Event:
    """The event in an iCalendar object (its first UID's master VEVENT with
    the moved occurrences merged).  ICalendarError when there is none."""
    try:
        cal = vobject.readOne(text, transform=False)
    except Exception as exc:  # noqa: BLE001 - vobject raises many kinds
        raise ICalendarError(f"not iCalendar: {exc}") from None
    if getattr(cal, "name", "").upper() != "VCALENDAR":
        raise ICalendarError("not a VCALENDAR")
    vevents = _lines(cal, "VEVENT")
    if not vevents:
        raise ICalendarError("no VEVENT")
    masters = [v for v in vevents if _first(v, "RECURRENCE-ID") is None]
    master_comp = masters[0] if masters else vevents[0]
    year = datetime.now(_UTC).year
    start_line = _first(master_comp, "DTSTART")
    if start_line is not None and str(start_line.value)[:4].isdigit():
        year = int(str(start_line.value)[:4])
    zones = _Zones(cal, year)
    try:
        event = _event_from(master_comp, zones)
        if not masters:
            # Only a moved occurrence (an invitation to one instance): keep it
            # as a plain event.
            return event
        for line in _lines(master_comp, "EXDATE"):
            for value in _times(line, zones):
                if event.exception_for(value) is None:
                    event.exceptions.append(Occurrence(original_start=value, deleted=True))
        for comp in vevents:
            if comp is master_comp or _first(comp, "RECURRENCE-ID") is None:
                continue
            if _text(comp, "UID") != event.uid:
                continue
            occurrence = _occurrence_from(comp, event, zones)
            if occurrence is None:
                continue
            existing = event.exception_for(occurrence.original_start)
            if existing is not None:
                event.exceptions.remove(existing)
            event.exceptions.append(occurrence)
    except ValueError as exc:
        raise ICalendarError(f"bad value: {exc}") from None
    event.exceptions.sort(key=lambda o: _sort_key(o.original_start))
    return event


def parse_itip(text: str) -> tuple[str | None, Event, Property | None]:
    """An iTIP message (RFC 5546): its METHOD (upper case, None when absent),
    the event (as :func:`parse_ics`) and, when the message is about one
    occurrence only (no master VEVENT), that occurrence's RECURRENCE-ID as a
    raw property.  ICalendarError when there is no VEVENT."""
    event = parse_ics(text)
    cal = vobject.readOne(text, transform=False)
    method = _text(cal, "METHOD")
    vevents = _lines(cal, "VEVENT")
    recurrence_id = None
    line = _first(vevents[0], "RECURRENCE-ID") if vevents else None
    if line is not None and all(_first(v, "RECURRENCE-ID") is not None for v in vevents):
        recurrence_id = Property("RECURRENCE-ID", str(line.value).strip(),
                                 {k: list(v) for k, v in line.params.items()})
    return (method.strip().upper() if method and method.strip() else None), event, \
        recurrence_id


def _sort_key(value: DateOrTime) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        return value.timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=_UTC).timestamp()


# -- writing ------------------------------------------------------------------------

def _add(comp: Any, name: str, value: str | list[str],
         params: dict[str, list[str]] | None = None) -> Any:
    line = ContentLine(name.upper(), [], value)
    for key, values in (params or {}).items():
        line.params[key.upper()] = list(values)
    comp.add(line)
    line.isNative = False
    return line


def _is_utc(tz: tzinfo | None) -> bool:
    return tz is not None and zone_name(tz) in ("UTC", "Etc/UTC", "Z", "GMT", "Etc/GMT")


def _format_time(value: DateOrTime) -> tuple[str, dict[str, list[str]]]:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d"), {"VALUE": ["DATE"]}
    if value.tzinfo is None:
        return value.strftime("%Y%m%dT%H%M%S"), {}
    if _is_utc(value.tzinfo):
        return value.astimezone(_UTC).strftime("%Y%m%dT%H%M%SZ"), {}
    return value.strftime("%Y%m%dT%H%M%S"), {"TZID": [zone_name(value.tzinfo)]}


def _add_time(comp: Any, name: str, value: DateOrTime | None) -> None:
    if value is None:
        return
    text, params = _format_time(value)
    _add(comp, name, text, params)


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC).strftime("%Y%m%dT%H%M%SZ")


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


_DAY_CODES = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")


def _add_vtimezone(cal: Any, tz: tzinfo, year: int) -> None:
    name = zone_name(tz)
    if isinstance(tz, RuleTimeZone):
        info = tz.info
    elif isinstance(tz, ZoneInfo):
        info = info_for_zone(name, year)
    else:
        info = info_for_tzinfo(tz, year, name)
    vtz = cal.add("vtimezone")
    _add(vtz, "TZID", name)
    standard = -(info.bias + info.standard_bias)
    daylight = -(info.bias + info.daylight_bias)
    if not info.has_dst:
        part = vtz.add("standard")
        _add(part, "DTSTART", "19700101T000000")
        _add(part, "TZOFFSETFROM", _offset_text(standard))
        _add(part, "TZOFFSETTO", _offset_text(standard))
        label = datetime(year, 1, 1, tzinfo=tz).tzname()
        if label:
            _add(part, "TZNAME", label)
        return
    for kind, rule, before, after in (("standard", info.standard_date, daylight, standard),
                                      ("daylight", info.daylight_date, standard, daylight)):
        start = rule.local_in(1970 if not rule.year else rule.year)
        if start is None:
            continue
        part = vtz.add(kind)
        _add(part, "DTSTART", start.strftime("%Y%m%dT%H%M%S"))
        if not rule.year:
            week = -1 if rule.day >= 5 else rule.day
            _add(part, "RRULE", f"FREQ=YEARLY;BYMONTH={rule.month};"
                                f"BYDAY={week}{_DAY_CODES[rule.day_of_week % 7]}")
        _add(part, "TZOFFSETFROM", _offset_text(before))
        _add(part, "TZOFFSETTO", _offset_text(after))
        sample = rule.local_in(year)
        if sample is not None:
            label = (sample + timedelta(days=1)).replace(tzinfo=tz).tzname()
            if label:
                _add(part, "TZNAME", label)


def _zones_used(event: Event) -> list[tzinfo]:
    values: list[DateOrTime | None] = [event.start, event.end]
    for occurrence in event.exceptions:
        values.extend([occurrence.original_start, occurrence.start, occurrence.end])
    found: dict[str, tzinfo] = {}
    for value in values:
        if isinstance(value, datetime) and value.tzinfo is not None \
                and not _is_utc(value.tzinfo):
            found.setdefault(zone_name(value.tzinfo), value.tzinfo)
    return list(found.values())


def _add_people(comp: Any, organizer: Organizer | None, attendees: Iterable[Attendee]
                ) -> None:
    if organizer is not None:
        _add(comp, "ORGANIZER", f"mailto:{organizer.email}",
             {"CN": [organizer.name]} if organizer.name else {})
    for attendee in attendees:
        params: dict[str, list[str]] = {}
        if attendee.name:
            params["CN"] = [attendee.name]
        if attendee.type == ATTENDEE_RESOURCE:
            params["CUTYPE"] = ["RESOURCE"]
            params["ROLE"] = ["NON-PARTICIPANT"]
        else:
            params["ROLE"] = ["OPT-PARTICIPANT" if attendee.type == ATTENDEE_OPTIONAL
                              else "REQ-PARTICIPANT"]
        partstat = STATUS_TO_PARTSTAT.get(attendee.status)
        if partstat:
            params["PARTSTAT"] = [partstat]
        if attendee.rsvp:
            params["RSVP"] = ["TRUE"]
        _add(comp, "ATTENDEE", f"mailto:{attendee.email}", params)


def _add_common(comp: Any, *, summary: str | None, location: str | None,
                body: str | None, categories: list[str], sensitivity: int | None,
                busy_status: int | None, reminder: int | None, status: str | None) -> None:
    if summary is not None:
        _add(comp, "SUMMARY", summary)
    if location is not None:
        _add(comp, "LOCATION", location)
    if body is not None:
        _add(comp, "DESCRIPTION", body)
    if categories:
        _add(comp, "CATEGORIES", list(categories))
    if sensitivity is not None and sensitivity in SENSITIVITY_TO_CLASS:
        _add(comp, "CLASS", SENSITIVITY_TO_CLASS[sensitivity])
    if busy_status is not None:
        _add(comp, "TRANSP", "TRANSPARENT" if busy_status == 0 else "OPAQUE")
        if busy_status in BUSY_NAMES:
            _add(comp, "X-MICROSOFT-CDO-BUSYSTATUS", BUSY_NAMES[busy_status])
    if status:
        _add(comp, "STATUS", status)
    if reminder is not None:
        alarm = comp.add("valarm")
        _add(alarm, "ACTION", "DISPLAY")
        _add(alarm, "DESCRIPTION", "Reminder")
        _add(alarm, "TRIGGER", _format_duration(reminder))


def _add_extra(comp: Any, extra: Iterable[Property]) -> None:
    for prop in extra:
        _add(comp, prop.name, prop.value, prop.params)


def write_ics(event: Event, method: str | None = None) -> str:
    """The iCalendar text of ``event``: VTIMEZONEs, the master VEVENT (with
    EXDATEs) and one VEVENT per moved occurrence.  ``method`` (an iTIP
    METHOD such as ``"REPLY"``) is written for messages, never for stored
    objects."""
    cal = vobject.iCalendar()
    _add(cal, "PRODID", PRODID)
    if method:
        _add(cal, "METHOD", method.upper())
    year = (event.start.year if event.start is not None else datetime.now(_UTC).year)
    for tz in _zones_used(event):
        _add_vtimezone(cal, tz, year)
    master = cal.add("vevent")
    stamp = event.dtstamp or datetime.now(_UTC).replace(microsecond=0)
    uid = event.uid or ""
    _add(master, "UID", uid)
    _add(master, "DTSTAMP", _utc_text(stamp))
    _add_time(master, "DTSTART", event.start)
    _add_time(master, "DTEND", event.end)
    _add_common(master, summary=event.summary, location=event.location, body=event.body,
                categories=event.categories, sensitivity=event.sensitivity,
                busy_status=event.busy_status, reminder=event.reminder, status=event.status)
    if event.body_html is not None:
        _add(master, "X-ALT-DESC", event.body_html, {"FMTTYPE": ["text/html"]})
    if event.geo is not None:
        _add(master, "GEO", f"{event.geo[0]};{event.geo[1]}")
    for key, value in event.location_details.items():
        _add(master, _LOCATION_PREFIX + key.upper(), value)
    _add_people(master, event.organizer, event.attendees)
    if event.disallow_new_time_proposal:
        _add(master, "X-MICROSOFT-DISALLOW-COUNTER", "TRUE")
    if event.appointment_reply_time is not None:
        _add(master, "X-EAS-REPLYTIME", _utc_text(event.appointment_reply_time))
    if event.rrule:
        _add(master, "RRULE", event.rrule)
        for occurrence in event.exceptions:
            if occurrence.deleted:
                _add_time(master, "EXDATE", occurrence.original_start)
    _add_extra(master, event.extra)
    if event.rrule:
        for occurrence in event.exceptions:
            if not occurrence.deleted:
                _write_occurrence(cal, event, occurrence, uid, stamp)
    return str(cal.serialize())


def _write_occurrence(cal: Any, event: Event, occurrence: Occurrence, uid: str,
                      stamp: datetime) -> None:
    comp = cal.add("vevent")
    _add(comp, "UID", uid)
    _add_time(comp, "RECURRENCE-ID", occurrence.original_start)
    _add(comp, "DTSTAMP", _utc_text(occurrence.dtstamp or stamp))
    start = occurrence.start if occurrence.start is not None else occurrence.original_start
    end = occurrence.end
    if end is None and event.start is not None and event.end is not None:
        end = start + (_as_comparable(event.end, start) - _as_comparable(event.start, start))
    _add_time(comp, "DTSTART", start)
    _add_time(comp, "DTEND", end)

    def pick(value: Any, master_value: Any) -> Any:
        return master_value if value is None else value

    _add_common(comp, summary=pick(occurrence.summary, event.summary),
                location=pick(occurrence.location, event.location),
                body=pick(occurrence.body, event.body),
                categories=pick(occurrence.categories, event.categories),
                sensitivity=pick(occurrence.sensitivity, event.sensitivity),
                busy_status=pick(occurrence.busy_status, event.busy_status),
                reminder=pick(occurrence.reminder, event.reminder),
                status=pick(occurrence.status, event.status))
    _add_people(comp, event.organizer, pick(occurrence.attendees, event.attendees))
    _add_extra(comp, occurrence.extra)


def _as_comparable(value: DateOrTime, like: DateOrTime) -> Any:
    """Make master start/end subtractable in the occurrence's kind."""
    if isinstance(like, datetime) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=like.tzinfo)
    if not isinstance(like, datetime) and isinstance(value, datetime):
        return value.date()
    return value

