"""Sync of single occurrences (MS-ASCMD / MS-ASCAL 16.0+): a Change or Delete
with ``AirSyncBase:InstanceId`` rewrites one occurrence of a recurring event;
the server sends exceptions inside the master (Calendar:Exceptions keyed by
InstanceId), and 14.1 is not affected."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.groupware.event import Event
from easyncd.backends.groupware.vobj.calendar import parse_ics, write_ics
from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS
from easyncd.protocol.codecs.calendar import CalendarCodec
from easyncd.protocol.commands.sync import SyncCommand
from easyncd.protocol.context import CommandResponse
from easyncd.protocol.sync.request import ClientChange, ClientDelete, parse_commands
from easyncd.wbxml import Element, decode, encode
from tests.protocol.groupware_helpers import (
    AS,
    GroupwareHarness,
    collection,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import result_of

CAL = "Calendar:"
BASE = "AirSyncBase:"
UTC = ZoneInfo("UTC")
CODECS = {KIND_CALENDAR: CalendarCodec()}


def weekly(uid: str = "weekly-1", summary: str = "Standup") -> str:
    """A weekly series of five, Mondays 09:00 UTC from 2024-03-04."""
    return write_ics(Event(uid=uid, summary=summary,
                           start=datetime(2024, 3, 4, 9, 0, tzinfo=UTC),
                           end=datetime(2024, 3, 4, 9, 30, tzinfo=UTC),
                           rrule="FREQ=WEEKLY;COUNT=5"))


def single(uid: str = "single-1") -> str:
    """A one-off event."""
    return write_ics(Event(uid=uid, summary="Once",
                           start=datetime(2024, 3, 5, 9, 0, tzinfo=UTC),
                           end=datetime(2024, 3, 5, 10, 0, tzinfo=UTC)))


def instance_change(server_id: str, instance_id: str, **props: str) -> Element:
    """Commands/Change of one occurrence: ServerId, InstanceId, ApplicationData."""
    element = Element(AS + "Change")
    element.add(AS + "ServerId", server_id)
    element.add(BASE + "InstanceId", instance_id)
    app = element.add(AS + "ApplicationData")
    for name, value in props.items():
        app.add(CAL + name, value)
    return element


def instance_delete(server_id: str, instance_id: str) -> Element:
    """Commands/Delete of one occurrence."""
    element = Element(AS + "Delete")
    element.add(AS + "ServerId", server_id)
    element.add(BASE + "InstanceId", instance_id)
    return element


class CalendarHarness(GroupwareHarness):
    """The harness with the real Calendar codec."""

    def start(self, body: Element | None, version: str = "16.1") -> "Deferred[CommandResponse]":
        return Deferred.fromCoroutine(
            SyncCommand(codecs=CODECS).run(self.ctx("Sync", version), body))

    def put(self, data: str) -> str:
        """Store an event on the server; its item id."""
        item = result_of(self.backend.add_item(self.user, self.collections[KIND_CALENDAR], data))
        return str(item.item_id)

    def event(self, item_id: str) -> Event:
        """The stored event."""
        found = result_of(self.backend.get_items(self.user, self.collections[KIND_CALENDAR],
                                                 [item_id]))
        return parse_ics(found[0].data)

    def revision(self) -> int:
        """The calendar collection's revision."""
        return int(result_of(self.backend.current_revision(
            self.user, self.collections[KIND_CALENDAR])))


