"""EAS recurrence patterns (MS-ASCAL 2.2.2.38, MS-ASTASK 2.2.2.21) <-> RRULE.

One model, :class:`Recurrence`, shared by the Calendar and Tasks codecs:

- :func:`from_element` / :func:`to_element` read and write the
  ``Calendar:Recurrence`` or ``Tasks:Recurrence`` element (version gates:
  CalendarType and IsLeapMonth from 14.0, FirstDayOfWeek from 14.1; the Tasks
  page adds Start, Regenerate and DeadOccur, and writes Until as a dateTime).
- :func:`to_rrule` gives the RFC 5545 RRULE value of a pattern;
  :func:`from_rrule` gives the EAS pattern of an RRULE and whether it is exact.

EAS kinds and their RRULEs::

    0 daily                    FREQ=DAILY;INTERVAL=n        (+BYDAY when a DayOfWeek mask is sent)
    1 weekly                   FREQ=WEEKLY;BYDAY=MO,WE
    2 monthly on day d         FREQ=MONTHLY;BYMONTHDAY=d
    3 monthly on the Nth day   FREQ=MONTHLY;BYDAY=2TU | BYDAY=MO,..,FR;BYSETPOS=2 (week 5 = last = -1)
    5 yearly on month/day      FREQ=YEARLY;BYMONTH=m;BYMONTHDAY=d
    6 yearly on the Nth day    FREQ=YEARLY;BYMONTH=m;BYDAY=-1SU
    Occurrences / Until        COUNT / UNTIL;  FirstDayOfWeek  WKST
    CalendarType (lunar)       RSCALE (RFC 7529), IsLeapMonth  BYMONTH=5L

What EAS cannot express (BYHOUR, BYYEARDAY, BYWEEKNO, several month days,
several months, ordinals on several days, SKIP...): :func:`from_rrule`
returns the *closest* EAS pattern (the same frequency and interval, anchored
on the first occurrence) with ``exact`` False, and HOURLY/MINUTELY/SECONDLY
rules get no pattern at all (the device shows the first occurrence only).
The stored RRULE is never rewritten from such an approximation: the calendar
codec keeps the server's RRULE when the device sends back the pattern it was
given (or none, for a rule it was not given), and replaces it only when the
device really changed the pattern.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

__all__ = [
    "DAILY", "MONTHLY", "MONTHLY_NTH", "WEEKLY", "YEARLY", "YEARLY_NTH",
    "Recurrence", "from_element", "from_rrule", "parse_eas_datetime", "format_compact",
    "to_element", "to_rrule",
]

DAILY = 0
WEEKLY = 1
MONTHLY = 2
MONTHLY_NTH = 3
YEARLY = 5
YEARLY_NTH = 6

_UTC = ZoneInfo("UTC")
#: RRULE day codes in EAS DayOfWeek bit order (1 = Sunday .. 64 = Saturday).
_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_DAY_BIT = {code: 1 << i for i, code in enumerate(_DAYS)}
#: EAS CalendarType -> RFC 7529 RSCALE for the non-Gregorian calendars.
_RSCALE = {6: "ISLAMIC-CIVIL", 8: "HEBREW", 15: "CHINESE", 20: "DANGI"}
_CALENDAR_TYPE = {v: k for k, v in _RSCALE.items()}
_GREGORIAN_TYPES = (0, 1, 2, 9, 10, 11, 12)


@dataclass(frozen=True)
class Recurrence:
    """An EAS recurrence pattern.  ``until`` is an aware UTC datetime (timed
    series) or a date (all-day series, tasks)."""

    type: int
    interval: int = 1
    occurrences: int | None = None
    until: datetime | date | None = None
    day_of_week: int | None = None
    day_of_month: int | None = None
    week_of_month: int | None = None
    month_of_year: int | None = None
    first_day_of_week: int | None = None
    calendar_type: int | None = None
    is_leap_month: bool = False
    #: Tasks only (MS-ASTASK): the pattern's start, regenerate after completion,
    #: dead occurrence.
    start: date | datetime | None = None
    regenerate: bool = False
    dead_occur: bool = False


# -- dates ----------------------------------------------------------------------------

def format_compact(value: datetime) -> str:
    """Compact DateTime (MS-ASDTYPE 2.7.2) in UTC: ``YYYYMMDDTHHMMSSZ``."""
    if value.tzinfo is not None:
        value = value.astimezone(_UTC)
    return value.strftime("%Y%m%dT%H%M%SZ")


def format_long(value: datetime) -> str:
    """dateTime (MS-ASDTYPE 2.3) in UTC: ``YYYY-MM-DDTHH:MM:SS.000Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(_UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_eas_datetime(text: str) -> tuple[datetime, bool]:
    """A Compact DateTime or dateTime -> (naive datetime, whether it was UTC
    ("Z")).  ValueError when it is neither."""
    text = text.strip()
    utc = text.endswith("Z") or text.endswith("z")
    core = text.rstrip("Zz")
    core = core.split(".", 1)[0]
    for pattern in ("%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H%M", "%Y%m%d",
                    "%Y-%m-%d"):
        try:
            return datetime.strptime(core, pattern), utc
        except ValueError:
            continue
    raise ValueError(f"not an EAS date-time: {text!r}")


def _as_utc(value: datetime | date, tz: tzinfo | None) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz or _UTC)
        return value.astimezone(_UTC)
    return datetime(value.year, value.month, value.day, tzinfo=tz or _UTC).astimezone(_UTC)


