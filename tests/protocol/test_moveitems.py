"""MoveItems between groupware collections of one class."""
from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS
from easyncd.protocol.collections import groupware_backend_id
from easyncd.protocol.commands.foldersync import FolderSyncCommand
from easyncd.protocol.commands.moveitems import MoveItemsCommand
from easyncd.protocol.context import CommandResponse
from easyncd.protocol.serverids import item_id_in, item_server_id, split_server_id
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_context, result_of

NS = "Move:"

VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:;{name};;;\r\nEND:VCARD\r\n"


def request(*moves: tuple[str, str, str]) -> Element:
    root = Element(NS + "MoveItems")
    for source, source_folder, destination_folder in moves:
        move = root.add(NS + "Move")
        move.add(NS + "SrcMsgId", source)
        move.add(NS + "SrcFldId", source_folder)
        move.add(NS + "DstFldId", destination_folder)
    return root


def responses(response: CommandResponse) -> list[tuple[str, str, str | None]]:
    assert response.body is not None
    return [(r.findtext(NS + "SrcMsgId") or "", r.findtext(NS + "Status") or "",
             r.findtext(NS + "DstMsgId")) for r in response.body.findall(NS + "Response")]


class MoveItemsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.groupware: Any = MemoryGroupwareBackend(clock=self.clock)
        self.family = result_of(self.groupware.create_collection("alice", KIND_CONTACTS,
                                                                 "Family"))
        result_of(FolderSyncCommand().run(self.ctx("FolderSync"), Element(
            "FolderHierarchy:FolderSync", children=[Element("FolderHierarchy:SyncKey", "0")])))
        folders = {f.display_name: f for f in result_of(self.store.list_folders("alice"))}
        self.contacts_folder = folders["Contacts"].server_id
        self.family_folder = folders["Family"].server_id
        self.calendar_folder = folders["Calendar"].server_id
        self.contacts = folders["Contacts"].backend_id.split(":", 1)[1]
        self.item = result_of(self.groupware.add_item(
            "alice", self.contacts, VCARD.format(uid="u1", name="Ann")))
        self.server_id = item_server_id(self.contacts_folder, self.item.item_id)

    def ctx(self, command: str = "MoveItems", version: str = "16.1",
            services: dict[str, Any] | None = None) -> Any:
        return make_context(
            self.store, command, version=version, clock=self.clock,
            services={"groupware": self.groupware} if services is None else services,
        )

    def move(self, body: Element, **kwargs: Any) -> CommandResponse:
        response = result_of(MoveItemsCommand().run(self.ctx(**kwargs), body))
        if response.body is not None:
            self.assertEqual(decode(encode(response.body)), response.body)
        return response

    def test_move_to_another_collection_of_the_class(self) -> None:
        response = self.move(request((self.server_id, self.contacts_folder, self.family_folder)))
        [(source, status, destination)] = responses(response)
        self.assertEqual((source, status), (self.server_id, "3"))
        self.assertEqual(response.status, "3")
        assert destination is not None
        folder, item_id = split_server_id(destination) or ("", "")
        self.assertEqual(folder, self.family_folder)
        self.assertEqual(result_of(self.groupware.list_items("alice", self.contacts))[1], [])
        [moved] = result_of(self.groupware.get_items("alice", self.family.collection_id,
                                                     [item_id]))
        self.assertEqual(moved.data, self.item.data)
        assert response.body is not None
        self.assertEqual([c.name for c in response.body.children[0].children],
                         ["SrcMsgId", "Status", "DstMsgId"])

    def test_statuses_per_move(self) -> None:
        other = result_of(self.groupware.add_item("alice", self.contacts,
                                                  VCARD.format(uid="u2", name="Bob")))
        other_id = item_server_id(self.contacts_folder, other.item_id)
        missing = item_server_id(self.contacts_folder, "9999")
        response = self.move(request(
            (missing, self.contacts_folder, self.family_folder),                 # no item
            (self.server_id, self.family_folder, self.contacts_folder),          # wrong src
            (self.server_id, "999", self.family_folder),                         # no folder
            ("garbage", self.contacts_folder, self.family_folder),               # bad id
            (self.server_id, self.contacts_folder, "999"),                       # no dest
            (self.server_id, self.contacts_folder, self.calendar_folder),        # other class
            (self.server_id, self.contacts_folder, self.contacts_folder),        # same folder
            (other_id, self.contacts_folder, self.family_folder),                # fine
        ))
        found = responses(response)
        self.assertEqual([s for _, s, _ in found], ["1", "1", "1", "1", "2", "2", "4", "3"])
        self.assertEqual([d is None for _, _, d in found], [True] * 7 + [False])
        self.assertEqual(found[0][0], missing)
        self.assertEqual(response.status, "1")
        # Only the last move happened.
        self.assertEqual(result_of(self.groupware.list_items("alice", self.contacts))[1],
                         [self.item.item_id])
        calendar = next(c for c in result_of(self.groupware.list_collections("alice"))
                        if c.kind == KIND_CALENDAR)
        self.assertEqual(result_of(self.groupware.list_items("alice",
                                                             calendar.collection_id))[1], [])

    def test_moved_item_cannot_be_moved_from_its_old_place(self) -> None:
        self.move(request((self.server_id, self.contacts_folder, self.family_folder)))
        again = self.move(request((self.server_id, self.contacts_folder, self.family_folder)))
        self.assertEqual(responses(again)[0][1], "1")

    def test_without_groupware_backend(self) -> None:
        response = self.move(request((self.server_id, self.contacts_folder, self.family_folder)),
                             services={})
        self.assertEqual(responses(response)[0][1], "5")

    def test_backend_failure_is_status_5(self) -> None:
        self.groupware.fail_history_writes = True
        response = self.move(request((self.server_id, self.contacts_folder, self.family_folder)))
        self.assertEqual(responses(response)[0][1], "5")
        self.flushLoggedErrors()
        self.assertEqual(result_of(self.groupware.list_items("alice", self.contacts))[1],
                         [self.item.item_id])

    def test_malformed_request(self) -> None:
        for body in (None, Element(NS + "MoveItems"), Element("FolderHierarchy:FolderSync")):
            response = self.move(body)  # type: ignore[arg-type]
            assert response.body is not None
            self.assertEqual(response.body.findtext(NS + "Status"), "103")
            old = result_of(MoveItemsCommand().run(self.ctx(version="12.1"), body))
            self.assertEqual((old.http_status, old.body), (400, None))

    def test_server_id_helpers(self) -> None:
        self.assertEqual(split_server_id("5:17"), ("5", "17"))
        self.assertEqual(split_server_id("5:a:b"), ("5", "a:b"))
        for bad in ("5", ":3", "5:", ""):
            self.assertIsNone(split_server_id(bad))
        self.assertEqual(item_server_id("5", "17"), "5:17")
        self.assertEqual(item_id_in("5", "5:a:b"), "a:b")
        for other in ("6:17", "55:17", "5", "5:"):
            self.assertIsNone(item_id_in("5", other))
        self.assertEqual(groupware_backend_id(self.family.collection_id),
                         f"groupware:{self.family.collection_id}")
