"""EAS Tasks (MS-ASTASK) <-> VTODO text.

Dates: MS-ASTASK sends every task date twice, as UTC (``UtcStartDate``,
``UtcDueDate``) and as the device's local wall time written with a ``Z``
(``StartDate``, ``DueDate``).  Devices and Outlook keep task dates as whole
days: a local time of midnight is stored as an iCalendar DATE, so the due
day never moves whatever the zones of the device, the server and the other
clients.  Other times are stored in UTC (floating when only the local form
was sent).  Going out, a DATE is local midnight and its UTC form is that
midnight in ``ctx.default_timezone``.  A date the device sends back unchanged
keeps the stored form (TZID and all).

Recurrence goes through the shared model of :mod:`.recurrence`; Regenerate
and DeadOccur, which RFC 5545 cannot say, are kept as X-EASYNCD-REGENERATE /
X-EASYNCD-DEADOCCUR, and a Recurrence/Start other than the task's first day as
X-EASYNCD-RECURRENCE-START.  A rule the device was never shown (HOURLY...) is
kept when the device sends no Recurrence; a pattern sent back unchanged keeps
the stored RRULE's spelling.

Ghosting (MS-ASCMD Supported): in a Change, a property the device left out
is cleared when it supports it and kept when it does not.  The body is kept
when left out (devices hold truncated bodies and do not resend them).
"""
from __future__ import annotations

import dataclasses
import uuid
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from easyncd.backends.groupware.task import Task
from easyncd.backends.groupware.vobj.todo import VObjectError, parse_vtodo, write_vtodo
from easyncd.protocol.codecs import recurrence
from easyncd.protocol.codecs.base import CodecContext, CodecError, DecodedItem
from easyncd.protocol.codecs.body import BODY_HTML, body_element, read_body
from easyncd.protocol.codecs.recurrence import Recurrence
from easyncd.wbxml import Element

__all__ = ["FILTER_INCOMPLETE", "TasksCodec", "format_eas_datetime", "parse_eas_datetime"]

#: AirSync FilterType for tasks: incomplete tasks only (MS-ASCMD 2.2.3.69).
FILTER_INCOMPLETE = 8

LEGACY_BODY = ("Tasks:Body", "Tasks:BodySize", "Tasks:BodyTruncated")

#: Ghostable properties -> the elements that carry them.
FIELDS: dict[str, tuple[str, ...]] = {
    "subject": ("Tasks:Subject",),
    "importance": ("Tasks:Importance",),
    "start": ("Tasks:StartDate", "Tasks:UtcStartDate"),
    "due": ("Tasks:DueDate", "Tasks:UtcDueDate"),
    "categories": ("Tasks:Categories",),
    "recurrence": ("Tasks:Recurrence",),
    "complete": ("Tasks:Complete", "Tasks:DateCompleted"),
    "sensitivity": ("Tasks:Sensitivity",),
    "reminder": ("Tasks:ReminderSet", "Tasks:ReminderTime"),
}


# -- EAS dateTime (MS-ASDTYPE 2.3) ---------------------------------------------------