# -- EAS element ----------------------------------------------------------------------

def _int(element: Element, tag: str) -> int | None:
    text = element.findtext(tag)
    if text is None or not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def from_element(element: Element, *, all_day: bool = False, tz: tzinfo | None = None
                 ) -> Recurrence:
    """Read a ``Calendar:Recurrence`` or ``Tasks:Recurrence`` element.

    ``all_day``: the series is all-day, Until becomes a date (its local date in
    ``tz``).  ValueError for a missing or unknown Type."""
    ns = element.namespace
    kind = _int(element, f"{ns}:Type")
    if kind not in (DAILY, WEEKLY, MONTHLY, MONTHLY_NTH, YEARLY, YEARLY_NTH):
        raise ValueError(f"unknown recurrence Type {kind!r}")
    until: datetime | date | None = None
    until_text = element.findtext(f"{ns}:Until")
    if until_text:
        naive, is_utc = parse_eas_datetime(until_text)
        if is_utc:
            aware = naive.replace(tzinfo=_UTC)
        else:
            aware = naive.replace(tzinfo=tz or _UTC).astimezone(_UTC)
        until = _local_date(aware, tz) if all_day else aware
    start: date | datetime | None = None
    start_text = element.findtext(f"{ns}:Start") if ns == "Tasks" else None
    if start_text:
        naive, _ = parse_eas_datetime(start_text)
        start = naive.date()
    interval = _int(element, f"{ns}:Interval")
    return Recurrence(
        type=kind, interval=interval if interval and interval > 0 else 1,
        occurrences=_int(element, f"{ns}:Occurrences"), until=until,
        day_of_week=_int(element, f"{ns}:DayOfWeek"),
        day_of_month=_int(element, f"{ns}:DayOfMonth"),
        week_of_month=_int(element, f"{ns}:WeekOfMonth"),
        month_of_year=_int(element, f"{ns}:MonthOfYear"),
        first_day_of_week=_int(element, f"{ns}:FirstDayOfWeek"),
        calendar_type=_int(element, f"{ns}:CalendarType"),
        is_leap_month=_int(element, f"{ns}:IsLeapMonth") == 1,
        start=start, regenerate=_int(element, f"{ns}:Regenerate") == 1,
        dead_occur=_int(element, f"{ns}:DeadOccur") == 1)


