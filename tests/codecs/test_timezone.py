"""The EAS TimeZone blob: golden rules per zone and DST round trips."""
from __future__ import annotations

import base64
import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from twisted.trial.unittest import TestCase

from easyncd.protocol.codecs.timezone import (
    BLOB_SIZE,
    RuleTimeZone,
    SystemTime,
    TimeZoneInfo,
    blob_for_tzinfo,
    blob_for_zone,
    decode_blob,
    encode_blob,
    info_for_zone,
    tzinfo_for_blob,
    zone_for_blob,
)

UTC = ZoneInfo("UTC")

#: zone -> (Bias, StandardDate, DaylightDate, DaylightBias) in 2024.
GOLDEN = {
    "Europe/Berlin": (-60, SystemTime(0, 10, 0, 5, 3), SystemTime(0, 3, 0, 5, 2), -60),
    "Europe/London": (0, SystemTime(0, 10, 0, 5, 2), SystemTime(0, 3, 0, 5, 1), -60),
    "America/New_York": (300, SystemTime(0, 11, 0, 1, 2), SystemTime(0, 3, 0, 2, 2), -60),
    "America/Sao_Paulo": (180, SystemTime(), SystemTime(), 0),
    "Australia/Sydney": (-600, SystemTime(0, 4, 0, 1, 3), SystemTime(0, 10, 0, 1, 2), -60),
    "Asia/Kolkata": (-330, SystemTime(), SystemTime(), 0),
    "Asia/Kathmandu": (-345, SystemTime(), SystemTime(), 0),
    "Pacific/Chatham": (-765, SystemTime(0, 4, 0, 1, 3, 45), SystemTime(0, 9, 0, 5, 2, 45),
                        -60),
    "UTC": (0, SystemTime(), SystemTime(), 0),
}

#: UTC instants around each zone's 2024 changes (and ordinary days).
INSTANTS = {
    "Europe/Berlin": ["2024-03-31T00:59", "2024-03-31T01:00", "2024-10-27T00:59",
                      "2024-10-27T01:00", "2024-07-01T12:00"],
    "Europe/London": ["2024-03-31T00:59", "2024-03-31T01:00", "2024-10-27T00:59",
                      "2024-10-27T01:00", "2024-01-15T08:00"],
    "America/New_York": ["2024-03-10T06:59", "2024-03-10T07:00", "2024-11-03T05:59",
                         "2024-11-03T06:00", "2024-11-03T06:30"],
    "America/Sao_Paulo": ["2024-02-18T02:00", "2024-11-03T03:00"],
    "Australia/Sydney": ["2024-04-06T15:59", "2024-04-06T16:00", "2024-10-05T15:59",
                         "2024-10-05T16:00", "2024-12-25T00:00"],
    "Asia/Kolkata": ["2024-03-31T00:59", "2024-10-27T18:30"],
    "Asia/Kathmandu": ["2024-01-01T00:00", "2024-06-30T18:15"],
    "Pacific/Chatham": ["2024-04-06T13:59", "2024-04-06T14:00", "2024-09-28T13:59",
                        "2024-09-28T14:00"],
    "UTC": ["2024-03-31T01:00", "2024-10-27T01:00"],
}


def instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)


class GoldenRulesTests(TestCase):
    def test_rules(self) -> None:
        for zone, (bias, standard, daylight, daylight_bias) in GOLDEN.items():
            info = info_for_zone(zone, 2024)
            self.assertEqual((info.bias, info.standard_date, info.daylight_date,
                              info.daylight_bias), (bias, standard, daylight, daylight_bias),
                             zone)

    def test_blob_is_172_bytes(self) -> None:
        for zone in GOLDEN:
            self.assertEqual(len(base64.b64decode(blob_for_zone(zone, 2024))), BLOB_SIZE)

    def test_blob_zone_blob_keeps_local_times(self) -> None:
        for zone, instants in INSTANTS.items():
            blob = blob_for_zone(zone, 2024)
            found = tzinfo_for_blob(blob, 2024)
            self.assertEqual(zone_for_blob(blob, 2024), zone)
            self.assertEqual(blob_for_tzinfo(found, 2024), blob, zone)
            real = ZoneInfo(zone)
            for text in instants:
                moment = instant(text)
                self.assertEqual(moment.astimezone(found).replace(tzinfo=None),
                                 moment.astimezone(real).replace(tzinfo=None), (zone, text))

    def test_packing_round_trip(self) -> None:
        info = info_for_zone("Australia/Sydney", 2024)
        self.assertEqual(decode_blob(encode_blob(info)), info)
        self.assertEqual(TimeZoneInfo.unpack(info.pack()), info)


