"""Time zones as EAS and Windows see them, shared by the iCalendar reader/writer
(VTIMEZONE, :mod:`easyncd.backends.groupware.vobj.calendar`) and the EAS
TimeZone codec (:mod:`easyncd.protocol.codecs.timezone`, which adds the blob
encoding):

* a zone's yearly rules in the Windows TIME_ZONE_INFORMATION shape
  (:class:`TimeZoneInfo`, :class:`SystemTime`), derived from any ``tzinfo``
  by scanning its offsets (:func:`info_for_tzinfo`, :func:`info_for_zone`);
* Windows zone names mapped to IANA (:data:`WINDOWS_ZONES`,
  :func:`iana_for_windows`);
* rules matched back to an IANA zone (:func:`match_zone`);
* a ``tzinfo`` that follows the rules themselves when no IANA zone matches
  (:class:`RuleTimeZone`).
"""
from __future__ import annotations

import calendar
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

#: The size of a packed TIME_ZONE_INFORMATION (the EAS TimeZone blob).
BLOB_SIZE = 172
_FORMAT = "<i64s8Hi64s8Hi"
_UTC = ZoneInfo("UTC")

#: Windows zone names (Outlook/Exchange TZIDs, Android's display names) -> IANA,
#: for the common ones (CLDR windowsZones "001" territory).
WINDOWS_ZONES: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time": "America/Denver",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time": "America/New_York",
    "US Eastern Standard Time": "America/Indianapolis",
    "Venezuela Standard Time": "America/Caracas",
    "Atlantic Standard Time": "America/Halifax",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Buenos_Aires",
    "SA Eastern Standard Time": "America/Cayenne",
    "Greenland Standard Time": "America/Godthab",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "GTB Standard Time": "Europe/Bucharest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Egypt Standard Time": "Africa/Cairo",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arabic Standard Time": "Asia/Baghdad",
    "Arab Standard Time": "Asia/Riyadh",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Afghanistan Standard Time": "Asia/Kabul",
    "Pakistan Standard Time": "Asia/Karachi",
    "India Standard Time": "Asia/Calcutta",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Katmandu",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Myanmar Standard Time": "Asia/Rangoon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Tasmania Standard Time": "Australia/Hobart",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}

#: Zones tried first when matching a blob (most users live in one of these).
COMMON_ZONES: tuple[str, ...] = (
    "UTC", "Europe/Berlin", "Europe/London", "Europe/Paris", "Europe/Amsterdam",
    "Europe/Vienna", "Europe/Zurich", "Europe/Rome", "Europe/Madrid", "Europe/Brussels",
    "Europe/Stockholm", "Europe/Oslo", "Europe/Copenhagen", "Europe/Warsaw",
    "Europe/Prague", "Europe/Budapest", "Europe/Helsinki", "Europe/Athens",
    "Europe/Bucharest", "Europe/Kiev", "Europe/Istanbul", "Europe/Moscow",
    "Europe/Lisbon", "Europe/Dublin", "America/New_York", "America/Chicago",
    "America/Denver", "America/Phoenix", "America/Los_Angeles", "America/Anchorage",
    "Pacific/Honolulu", "America/Halifax", "America/St_Johns", "America/Toronto",
    "America/Vancouver", "America/Mexico_City", "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires", "America/Bogota", "America/Santiago",
    "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo", "Asia/Shanghai", "Asia/Hong_Kong",
    "Asia/Singapore", "Asia/Seoul", "Asia/Dubai", "Asia/Tehran", "Asia/Jerusalem",
    "Asia/Karachi", "Asia/Dhaka", "Asia/Bangkok", "Asia/Jakarta", "Asia/Manila",
    "Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane",
    "Australia/Adelaide", "Australia/Darwin", "Australia/Perth", "Australia/Hobart",
    "Pacific/Auckland", "Pacific/Chatham", "Africa/Johannesburg", "Africa/Cairo",
    "Africa/Lagos", "Africa/Nairobi", "Africa/Casablanca", "Atlantic/Reykjavik",
)


@dataclass(frozen=True)
class SystemTime:
    """A Windows SYSTEMTIME as used in TIME_ZONE_INFORMATION."""

    year: int = 0
    month: int = 0
    day_of_week: int = 0
    day: int = 0
    hour: int = 0
    minute: int = 0
    second: int = 0
    milliseconds: int = 0

    def fields(self) -> tuple[int, ...]:
        """The eight WORDs in blob order."""
        return (self.year, self.month, self.day_of_week, self.day, self.hour,
                self.minute, self.second, self.milliseconds)

    def local_in(self, year: int) -> datetime | None:
        """The naive local time of this rule's change in ``year`` (None: no rule)."""
        if not self.month or not 1 <= self.month <= 12:
            return None
        if self.year:
            # Absolute form: a one-off date, used as is in its own year only.
            try:
                return datetime(self.year, self.month, self.day, self.hour, self.minute)
            except ValueError:
                return None
        first_weekday = (calendar.weekday(year, self.month, 1) + 1) % 7  # 0 = Sunday
        day = 1 + (self.day_of_week - first_weekday) % 7
        week = min(max(self.day, 1), 5)
        day += 7 * (week - 1)
        last = calendar.monthrange(year, self.month)[1]
        while day > last:
            day -= 7
        return datetime(year, self.month, day, min(self.hour, 23), min(self.minute, 59))