def _local_date(instant: datetime, tz: tzinfo | None) -> date:
    """The day an all-day Until names: its local date in the series' zone
    (devices send that day's local midnight, or its last second)."""
    return instant.astimezone(tz or _UTC).date()


def to_element(rec: Recurrence, version: str, namespace: str = "Calendar",
               tz: tzinfo | None = None) -> Element:
    """The ``<namespace>:Recurrence`` element for ``rec`` in protocol ``version``.

    A date Until is written as local midnight of that day in ``tz``, in UTC."""
    ns = namespace
    element = Element(f"{ns}:Recurrence")
    element.add(f"{ns}:Type", str(rec.type))
    if ns == "Tasks" and rec.start is not None:
        element.add(f"{ns}:Start", format_long(_as_utc(rec.start, _UTC)))
    if rec.until is not None:
        instant = _as_utc(rec.until, tz if ns == "Calendar" else _UTC)
        element.add(f"{ns}:Until",
                    format_compact(instant) if ns == "Calendar" else format_long(instant))
    if rec.occurrences is not None:
        element.add(f"{ns}:Occurrences", str(rec.occurrences))
    element.add(f"{ns}:Interval", str(rec.interval))
    if rec.day_of_week is not None:
        element.add(f"{ns}:DayOfWeek", str(rec.day_of_week))
    if rec.day_of_month is not None:
        element.add(f"{ns}:DayOfMonth", str(rec.day_of_month))
    if rec.week_of_month is not None:
        element.add(f"{ns}:WeekOfMonth", str(rec.week_of_month))
    if rec.month_of_year is not None:
        element.add(f"{ns}:MonthOfYear", str(rec.month_of_year))
    if ns == "Tasks":
        element.add(f"{ns}:Regenerate", "1" if rec.regenerate else "0")
        element.add(f"{ns}:DeadOccur", "1" if rec.dead_occur else "0")
    if at_least(version, "14.0"):
        element.add(f"{ns}:CalendarType", str(rec.calendar_type or 0))
        if rec.calendar_type not in _GREGORIAN_TYPES + (None,) or rec.is_leap_month:
            element.add(f"{ns}:IsLeapMonth", "1" if rec.is_leap_month else "0")
    if at_least(version, "14.1") and rec.first_day_of_week is not None:
        element.add(f"{ns}:FirstDayOfWeek", str(rec.first_day_of_week))
    return element


# -- RRULE --------------------------------------------------------------------------

def _mask_days(mask: int) -> list[str]:
    return [code for code in _DAYS if mask & _DAY_BIT[code]]


def _weekday_bit(day: date) -> int:
    return 1 << ((day.weekday() + 1) % 7)


def _format_until(until: datetime | date, all_day: bool, tz: tzinfo | None) -> str:
    if isinstance(until, datetime):
        if all_day:
            return _local_date(until, tz).strftime("%Y%m%d")
        return format_compact(until if until.tzinfo else until.replace(tzinfo=_UTC))
    if all_day:
        return until.strftime("%Y%m%d")
    # A timed series ending on a day: through the end of that local day.
    end = datetime(until.year, until.month, until.day, 23, 59, 59, tzinfo=tz or _UTC)
    return format_compact(end)


