"""Contacts, calendars, tasks and notes through the real daemon.

Each test runs its own ``twistd -n easyncd`` on SQLite and manages data with
the real ``easyncd-admin collection`` / ``item`` commands (another process,
as an admin would), while the devices are pyactivesync (an independent client
from PyPI, EAS 16.1, contacts only) and :mod:`.groupware_client` (calendar,
tasks, notes, Ping, retries, at several protocol versions).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import requests
from twisted.trial.unittest import TestCase

from easyncd.testing.daemon import Daemon
from easyncd.wbxml import Element
from tests.integration.groupware_client import (
    AUCKLAND,
    BERLIN,
    NEW_YORK,
    Device,
    app_data,
    compact,
    local_time,
    parse_compact,
    parse_tz_blob,
    tz_blob,
)
from tests.integration.test_daemon import assert_stopped_cleanly

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "integration")
UTC = timezone.utc


def fixture(name: str, **values: str) -> str:
    """A fixture file's text, with ``{name}`` placeholders filled in."""
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        text = handle.read()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


# -- reading .vcf / .ics independently of the server's vobject wrapper ---------------------

Property = tuple[str, dict[str, str], str]


def unfold(text: str) -> list[str]:
    """RFC 5545 / 6350 content lines, unfolded."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def parse_line(line: str) -> Property:
    """(NAME, {PARAM: value}, value) of one content line (group prefix dropped)."""
    head, _, value = line.partition(":")
    # a quoted parameter value may hold ':'
    while head.count('"') % 2:
        more, _, value = value.partition(":")
        head += ":" + more
    name, *params = head.split(";")
    name = name.rpartition(".")[2].upper()
    parsed = {}
    for param in params:
        key, _, param_value = param.partition("=")
        parsed[key.upper()] = param_value.strip('"')
    return name, parsed, value


def components(text: str, kind: str) -> list[list[Property]]:
    """The properties of every top-level-ish ``kind`` component (VEVENT, VCARD...)."""
    found: list[list[Property]] = []
    current: list[Property] | None = None
    depth = 0
    for line in unfold(text):
        name, params, value = parse_line(line)
        if name == "BEGIN" and value.upper() == kind:
            current, depth = [], 0
            continue
        if current is None:
            continue
        if name == "BEGIN":
            depth += 1
        elif name == "END" and value.upper() == kind and depth == 0:
            found.append(current)
            current = None
            continue
        elif name == "END":
            depth -= 1
        if depth == 0:
            current.append((name, params, value))
    return found


def values(props: list[Property], name: str) -> list[str]:
    """Every value of property ``name``."""
    return [value for prop, _, value in props if prop == name]


def value(props: list[Property], name: str) -> str | None:
    """The first value of property ``name``."""
    found = values(props, name)
    return found[0] if found else None


def instant(props: list[Property], name: str) -> list[datetime | Any]:
    """Date-time values of ``name`` as aware UTC datetimes (dates as dates),
    every comma-separated value of every occurrence of the property."""
    out: list[Any] = []
    for prop, params, text in props:
        if prop != name:
            continue
        for item in text.split(","):
            if params.get("VALUE") == "DATE" or re.fullmatch(r"\d{8}", item):
                out.append(datetime.strptime(item, "%Y%m%d").date())
                continue
            if item.endswith("Z"):
                out.append(datetime.strptime(item, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
                continue
            zone = ZoneInfo(params["TZID"].strip("/")) if "TZID" in params else UTC
            out.append(datetime.strptime(item, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
                       .astimezone(UTC))
    return out


def rrule_parts(text: str) -> dict[str, str]:
    """An RRULE value as {PART: value}."""
    return dict(part.split("=", 1) for part in text.upper().split(";") if "=" in part)


def named(cards: list[list[Property]], family: str) -> list[Property] | None:
    """The vCard whose family name is ``family``."""
    for card in cards:
        if (value(card, "N") or "").split(";")[0] == family:
            return card
    return None


def u(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- the harness ----------------------------------------------------------------------------------

class GroupwareDaemonTest(TestCase):
    """A daemon on SQLite with alice, and helpers for the groupware CLI."""

    daemon: Daemon

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.daemon = Daemon(tmp.name)
        self.daemon.add_user("alice", "secret")
        self.daemon.start()
        self.addCleanup(assert_stopped_cleanly, self, self.daemon)

    def collections(self) -> list[dict[str, Any]]:
        """``collection list alice --json``."""
        listed = json.loads(self.daemon.admin("collection", "list", "alice", "--json").stdout)
        self.assertIsInstance(listed, list)
        return listed

    def default_collection(self, kind: str) -> str:
        """The id of alice's default collection of ``kind`` (listed once)."""
        if not hasattr(self, "_defaults"):
            listed = self.collections()
            self._defaults: dict[str, str] = {}
            for entry in listed:
                if entry["default"]:
                    self.assertNotIn(entry["kind"], self._defaults, listed)
                    self._defaults[entry["kind"]] = str(entry["id"])
            self.assertEqual(sorted(self._defaults),
                             ["calendar", "contacts", "notes", "tasks"], listed)
        return self._defaults[kind]

    def export(self, collection: str) -> str:
        """``collection export alice COLLECTION`` (stdout)."""
        return self.daemon.admin("collection", "export", "alice", collection).stdout

    def import_text(self, collection: str, text: str, suffix: str) -> str:
        """``collection import alice COLLECTION FILE``; its one-line summary."""
        path = os.path.join(self.tmp, f"import-{time.monotonic_ns()}{suffix}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return self.daemon.admin("collection", "import", "alice", collection, path).stdout

    def items(self, collection: str) -> list[dict[str, Any]]:
        """``item list alice COLLECTION --json``."""
        return json.loads(self.daemon.admin("item", "list", "alice", collection,
                                            "--json").stdout)

    def device(self, device_id: str, version: str = "16.1") -> Device:
        """A provisioned device of alice that has done its first FolderSync."""
        device = Device(self.daemon, device_id, version=version)
        device.provision()
        device.folder_sync()
        return device


# -- 1. the independent client: pyactivesync on Contacts ----------------------------------------

class PyActiveSyncContactsTests(GroupwareDaemonTest):
    """A full contacts cycle between pyactivesync and easyncd-admin."""

    def client(self, device_id: str) -> Any:
        from pyactivesync import Client

        client = Client(server=f"127.0.0.1:{self.daemon.port}", username="alice",
                        password="secret", device_id=device_id)
        client._transport.base_url = f"{self.daemon.base}/Microsoft-Server-ActiveSync"
        self.addCleanup(client.close)
        client.provision()
        return client

    def vcards(self, collection: str) -> list[list[Property]]:
        """The vCards of ``collection``, from one export."""
        return components(self.export(collection), "VCARD")


    def test_contact_cycle(self) -> None:
        """Add on the device, change on the server, change on the device,
        delete on the server, delete on the device; each side sees the other."""
        from pyactivesync import Contact, ContactChange, FolderType

        client = self.client("PYASGW01")
        folders = client.list_folders()
        contacts_id = next(f.id for f in folders if f.type == FolderType.CONTACTS)
        collection = self.default_collection("contacts")
        key = client.sync_folder(contacts_id).sync_key
        first = client.sync_folder(contacts_id, key)
        self.assertEqual((first.added, first.changed, first.deleted), ([], [], []))

        # add on the device -> the server has the vCard
        added = client.create_contact(contacts_id, first.sync_key, Contact(
            first_name="Ada", last_name="Lovelace", email1_address="ada@example.org",
            mobile_phone_number="+44 20 7946 0001", company_name="Analytical Engines Ltd",
            job_title="Mathematician", categories=["Friends"]))
        self.assertEqual(added.status, "1")
        server_id = added.server_id
        assert server_id is not None
        cards = self.vcards(collection)
        self.assertEqual(len(cards), 1, cards)
        card = named(cards, "Lovelace")
        assert card is not None, cards
        self.assertEqual((value(card, "N") or "").split(";")[:2], ["Lovelace", "Ada"])
        self.assertIn("ada@example.org", values(card, "EMAIL"))
        self.assertIn("+44 20 7946 0001", values(card, "TEL"))
        self.assertEqual((value(card, "ORG") or "").split(";")[0], "Analytical Engines Ltd")
        self.assertEqual(value(card, "TITLE"), "Mathematician")
        self.assertIn("Friends", ",".join(values(card, "CATEGORIES")))
        uid = value(card, "UID")
        assert uid
        nothing = client.sync_folder(contacts_id, added.sync_key)
        self.assertEqual((nothing.added, nothing.changed), ([], []))  # no echo of its own add

        # change on the server -> the device gets a Change with the new values
        summary = self.import_text(collection, fixture("contact_update.vcf", uid=uid), ".vcf")
        self.assertIn("imported 1 (added 0, updated 1)", summary)
        changed = client.sync_folder(contacts_id, nothing.sync_key)
        self.assertEqual([item.server_id for item in changed.changed], [server_id], changed)
        self.assertEqual(changed.added, [])
        fields = changed.changed[0].fields
        self.assertIn("countess@example.org", fields["Contacts.Email1Address"])
        self.assertEqual(fields["Contacts.MobilePhoneNumber"], "+44 20 7946 0002")
        self.assertEqual(fields["Contacts.JobTitle"], "Countess of Lovelace")
        self.assertEqual(fields["Contacts.LastName"], "Lovelace")
        # ItemOperations Fetch gives the same item
        fetched = client.fetch_item(contacts_id, server_id)
        self.assertEqual(fetched.fields["Contacts.JobTitle"], "Countess of Lovelace")
        self.assertEqual(fetched.fields["Contacts.FirstName"], "Ada")

        # change on the device -> the export shows it
        result = client.apply_contact_changes(contacts_id, changed.sync_key, [ContactChange(
            server_id, Contact(first_name="Ada", last_name="King",
                               email1_address="countess@example.org",
                               mobile_phone_number="+44 20 7946 0002",
                               home_address_city="London", job_title="Analyst"))])
        self.assertEqual(result.statuses, {server_id: "1"})
        cards = self.vcards(collection)
        self.assertEqual(len(cards), 1, cards)
        self.assertIsNone(named(cards, "Lovelace"))
        card = named(cards, "King")
        assert card is not None, cards
        self.assertEqual(value(card, "UID"), uid)
        self.assertEqual(value(card, "TITLE"), "Analyst")
        self.assertIn("London", ";".join(values(card, "ADR")))

        # GetItemEstimate counts what the server added since
        summary = self.import_text(collection, fixture("contacts_more.vcf"), ".vcf")
        self.assertIn("imported 2 (added 2, updated 0)", summary)
        self.assertEqual(client.get_item_estimate(contacts_id, result.sync_key), 2)
        more = client.sync_folder(contacts_id, result.sync_key)
        self.assertEqual(sorted(item.fields.get("Contacts.LastName") for item in more.added),
                         ["Hopper", "Turing"])
        self.assertEqual(more.changed, [])  # the device's own change is not echoed
        self.assertEqual(client.get_item_estimate(contacts_id, more.sync_key), 0)

        # delete on the server -> the device gets a Delete
        self.daemon.admin("item", "delete", "alice", collection, uid)
        deleted = client.sync_folder(contacts_id, more.sync_key)
        self.assertEqual(deleted.deleted, [server_id])
        self.assertIsNone(named(self.vcards(collection), "King"))

        # delete on the device -> gone from the export
        hopper = next(item.server_id for item in more.added
                      if item.fields.get("Contacts.LastName") == "Hopper")
        gone = client.apply_contact_changes(contacts_id, deleted.sync_key,
                                            [ContactChange(hopper, delete=True)])
        self.assertEqual(gone.statuses, {hopper: "1"})
        self.assertEqual([value(card, "UID") for card in self.vcards(collection)],
                         ["alan-turing@example.org"])
        final = client.sync_folder(contacts_id, gone.sync_key)
        self.assertEqual((final.added, final.changed, final.deleted), ([], [], []))

    def test_folders_from_the_device_and_the_cli(self) -> None:
        """FolderCreate/Update/Delete and MoveItems from pyactivesync show in
        ``collection list``; ``collection create/rename/sync/delete`` show in
        the device's next FolderSync."""
        from pyactivesync import Contact, FolderType

        client = self.client("PYASGW02")
        contacts_id = next(f.id for f in client.list_folders()
                           if f.type == FolderType.CONTACTS)
        # pyactivesync's FolderType is off by one from 12 on: 14 is a
        # user-created contacts folder in MS-ASCMD 2.2.3.186.3.
        work = client.create_folder("Work", type=FolderType(14))
        listed = {c["name"]: c for c in self.collections()}
        self.assertIn("Work", listed)
        self.assertEqual(listed["Work"]["kind"], "contacts")
        self.assertFalse(listed["Work"]["default"])
        work_collection = str(listed["Work"]["id"])

        # MoveItems between two contacts folders
        key = client.sync_folder(contacts_id).sync_key
        added = client.create_contact(contacts_id, client.sync_folder(contacts_id, key).sync_key,
                                      Contact(first_name="Charles", last_name="Babbage"))
        assert added.server_id is not None
        new_id = client.move_item(added.server_id, contacts_id, work.id)
        self.assertNotEqual(new_id, added.server_id)
        self.assertNotIn("Babbage", self.export(self.default_collection("contacts")))
        self.assertIn("Babbage", self.export(work_collection))
        work_key = client.sync_folder(work.id).sync_key
        in_work = client.sync_folder(work.id, work_key)
        self.assertEqual([item.server_id for item in in_work.added], [new_id])

        client.update_folder(work.id, "Clients")
        listed = {c["name"]: c for c in self.collections()}
        self.assertNotIn("Work", listed)
        self.assertEqual(str(listed["Clients"]["id"]), work_collection)
        client.delete_folder(work.id)
        self.assertNotIn("Clients", {c["name"] for c in self.collections()})
        self.assertNotIn("Clients", {f.name for f in client.list_folders()})

        # the CLI side: our own device follows incrementally, pyactivesync fully
        device = self.device("gwfolders")
        created = self.daemon.admin("collection", "create", "alice", "calendar",
                                    "Family").stdout.strip()
        self.assertTrue(created)
        names = {f.name: f for f in client.list_folders()}
        self.assertIn("Family", names)
        self.assertEqual(int(names["Family"].type), 13)  # user-created calendar
        changes, deleted = device.folder_sync()
        self.assertEqual(list(changes.values()), [("Family", 13)])
        self.assertEqual(deleted, [])
        family_id = next(iter(changes))

        self.daemon.admin("collection", "rename", "alice", created, "Family & friends")
        changes, deleted = device.folder_sync()
        self.assertEqual(changes, {family_id: ("Family & friends", 13)})

        self.daemon.admin("collection", "sync", "alice", created, "off")
        self.assertFalse({str(c["id"]): c for c in self.collections()}[created]["synced"])
        self.assertNotIn("Family & friends", {f.name for f in client.list_folders()})
        changes, deleted = device.folder_sync()
        self.assertEqual((changes, deleted), ({}, [family_id]))

        self.daemon.admin("collection", "sync", "alice", created, "on")
        changes, deleted = device.folder_sync()
        self.assertEqual(list(changes.values()), [("Family & friends", 13)])
        family_id = next(iter(changes))
        # the default collection of a kind always syncs
        refused = self.daemon.admin("collection", "sync", "alice",
                                    self.default_collection("calendar"), "off", check=False)
        self.assertEqual(refused.returncode, 1, refused)
        self.assertEqual(len(refused.stderr.strip().splitlines()), 1, refused.stderr)

        self.daemon.admin("collection", "delete", "alice", created)
        changes, deleted = device.folder_sync()
        self.assertEqual((changes, deleted), ({}, [family_id]))
        self.assertEqual(sorted(f.name for f in client.list_folders()),
                         ["Calendar", "Contacts", "Notes", "Tasks"])


# -- 2. calendar, tasks and notes with our own client --------------------------------------------

BODY_TEXT = [Element("AirSyncBase:BodyPreference", children=[
    Element("AirSyncBase:Type", "1"), Element("AirSyncBase:TruncationSize", "32768")])]


class CalendarTests(GroupwareDaemonTest):
    """Time zones, all-day events, recurrences and exceptions, both ways."""

    def recurring_event(self, version: str) -> Element:
        """A weekly Monday 09:00 Berlin series (10 times) from 2025-03-03,
        the 17 March occurrence moved to Tuesday 10:00, the 24th deleted."""
        key = "AirSyncBase:InstanceId" if version.startswith("16") else "ExceptionStartTime"
        fields: list[tuple[str, Any]] = [
            ("Timezone", tz_blob(BERLIN)), ("AllDayEvent", "0"), ("BusyStatus", "2"),
            ("DtStamp", compact(u(2025, 2, 20, 10, 0))),
            ("StartTime", compact(u(2025, 3, 3, 8, 0))), ("EndTime", compact(u(2025, 3, 3, 9, 0))),
            ("Subject", "Weekly review"), ("Sensitivity", "0"), ("MeetingStatus", "0"),
            ("Reminder", "15"),
            ("Recurrence", [("Type", "1"), ("Interval", "1"), ("DayOfWeek", "2"),
                            ("Occurrences", "10")]),
            ("Exceptions", [
                ("Exception", [(key, compact(u(2025, 3, 17, 8, 0))),
                               ("StartTime", compact(u(2025, 3, 18, 9, 0))),
                               ("EndTime", compact(u(2025, 3, 18, 10, 0))),
                               ("Subject", "Weekly review (moved)")]),
                ("Exception", [(key, compact(u(2025, 3, 24, 8, 0))), ("Deleted", "1")]),
            ]),
        ]
        if version.startswith("16"):
            fields.append(("AirSyncBase:Location", [("AirSyncBase:DisplayName", "Room 1")]))
            fields.append(("ClientUid", f"weekly-review-{version}@device"))
        else:
            fields.append(("Location", "Room 1"))
        return app_data("Calendar", *fields)

    def all_day_event(self) -> Element:
        """An all-day event on 4 July 2025 made in Auckland (UTC+12 then)."""
        return app_data(
            "Calendar", ("Timezone", tz_blob(AUCKLAND)), ("AllDayEvent", "1"),
            ("BusyStatus", "0"), ("DtStamp", compact(u(2025, 6, 1, 0, 0))),
            ("StartTime", compact(u(2025, 7, 3, 12, 0))), ("EndTime", compact(u(2025, 7, 4, 12, 0))),
            ("Subject", "Day off"), ("Sensitivity", "0"), ("MeetingStatus", "0"))

    def device_to_server(self, version: str) -> None:
        device = self.device(f"cal{version.replace('.', '')}", version)
        calendar = device.folder("Calendar")
        collection = self.default_collection("calendar")
        device.sync_all(calendar, options=BODY_TEXT)
        device.add(calendar, self.recurring_event(version), "series")
        device.add(calendar, self.all_day_event(), "allday")

        exported = self.export(collection)
        events = components(exported, "VEVENT")
        master = [e for e in events if value(e, "SUMMARY") == "Weekly review"]
        moved = [e for e in events if value(e, "SUMMARY") == "Weekly review (moved)"]
        self.assertEqual(len(master), 1, exported)
        self.assertEqual(len(moved), 1, exported)
        master_props, moved_props = master[0], moved[0]
        rule = rrule_parts(value(master_props, "RRULE") or "")
        self.assertEqual((rule.get("FREQ"), rule.get("BYDAY"), rule.get("COUNT")),
                         ("WEEKLY", "MO", "10"), rule)
        self.assertIn(rule.get("INTERVAL", "1"), ("1",))
        self.assertEqual(instant(master_props, "DTSTART"), [u(2025, 3, 3, 8, 0)])
        self.assertEqual(instant(master_props, "EXDATE"), [u(2025, 3, 24, 8, 0)])
        self.assertEqual(instant(moved_props, "RECURRENCE-ID"), [u(2025, 3, 17, 8, 0)])
        self.assertEqual(instant(moved_props, "DTSTART"), [u(2025, 3, 18, 9, 0)])
        self.assertEqual(value(moved_props, "UID"), value(master_props, "UID"))
        self.assertEqual(value(master_props, "LOCATION"), "Room 1")
        # the zone is a real one: the series keeps 09:00 local across the DST change
        tzid = next(params.get("TZID") for name, params, _ in master_props if name == "DTSTART")
        self.assertEqual(tzid, "Europe/Berlin", master_props)
        self.assertIn("TZID:Europe/Berlin", exported)
        if version.startswith("16"):
            self.assertEqual(value(master_props, "UID"), "weekly-review-16.1@device")

        day_off = [e for e in events if value(e, "SUMMARY") == "Day off"]
        self.assertEqual(len(day_off), 1, exported)
        self.assertEqual(instant(day_off[0], "DTSTART"), [datetime(2025, 7, 4).date()], exported)
        end = instant(day_off[0], "DTEND")
        self.assertIn(end, ([datetime(2025, 7, 5).date()], []), exported)

        # and a second device of the same user gets the series back as it was sent
        other = self.device(f"cal{version.replace('.', '')}b", version)
        got = other.sync_all(calendar, options=BODY_TEXT)
        self.assertEqual(len(got.adds), 2, got.element.to_xml() if got.element else got)
        by_subject = {data.findtext("Calendar:Subject"): data for data in got.adds.values()}
        series = by_subject["Weekly review"]
        self.assertEqual(parse_compact(series.findtext("Calendar:StartTime") or ""),
                         u(2025, 3, 3, 8, 0))
        rule_back = parse_tz_blob(series.findtext("Calendar:Timezone") or "")
        self.assertEqual((rule_back.bias, rule_back.standard, rule_back.daylight,
                          rule_back.daylight_bias),
                         (BERLIN.bias, BERLIN.standard, BERLIN.daylight, BERLIN.daylight_bias))
        self.assertEqual(series.findtext("Calendar:Recurrence/Calendar:Type"), "1")
        self.assertEqual(series.findtext("Calendar:Recurrence/Calendar:DayOfWeek"), "2")
        self.assertEqual(series.findtext("Calendar:Recurrence/Calendar:Occurrences"), "10")
        key = "AirSyncBase:InstanceId" if version.startswith("16") else \
            "Calendar:ExceptionStartTime"
        exceptions = {parse_compact(e.findtext(key) or ""): e for e in
                      series.findall("Calendar:Exceptions/Calendar:Exception")}
        self.assertEqual(sorted(exceptions), [u(2025, 3, 17, 8, 0), u(2025, 3, 24, 8, 0)])
        self.assertEqual(exceptions[u(2025, 3, 24, 8, 0)].findtext("Calendar:Deleted"), "1")
        moved_back = exceptions[u(2025, 3, 17, 8, 0)]
        self.assertEqual(parse_compact(moved_back.findtext("Calendar:StartTime") or ""),
                         u(2025, 3, 18, 9, 0))
        self.assertEqual(moved_back.findtext("Calendar:Subject"), "Weekly review (moved)")
        day = by_subject["Day off"]
        self.assertEqual(day.findtext("Calendar:AllDayEvent"), "1")
        zone = parse_tz_blob(day.findtext("Calendar:Timezone") or "")
        start = local_time(parse_compact(day.findtext("Calendar:StartTime") or ""), zone)
        end_local = local_time(parse_compact(day.findtext("Calendar:EndTime") or ""), zone)
        self.assertEqual((start, end_local), (datetime(2025, 7, 4), datetime(2025, 7, 5)))

    def test_recurring_event_from_device_16_1(self) -> None:
        """16.1 (InstanceId, Location object, ClientUid): device -> .ics -> device."""
        self.device_to_server("16.1")

    def test_recurring_event_from_device_14_1(self) -> None:
        """14.1 (ExceptionStartTime, Calendar:Location): device -> .ics -> device."""
        self.device_to_server("14.1")

    def test_imported_ics_reaches_devices(self) -> None:
        """An .ics with a VTIMEZONE, an all-day event and a daily series across
        the US DST change with a moved and a deleted occurrence, at 16.1 and 14.1."""
        collection = self.default_collection("calendar")
        summary = self.import_text(collection, fixture("calendar_import.ics"), ".ics")
        self.assertIn("imported 2 (added 2, updated 0)", summary)
        for version in ("16.1", "14.1"):
            device = self.device(f"ics{version.replace('.', '')}", version)
            got = device.sync_all(device.folder("Calendar"), options=BODY_TEXT)
            by_subject = {data.findtext("Calendar:Subject"): data for data in got.adds.values()}
            self.assertEqual(sorted(by_subject), ["Independence Day", "Standup"], version)

            day = by_subject["Independence Day"]
            self.assertEqual(day.findtext("Calendar:AllDayEvent"), "1")
            self.assertEqual(day.findtext("Calendar:BusyStatus"), "0")  # TRANSP:TRANSPARENT
            zone = parse_tz_blob(day.findtext("Calendar:Timezone") or "")
            self.assertEqual(
                (local_time(parse_compact(day.findtext("Calendar:StartTime") or ""), zone),
                 local_time(parse_compact(day.findtext("Calendar:EndTime") or ""), zone)),
                (datetime(2025, 7, 4), datetime(2025, 7, 5)), version)
            self.assertIsNone(day.find("Calendar:Recurrence"))

            standup = by_subject["Standup"]
            self.assertEqual(standup.findtext("Calendar:AllDayEvent"), "0")
            self.assertEqual(standup.findtext("Calendar:UID"), "standup@example.org")
            zone = parse_tz_blob(standup.findtext("Calendar:Timezone") or "")
            self.assertEqual((zone.bias, zone.standard, zone.daylight, zone.daylight_bias),
                             (NEW_YORK.bias, NEW_YORK.standard, NEW_YORK.daylight,
                              NEW_YORK.daylight_bias), version)
            self.assertEqual(parse_compact(standup.findtext("Calendar:StartTime") or ""),
                             u(2025, 3, 3, 14, 0))
            self.assertEqual(parse_compact(standup.findtext("Calendar:EndTime") or ""),
                             u(2025, 3, 3, 14, 30))
            if version.startswith("16"):
                self.assertEqual(standup.findtext("AirSyncBase:Location/AirSyncBase:DisplayName"),
                                 "Room 4")
                self.assertIsNone(standup.find("Calendar:Location"))
            else:
                self.assertEqual(standup.findtext("Calendar:Location"), "Room 4")
            recurrence = standup.find("Calendar:Recurrence")
            assert recurrence is not None, standup.to_xml()
            self.assertEqual(recurrence.findtext("Calendar:Type"), "0")
            self.assertEqual(recurrence.findtext("Calendar:Interval", "1"), "1")
            self.assertEqual(recurrence.findtext("Calendar:Occurrences"), "20")
            key = "AirSyncBase:InstanceId" if version.startswith("16") else \
                "Calendar:ExceptionStartTime"
            exceptions = {parse_compact(e.findtext(key) or ""): e for e in
                          standup.findall("Calendar:Exceptions/Calendar:Exception")}
            # 5 March 09:00 EST = 14:00Z; 11 March 09:00 EDT = 13:00Z (after the change)
            self.assertEqual(sorted(exceptions), [u(2025, 3, 5, 14, 0), u(2025, 3, 11, 13, 0)],
                             standup.to_xml())
            self.assertEqual(exceptions[u(2025, 3, 5, 14, 0)].findtext("Calendar:Deleted"), "1")
            moved = exceptions[u(2025, 3, 11, 13, 0)]
            self.assertNotEqual(moved.findtext("Calendar:Deleted"), "1")
            self.assertEqual(parse_compact(moved.findtext("Calendar:StartTime") or ""),
                             u(2025, 3, 11, 18, 0))
            self.assertEqual(parse_compact(moved.findtext("Calendar:EndTime") or ""),
                             u(2025, 3, 11, 18, 30))
            self.assertEqual(moved.findtext("Calendar:Subject"), "Standup (afternoon)")


class TasksAndNotesTests(GroupwareDaemonTest):
    """One add / change / delete cycle each for Tasks and Notes."""

    def test_task_cycle(self) -> None:
        device = self.device("tasks161")
        tasks = device.folder("Tasks")
        collection = self.default_collection("tasks")
        device.sync_all(tasks, options=BODY_TEXT)
        server_id = device.add(tasks, app_data(
            "Tasks", ("Subject", "File the tax return"), ("Importance", "2"),
            ("UtcDueDate", "2025-04-15T00:00:00.000Z"), ("DueDate", "2025-04-15T00:00:00.000Z"),
            ("Complete", "0"), ("Sensitivity", "0"), ("ReminderSet", "0"),
            ("Categories", [("Category", "Admin")]),
            ("AirSyncBase:Body", [("AirSyncBase:Type", "1"),
                                  ("AirSyncBase:Data", "Receipts in the blue folder")])),
            "task1")
        todos = components(self.export(collection), "VTODO")
        self.assertEqual(len(todos), 1)
        todo = todos[0]
        self.assertEqual(value(todo, "SUMMARY"), "File the tax return")
        self.assertIn(datetime(2025, 4, 15).date(), instant(todo, "DUE")
                      + [d.date() for d in instant(todo, "DUE") if isinstance(d, datetime)])
        self.assertEqual(value(todo, "PRIORITY"), "1")  # high importance
        self.assertIn("blue folder", value(todo, "DESCRIPTION") or "")
        self.assertIn("Admin", ",".join(values(todo, "CATEGORIES")))
        self.assertNotEqual((value(todo, "STATUS") or "").upper(), "COMPLETED")
        uid = value(todo, "UID")
        assert uid

        # completed on the server
        summary = self.import_text(collection, fixture("task_update.ics", uid=uid), ".ics")
        self.assertIn("updated 1", summary)
        changed = device.sync(tasks, options=BODY_TEXT)
        self.assertEqual(list(changed.changes), [server_id],
                         changed.element.to_xml() if changed.element else changed)
        data = changed.changes[server_id]
        self.assertEqual(data.findtext("Tasks:Subject"), "File the tax return (server)")
        self.assertEqual(data.findtext("Tasks:Complete"), "1")
        self.assertEqual(parse_compact(data.findtext("Tasks:DateCompleted") or ""),
                         u(2025, 4, 10, 15, 0))
        self.assertEqual(data.findtext("Tasks:Importance"), "2")
        self.assertEqual(parse_compact(data.findtext("Tasks:DueDate") or "").date(),
                         datetime(2025, 4, 15).date())

        # reopened and renamed on the device
        device.change(tasks, server_id, app_data(
            "Tasks", ("Subject", "File the tax return (again)"), ("Importance", "1"),
            ("UtcDueDate", "2025-04-15T00:00:00.000Z"), ("DueDate", "2025-04-15T00:00:00.000Z"),
            ("Complete", "0"), ("Sensitivity", "0"), ("ReminderSet", "0")))
        todo = components(self.export(collection), "VTODO")[0]
        self.assertEqual(value(todo, "SUMMARY"), "File the tax return (again)")
        self.assertNotEqual((value(todo, "STATUS") or "").upper(), "COMPLETED")
        self.assertEqual(value(todo, "UID"), uid)

        # deleted on the server
        self.daemon.admin("item", "delete", "alice", collection, uid)
        self.assertEqual(device.sync(tasks, options=BODY_TEXT).deletes, [server_id])
        self.assertEqual(components(self.export(collection), "VTODO"), [])

    def test_note_cycle(self) -> None:
        device = self.device("notes161")
        notes = device.folder("Notes")
        collection = self.default_collection("notes")
        device.sync_all(notes, options=BODY_TEXT)
        server_id = device.add(notes, app_data(
            "Notes", ("Subject", "Shopping list"),
            ("AirSyncBase:Body", [("AirSyncBase:Type", "1"), ("AirSyncBase:Data", "milk, eggs")]),
            ("MessageClass", "IPM.StickyNote"), ("Categories", [("Category", "Home")])),
            "note1")
        journals = components(self.export(collection), "VJOURNAL")
        self.assertEqual(len(journals), 1)
        self.assertEqual(value(journals[0], "SUMMARY"), "Shopping list")
        self.assertIn("milk", value(journals[0], "DESCRIPTION") or "")
        uid = value(journals[0], "UID")
        assert uid

        summary = self.import_text(collection, fixture("note_update.ics", uid=uid), ".ics")
        self.assertIn("updated 1", summary)
        changed = device.sync(notes, options=BODY_TEXT)
        self.assertEqual(list(changed.changes), [server_id],
                         changed.element.to_xml() if changed.element else changed)
        data = changed.changes[server_id]
        self.assertEqual(data.findtext("Notes:Subject"), "Shopping list (server)")
        self.assertEqual((data.findtext("AirSyncBase:Body/AirSyncBase:Data") or "")
                         .replace("\r\n", "\n"), "milk, eggs\nflour")
        self.assertEqual([c.text for c in data.findall("Notes:Categories/Notes:Category")],
                         ["Home"])

        device.change(notes, server_id, app_data(
            "Notes", ("Subject", "Shopping list (device)"),
            ("AirSyncBase:Body", [("AirSyncBase:Type", "1"),
                                  ("AirSyncBase:Data", "milk, eggs, flour, sugar")]),
            ("MessageClass", "IPM.StickyNote"), ("Categories", [("Category", "Home")])))
        journal = components(self.export(collection), "VJOURNAL")[0]
        self.assertEqual(value(journal, "SUMMARY"), "Shopping list (device)")
        self.assertIn("sugar", value(journal, "DESCRIPTION") or "")

        device.delete(notes, server_id)
        self.assertEqual(components(self.export(collection), "VJOURNAL"), [])
        self.assertEqual(self.items(collection), [])


# -- 3. push ----------------------------------------------------------------------------------

class PushTests(GroupwareDaemonTest):
    """A waiting Ping is woken by the CLI (another process) and by another device."""

    def ping_in_background(self, pool: ThreadPoolExecutor, device: Device, folder: str
                           ) -> Future[tuple[str, list[str], float]]:
        """A Ping on ``folder`` (heartbeat 60) from a thread; at most 10 s."""
        return pool.submit(device.ping, [(folder, "Contacts")], 60, 10)

    def test_ping_woken_by_cli(self) -> None:
        """``collection import`` in another process wakes a Ping within a
        second or so: once right away (the first Ping of the collection), once
        after the Ping has waited a while."""
        phone = self.device("pushcli")
        contacts = phone.folder("Contacts")
        collection = self.default_collection("contacts")
        phone.sync_all(contacts)
        cards = fixture("contacts_more.vcf").split("END:VCARD\n")
        with ThreadPoolExecutor(max_workers=1) as pool:
            for settle, card in ((0.0, cards[0]), (1.0, cards[1])):
                waiting = self.ping_in_background(pool, phone, contacts)
                time.sleep(settle or 0.05)
                self.assertFalse(waiting.done(), "Ping answered before any change")
                self.import_text(collection, card + "END:VCARD\n", ".vcf")
                changed_at = time.monotonic()
                try:
                    status, folders, _ = waiting.result(timeout=30)
                except requests.exceptions.ReadTimeout:
                    self.fail(f"a change {settle} s into the Ping did not wake it")
                self.assertEqual((status, folders), ("2", [contacts]))
                self.assertLess(time.monotonic() - changed_at, 3.0, settle)
                self.assertEqual(len(phone.sync(contacts).adds), 1)

    def test_ping_woken_by_another_device(self) -> None:
        """A contact added by the user's other device wakes the phone's Ping."""
        phone = self.device("pushphone")
        tablet = self.device("pushtablet")
        contacts = phone.folder("Contacts")
        phone.sync_all(contacts)
        tablet.sync_all(contacts)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = self.ping_in_background(pool, phone, contacts)
            time.sleep(1.0)
            self.assertFalse(waiting.done(), "Ping answered before any change")
            started = time.monotonic()
            tablet.add(contacts, app_data("Contacts", ("FirstName", "Katherine"),
                                          ("LastName", "Johnson")), "kj")
            status, folders, _ = waiting.result(timeout=30)
            self.assertEqual((status, folders), ("2", [contacts]))
            self.assertLess(time.monotonic() - started, 3.0)
        got = phone.sync(contacts)
        self.assertEqual([d.findtext("Contacts:LastName") for d in got.adds.values()],
                         ["Johnson"])


# -- 4. retry safety ------------------------------------------------------------------------

class RetryTests(GroupwareDaemonTest):
    """A Sync resent with the previous SyncKey (the answer was lost)."""

    def test_resent_add_is_not_duplicated(self) -> None:
        device = self.device("retry161")
        contacts = device.folder("Contacts")
        collection = self.default_collection("contacts")
        device.sync_all(contacts)
        self.import_text(collection, fixture("contacts_more.vcf"), ".vcf")
        command = Element("AirSync:Add")
        command.add("AirSync:ClientId", "retry-1")
        command.append(app_data("Contacts", ("FirstName", "Hedy"), ("LastName", "Lamarr")))
        first = device.sync(contacts, [command])
        server_id = first.added_server_id("retry-1")
        self.assertEqual(len(first.adds), 2)  # the two imported contacts came along
        # the answer is lost: the device sends the same request again
        again = device.sync(contacts, [command], key=device.previous_keys[contacts])
        self.assertEqual(again.added_server_id("retry-1"), server_id)
        self.assertEqual(sorted(again.adds), sorted(first.adds))  # the same changes again
        self.assertEqual(again.sync_key, first.sync_key)
        cards = components(self.export(collection), "VCARD")
        self.assertEqual(sum(1 for card in cards
                             if (value(card, "N") or "").startswith("Lamarr;")), 1)
        self.assertEqual(len(cards), 3)
        # and the device carries on from there
        after = device.sync(contacts)
        self.assertEqual((after.adds, after.changes, after.deletes), ({}, {}, []))