@dataclass(frozen=True)
class TimeZoneInfo:
    """A decoded TIME_ZONE_INFORMATION.  Biases are in minutes, UTC = local + bias."""

    bias: int = 0
    standard_name: str = ""
    standard_date: SystemTime = SystemTime()
    standard_bias: int = 0
    daylight_name: str = ""
    daylight_date: SystemTime = SystemTime()
    daylight_bias: int = 0

    @property
    def has_dst(self) -> bool:
        """Whether the zone changes between standard and daylight time."""
        return bool(self.standard_date.month and self.daylight_date.month
                    and self.daylight_bias != self.standard_bias)

    def rules_key(self, year: int) -> tuple[object, ...]:
        """What two zones must share to be the same zone in ``year``: the
        offsets and the concrete local change times (so "4th" and "last" Sunday
        compare equal when they are the same day)."""
        if not self.has_dst:
            return (self.bias + self.standard_bias,)
        return (self.bias, self.standard_bias, self.daylight_bias,
                self.standard_date.local_in(year), self.daylight_date.local_in(year))

    def pack(self) -> bytes:
        """The 172 bytes."""
        return struct.pack(
            _FORMAT, self.bias, _name_bytes(self.standard_name), *self.standard_date.fields(),
            self.standard_bias, _name_bytes(self.daylight_name), *self.daylight_date.fields(),
            self.daylight_bias)

    @classmethod
    def unpack(cls, raw: bytes) -> TimeZoneInfo:
        """Read 172 bytes (shorter input is padded with zeros)."""
        raw = raw[:BLOB_SIZE].ljust(BLOB_SIZE, b"\0")
        values = struct.unpack(_FORMAT, raw)
        return cls(
            bias=values[0], standard_name=_name_text(values[1]),
            standard_date=SystemTime(*values[2:10]), standard_bias=values[10],
            daylight_name=_name_text(values[11]), daylight_date=SystemTime(*values[12:20]),
            daylight_bias=values[20])


def _name_bytes(name: str) -> bytes:
    return name[:31].encode("utf-16-le")[:62].ljust(64, b"\0")


def _name_text(raw: bytes) -> str:
    text = raw.decode("utf-16-le", errors="replace")
    return text.split("\0", 1)[0].strip()


# -- deriving rules from a real zone ------------------------------------------------