def to_rrule(rec: Recurrence, dtstart: date | datetime, tz: tzinfo | None = None) -> str:
    """The RRULE value (without ``RRULE:``) for ``rec`` on a series starting
    ``dtstart`` (a date for all-day series) in zone ``tz``."""
    all_day = not isinstance(dtstart, datetime)
    parts: list[str] = []
    rscale = _RSCALE.get(rec.calendar_type or 0)
    if rscale:
        parts.append(f"RSCALE={rscale}")
    freq = {DAILY: "DAILY", WEEKLY: "WEEKLY", MONTHLY: "MONTHLY", MONTHLY_NTH: "MONTHLY",
            YEARLY: "YEARLY", YEARLY_NTH: "YEARLY"}[rec.type]
    parts.append(f"FREQ={freq}")
    if rec.interval and rec.interval != 1:
        parts.append(f"INTERVAL={rec.interval}")
    if rec.occurrences is not None:
        parts.append(f"COUNT={rec.occurrences}")
    elif rec.until is not None:
        parts.append(f"UNTIL={_format_until(rec.until, all_day, tz)}")
    start_day = dtstart.date() if isinstance(dtstart, datetime) else dtstart
    month = rec.month_of_year or start_day.month
    month_text = f"{month}L" if rec.is_leap_month else str(month)
    if rec.type == DAILY:
        if rec.day_of_week:
            parts.append("BYDAY=" + ",".join(_mask_days(rec.day_of_week)))
    elif rec.type == WEEKLY:
        mask = rec.day_of_week or _weekday_bit(start_day)
        parts.append("BYDAY=" + ",".join(_mask_days(mask)))
    elif rec.type == MONTHLY:
        parts.append(f"BYMONTHDAY={rec.day_of_month or start_day.day}")
    elif rec.type in (MONTHLY_NTH, YEARLY_NTH):
        if rec.type == YEARLY_NTH:
            parts.append(f"BYMONTH={month_text}")
        mask = rec.day_of_week or _weekday_bit(start_day)
        week = rec.week_of_month or ((start_day.day - 1) // 7 + 1)
        ordinal = -1 if week >= 5 else week
        days = _mask_days(mask)
        if len(days) == 1:
            parts.append(f"BYDAY={ordinal}{days[0]}")
        else:
            parts.append("BYDAY=" + ",".join(days))
            parts.append(f"BYSETPOS={ordinal}")
    elif rec.type == YEARLY:
        parts.append(f"BYMONTH={month_text}")
        parts.append(f"BYMONTHDAY={rec.day_of_month or start_day.day}")
    if rec.first_day_of_week is not None and 0 <= rec.first_day_of_week <= 6:
        parts.append(f"WKST={_DAYS[rec.first_day_of_week]}")
    return ";".join(parts)


def _parse_rrule(text: str) -> dict[str, str]:
    text = text.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts: dict[str, str] = {}
    for piece in text.split(";"):
        key, sep, value = piece.partition("=")
        if sep:
            parts[key.strip().upper()] = value.strip().upper()
    return parts


def _parse_until(text: str, tz: tzinfo | None) -> datetime | date:
    naive, is_utc = parse_eas_datetime(text)
    if len(text.rstrip("Zz")) == 8:
        return naive.date()
    if is_utc:
        return naive.replace(tzinfo=_UTC)
    return naive.replace(tzinfo=tz or _UTC).astimezone(_UTC)


_EXACT_KEYS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH",
               "BYSETPOS", "WKST", "RSCALE"}


