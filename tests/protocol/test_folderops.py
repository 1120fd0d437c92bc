"""FolderCreate, FolderUpdate, FolderDelete: statuses, the shared hierarchy
key, and the device's own changes never coming back in its FolderSync."""
from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS, KIND_NOTES, KIND_TASKS
from easyncd.protocol.collections import groupware_backend_id
from easyncd.protocol.commands.folderops import (
    FolderCreateCommand,
    FolderDeleteCommand,
    FolderUpdateCommand,
)
from easyncd.protocol.commands.foldersync import FolderSyncCommand
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.store.interfaces import HIERARCHY, Folder
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_clock, make_context, result_of

NS = "FolderHierarchy:"


def create(key: str | None, name: str | None, folder_type: str | None,
           parent: str | None = "0") -> Element:
    root = Element(NS + "FolderCreate")
    for tag, value in (("SyncKey", key), ("ParentId", parent), ("DisplayName", name),
                       ("Type", folder_type)):
        if value is not None:
            root.add(NS + tag, value)
    return root


def update(key: str, server_id: str, name: str, parent: str = "0") -> Element:
    root = Element(NS + "FolderUpdate")
    root.add(NS + "SyncKey", key)
    root.add(NS + "ServerId", server_id)
    root.add(NS + "ParentId", parent)
    root.add(NS + "DisplayName", name)
    return root


def delete(key: str, server_id: str) -> Element:
    root = Element(NS + "FolderDelete")
    root.add(NS + "SyncKey", key)
    root.add(NS + "ServerId", server_id)
    return root


def folder_sync(key: str) -> Element:
    root = Element(NS + "FolderSync")
    root.add(NS + "SyncKey", key)
    return root


def text(response: CommandResponse, tag: str) -> str | None:
    assert response.body is not None
    return response.body.findtext(NS + tag)


class FolderOpsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.groupware: Any = MemoryGroupwareBackend(clock=self.clock)
        self.assertEqual(text(self.sync("0"), "SyncKey"), "1")

    def ctx(self, command: str, device_id: str = "dev1",
            services: dict[str, Any] | None = None) -> CommandContext:
        return make_context(
            self.store, command, device_id=device_id, clock=self.clock,
            services={"groupware": self.groupware} if services is None else services,
        )

    def sync(self, key: str, device_id: str = "dev1") -> CommandResponse:
        return result_of(FolderSyncCommand().run(self.ctx("FolderSync", device_id),
                                                 folder_sync(key)))

    def run_create(self, body: Element, **kwargs: Any) -> CommandResponse:
        response = result_of(FolderCreateCommand().run(self.ctx("FolderCreate", **kwargs), body))
        assert response.body is not None
        self.assertEqual(response.body.tag, NS + "FolderCreate")
        self.assertEqual(decode(encode(response.body)), response.body)
        return response

    def run_update(self, body: Element) -> CommandResponse:
        return result_of(FolderUpdateCommand().run(self.ctx("FolderUpdate"), body))

    def run_delete(self, body: Element) -> CommandResponse:
        return result_of(FolderDeleteCommand().run(self.ctx("FolderDelete"), body))

    def folders(self) -> list[Folder]:
        return list(result_of(self.store.list_folders("alice")))

    def folder(self, name: str) -> Folder:
        return next(f for f in self.folders() if f.display_name == name)

    def collections(self, kind: str) -> dict[str, str]:
        return {c.display_name: c.collection_id
                for c in result_of(self.groupware.list_collections("alice", kind))}

    def changes(self, response: CommandResponse) -> list[tuple[str, str]]:
        assert response.body is not None
        block = response.body.find(NS + "Changes")
        assert block is not None
        return [(c.name, c.findtext(NS + "DisplayName") or c.findtext(NS + "ServerId") or "")
                for c in block.children if c.tag != NS + "Count"]

    # -- FolderCreate ------------------------------------------------------------------

    def test_create_each_class(self) -> None:
        key = 1
        for folder_type, kind in (("13", KIND_CALENDAR), ("14", KIND_CONTACTS),
                                  ("15", KIND_TASKS), ("17", KIND_NOTES)):
            response = self.run_create(create(str(key), "Extra " + folder_type, folder_type))
            self.assertEqual(text(response, "Status"), "1")
            self.assertEqual(text(response, "SyncKey"), str(key + 1))
            assert response.body is not None
            self.assertEqual([c.name for c in response.body.children],
                             ["Status", "SyncKey", "ServerId"])
            key += 1
            folder = self.folder("Extra " + folder_type)
            self.assertEqual(text(response, "ServerId"), folder.server_id)
            self.assertEqual(folder.folder_type, int(folder_type))
            self.assertEqual(folder.parent_id, "0")
            collection_id = self.collections(kind)["Extra " + folder_type]
            self.assertEqual(folder.backend_id, groupware_backend_id(collection_id))
        # The device knows its own folders: its FolderSync has nothing new.
        response = self.sync(str(key))
        self.assertEqual(text(response, "SyncKey"), str(key))
        self.assertEqual(self.changes(response), [])
        # Another device sees them as Adds.
        self.assertEqual(text(self.sync("0", device_id="dev2"), "Changes/" + NS + "Count"), "8")

    def test_create_does_not_hide_other_changes(self) -> None:
        result_of(self.groupware.create_collection("alice", KIND_CALENDAR, "Trips"))
        self.sync("0", device_id="dev2")  # the server-side change reaches the table
        response = self.run_create(create("1", "Family", "14"))
        self.assertEqual(text(response, "SyncKey"), "2")
        result_of(self.groupware.create_collection("alice", KIND_TASKS, "Chores"))
        answer = self.sync("2")
        self.assertEqual(text(answer, "SyncKey"), "3")
        self.assertEqual(sorted(self.changes(answer)), [("Add", "Chores"), ("Add", "Trips")])
        # Renaming the own folder on the server later is an Update.
        family = self.collections(KIND_CONTACTS)["Family"]
        result_of(self.groupware.rename_collection("alice", family, "Kin"))
        self.assertEqual(self.changes(self.sync("3")), [("Update", "Kin")])

    def test_create_statuses(self) -> None:
        result_of(self.groupware.create_collection("alice", KIND_CALENDAR, "Trips"))
        self.sync("0", device_id="dev2")
        contacts = self.folder("Contacts").server_id
        cases = [
            (create("1", "Contacts", "14"), "2"),      # a folder has that name
            (create("1", "Trips", "14"), "2"),         # also in another class
            (create("1", "X", "14", parent="999"), "5"),   # no such parent
            (create("1", "X", "14", parent=contacts), "3"),  # no sub-folders
            (create("1", "X", "12"), "10"),            # mail folders: not here
            (create("1", "X", "9"), "10"),             # a default type
            (create("1", "X", "16"), "10"),            # journal
            (create("1", "X", "abc"), "10"),
            (create("1", "", "14"), "10"),
            (create("1", "X", None), "10"),
            (create("1", "X", "14", parent=None), "10"),
            (create(None, "X", "14"), "10"),
            (create("7", "X", "14"), "9"),
            (create("0", "X", "14"), "9"),
            (create("x", "X", "14"), "9"),
        ]
        before = self.folders()
        for body, status in cases:
            response = self.run_create(body)
            self.assertEqual(text(response, "Status"), status, body.to_xml())
            self.assertIsNone(text(response, "SyncKey"))
            self.assertEqual(response.status, status)
        self.assertEqual(self.folders(), before)
        self.assertEqual(result_of(self.store.get_sync_state("dev1", "alice", HIERARCHY))
                         .sync_key, 1)
        self.assertNotIn("X", self.collections(KIND_CONTACTS))
        wrong = result_of(FolderCreateCommand().run(self.ctx("FolderCreate"),
                                                    Element(NS + "FolderSync")))
        self.assertEqual(text(wrong, "Status"), "10")

    def test_create_key_of_another_device_is_invalid(self) -> None:
        response = self.run_create(create("1", "X", "14"), device_id="dev3")
        self.assertEqual(text(response, "Status"), "9")

    def test_create_retry_gets_the_same_folder(self) -> None:
        first = self.run_create(create("1", "Family", "14"))
        again = self.run_create(create("1", "Family", "14"))
        self.assertEqual((text(again, "Status"), text(again, "SyncKey"),
                          text(again, "ServerId")),
                         ("1", "2", text(first, "ServerId")))
        self.assertEqual(list(self.collections(KIND_CONTACTS)).count("Family"), 1)
        # A different folder with the old key is refused.
        self.assertEqual(text(self.run_create(create("1", "Other", "14")), "Status"), "9")

    def test_create_without_groupware_backend(self) -> None:
        response = self.run_create(create("1", "X", "14"), services={})
        self.assertEqual(text(response, "Status"), "6")

    # -- FolderUpdate --------------------------------------------------------------------

    def test_rename(self) -> None:
        created = self.run_create(create("1", "Family", "14"))
        server_id = text(created, "ServerId") or ""
        response = self.run_update(update("2", server_id, "Kin"))
        self.assertEqual((text(response, "Status"), text(response, "SyncKey")), ("1", "3"))
        assert response.body is not None
        self.assertEqual([c.name for c in response.body.children], ["Status", "SyncKey"])
        self.assertIn("Kin", self.collections(KIND_CONTACTS))
        self.assertNotIn("Family", self.collections(KIND_CONTACTS))
        self.assertEqual(self.folder("Kin").server_id, server_id)
        # No echo, and other devices see the new name.
        self.assertEqual(self.changes(self.sync("3")), [])
        self.assertIn(("Add", "Kin"), self.changes(self.sync("0", device_id="dev2")))
        # A retry of the same rename with the previous key succeeds again.
        again = self.run_update(update("2", server_id, "Kin"))
        self.assertEqual((text(again, "Status"), text(again, "SyncKey")), ("1", "3"))

    def test_update_statuses(self) -> None:
        family = text(self.run_create(create("1", "Family", "14")), "ServerId") or ""
        self.run_create(create("2", "Trips", "13"))
        contacts = self.folder("Contacts").server_id
        cases = [
            (update("3", family, "Trips"), "2"),       # name taken
            (update("3", contacts, "People"), "2"),    # special folder
            (update("3", "999", "X"), "4"),            # no such folder
            (update("3", family, "X", parent="999"), "5"),
            (update("3", family, "X", parent=contacts), "5"),  # flat
            (update("9", family, "X"), "9"),
        ]
        for body, status in cases:
            response = self.run_update(body)
            self.assertEqual(text(response, "Status"), status, body.to_xml())
            self.assertIsNone(text(response, "SyncKey"))
        self.assertEqual(self.folder("Family").server_id, family)
        self.assertIn("Contacts", self.collections(KIND_CONTACTS))
        bad = Element(NS + "FolderUpdate")
        bad.add(NS + "SyncKey", "3")
        self.assertEqual(text(self.run_update(bad), "Status"), "10")

    # -- FolderDelete ----------------------------------------------------------------------

    def test_delete(self) -> None:
        family = text(self.run_create(create("1", "Family", "14")), "ServerId") or ""
        response = self.run_delete(delete("2", family))
        self.assertEqual((text(response, "Status"), text(response, "SyncKey")), ("1", "3"))
        self.assertNotIn("Family", self.collections(KIND_CONTACTS))
        self.assertNotIn(family, {f.server_id for f in self.folders()})
        self.assertEqual(self.changes(self.sync("3")), [])
        again = self.run_delete(delete("2", family))
        self.assertEqual((text(again, "Status"), text(again, "SyncKey")), ("1", "3"))

    def test_delete_a_folder_the_server_renamed_meanwhile(self) -> None:
        family = text(self.run_create(create("1", "Family", "14")), "ServerId") or ""
        result_of(self.groupware.rename_collection(
            "alice", self.collections(KIND_CONTACTS)["Family"], "Kin"))
        self.sync("0", device_id="dev2")  # the rename reaches the folders table
        self.assertEqual(text(self.run_delete(delete("2", family)), "Status"), "1")
        # Neither the rename nor the delete comes back.
        self.assertEqual(self.changes(self.sync("3")), [])

    def test_delete_statuses(self) -> None:
        calendar = self.folder("Calendar").server_id
        for body, status in ((delete("1", calendar), "3"), (delete("1", "999"), "4"),
                             (delete("5", calendar), "9")):
            response = self.run_delete(body)
            self.assertEqual(text(response, "Status"), status)
            self.assertIsNone(text(response, "SyncKey"))
        self.assertIn("Calendar", self.collections(KIND_CALENDAR))
        bad = Element(NS + "FolderDelete")
        bad.add(NS + "SyncKey", "1")
        self.assertEqual(text(self.run_delete(bad), "Status"), "10")