def _offset(tz: tzinfo, instant: datetime) -> int:
    """Minutes east of UTC at the UTC ``instant``."""
    off = instant.astimezone(tz).utcoffset()
    return int(off.total_seconds() // 60) if off is not None else 0


def _transitions(tz: tzinfo, year: int) -> list[tuple[datetime, int, int]]:
    """(UTC instant, offset before, offset after) of every change in ``year``."""
    start = datetime(year, 1, 1, tzinfo=_UTC)
    end = datetime(year + 1, 1, 1, tzinfo=_UTC)
    found: list[tuple[datetime, int, int]] = []
    step = timedelta(days=1)
    cursor, previous = start, _offset(tz, start)
    while cursor < end:
        following = min(cursor + step, end)
        offset = _offset(tz, following)
        if offset != previous:
            lo, hi = cursor, following  # offset(lo) == previous, offset(hi) != previous
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= lo:
                    break
                if _offset(tz, mid) == previous:
                    lo = mid
                else:
                    hi = mid
            found.append((hi, previous, offset))
            previous = offset
        cursor = following
    return found


def _rule(utc_instant: datetime, offset_before: int) -> SystemTime:
    local = (utc_instant + timedelta(minutes=offset_before)).replace(tzinfo=None)
    last = calendar.monthrange(local.year, local.month)[1]
    week = 5 if local.day + 7 > last else (local.day - 1) // 7 + 1
    return SystemTime(0, local.month, (local.weekday() + 1) % 7, week, local.hour,
                      local.minute, 0, 0)


def zone_name(tz: tzinfo | None) -> str:
    """The identifier of a zone: an IANA key, a RuleTimeZone's name, or "UTC"."""
    if tz is None:
        return "UTC"
    key = getattr(tz, "key", None) or getattr(tz, "name", None)
    if isinstance(key, str) and key:
        return key
    return str(tz.tzname(None) or "UTC")


def info_for_tzinfo(tz: tzinfo, year: int, name: str | None = None) -> TimeZoneInfo:
    """The TIME_ZONE_INFORMATION rules of ``tz`` in force in ``year``."""
    label = (name or zone_name(tz))[:31]
    changes = _transitions(tz, year)
    to_dst = [c for c in changes if c[2] > c[1]]
    to_std = [c for c in changes if c[2] < c[1]]
    if not to_dst or not to_std:
        # No (regular) DST: the offset in force at mid-year... or at the end of
        # the year when the zone changed its standard offset that year.
        offset = _offset(tz, datetime(year, 12, 31, tzinfo=_UTC))
        return TimeZoneInfo(bias=-offset, standard_name=label, daylight_name=label)
    dst_start, std_start = to_dst[0], to_std[0]
    standard_offset = dst_start[1]
    daylight_offset = dst_start[2]
    return TimeZoneInfo(
        bias=-standard_offset, standard_name=label,
        standard_date=_rule(std_start[0], std_start[1]), standard_bias=0,
        daylight_name=label, daylight_date=_rule(dst_start[0], dst_start[1]),
        daylight_bias=-(daylight_offset - standard_offset))


@lru_cache(maxsize=2048)
def info_for_zone(iana_name: str, year: int) -> TimeZoneInfo:
    """The rules of an IANA zone in ``year`` (KeyError for an unknown zone)."""
    try:
        tz = ZoneInfo(iana_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise KeyError(iana_name) from None
    return info_for_tzinfo(tz, year, iana_name)


def iana_for_windows(name: str) -> str | None:
    """The IANA zone for a Windows zone name (or an IANA name given as is)."""
    name = name.strip().strip('"')
    if name in WINDOWS_ZONES:
        return _canonical(WINDOWS_ZONES[name])
    return _canonical(name)


def _canonical(name: str) -> str | None:
    if not name or name.startswith("/") or ".." in name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@lru_cache(maxsize=1)
def _all_zones() -> tuple[str, ...]:
    rest = sorted(z for z in available_timezones()
                  if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))
    return tuple(dict.fromkeys(COMMON_ZONES + tuple(rest)))


def match_zone(info: TimeZoneInfo, year: int) -> str | None:
    """The IANA zone whose rules in ``year`` are ``info``'s (its names tried first)."""
    wanted = info.rules_key(year)
    candidates: list[str] = []
    for label in (info.standard_name, info.daylight_name):
        found = iana_for_windows(label) if label else None
        if found:
            candidates.append(found)
    for name in candidates + list(_all_zones()):
        try:
            if info_for_zone(name, year).rules_key(year) == wanted:
                return name
        except KeyError:
            continue
    if not info.has_dst and (info.bias + info.standard_bias) % 60 == 0:
        hours = (info.bias + info.standard_bias) // 60
        if hours == 0:
            return "UTC"
        if -14 <= -hours <= 12:
            # POSIX sign: Etc/GMT+5 is five hours *west* (bias +300).
            return f"Etc/GMT{'+' if hours > 0 else '-'}{abs(hours)}"
    return None


class RuleTimeZone(tzinfo):
    """A zone defined by one TIME_ZONE_INFORMATION's yearly rules."""

    def __init__(self, info: TimeZoneInfo, name: str | None = None) -> None:
        self.info = info
        if name:
            self.name = name
        else:
            base = info.standard_name or _offset_label(-info.bias)
            self.name = base if base.startswith("EAS/") else f"EAS/{base}"

    def __repr__(self) -> str:
        return f"RuleTimeZone({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleTimeZone) and other.info == self.info

    def __hash__(self) -> int:
        return hash(self.info)

    def _is_dst(self, local: datetime) -> bool:
        info = self.info
        if not info.has_dst:
            return False
        naive = local.replace(tzinfo=None)
        dst_start = info.daylight_date.local_in(naive.year)
        std_start = info.standard_date.local_in(naive.year)
        if dst_start is None or std_start is None:
            return False
        if dst_start < std_start:
            return dst_start <= naive < std_start
        return naive >= dst_start or naive < std_start

    def utcoffset(self, dt: datetime | None) -> timedelta:
        base = -self.info.bias
        if dt is None:
            return timedelta(minutes=base - self.info.standard_bias)
        bias = self.info.daylight_bias if self._is_dst(dt) else self.info.standard_bias
        return timedelta(minutes=base - bias)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None or not self._is_dst(dt):
            return timedelta(0)
        return timedelta(minutes=self.info.standard_bias - self.info.daylight_bias)

    def tzname(self, dt: datetime | None) -> str:
        if dt is not None and self._is_dst(dt) and self.info.daylight_name:
            return self.info.daylight_name
        return self.info.standard_name or self.name

    def fromutc(self, dt: datetime) -> datetime:
        naive = dt.replace(tzinfo=None)
        standard = naive + timedelta(minutes=-self.info.bias - self.info.standard_bias)
        if not self.info.has_dst:
            return standard.replace(tzinfo=self)
        daylight = naive + timedelta(minutes=-self.info.bias - self.info.daylight_bias)
        info = self.info
        dst_start = info.daylight_date.local_in(standard.year)
        std_start = info.standard_date.local_in(daylight.year)
        if dst_start is None or std_start is None:
            return standard.replace(tzinfo=self)
        # Compare in the time each rule is written in (before the change).
        after_dst_start = standard >= dst_start
        before_std_start = daylight < std_start
        in_dst = (after_dst_start and before_std_start) if dst_start < std_start else (
            after_dst_start or before_std_start)
        return (daylight if in_dst else standard).replace(tzinfo=self)


def _offset_label(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"UTC{sign}{minutes // 60:02d}{minutes % 60:02d}"
