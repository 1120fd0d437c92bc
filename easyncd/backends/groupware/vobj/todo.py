"""VTODO (RFC 5545 3.6.2) <-> :class:`~easyncd.backends.groupware.task.Task`.

The writer edits the task's ``source`` text in place: a property whose value
in the model equals what the source says is left exactly as it was (its
TZID, its parameters, the VTIMEZONE it needs); only changed properties are
rewritten, and everything the model does not know about (X-MOZ-*,
X-APPLE-*, RELATED-TO, ATTACH, extra alarms' parameters...) survives.  New
times are written as dates (VALUE=DATE), floating times or UTC, never with
a zone of their own, so no VTIMEZONE has to be invented.

Also home of the small helpers that :mod:`.journal` shares.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

import vobject  # type: ignore[import-untyped]

from easyncd.backends.groupware.task import CLASS_TO_SENSITIVITY, SENSITIVITY_TO_CLASS, Task
from easyncd.backends.groupware.task import importance_from_priority, priority_from_importance

__all__ = ["PRODID", "VObjectError", "parse_vtodo", "write_vtodo"]

#: The PRODID of calendars easyncd creates.
PRODID = "-//easyncd//NONSGML easyncd//EN"

#: x-properties for what EAS task recurrence says and RFC 5545 cannot.
X_REGENERATE = "X-EASYNCD-REGENERATE"
X_DEAD_OCCUR = "X-EASYNCD-DEADOCCUR"
X_RECURRENCE_START = "X-EASYNCD-RECURRENCE-START"
#: The HTML form of DESCRIPTION (Outlook's convention).
X_ALT_DESC = "X-ALT-DESC"

_VOBJECT_UTC = vobject.icalendar.utc


class VObjectError(ValueError):
    """The text is not an iCalendar object of the expected kind."""


# -- helpers shared with journal.py ------------------------------------------------

def read_calendar(text: str, component: str) -> tuple[Any, Any]:
    """Parse ``text`` and return (the VCALENDAR, its master ``component``):
    the first one without RECURRENCE-ID.  VObjectError when there is none."""
    try:
        cal = vobject.readOne(text)
    except Exception as error:  # vobject raises many kinds; all mean "unreadable"
        raise VObjectError(f"not an iCalendar object: {error}") from error
    if getattr(cal, "name", "").upper() != "VCALENDAR":
        raise VObjectError("not a VCALENDAR")
    found = [c for c in cal.getChildren() if getattr(c, "name", "").upper() == component]
    if not found:
        raise VObjectError(f"no {component} in the calendar")
    masters = [c for c in found if "recurrence-id" not in c.contents]
    return cal, (masters or found)[0]


def new_calendar(component: str) -> tuple[Any, Any]:
    """An empty VCALENDAR with our PRODID and one empty ``component``."""
    cal = vobject.iCalendar()
    cal.add("prodid").value = PRODID
    return cal, cal.add(component.lower())


def prop_value(comp: Any, name: str) -> Any:
    """The value of the first ``name`` property, or None."""
    lines = comp.contents.get(name.lower())
    if not lines:
        return None
    return lines[0].value


def text_value(comp: Any, name: str) -> str | None:
    """The first ``name`` property as text (None if absent)."""
    value = prop_value(comp, name)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def html_description(comp: Any) -> str | None:
    """The ``X-ALT-DESC;FMTTYPE=text/html`` text, if any."""
    for line in comp.contents.get(X_ALT_DESC.lower(), []):
        fmt = [p.lower() for p in line.params.get("FMTTYPE", [])]
        if "text/html" in fmt:
            return str(line.value)
    return None


def categories_of(comp: Any) -> tuple[str, ...]:
    """Every category of every CATEGORIES line, in order, without empties."""
    found: list[str] = []
    for line in comp.contents.get("categories", []):
        values = line.value if isinstance(line.value, list) else [line.value]
        found.extend(str(v).strip() for v in values if str(v).strip())
    return tuple(found)


def utc_value(comp: Any, name: str) -> datetime | None:
    """A DATE-TIME property as an aware datetime (floating ones taken as UTC,
    dates as midnight UTC); None if absent."""
    value = prop_value(comp, name)
    if value is None or isinstance(value, str):
        return None
    return as_utc(value)


def as_utc(value: date | datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive and date taken as UTC)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def remove(comp: Any, *names: str) -> None:
    """Drop every line of the properties (or subcomponents) ``names``."""
    for name in names:
        comp.contents.pop(name.lower(), None)


def set_text(comp: Any, name: str, value: str | None) -> None:
    """Replace property ``name`` by one line with ``value`` (None: remove)."""
    remove(comp, name)
    if value is not None and value != "":
        comp.add(name.lower()).value = value


def set_time(comp: Any, name: str, value: date | datetime | None) -> None:
    """Replace a DATE / DATE-TIME property.  Aware times are written in UTC
    (no invented VTIMEZONE), naive ones floating, dates as VALUE=DATE."""
    remove(comp, name)
    if value is None:
        return
    line = comp.add(name.lower())
    if isinstance(value, datetime) and value.tzinfo is not None:
        line.value = value.astimezone(_VOBJECT_UTC)
    else:
        line.value = value


def set_utc(comp: Any, name: str, value: datetime | None) -> None:
    """Replace a property that RFC 5545 wants in UTC (DTSTAMP, COMPLETED...)."""
    set_time(comp, name, None if value is None else as_utc(value))


def set_categories(comp: Any, categories: Iterable[str]) -> None:
    """Replace every CATEGORIES line by one with ``categories``."""
    remove(comp, "categories")
    values = [c for c in categories if c]
    if values:
        comp.add("categories").value = values


def set_html_description(comp: Any, markup: str | None) -> None:
    """Replace ``X-ALT-DESC;FMTTYPE=text/html`` (None: remove)."""
    remove(comp, X_ALT_DESC)
    if markup:
        line = comp.add(X_ALT_DESC.lower())
        line.value = markup
        line.params["FMTTYPE"] = ["text/html"]


def serialize(cal: Any) -> str:
    """The calendar as text (CRLF lines, as vobject folds them)."""
    return str(cal.serialize())


# -- VTODO ---------------------------------------------------------------------------

def _time_value(comp: Any, name: str) -> date | datetime | None:
    value = prop_value(comp, name)
    if isinstance(value, (date, datetime)):
        return value
    return None


def _int_value(comp: Any, name: str) -> int | None:
    text = text_value(comp, name)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _completed(comp: Any) -> bool:
    status = (text_value(comp, "status") or "").strip().upper()
    if status:
        return status == "COMPLETED"
    return "completed" in comp.contents or _int_value(comp, "percent-complete") == 100


def _first_alarm(comp: Any, start: date | datetime | None,
                 due: date | datetime | None) -> tuple[bool, datetime | None]:
    """(whether there is an alarm, its absolute time if it can be known)."""
    for alarm in comp.contents.get("valarm", []):
        trigger_lines = alarm.contents.get("trigger")
        if not trigger_lines:
            continue
        trigger = trigger_lines[0]
        value = trigger.value
        if isinstance(value, datetime):
            return True, as_utc(value)
        if isinstance(value, timedelta):
            related = [r.upper() for r in trigger.params.get("RELATED", [])]
            base = due if "END" in related else (start if start is not None else due)
            if base is None:
                return True, None
            if not isinstance(base, datetime):
                base = datetime(base.year, base.month, base.day)
            return True, base + value
        return True, None
    return False, None


def _x_flag(comp: Any, name: str) -> bool:
    return (text_value(comp, name) or "").strip() == "1"


def _date_from_text(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _task_from(comp: Any, source: str) -> Task:
    start = _time_value(comp, "dtstart")
    due = _time_value(comp, "due")
    if due is None and start is not None:
        duration = prop_value(comp, "duration")
        if isinstance(duration, timedelta):
            due = start + duration
    reminder_set, reminder = _first_alarm(comp, start, due)
    rrule = text_value(comp, "rrule")
    return Task(
        uid=text_value(comp, "uid") or "",
        summary=text_value(comp, "summary"),
        description=text_value(comp, "description"),
        description_html=html_description(comp),
        start=start,
        due=due,
        completed=_completed(comp),
        completed_at=utc_value(comp, "completed"),
        importance=importance_from_priority(_int_value(comp, "priority")),
        sensitivity=CLASS_TO_SENSITIVITY.get((text_value(comp, "class") or "").strip().upper()),
        reminder_set=reminder_set,
        reminder=reminder,
        categories=categories_of(comp),
        rrule=rrule.strip() if rrule else None,
        regenerate=_x_flag(comp, X_REGENERATE),
        dead_occur=_x_flag(comp, X_DEAD_OCCUR),
        recurrence_start=_date_from_text(text_value(comp, X_RECURRENCE_START)),
        created=utc_value(comp, "created"),
        last_modified=utc_value(comp, "last-modified"),
        stamp=utc_value(comp, "dtstamp"),
        source=source,
    )


def parse_vtodo(text: str) -> Task:
    """The task in an iCalendar text holding a VTODO.  VObjectError if none."""
    _cal, comp = read_calendar(text, "VTODO")
    return _task_from(comp, text)


def _write_completion(comp: Any, old: Task | None, task: Task) -> None:
    if old is not None and old.completed == task.completed:
        if old.completed_at != task.completed_at:
            set_utc(comp, "completed", task.completed_at)
        return
    remove(comp, "status", "percent-complete", "completed")
    if task.completed:
        comp.add("status").value = "COMPLETED"
        comp.add("percent-complete").value = "100"
        set_utc(comp, "completed", task.completed_at)
    else:
        comp.add("status").value = "NEEDS-ACTION"


def _write_alarm(comp: Any, task: Task) -> None:
    remove(comp, "valarm")
    if not task.reminder_set:
        return
    alarm = comp.add("valarm")
    alarm.add("action").value = "DISPLAY"
    alarm.add("description").value = task.summary or "Reminder"
    trigger = alarm.add("trigger")
    if task.reminder is not None:
        trigger.value = as_utc(task.reminder).astimezone(_VOBJECT_UTC)
        trigger.params["VALUE"] = ["DATE-TIME"]
    else:
        trigger.value = timedelta(0)
        trigger.params["RELATED"] = ["END" if task.due is not None else "START"]


def write_vtodo(task: Task) -> str:
    """iCalendar text for ``task``: its ``source`` with the changed properties
    rewritten, or a new VCALENDAR when it has none."""
    if task.source:
        cal, comp = read_calendar(task.source, "VTODO")
        old: Task | None = _task_from(comp, task.source)
    else:
        cal, comp = new_calendar("VTODO")
        old = None

    def changed(*names: str) -> bool:
        return old is None or any(getattr(old, n) != getattr(task, n) for n in names)

    if changed("uid"):
        set_text(comp, "uid", task.uid)
    if changed("stamp"):
        set_utc(comp, "dtstamp", task.stamp)
    if changed("created"):
        set_utc(comp, "created", task.created)
    if changed("last_modified"):
        set_utc(comp, "last-modified", task.last_modified)
    if changed("summary"):
        set_text(comp, "summary", task.summary)
    if changed("description"):
        set_text(comp, "description", task.description)
    if changed("description_html"):
        set_html_description(comp, task.description_html)
    if changed("start"):
        set_time(comp, "dtstart", task.start)
    if changed("due"):
        remove(comp, "duration")
        set_time(comp, "due", task.due)
    _write_completion(comp, old, task)
    if changed("importance"):
        priority = priority_from_importance(task.importance)
        set_text(comp, "priority", None if priority is None else str(priority))
    if changed("sensitivity"):
        set_text(comp, "class", SENSITIVITY_TO_CLASS.get(task.sensitivity)
                 if task.sensitivity is not None else None)
    if changed("reminder_set", "reminder"):
        _write_alarm(comp, task)
    if changed("categories"):
        set_categories(comp, task.categories)
    if changed("rrule"):
        set_text(comp, "rrule", task.rrule)
    if changed("regenerate"):
        set_text(comp, X_REGENERATE, "1" if task.regenerate else None)
    if changed("dead_occur"):
        set_text(comp, X_DEAD_OCCUR, "1" if task.dead_occur else None)
    if changed("recurrence_start"):
        start = task.recurrence_start
        set_text(comp, X_RECURRENCE_START,
                 None if start is None else start.strftime("%Y%m%d"))
    return serialize(cal)