def from_rrule(rrule: str, dtstart: date | datetime, tz: tzinfo | None = None
               ) -> tuple[Recurrence | None, bool]:
    """(closest EAS pattern or None, exact) for an RRULE value on a series
    starting ``dtstart``.  ``exact`` False: the pattern is an approximation
    (see the module docstring); None: no EAS pattern at all."""
    parts = _parse_rrule(rrule)
    freq = parts.get("FREQ", "")
    exact = set(parts) <= _EXACT_KEYS
    start_day = dtstart.date() if isinstance(dtstart, datetime) else dtstart
    all_day = not isinstance(dtstart, datetime)
    try:
        interval = max(int(parts.get("INTERVAL", "1")), 1)
    except ValueError:
        interval, exact = 1, False
    count: int | None = None
    until: datetime | date | None = None
    if "COUNT" in parts:
        try:
            count = int(parts["COUNT"])
        except ValueError:
            exact = False
    elif "UNTIL" in parts:
        try:
            until = _parse_until(parts["UNTIL"], tz)
        except ValueError:
            exact = False
        if isinstance(until, datetime) and all_day:
            until = _local_date(until, tz)
    first_day: int | None = None
    if "WKST" in parts and parts["WKST"] in _DAYS:
        first_day = _DAYS.index(parts["WKST"])
    calendar_type: int | None = None
    if "RSCALE" in parts:
        calendar_type = _CALENDAR_TYPE.get(parts["RSCALE"])
        if calendar_type is None and parts["RSCALE"] != "GREGORIAN":
            exact = False
    leap = False
    months: list[int] = []
    for token in filter(None, parts.get("BYMONTH", "").split(",")):
        if token.endswith("L"):
            leap = True
            token = token[:-1]
        try:
            months.append(int(token))
        except ValueError:
            exact = False
    if len(months) > 1:
        exact = False
    month = months[0] if months else start_day.month
    # BYDAY: plain days and ordinal days.
    plain_mask = 0
    ordinals: list[tuple[int, str]] = []
    for token in filter(None, parts.get("BYDAY", "").split(",")):
        code, number = token[-2:], token[:-2]
        if code not in _DAY_BIT:
            exact = False
            continue
        if number in ("", "+"):
            plain_mask |= _DAY_BIT[code]
        else:
            try:
                ordinals.append((int(number), code))
            except ValueError:
                exact = False
    monthdays: list[int] = []
    for token in filter(None, parts.get("BYMONTHDAY", "").split(",")):
        try:
            monthdays.append(int(token))
        except ValueError:
            exact = False
    setpos: list[int] = []
    for token in filter(None, parts.get("BYSETPOS", "").split(",")):
        try:
            setpos.append(int(token))
        except ValueError:
            exact = False
    base = Recurrence(type=DAILY, interval=interval, occurrences=count, until=until,
                      first_day_of_week=first_day, calendar_type=calendar_type,
                      is_leap_month=leap)

    def week_of(n: int) -> int | None:
        if n == -1:
            return 5
        if 1 <= n <= 4:
            return n
        return None

    if freq == "DAILY":
        if ordinals or monthdays or months or setpos:
            exact = False
        return replace(base, type=DAILY, day_of_week=plain_mask or None), exact
    if freq == "WEEKLY":
        if ordinals or monthdays or months or setpos:
            exact = False
        return replace(base, type=WEEKLY,
                       day_of_week=plain_mask or _weekday_bit(start_day)), exact
    if freq in ("MONTHLY", "YEARLY"):
        yearly = freq == "YEARLY"
        moy = month if yearly else None
        nth_type = YEARLY_NTH if yearly else MONTHLY_NTH
        day_type = YEARLY if yearly else MONTHLY
        if ordinals and not plain_mask and not monthdays and not setpos:
            if len(ordinals) == 1 and week_of(ordinals[0][0]) is not None:
                ordinal, day_code = ordinals[0]
                return replace(base, type=nth_type, day_of_week=_DAY_BIT[day_code],
                               week_of_month=week_of(ordinal), month_of_year=moy), exact
            exact = False
        elif plain_mask and not ordinals and not monthdays and len(setpos) == 1 and \
                week_of(setpos[0]) is not None:
            return replace(base, type=nth_type, day_of_week=plain_mask,
                           week_of_month=week_of(setpos[0]), month_of_year=moy), exact
        elif monthdays and not ordinals and not plain_mask and not setpos and \
                len(monthdays) == 1:
            if monthdays[0] == -1:
                return replace(base, type=nth_type, day_of_week=127, week_of_month=5,
                               month_of_year=moy), exact
            if monthdays[0] > 0:
                return replace(base, type=day_type, day_of_month=monthdays[0],
                               month_of_year=moy), exact
            exact = False
        elif not ordinals and not plain_mask and not monthdays and not setpos:
            return replace(base, type=day_type, day_of_month=start_day.day, month_of_year=moy), exact
        else:
            exact = False
        # Closest: the same frequency on the first occurrence's day.
        return replace(base, type=day_type, day_of_month=start_day.day,
                       month_of_year=start_day.month if yearly else None), False
    return None, False
