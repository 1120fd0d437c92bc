"""MoveItems and EmptyFolderContents -> Sync: the device that moved or
emptied has done it locally already, so its next Sync does not get the
Delete/Add back; other devices do."""
from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS
from easyncd.protocol.collections import groupware_backend_id
from easyncd.protocol.commands.itemoperations import ItemOperationsCommand
from easyncd.protocol.commands.moveitems import MoveItemsCommand
from easyncd.protocol.commands.ping import device_behind
from easyncd.protocol.commands.sync import SyncCommand
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.serverids import split_server_id
from easyncd.protocol.sync.marks import record_device_writes
from easyncd.protocol.sync.state import CollectionState
from easyncd.wbxml import Element
from tests.protocol.groupware_helpers import (
    AS,
    STUB_CODECS,
    CollectionAnswer,
    GroupwareHarness,
    collection,
    eas_time,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import START_TIME, make_context, result_of

MOVE = "Move:"
IO = "ItemOperations:"


class Devices:
    """Two devices of one user over one harness, each with its own keys."""

    def __init__(self, h: GroupwareHarness) -> None:
        self.h = h
        self.keys: dict[tuple[str, str], str] = {}

    def ctx(self, device: str, command: str) -> CommandContext:
        h = self.h
        return make_context(h.store, command, "16.1", h.user, device, clock=h.clock,
                            services={"groupware": h.backend, "push": h.hub})

    def sync(self, device: str, folder: str, filter_type: int | None = None
             ) -> CollectionAnswer | None:
        """One Sync of a folder (starting at key 0 the first time)."""
        key = self.keys.get((device, folder), "0")
        body = sync_request(collection(folder, key, filter_type=filter_type))
        response: CommandResponse = result_of(Deferred.fromCoroutine(
            SyncCommand(codecs=STUB_CODECS).run(self.ctx(device, "Sync"), body)))
        if response.body is None:
            return None
        answer = read_sync(response)[folder]
        assert answer.status == "1", answer
        self.keys[(device, folder)] = answer.key
        return answer

    def catch_up(self, device: str, folder: str, filter_type: int | None = None) -> None:
        """Sync until nothing is left."""
        while True:
            answer = self.sync(device, folder, filter_type)
            if answer is None or (not answer.more and self.keys[(device, folder)] != "1"):
                return

    def move(self, device: str, server_id: str, source: str, destination: str) -> str:
        """MoveItems of one item; the new ServerId."""
        body = Element(MOVE + "MoveItems")
        move = body.add(MOVE + "Move")
        move.add(MOVE + "SrcMsgId", server_id)
        move.add(MOVE + "SrcFldId", source)
        move.add(MOVE + "DstFldId", destination)
        response = result_of(Deferred.fromCoroutine(
            MoveItemsCommand().run(self.ctx(device, "MoveItems"), body)))
        assert response.body is not None
        answer = response.body.find(MOVE + "Response")
        assert answer is not None and answer.findtext(MOVE + "Status") == "3"
        return answer.findtext(MOVE + "DstMsgId") or ""

    def empty(self, device: str, folder: str) -> None:
        """ItemOperations EmptyFolderContents."""
        body = Element(IO + "ItemOperations")
        body.add(IO + "EmptyFolderContents").add(AS + "CollectionId", folder)
        response = result_of(Deferred.fromCoroutine(
            ItemOperationsCommand().run(self.ctx(device, "ItemOperations"), body)))
        assert response.body is not None
        status = response.body.findtext(f"{IO}Response/{IO}EmptyFolderContents/{IO}Status")
        assert status == "1", status

    def state(self, device: str, folder: str) -> CollectionState:
        stored = result_of(self.h.store.get_sync_state(device, self.h.user, folder))
        state = CollectionState.from_text(stored.state)
        assert state is not None
        return state


class MoveItemsThenSyncTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.d = Devices(self.h)
        family = result_of(self.h.backend.create_collection(self.h.user, KIND_CONTACTS,
                                                            "Family"))
        self.family_id = family.collection_id
        self.family = result_of(self.h.store.add_folder(
            self.h.user, "0", "Family", 14, groupware_backend_id(family.collection_id))).server_id
        self.contacts = self.h.folders[KIND_CONTACTS]
        self.ann = self.h.add(KIND_CONTACTS, FileAs="Ann")
        self.bob = self.h.add(KIND_CONTACTS, FileAs="Bob")
        for device in ("dev1", "dev2"):
            for folder in (self.contacts, self.family):
                self.d.catch_up(device, folder)

    def test_the_moving_device_does_not_get_the_move_back(self) -> None:
        moved = self.d.move("dev1", self.h.server_id(KIND_CONTACTS, self.ann),
                            self.contacts, self.family)
        self.assertIsNone(self.d.sync("dev1", self.contacts))
        self.assertIsNone(self.d.sync("dev1", self.family))
        # Another device hears of it.
        gone = self.d.sync("dev2", self.contacts)
        came = self.d.sync("dev2", self.family)
        assert gone is not None and came is not None
        self.assertEqual([("Delete", self.h.server_id(KIND_CONTACTS, self.ann))],
                         [(op, sid) for op, sid, _ in gone.commands])
        self.assertEqual([("Add", moved, {"FileAs": "Ann"})], came.commands)

    def test_later_changes_of_the_moved_item_do_reach_the_mover(self) -> None:
        moved = self.d.move("dev1", self.h.server_id(KIND_CONTACTS, self.ann),
                            self.contacts, self.family)
        self.assertIsNone(self.d.sync("dev1", self.family))
        parts = split_server_id(moved)
        assert parts is not None
        result_of(self.h.backend.update_item(
            self.h.user, self.family_id, parts[1],
            STUB_CODECS[KIND_CONTACTS].format({"FileAs": "Ann B."})))
        answer = self.d.sync("dev1", self.family)
        assert answer is not None
        self.assertEqual([("Change", moved, {"FileAs": "Ann B."})], answer.commands)
        # The marks are gone once the key covers them.
        self.assertEqual({}, self.d.state("dev1", self.family).own)

    def test_ping_is_not_woken_by_the_add(self) -> None:
        self.d.move("dev1", self.h.server_id(KIND_CONTACTS, self.ann),
                    self.contacts, self.family)
        stored = result_of(self.h.store.get_sync_state("dev1", self.h.user, self.family))
        current = result_of(self.h.backend.current_revision(self.h.user, self.family_id))
        self.assertFalse(device_behind(stored.state, current))
        other = result_of(self.h.store.get_sync_state("dev2", self.h.user, self.family))
        self.assertTrue(device_behind(other.state, current))

    def test_the_key_stays_the_one_the_device_has(self) -> None:
        key = self.d.keys[("dev1", self.contacts)]
        self.d.move("dev1", self.h.server_id(KIND_CONTACTS, self.ann),
                    self.contacts, self.family)
        stored = result_of(self.h.store.get_sync_state("dev1", self.h.user, self.contacts))
        self.assertEqual(key, str(stored.sync_key))
        # And it still works with other server changes in between.
        carl = self.h.add(KIND_CONTACTS, FileAs="Carl")
        answer = self.d.sync("dev1", self.contacts)
        assert answer is not None
        self.assertEqual([("Add", self.h.server_id(KIND_CONTACTS, carl))],
                         [(op, sid) for op, sid, _ in answer.commands])

    def test_move_into_a_folder_the_device_never_synced(self) -> None:
        work = result_of(self.h.backend.create_collection(self.h.user, KIND_CONTACTS, "Work"))
        work_folder = result_of(self.h.store.add_folder(
            self.h.user, "0", "Work", 14, groupware_backend_id(work.collection_id))).server_id
        moved = self.d.move("dev1", self.h.server_id(KIND_CONTACTS, self.bob),
                            self.contacts, work_folder)
        self.assertIsNone(self.d.sync("dev1", self.contacts))
        self.assertIsNone(result_of(self.h.store.get_sync_state("dev1", self.h.user,
                                                                work_folder)))
        self.d.sync("dev1", work_folder)
        answer = self.d.sync("dev1", work_folder)
        assert answer is not None
        self.assertEqual([("Add", moved)], [(op, sid) for op, sid, _ in answer.commands])

    def test_no_state_and_damaged_state_are_left_alone(self) -> None:
        ctx = self.d.ctx("dev3", "MoveItems")
        self.assertFalse(result_of(Deferred.fromCoroutine(
            record_device_writes(ctx, self.family, deleted=["1"]))))


class FilteredMoveTests(SynchronousTestCase):
    """With a FilterType the state lists what the device holds: the moved
    item counts as held in the destination."""

    def test_moved_event_is_held_in_the_destination(self) -> None:
        h = GroupwareHarness()
        d = Devices(h)
        other = result_of(h.backend.create_collection(h.user, KIND_CALENDAR, "Trips"))
        trips = result_of(h.store.add_folder(
            h.user, "0", "Trips", 13, groupware_backend_id(other.collection_id))).server_id
        cal = h.folders[KIND_CALENDAR]
        soon = eas_time(START_TIME + 86400)
        event = h.add(KIND_CALENDAR, Subject="Flight", EndTime=soon)
        for folder in (cal, trips):
            d.catch_up("dev1", folder, filter_type=4)
        moved = d.move("dev1", h.server_id(KIND_CALENDAR, event), cal, trips)
        new_id = (split_server_id(moved) or ("", ""))[1]
        self.assertIsNone(d.sync("dev1", cal, filter_type=4))
        self.assertIsNone(d.sync("dev1", trips, filter_type=4))
        self.assertEqual(frozenset({new_id}), d.state("dev1", trips).held)
        self.assertEqual(frozenset(), d.state("dev1", cal).held)
        result_of(h.backend.update_item(h.user, other.collection_id, new_id,
                                        STUB_CODECS[KIND_CALENDAR].format(
                                            {"Subject": "Flight (delayed)", "EndTime": soon})))
        answer = d.sync("dev1", trips, filter_type=4)
        assert answer is not None
        self.assertEqual([("Change", moved)], [(op, sid) for op, sid, _ in answer.commands])


class EmptyFolderThenSyncTests(SynchronousTestCase):
    def test_the_emptying_device_gets_no_deletes(self) -> None:
        h = GroupwareHarness()
        d = Devices(h)
        folder = h.folders[KIND_CONTACTS]
        ids = [h.add(KIND_CONTACTS, FileAs=f"c{n}") for n in range(30)]
        for device in ("dev1", "dev2"):
            d.catch_up(device, folder)
        d.empty("dev1", folder)
        self.assertIsNone(d.sync("dev1", folder))
        answer = d.sync("dev2", folder)
        assert answer is not None
        self.assertEqual(sorted(h.server_id(KIND_CONTACTS, i) for i in ids),
                         sorted(answer.ops("Delete")))
        # New items after the emptying reach both.
        new = h.add(KIND_CONTACTS, FileAs="new")
        for device in ("dev1", "dev2"):
            got = d.sync(device, folder)
            assert got is not None
            self.assertEqual([h.server_id(KIND_CONTACTS, new)], got.ops("Add"))
        self.assertEqual({}, d.state("dev1", folder).own)