class DeviceBlobTests(TestCase):
    def test_windows_name_is_used(self) -> None:
        info = dataclasses.replace(info_for_zone("Europe/Berlin", 2024),
                                   standard_name="Romance Standard Time",
                                   daylight_name="Romance Daylight Time")
        self.assertEqual(zone_for_blob(encode_blob(info), 2024), "Europe/Paris")

    def test_unnamed_rules_find_a_common_zone(self) -> None:
        info = dataclasses.replace(info_for_zone("America/New_York", 2024),
                                   standard_name="", daylight_name="")
        found = zone_for_blob(encode_blob(info), 2024)
        self.assertEqual(ZoneInfo(found).utcoffset(datetime(2024, 7, 1)), timedelta(hours=-4))
        self.assertEqual(ZoneInfo(found).utcoffset(datetime(2024, 1, 1)), timedelta(hours=-5))

    def test_fourth_sunday_equals_last_sunday_when_same_day(self) -> None:
        info = dataclasses.replace(
            info_for_zone("Europe/Berlin", 2024), standard_name="x", daylight_name="y",
            daylight_date=SystemTime(0, 3, 0, 5, 2), standard_date=SystemTime(0, 10, 0, 4, 3))
        # 2024-10-27 is both the 4th and the last Sunday of October.
        self.assertEqual(zone_for_blob(encode_blob(info), 2024), "Europe/Berlin")

    def test_unknown_rules_build_a_rule_zone(self) -> None:
        info = TimeZoneInfo(bias=-75, standard_name="Odd", standard_date=SystemTime(0, 10, 0, 5, 3),
                            daylight_name="Odd summer", daylight_date=SystemTime(0, 3, 0, 5, 2),
                            daylight_bias=-60)
        tz = tzinfo_for_blob(encode_blob(info), 2024)
        self.assertIsInstance(tz, RuleTimeZone)
        self.assertEqual(datetime(2024, 1, 10, 12, tzinfo=tz).utcoffset(), timedelta(minutes=75))
        self.assertEqual(datetime(2024, 7, 10, 12, tzinfo=tz).utcoffset(),
                         timedelta(minutes=135))
        # The change: 2024-03-31 02:00 local standard = 00:45 UTC.
        before = datetime(2024, 3, 31, 0, 44, tzinfo=UTC).astimezone(tz)
        after = datetime(2024, 3, 31, 0, 45, tzinfo=UTC).astimezone(tz)
        self.assertEqual((before.hour, before.minute), (1, 59))
        self.assertEqual((after.hour, after.minute), (3, 0))
        self.assertEqual(blob_for_tzinfo(tz, 2024), encode_blob(info))

    def test_fixed_offset_without_zone(self) -> None:
        info = TimeZoneInfo(bias=-180, standard_name="nowhere")
        found = ZoneInfo(zone_for_blob(encode_blob(info), 2024))
        for month in (1, 7):
            self.assertEqual(found.utcoffset(datetime(2024, month, 1)), timedelta(hours=3))

    def test_short_and_bad_blobs(self) -> None:
        self.assertEqual(zone_for_blob(base64.b64encode(b"\0" * 172).decode(), 2024), "UTC")
        self.assertEqual(decode_blob(base64.b64encode(b"\x88\xff\xff\xff").decode()).bias, -120)
        self.assertRaises(ValueError, decode_blob, "###")
