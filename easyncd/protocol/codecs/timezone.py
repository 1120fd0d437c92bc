"""The EAS TimeZone blob (MS-ASDTYPE 2.6.4, MS-ASCAL 2.2.2.46) and real zones.

The zone rules themselves (:class:`TimeZoneInfo`, :class:`RuleTimeZone`,
deriving and matching) live in :mod:`easyncd.backends.groupware.zones`, shared
with the iCalendar VTIMEZONE writer; this module adds the blob.

The blob is the base64 of a 172-byte Windows ``TIME_ZONE_INFORMATION``::

    Bias (int32, minutes; UTC = local + Bias)
    StandardName (32 UTF-16LE code units)   StandardDate (SYSTEMTIME)   StandardBias
    DaylightName (32 UTF-16LE code units)   DaylightDate (SYSTEMTIME)   DaylightBias

A SYSTEMTIME with ``wYear`` 0 is a yearly rule: the ``wDay``-th (5 = last)
``wDayOfWeek`` (0 = Sunday) of ``wMonth`` at ``wHour:wMinute`` local time as
it is *before* the change.  ``wMonth`` 0 means no daylight saving time.

:func:`info_for_zone` derives those rules for one year from a zone's real
transitions (scanning ``utcoffset``, so any ``tzinfo`` works: zoneinfo, a
VTIMEZONE read from an ``.ics``); :func:`zone_for_blob` finds the IANA zone
whose rules match a blob sent by a device (the names in the blob first, then
common zones, then every zone), and :func:`tzinfo_for_blob` falls back to a
:class:`RuleTimeZone` built from the blob's own rules when none matches.
"""
from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from easyncd.backends.groupware.zones import (
    BLOB_SIZE,
    WINDOWS_ZONES,
    RuleTimeZone,
    SystemTime,
    TimeZoneInfo,
    iana_for_windows,
    info_for_tzinfo,
    info_for_zone,
    match_zone,
    zone_name,
)

__all__ = [
    "BLOB_SIZE", "RuleTimeZone", "SystemTime", "TimeZoneInfo", "WINDOWS_ZONES",
    "blob_for_tzinfo", "blob_for_zone", "decode_blob", "encode_blob", "iana_for_windows",
    "info_for_tzinfo", "info_for_zone", "local_midnight_utc", "match_zone",
    "tzinfo_for_blob", "zone_for_blob", "zone_name",
]

_UTC = ZoneInfo("UTC")


def encode_blob(info: TimeZoneInfo) -> str:
    """base64 text of the packed structure."""
    return base64.b64encode(info.pack()).decode("ascii")


def decode_blob(blob: str | bytes) -> TimeZoneInfo:
    """Parse a base64 blob; ValueError when it is not base64."""
    if isinstance(blob, str):
        blob = "".join(blob.split()).encode("ascii", errors="replace")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad TimeZone blob: {exc}") from None
    return TimeZoneInfo.unpack(raw)


def blob_for_zone(iana_name: str, year: int) -> str:
    """The base64 TimeZone blob of an IANA zone's rules in ``year``."""
    return encode_blob(info_for_zone(iana_name, year))


def blob_for_tzinfo(tz: tzinfo | None, year: int) -> str:
    """The blob for any tzinfo (a ZoneInfo, a RuleTimeZone, a VTIMEZONE's zone)."""
    if tz is None:
        return blob_for_zone("UTC", year)
    if isinstance(tz, RuleTimeZone):
        return encode_blob(tz.info)
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        try:
            return blob_for_zone(key, year)
        except KeyError:
            pass
    return encode_blob(info_for_tzinfo(tz, year))


def zone_for_blob(blob: str | bytes, hint_year: int) -> str:
    """The IANA zone whose rules in ``hint_year`` match the blob, or the name of
    the RuleTimeZone :func:`tzinfo_for_blob` would build."""
    return zone_name(tzinfo_for_blob(blob, hint_year))


@lru_cache(maxsize=512)
def _tzinfo_for_blob(blob: str | bytes, hint_year: int) -> tzinfo:
    info = decode_blob(blob)
    found = match_zone(info, hint_year)
    if found is not None:
        return ZoneInfo(found)
    return RuleTimeZone(info)


def tzinfo_for_blob(blob: str | bytes, hint_year: int) -> tzinfo:
    """A tzinfo for a blob: a ZoneInfo when an IANA zone matches, otherwise a
    RuleTimeZone applying the blob's own rules.  ValueError for a bad blob."""
    return _tzinfo_for_blob(blob, hint_year)


def local_midnight_utc(day: date, tz: tzinfo) -> datetime:
    """The UTC instant of local midnight starting ``day`` in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(_UTC)