class InstanceIdTests(SynchronousTestCase):
    """16.0 / 16.1 devices."""

    version = "16.1"

    def setUp(self) -> None:
        self.h = CalendarHarness()
        self.folder = self.h.folders[KIND_CALENDAR]
        self.series = self.h.put(weekly())
        self.once = self.h.put(single())
        self.key = self.h.initial(KIND_CALENDAR, self.version)
        answer = self.sync()
        self.assertEqual(2, len(answer.ops("Add")))

    def sync(self, *commands: Element):  # type: ignore[no-untyped-def]
        response = self.h.sync(sync_request(collection(self.folder, self.key,
                                                       commands=commands)), self.version)
        if response.body is None:
            return None
        answer = read_sync(response)[self.folder]
        self.assertEqual("1", answer.status)
        self.key = answer.key
        return answer

    def sid(self, item_id: str) -> str:
        return self.h.server_id(KIND_CALENDAR, item_id)

    def test_change_of_one_occurrence(self) -> None:
        answer = self.sync(instance_change(self.sid(self.series), "20240311T090000Z",
                                           Subject="Moved standup",
                                           StartTime="20240311T100000Z",
                                           EndTime="20240311T103000Z"))
        # A successful change gets no response (MS-ASCMD 2.2.3.24).
        self.assertEqual([], answer.responses)
        event = self.h.event(self.series)
        self.assertEqual("Standup", event.summary)
        self.assertEqual("FREQ=WEEKLY;COUNT=5", event.rrule)
        [occurrence] = event.exceptions
        self.assertEqual(datetime(2024, 3, 11, 9, 0, tzinfo=UTC),
                         occurrence.original_start.astimezone(UTC))  # type: ignore[union-attr]
        self.assertEqual("Moved standup", occurrence.summary)
        self.assertEqual(datetime(2024, 3, 11, 10, 0, tzinfo=UTC),
                         occurrence.start.astimezone(UTC))  # type: ignore[union-attr]
        # The device's own change is not echoed back.
        self.assertIsNone(self.sync())

    def test_delete_of_one_occurrence_keeps_the_series(self) -> None:
        answer = self.sync(instance_delete(self.sid(self.series), "20240318T090000Z"))
        self.assertEqual([], answer.responses)
        event = self.h.event(self.series)
        [occurrence] = event.exceptions
        self.assertTrue(occurrence.deleted)
        self.assertEqual(datetime(2024, 3, 18, 9, 0, tzinfo=UTC),
                         occurrence.original_start.astimezone(UTC))  # type: ignore[union-attr]
        self.assertIsNone(self.sync())

    def test_server_sends_exceptions_inside_the_master(self) -> None:
        """Consistent with CalendarCodec.to_eas for 16.x: a changed series goes
        out as one Change of the master whose Exceptions carry InstanceId."""
        self.sync(instance_delete(self.sid(self.series), "20240318T090000Z"))
        event = self.h.event(self.series)
        event.summary = "Standup (new room)"
        result_of(self.h.backend.update_item(self.h.user, self.h.collections[KIND_CALENDAR],
                                             self.series, write_ics(event)))
        response = self.h.sync(sync_request(collection(self.folder, self.key)), self.version)
        body = decode(encode(response.body))  # type: ignore[arg-type]
        changes = body.findall(f"{AS}Collections/{AS}Collection/{AS}Commands/{AS}Change")
        self.assertEqual([self.sid(self.series)], [c.findtext(AS + "ServerId") for c in changes])
        self.assertIsNone(changes[0].find(BASE + "InstanceId"))
        [exception] = changes[0].findall(
            f"{AS}ApplicationData/{CAL}Exceptions/{CAL}Exception")
        self.assertEqual("20240318T090000Z", exception.findtext(BASE + "InstanceId"))
        self.assertIsNone(exception.find(CAL + "ExceptionStartTime"))
        self.assertEqual("1", exception.findtext(CAL + "Deleted"))

    def test_failures_answer_with_server_id_instance_id_status(self) -> None:
        missing = self.sid("9999")
        answer = self.sync(
            instance_change(missing, "20240311T090000Z", Subject="x"),
            instance_delete(missing, "20240311T090000Z"),
            instance_change(self.sid(self.once), "20240305T090000Z", Subject="x"),
            instance_delete(self.sid(self.series), "not-a-date"),
        )
        got = [(r.name, [c.name for c in r.children], r.findtext(AS + "ServerId"),
                r.findtext(BASE + "InstanceId"), r.findtext(AS + "Status"))
               for r in answer.responses]
        order = ["ServerId", "InstanceId", "Status"]
        self.assertEqual([
            ("Change", order, missing, "20240311T090000Z", "8"),
            ("Delete", order, missing, "20240311T090000Z", "8"),
            # InstanceId of an event that does not recur / not a date: conversion error.
            ("Change", order, self.sid(self.once), "20240305T090000Z", "6"),
            ("Delete", order, self.sid(self.series), "not-a-date", "6"),
        ], got)
        self.assertEqual([], self.h.event(self.series).exceptions)
        self.assertEqual([], self.h.event(self.once).exceptions)

    def test_conflict_when_the_server_changed_the_series(self) -> None:
        event = self.h.event(self.series)
        event.summary = "Changed on the server"
        result_of(self.h.backend.update_item(self.h.user, self.h.collections[KIND_CALENDAR],
                                             self.series, write_ics(event)))
        answer = self.sync(instance_delete(self.sid(self.series), "20240318T090000Z"))
        [response] = answer.responses
        self.assertEqual(("Delete", "20240318T090000Z", "7"),
                         (response.name, response.findtext(BASE + "InstanceId"),
                          response.findtext(AS + "Status")))
        self.assertEqual([], self.h.event(self.series).exceptions)
        self.assertEqual([self.sid(self.series)], answer.ops("Change"))

    def test_retry_is_harmless(self) -> None:
        """The answer was lost and the device sends the same request again:
        the occurrence is still deleted once, and nothing is echoed."""
        before = self.key
        self.sync(instance_delete(self.sid(self.series), "20240318T090000Z"))
        self.key = before
        answer = self.sync(instance_delete(self.sid(self.series), "20240318T090000Z"))
        self.assertEqual([], answer.responses)
        self.assertEqual([], answer.commands)
        [occurrence] = self.h.event(self.series).exceptions
        self.assertTrue(occurrence.deleted)
        self.assertIsNone(self.sync())