def format_eas_datetime(value: datetime) -> str:
    """``2024-03-15T08:00:00.000Z``: an aware value in UTC, a naive one as is."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_eas_datetime(text: str | None) -> datetime | None:
    """A naive datetime from an EAS dateTime (``2024-03-15T08:00:00.000Z``) or
    compact form (``20240315T080000Z``); None for None or empty.  CodecError
    for anything else."""
    if text is None or not text.strip():
        return None
    raw = text.strip().rstrip("Zz")
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H%M%S",
                    "%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(raw, pattern)
        except ValueError:
            continue
    raise CodecError(f"not an EAS dateTime: {text!r}")


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _zone(ctx: CodecContext) -> ZoneInfo:
    try:
        return ZoneInfo(ctx.default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local_and_utc(value: date | datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """(local wall time, naive; UTC instant, aware) for a stored task date."""
    if not isinstance(value, datetime):
        local = datetime(value.year, value.month, value.day)
        return local, local.replace(tzinfo=zone).astimezone(timezone.utc)
    if value.tzinfo is None:
        return value, value.replace(tzinfo=zone).astimezone(timezone.utc)
    instant = value.astimezone(timezone.utc)
    return instant.astimezone(zone).replace(tzinfo=None), instant


def _absolute(value: datetime, zone: ZoneInfo) -> datetime:
    """An aware UTC instant for a reminder (naive: wall time in ``zone``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


# -- recurrence (the shared model in recurrence.py) ------------------------------------

def _anchor(start: date | datetime | None, due: date | datetime | None,
            recurrence_start: date | None, zone: ZoneInfo) -> date | datetime:
    """The series' first day as RRULE sees it: the task's start, else its due
    date (a date for whole-day tasks, local wall time otherwise)."""
    value = start if start is not None else due
    if value is None:
        return recurrence_start or date(1970, 1, 1)
    if not isinstance(value, datetime):
        return value
    return _local_and_utc(value, zone)[0].replace(tzinfo=zone)


def _day_of(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _pattern(task: Task, zone: ZoneInfo) -> tuple[Recurrence | None, bool]:
    """The EAS pattern of the task's RRULE (None: none) and whether it is exact."""
    if not task.rrule:
        return None, True
    anchor = _anchor(task.start, task.due, task.recurrence_start, zone)
    return recurrence.from_rrule(task.rrule, anchor, zone)


def _bare(pattern: Recurrence | None) -> Recurrence | None:
    """The pattern without the task-only fields (to compare rules)."""
    if pattern is None:
        return None
    return dataclasses.replace(pattern, start=None, regenerate=False, dead_occur=False,
                               calendar_type=pattern.calendar_type or None)


def _recurrence_element(task: Task, ctx: CodecContext, zone: ZoneInfo) -> Element | None:
    pattern, _exact = _pattern(task, zone)
    if pattern is None:
        return None
    anchor = _anchor(task.start, task.due, task.recurrence_start, zone)
    start = task.recurrence_start or _day_of(anchor)
    pattern = dataclasses.replace(pattern, start=start, regenerate=task.regenerate,
                                  dead_occur=task.dead_occur)
    return recurrence.to_element(pattern, ctx.protocol_version, "Tasks", tz=zone)


def _int(text: str | None, name: str) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise CodecError(f"{name} is not a number: {text!r}") from None


# -- the codec -------------------------------------------------------------------------

def _dates_element(app: Element, utc_tag: str, local_tag: str,
                   value: date | datetime | None, zone: ZoneInfo) -> None:
    if value is None:
        return
    local, instant = _local_and_utc(value, zone)
    app.add(utc_tag, format_eas_datetime(instant))
    app.add(local_tag, format_eas_datetime(local))


def _decode_date(app: Element, local_tag: str, utc_tag: str, old: date | datetime | None,
                 zone: ZoneInfo) -> date | datetime | None:
    local = parse_eas_datetime(app.findtext(local_tag))
    instant = _utc(parse_eas_datetime(app.findtext(utc_tag)))
    if local is None and instant is None:
        return None
    if local is None:
        assert instant is not None
        local = instant.astimezone(zone).replace(tzinfo=None)
    if old is not None:
        old_local, old_instant = _local_and_utc(old, zone)
        if old_local == local and (instant is None or old_instant == instant):
            return old  # unchanged: keep the stored form
    if local.time() == datetime.min.time():
        return local.date()
    return instant if instant is not None else local


class TasksCodec:
    """ApplicationData of the AirSync class ``Tasks`` <-> VTODO text."""

    eas_class = "Tasks"

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        """The ``AirSync:ApplicationData`` for a stored VTODO."""
        try:
            task = parse_vtodo(data)
        except VObjectError as error:
            raise CodecError(str(error)) from error
        zone = _zone(ctx)
        app = Element("AirSync:ApplicationData")
        for element in body_element(task.description or "", ctx, html=task.description_html,
                                    legacy_tags=LEGACY_BODY):
            app.append(element)
        if task.summary is not None:
            app.add("Tasks:Subject", task.summary)
        app.add("Tasks:Importance", str(1 if task.importance is None else task.importance))
        _dates_element(app, "Tasks:UtcStartDate", "Tasks:StartDate", task.start, zone)
        _dates_element(app, "Tasks:UtcDueDate", "Tasks:DueDate", task.due, zone)
        if task.categories:
            categories = app.add("Tasks:Categories")
            for category in task.categories:
                categories.add("Tasks:Category", category)
        recurrence = _recurrence_element(task, ctx, zone)
        if recurrence is not None:
            app.append(recurrence)
        app.add("Tasks:Complete", "1" if task.completed else "0")
        if task.completed:
            done = (task.completed_at or task.last_modified or task.stamp
                    or datetime.fromtimestamp(ctx.now, timezone.utc))
            app.add("Tasks:DateCompleted", format_eas_datetime(_absolute(done, zone)))
        app.add("Tasks:Sensitivity", str(task.sensitivity or 0))
        reminder = self._reminder_time(task, zone)
        if task.reminder_set and reminder is not None:
            app.add("Tasks:ReminderTime", format_eas_datetime(reminder))
        app.add("Tasks:ReminderSet", "1" if task.reminder_set and reminder is not None else "0")
        return app

    @staticmethod
    def _reminder_time(task: Task, zone: ZoneInfo) -> datetime | None:
        if task.reminder is not None:
            return _absolute(task.reminder, zone)
        anchor = task.due if task.due is not None else task.start
        if anchor is None:
            return None
        return _local_and_utc(anchor, zone)[1]

    def from_eas(self, application_data: Element, existing: str | None,
                 ctx: CodecContext) -> DecodedItem:
        """The VTODO text for what the device sent, merged into ``existing``."""
        try:
            old = parse_vtodo(existing) if existing else None
        except VObjectError as error:
            raise CodecError(str(error)) from error
        app = application_data
        zone = _zone(ctx)
        now = datetime.fromtimestamp(ctx.now, timezone.utc).replace(microsecond=0)
        base = old if old is not None else Task(uid=str(uuid.uuid4()).upper(), created=now)
        changes: dict[str, object] = {"last_modified": now, "stamp": now}

        def take(field: str) -> bool:
            """Whether to set ``field`` from the request (else keep the old)."""
            tags = FIELDS[field]
            if old is None or any(app.find(tag) is not None for tag in tags):
                return True
            return ctx.supported is None or any(tag in ctx.supported for tag in tags)

        self._decode_body(app, old, changes)
        if take("subject"):
            changes["summary"] = app.findtext("Tasks:Subject") or None
        if take("importance"):
            importance = _int(app.findtext("Tasks:Importance"), "Importance")
            if importance is not None and importance not in (0, 1, 2):
                raise CodecError(f"Importance {importance} is not 0, 1 or 2")
            if importance == 1 and old is not None and old.importance is None:
                importance = None  # normal is what "no priority" already says
            changes["importance"] = importance
        if take("start"):
            changes["start"] = _decode_date(app, "Tasks:StartDate", "Tasks:UtcStartDate",
                                            old.start if old else None, zone)
        if take("due"):
            changes["due"] = _decode_date(app, "Tasks:DueDate", "Tasks:UtcDueDate",
                                          old.due if old else None, zone)
        if take("categories"):
            changes["categories"] = tuple(
                c.text if isinstance(c.text, str) else (c.text or b"").decode("utf-8", "replace")
                for c in app.findall("Tasks:Categories/Tasks:Category") if c.text)
        if take("recurrence"):
            self._decode_recurrence(app, old, base, zone, changes)
        if take("complete"):
            self._decode_completion(app, old, now, changes)
        if take("sensitivity"):
            sensitivity = _int(app.findtext("Tasks:Sensitivity"), "Sensitivity")
            if sensitivity is not None and sensitivity not in (0, 1, 2, 3):
                raise CodecError(f"Sensitivity {sensitivity} is not 0-3")
            if sensitivity == 0 and old is not None and old.sensitivity is None:
                sensitivity = None
            changes["sensitivity"] = sensitivity
        if take("reminder"):
            self._decode_reminder(app, old, zone, changes)
        task = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        if task.start is not None and task.due is not None:
            start_local = _local_and_utc(task.start, zone)[0]
            if start_local > _local_and_utc(task.due, zone)[0]:
                raise CodecError("the task starts after it is due")
        return DecodedItem(data=write_vtodo(task), uid=task.uid)

    @staticmethod
    def _decode_body(app: Element, old: Task | None, changes: dict[str, object]) -> None:
        text = read_body(app, LEGACY_BODY[0])
        if text is None:
            return  # not sent: kept
        changes["description"] = text or None
        body = app.find("AirSyncBase:Body")
        html: str | None = None
        if body is not None and (body.findtext("AirSyncBase:Type") or "").strip() == str(BODY_HTML):
            html = body.findtext("AirSyncBase:Data") or None
        elif old is not None and old.description == (text or None):
            html = old.description_html  # same text: the HTML form still holds
        changes["description_html"] = html

    @staticmethod
    def _decode_recurrence(app: Element, old: Task | None, base: Task, zone: ZoneInfo,
                           changes: dict[str, object]) -> None:
        element = app.find("Tasks:Recurrence")
        if element is None:
            if old is not None and old.rrule and _pattern(old, zone)[0] is None:
                return  # a rule EAS cannot show was never on the device: keep it
            changes.update(rrule=None, regenerate=False, dead_occur=False,
                           recurrence_start=None)
            return
        start = changes.get("start", base.start)
        due = changes.get("due", base.due)
        assert start is None or isinstance(start, date)
        assert due is None or isinstance(due, date)
        try:
            # A whole-day task's Until is, like its DueDate, a local midnight
            # written with a "Z": its date is the day meant.
            all_day = not isinstance(start if start is not None else due, datetime)
            pattern = recurrence.from_element(element, all_day=all_day,
                                              tz=ZoneInfo("UTC") if all_day else zone)
        except ValueError as error:
            raise CodecError(str(error)) from error
        start_day = pattern.start if isinstance(pattern.start, date) else None
        anchor = _anchor(start, due, start_day, zone)
        rrule = recurrence.to_rrule(pattern, anchor, zone)
        if old is not None and old.rrule and _bare(_pattern(old, zone)[0]) == _bare(pattern):
            rrule = old.rrule  # the pattern the device was given: keep the stored rule
        if start_day is not None and (start is not None or due is not None) and \
                _day_of(_anchor(start, due, None, zone)) == start_day:
            start_day = None  # the task's own first day: nothing to remember
        changes.update(rrule=rrule, regenerate=pattern.regenerate,
                       dead_occur=pattern.dead_occur, recurrence_start=start_day)

    @staticmethod
    def _decode_completion(app: Element, old: Task | None, now: datetime,
                           changes: dict[str, object]) -> None:
        complete = (app.findtext("Tasks:Complete") or "0").strip() == "1"
        changes["completed"] = complete
        if not complete:
            changes["completed_at"] = None
            return
        when = _utc(parse_eas_datetime(app.findtext("Tasks:DateCompleted")))
        if when is None and old is not None and old.completed:
            when = old.completed_at
        if old is not None and old.completed_at is not None and when is not None and \
                old.completed_at.replace(microsecond=0) == when.replace(microsecond=0):
            when = old.completed_at
        changes["completed_at"] = when or now

    @staticmethod
    def _decode_reminder(app: Element, old: Task | None, zone: ZoneInfo,
                         changes: dict[str, object]) -> None:
        reminder_set = (app.findtext("Tasks:ReminderSet") or "0").strip() == "1"
        when = _utc(parse_eas_datetime(app.findtext("Tasks:ReminderTime")))
        if not reminder_set:
            changes.update(reminder_set=False, reminder=None)
            return
        if old is not None and old.reminder_set:
            old_when = TasksCodec._reminder_time(old, zone)
            if when is None or old_when == when:
                return  # the alarm the device saw: keep it as stored
        changes.update(reminder_set=True, reminder=when)

    def in_filter(self, data: str, filter_type: int, now: float) -> bool:
        """FilterType 8: incomplete tasks only; anything else: every task."""
        if filter_type != FILTER_INCOMPLETE:
            return True
        try:
            return not parse_vtodo(data).completed
        except VObjectError:
            return True


#: The element names of every ghostable property (a full Supported list).
SUPPORTED_ELEMENTS: frozenset[str] = frozenset(tag for tags in FIELDS.values() for tag in tags)