class InstanceId160Tests(InstanceIdTests):
    """The same at 16.0."""

    version = "16.0"


class Version141Tests(SynchronousTestCase):
    """14.1 has no InstanceId: exceptions travel inside the master, keyed by
    ExceptionStartTime, and a Delete deletes the item."""

    def setUp(self) -> None:
        self.h = CalendarHarness()
        self.folder = self.h.folders[KIND_CALENDAR]
        self.series = self.h.put(weekly())
        self.key = self.h.initial(KIND_CALENDAR, "14.1")
        response = self.h.sync(sync_request(collection(self.folder, self.key)), "14.1")
        self.key = read_sync(response)[self.folder].key
        body = decode(encode(response.body))  # type: ignore[arg-type]
        [add] = body.findall(f"{AS}Collections/{AS}Collection/{AS}Commands/{AS}Add")
        #: What the device got: it sends it back with its changes.
        self.sent = add.find(AS + "ApplicationData")

    def test_instance_id_is_not_read_before_16(self) -> None:
        commands = Element(AS + "Commands")
        commands.append(instance_delete("1:2", "20240318T090000Z"))
        commands.append(instance_change("1:2", "20240318T090000Z", Subject="x"))
        self.assertEqual((ClientDelete("1:2"), ClientChange("1:2", commands.children[1].find(
            AS + "ApplicationData"))), parse_commands(commands, "14.1"))
        parsed = parse_commands(commands, "16.0")
        self.assertEqual(["20240318T090000Z"] * 2, [c.instance_id for c in parsed])

    def test_delete_is_of_the_whole_item(self) -> None:
        sid = self.h.server_id(KIND_CALENDAR, self.series)
        response = self.h.sync(sync_request(collection(self.folder, self.key, commands=[
            instance_delete(sid, "20240318T090000Z")])), "14.1")
        answer = read_sync(response)[self.folder]
        self.assertEqual([], answer.responses)
        _, ids = result_of(self.h.backend.list_items(self.h.user,
                                                     self.h.collections[KIND_CALENDAR]))
        self.assertEqual([], list(ids))

    def test_exceptions_inside_the_change(self) -> None:
        sid = self.h.server_id(KIND_CALENDAR, self.series)
        change = Element(AS + "Change")
        change.add(AS + "ServerId", sid)
        assert self.sent is not None
        self.assertIsNotNone(self.sent.find(CAL + "Recurrence"))
        self.assertIsNone(self.sent.find(CAL + "Exceptions"))
        app = change.add(AS + "ApplicationData")
        for child in self.sent.children:
            app.append(child)
        exceptions = app.add(CAL + "Exceptions")
        exception = exceptions.add(CAL + "Exception")
        exception.add(CAL + "Deleted", "1")
        exception.add(CAL + "ExceptionStartTime", "20240318T090000Z")
        response = self.h.sync(sync_request(collection(self.folder, self.key,
                                                       commands=[change])), "14.1")
        answer = read_sync(response)[self.folder]
        self.assertEqual([], answer.responses)
        [occurrence] = self.h.event(self.series).exceptions
        self.assertTrue(occurrence.deleted)
        self.assertEqual(datetime(2024, 3, 18, 9, 0, tzinfo=UTC),
                         occurrence.original_start.astimezone(UTC))  # type: ignore[union-attr]
        self.assertEqual("FREQ=WEEKLY;COUNT=5", self.h.event(self.series).rrule)
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, answer.key)),
                                      "14.1").body)


class OtherClassesTests(SynchronousTestCase):
    """An InstanceId on an item of a class without occurrences."""

    def test_contact_change_with_instance_id_is_status_6(self) -> None:
        h = GroupwareHarness()
        folder = h.folders[KIND_CONTACTS]
        item = h.add(KIND_CONTACTS, FileAs="Ann")
        key = h.initial(KIND_CONTACTS)
        key = read_sync(h.sync(sync_request(collection(folder, key))))[folder].key
        change = Element(AS + "Change")
        change.add(AS + "ServerId", h.server_id(KIND_CONTACTS, item))
        change.add(BASE + "InstanceId", "20240311T090000Z")
        change.add(AS + "ApplicationData").add("Contacts:FileAs", "Changed")
        answer = read_sync(h.sync(sync_request(collection(folder, key, commands=[
            change, instance_delete(h.server_id(KIND_CONTACTS, item), "20240311T090000Z")]))))
        self.assertEqual([("Change", "6"), ("Delete", "6")],
                         [(r.name, r.findtext(AS + "Status")) for r in answer[folder].responses])
        self.assertEqual({item: {"FileAs": "Ann"}}, h.items(KIND_CONTACTS))
