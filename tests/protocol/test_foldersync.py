"""FolderSync: initial sync, sync keys, retries, incremental changes, and the
groupware collections shown as folders."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import (
    KIND_CALENDAR,
    KIND_CONTACTS,
    KIND_NOTES,
    KIND_TASKS,
    Collection,
)
from easyncd.protocol.collections import groupware_backend_id
from easyncd.protocol.commands.foldersync import (
    FolderSyncCommand,
    HierarchyPoint,
    hierarchy_changes,
    parse_sync_key,
)
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.folders import (
    DEFAULT_TYPE_OF_KIND,
    TYPE_CALENDAR,
    TYPE_CONTACTS,
    TYPE_NOTES,
    TYPE_TASKS,
    TYPE_USER_CALENDAR,
    TYPE_USER_CONTACTS,
    TYPE_USER_NOTES,
    TYPE_USER_TASKS,
    USER_TYPE_OF_KIND,
    folder_type_of,
    parents_first,
    reconcile_groupware_folders,
    visible_folders,
)
from easyncd.store.interfaces import HIERARCHY, Folder, SyncStateConflict
from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import (
    dispatch_sync,
    make_clock,
    make_context,
    provision_device,
    result_of,
)

NS = "FolderHierarchy:"


def request(key: str | None) -> Element:
    root = Element(NS + "FolderSync")
    if key is not None:
        root.add(NS + "SyncKey", key)
    return root


def adds(response: CommandResponse) -> list[tuple[str, str, str, str]]:
    assert response.body is not None
    return [
        (
            e.findtext(NS + "ServerId") or "",
            e.findtext(NS + "ParentId") or "",
            e.findtext(NS + "DisplayName") or "",
            e.findtext(NS + "Type") or "",
        )
        for e in response.body.findall(NS + "Changes/" + NS + "Add")
    ]


def collection(groupware: Any, user: str, kind: str, name: str | None = None) -> Collection:
    """The user's collection of ``kind`` named ``name`` (the default one if None)."""
    for found in result_of(groupware.list_collections(user, kind)):
        if (name is None and found.is_default) or found.display_name == name:
            return found  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} collection {name}")


class FolderSyncTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.groupware: Any = MemoryGroupwareBackend(clock=self.clock)

    def ctx(self, version: str = "16.1", user: str = "alice") -> CommandContext:
        return make_context(self.store, "FolderSync", version=version, user=user,
                            clock=self.clock, services={"groupware": self.groupware})

    def sync(self, key: str | None, version: str = "16.1", user: str = "alice") -> CommandResponse:
        return result_of(FolderSyncCommand().run(self.ctx(version, user), request(key)))

    def status(self, response: CommandResponse) -> str | None:
        assert response.body is not None
        return response.body.findtext(NS + "Status")

    def key(self, response: CommandResponse) -> str | None:
        assert response.body is not None
        return response.body.findtext(NS + "SyncKey")

    def count(self, response: CommandResponse) -> str | None:
        assert response.body is not None
        return response.body.findtext(NS + "Changes/" + NS + "Count")

    def hierarchy_state(self, user: str = "alice"):  # type: ignore[no-untyped-def]
        return result_of(self.store.get_sync_state("dev1", user, HIERARCHY))

    def folder_id(self, name: str, user: str = "alice") -> str:
        for folder in result_of(self.store.list_folders(user)):
            if folder.display_name == name:
                return str(folder.server_id)
        raise AssertionError(f"no folder {name}")

    # -- initial sync ------------------------------------------------------------

    def test_initial_sync_16_1_sends_defaults_with_notes(self) -> None:
        response = self.sync("0")
        self.assertEqual(self.status(response), "1")
        self.assertEqual(response.status, "1")
        self.assertEqual(self.key(response), "1")
        found = adds(response)
        self.assertEqual(self.count(response), "4")
        self.assertEqual(
            sorted((name, kind, parent) for _, parent, name, kind in found),
            [("Calendar", "8", "0"), ("Contacts", "9", "0"),
             ("Notes", "10", "0"), ("Tasks", "7", "0")],
        )
        # Server ids are unique and the store knows them.
        ids = {sid for sid, _, _, _ in found}
        self.assertEqual(len(ids), 4)
        self.assertEqual(ids, {f.server_id for f in result_of(self.store.list_folders("alice"))})
        state = self.hierarchy_state()
        self.assertEqual(state.sync_key, 1)
        self.assertEqual(state.state, str(result_of(self.store.folder_revision("alice"))))
        # The response encodes to WBXML and back unchanged.
        assert response.body is not None
        self.assertEqual(decode(encode(response.body)), response.body)

    def test_initial_sync_12_1_hides_notes(self) -> None:
        response = self.sync("0", version="12.1")
        self.assertEqual(self.status(response), "1")
        names = sorted(name for _, _, name, _ in adds(response))
        self.assertEqual(names, ["Calendar", "Contacts", "Tasks"])
        self.assertEqual(self.count(response), "3")
        # The folder still exists for the user; only this client does not see it.
        live = result_of(self.store.list_folders("alice"))
        self.assertIn("Notes", {f.display_name for f in live})

    def test_initial_sync_14_0_shows_notes(self) -> None:
        names = sorted(name for _, _, name, _ in adds(self.sync("0", version="14.0")))
        self.assertEqual(names, ["Calendar", "Contacts", "Notes", "Tasks"])

    def test_initial_sync_registers_unprovisioned_account(self) -> None:
        self.assertIsNone(result_of(self.store.get_account("dev1", "alice")))
        self.sync("0")
        account = result_of(self.store.get_account("dev1", "alice"))
        assert account is not None
        self.assertEqual(account.user, "alice")

    def test_defaults_created_once(self) -> None:
        self.sync("0")
        first = result_of(self.store.list_folders("alice"))
        self.sync("0")
        self.assertEqual(result_of(self.store.list_folders("alice")), first)

    # -- same key, changes ------------------------------------------------------------

    def test_same_key_without_changes_keeps_key(self) -> None:
        self.sync("0")
        before = self.hierarchy_state()
        response = self.sync("1")
        self.assertEqual(self.status(response), "1")
        self.assertEqual(self.key(response), "1")
        self.assertEqual(self.count(response), "0")
        self.assertEqual(adds(response), [])
        self.assertEqual(self.hierarchy_state(), before)

    def test_incremental_add_update_delete(self) -> None:
        """Collections created, renamed and deleted on the server."""
        self.sync("0")
        family = result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "Family"))
        response = self.sync("1")
        self.assertEqual(self.key(response), "2")
        self.assertEqual(self.count(response), "1")
        new = result_of(self.store.list_folders("alice"))[-1]
        self.assertEqual(new.backend_id, groupware_backend_id(family.collection_id))
        self.assertEqual(adds(response), [(new.server_id, "0", "Family", "14")])

        calendar = self.folder_id("Calendar")
        result_of(self.groupware.rename_collection(
            "alice", collection(self.groupware, "alice", KIND_CALENDAR).collection_id,
            "Agenda"))
        response = self.sync("2")
        self.assertEqual(self.key(response), "3")
        assert response.body is not None
        updates = response.body.findall(NS + "Changes/" + NS + "Update")
        self.assertEqual(len(updates), 1)
        self.assertEqual(updates[0].findtext(NS + "ServerId"), calendar)
        self.assertEqual(updates[0].findtext(NS + "DisplayName"), "Agenda")
        self.assertEqual(updates[0].findtext(NS + "ParentId"), "0")
        self.assertEqual(updates[0].findtext(NS + "Type"), str(TYPE_CALENDAR))

        result_of(self.groupware.delete_collection("alice", family.collection_id))
        response = self.sync("3")
        self.assertEqual(self.key(response), "4")
        self.assertEqual(self.count(response), "1")
        assert response.body is not None
        deletes = response.body.findall(NS + "Changes/" + NS + "Delete")
        self.assertEqual([d.findtext(NS + "ServerId") for d in deletes], [new.server_id])
        self.assertEqual([c.tag for c in deletes[0].children], [NS + "ServerId"])
        state = self.hierarchy_state()
        self.assertEqual((state.sync_key, state.previous_key), (4, 3))

    def test_child_added_after_its_new_parent(self) -> None:
        """Folders of other backends (mail, later) may nest; the reconciliation
        leaves them alone."""
        self.sync("0")
        parent = result_of(self.store.add_folder("alice", "0", "Work", 12, "imap:Work"))
        child = result_of(self.store.add_folder("alice", parent.server_id, "Clients",
                                                 12, "imap:Work/Clients"))
        found = adds(self.sync("1"))
        self.assertEqual([sid for sid, _, _, _ in found], [parent.server_id, child.server_id])
        self.assertEqual(found[1][1], parent.server_id)

    def test_notes_changes_hidden_from_12_1(self) -> None:
        self.sync("0", version="12.1")
        notes = self.folder_id("Notes")
        result_of(self.groupware.create_collection("alice", KIND_NOTES, "Ideas"))
        result_of(self.store.add_folder("alice", notes, "Sub", 12, "imap:Sub"))
        result_of(self.groupware.rename_collection(
            "alice", collection(self.groupware, "alice", KIND_NOTES).collection_id, "Jottings"))
        response = self.sync("1", version="12.1")
        self.assertEqual(self.status(response), "1")
        self.assertEqual(self.count(response), "0")
        assert response.body is not None
        self.assertEqual(response.body.findall(NS + "Changes/" + NS + "Update"), [])
        self.assertEqual(adds(response), [])

    # -- retries and bad keys --------------------------------------------------------------

    def test_retry_of_previous_key_gets_the_same_answer(self) -> None:
        self.sync("0")
        result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "Family"))
        first = self.sync("1")
        state = self.hierarchy_state()
        again = self.sync("1")
        assert first.body is not None and again.body is not None
        self.assertEqual(encode(again.body), encode(first.body))
        self.assertEqual(self.key(again), "2")
        self.assertEqual(self.hierarchy_state(), state)
        # The new key still works, and a later change moves on from it.
        result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "Friends"))
        later = self.sync("2")
        self.assertEqual(self.key(later), "3")
        self.assertEqual([n for _, _, n, _ in adds(later)], ["Friends"])

    def test_retry_of_initial_sync_answer_repeats(self) -> None:
        first = self.sync("0")
        again = self.sync("0")
        assert first.body is not None and again.body is not None
        self.assertEqual(encode(again.body), encode(first.body))

    def test_unknown_keys_give_status_9_and_change_nothing(self) -> None:
        self.sync("0")
        result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "Family"))
        self.sync("1")
        state = self.hierarchy_state()
        for bad in ("7", "3", "-1", "abc", "", "01", "1.0", " 2x", "99999999999999999999999"):
            response = self.sync(bad)
            self.assertEqual(self.status(response), "9", bad)
            self.assertEqual(response.status, "9")
            assert response.body is not None
            self.assertEqual([c.tag for c in response.body.children], [NS + "Status"])
            self.assertEqual(self.hierarchy_state(), state)

    def test_key_without_state_is_invalid(self) -> None:
        response = self.sync("1")
        self.assertEqual(self.status(response), "9")
        self.assertIsNone(self.hierarchy_state())
        self.assertEqual(result_of(self.store.list_folders("alice")), [])
        self.assertIsNone(result_of(self.store.get_account("dev1", "alice")))

    def test_missing_sync_key_is_a_bad_request(self) -> None:
        response = self.sync(None)
        self.assertEqual(self.status(response), "10")
        response = result_of(FolderSyncCommand().run(self.ctx(), Element("AirSync:Sync")))
        self.assertEqual(self.status(response), "10")
        response = result_of(FolderSyncCommand().run(self.ctx(), None))
        self.assertEqual(self.status(response), "10")

    def test_key_zero_resets_collection_states(self) -> None:
        self.sync("0")
        contacts = self.folder_id("Contacts")
        result_of(self.store.advance_sync_state("dev1", "alice", contacts, None, 5, "x"))
        self.assertIsNotNone(result_of(self.store.get_sync_state("dev1", "alice", contacts)))
        response = self.sync("0")
        self.assertEqual(self.key(response), "1")
        self.assertIsNone(result_of(self.store.get_sync_state("dev1", "alice", contacts)))
        self.assertEqual(self.hierarchy_state().sync_key, 1)
        # The old hierarchy key 1 is now the current one again, with no previous.
        self.assertIsNone(self.hierarchy_state().previous_key)

    def test_users_are_separate(self) -> None:
        self.sync("0", user="alice")
        response = self.sync("1", user="bob")
        self.assertEqual(self.status(response), "9")
        self.assertEqual(self.key(self.sync("0", user="bob")), "1")
        self.assertEqual(
            {f.backend_id for f in result_of(self.store.list_folders("bob"))},
            {groupware_backend_id(c.collection_id)
             for c in result_of(self.groupware.list_collections("bob"))},
        )
        self.assertEqual(len(result_of(self.store.list_folders("bob"))), 4)


class _RacingStore:
    """A store whose hierarchy key is advanced by someone else in between."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def advance_sync_state(self, *args: Any) -> "Deferred[None]":
        return fail(SyncStateConflict("advanced meanwhile"))


class ConflictTests(SynchronousTestCase):
    def test_concurrent_advance_gives_status_6(self) -> None:
        store: Any = MemoryStateStore()
        groupware: Any = MemoryGroupwareBackend()
        services = {"groupware": groupware}
        ctx = make_context(store, "FolderSync", services=services)
        result_of(FolderSyncCommand().run(ctx, request("0")))
        result_of(groupware.create_collection("alice", KIND_CONTACTS, "Family"))
        before = result_of(store.get_sync_state("dev1", "alice", HIERARCHY))
        racing = make_context(_RacingStore(store), "FolderSync",  # type: ignore[arg-type]
                              services=services)
        response = result_of(FolderSyncCommand().run(racing, request("1")))
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "Status"), "6")
        self.assertEqual([c.tag for c in response.body.children], [NS + "Status"])
        self.assertEqual(result_of(store.get_sync_state("dev1", "alice", HIERARCHY)), before)


class DispatchTests(SynchronousTestCase):
    def test_foldersync_through_the_dispatcher(self) -> None:
        """WBXML bytes in, the registered command runs, the answer encodes."""
        store: Any = MemoryStateStore()
        key = provision_device(store)
        ctx = make_context(store, "FolderSync", version="14.1", policy_key=key,
                           services={"groupware": MemoryGroupwareBackend()})
        response = dispatch_sync(ctx, encode(request("0")))
        self.assertEqual((response.http_status, response.status), (200, "1"))
        assert response.body is not None
        self.assertEqual(decode(encode(response.body)).findtext(NS + "SyncKey"), "1")
        self.assertEqual(len(adds(response)), 4)


class HelperTests(SynchronousTestCase):
    def test_parse_sync_key(self) -> None:
        self.assertEqual(parse_sync_key("0"), 0)
        self.assertEqual(parse_sync_key("42"), 42)
        for bad in (None, "", "-3", "+3", "03", "x", "٣", "1e3"):
            self.assertIsNone(parse_sync_key(bad), bad)

    def test_default_folder_types(self) -> None:
        self.assertEqual(
            DEFAULT_TYPE_OF_KIND,
            {KIND_CONTACTS: TYPE_CONTACTS, KIND_CALENDAR: TYPE_CALENDAR,
             KIND_TASKS: TYPE_TASKS, KIND_NOTES: TYPE_NOTES},
        )
        self.assertEqual((TYPE_CONTACTS, TYPE_CALENDAR, TYPE_TASKS, TYPE_NOTES), (9, 8, 7, 10))
        self.assertEqual(
            USER_TYPE_OF_KIND,
            {KIND_CONTACTS: 14, KIND_CALENDAR: 13, KIND_TASKS: 15, KIND_NOTES: 17},
        )
        self.assertEqual(
            (TYPE_USER_CONTACTS, TYPE_USER_CALENDAR, TYPE_USER_TASKS, TYPE_USER_NOTES),
            (14, 13, 15, 17),
        )
        self.assertEqual(folder_type_of(Collection("u", "1", KIND_TASKS, "T", True)), 7)
        self.assertEqual(folder_type_of(Collection("u", "2", KIND_TASKS, "T2", False)), 15)

    def test_hierarchy_point_text(self) -> None:
        self.assertEqual(HierarchyPoint(5).encode(), "5")
        self.assertEqual(HierarchyPoint(5, (7, 9)).encode(), "5+7,9")
        self.assertEqual(HierarchyPoint.decode("5+7,9"), HierarchyPoint(5, (7, 9)))
        self.assertEqual(HierarchyPoint.decode("12"), HierarchyPoint(12))
        # Own changes right after the revision fold into it.
        self.assertEqual(HierarchyPoint.decode("5+6,7,9"), HierarchyPoint(7, (9,)))
        self.assertEqual(HierarchyPoint(5).with_own_change(6), HierarchyPoint(6))
        self.assertEqual(HierarchyPoint(5).with_own_change(8), HierarchyPoint(5, (8,)))
        for bad in (None, "", "x", "5+", "5+a", "+3"):
            self.assertIsNone(HierarchyPoint.decode(bad), bad)

    def test_visible_folders_and_order(self) -> None:
        notes = Folder("u", "4", "0", "Notes", TYPE_NOTES, "n")
        sub = Folder("u", "5", "4", "Sub", TYPE_USER_CONTACTS, "s")
        top = Folder("u", "10", "0", "Top", TYPE_USER_CONTACTS, "t")
        child = Folder("u", "2", "10", "Child", TYPE_USER_CONTACTS, "c")
        self.assertEqual(visible_folders([sub, top], "12.1", [notes]), [top])
        self.assertEqual(visible_folders([sub, top], "14.0", [notes]), [sub, top])
        self.assertEqual(parents_first([child, top]), [top, child])


class ReconcileTests(SynchronousTestCase):
    """The folders table follows the synced groupware collections."""

    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.groupware: Any = MemoryGroupwareBackend()

    def reconcile(self, user: str = "alice") -> int:
        return result_of(reconcile_groupware_folders(self.store, self.groupware, user))

    def shown(self, user: str = "alice") -> dict[str, tuple[str, int]]:
        """backend id -> (display name, type) of the user's folders."""
        return {f.backend_id: (f.display_name, f.folder_type)
                for f in result_of(self.store.list_folders(user))}

    def test_defaults_and_user_types(self) -> None:
        work = result_of(self.groupware.create_collection("alice", KIND_TASKS, "Work"))
        self.assertEqual(self.reconcile(), 5)
        shown = self.shown()
        self.assertEqual(shown[groupware_backend_id(work.collection_id)], ("Work", 15))
        self.assertEqual(
            sorted(shown.values()),
            [("Calendar", 8), ("Contacts", 9), ("Notes", 10), ("Tasks", 7), ("Work", 15)],
        )

    def test_idempotent_and_cheap(self) -> None:
        self.reconcile()
        revision = result_of(self.store.folder_revision("alice"))
        folders = result_of(self.store.list_folders("alice"))
        self.assertEqual(self.reconcile(), 0)
        self.assertEqual(result_of(self.store.folder_revision("alice")), revision)
        self.assertEqual(result_of(self.store.list_folders("alice")), folders)

    def test_unsynced_and_removed_collections_lose_their_folder(self) -> None:
        family = result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "Family"))
        trips = result_of(self.groupware.create_collection("alice", KIND_CALENDAR, "Trips"))
        self.reconcile()
        result_of(self.groupware.set_synced("alice", family.collection_id, False))
        result_of(self.groupware.delete_collection("alice", trips.collection_id))
        self.assertEqual(self.reconcile(), 2)
        shown = self.shown()
        self.assertNotIn(groupware_backend_id(family.collection_id), shown)
        self.assertNotIn(groupware_backend_id(trips.collection_id), shown)
        self.assertEqual(len(shown), 4)
        # Synced again: a new folder (a new server id) for the same collection.
        result_of(self.groupware.set_synced("alice", family.collection_id, True))
        self.assertEqual(self.reconcile(), 1)
        self.assertEqual(self.shown()[groupware_backend_id(family.collection_id)],
                         ("Family", TYPE_USER_CONTACTS))

    def test_stale_groupware_folders_are_removed_others_kept(self) -> None:
        result_of(self.store.add_folder("alice", "0", "Old", TYPE_CONTACTS,
                                        "groupware:contacts:default"))
        result_of(self.store.add_folder("alice", "0", "Inbox", 2, "imap:INBOX"))
        self.reconcile()
        shown = self.shown()
        self.assertNotIn("groupware:contacts:default", shown)
        self.assertEqual(shown["imap:INBOX"], ("Inbox", 2))
        self.assertEqual(len(shown), 5)

    def test_same_name_in_two_classes(self) -> None:
        contacts = result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "Work"))
        self.reconcile()
        calendar = result_of(self.groupware.create_collection("alice", KIND_CALENDAR, "Work"))
        tasks = result_of(self.groupware.create_collection("alice", KIND_TASKS, "Work"))
        self.reconcile()
        shown = self.shown()
        # The folder that had the name keeps it.
        self.assertEqual(shown[groupware_backend_id(contacts.collection_id)][0], "Work")
        self.assertEqual(shown[groupware_backend_id(calendar.collection_id)][0],
                         "Work (Calendar)")
        self.assertEqual(shown[groupware_backend_id(tasks.collection_id)][0], "Work (Tasks)")
        self.assertEqual(self.reconcile(), 0)
        # A collection named like a suffixed one still gets a free name.
        clash = result_of(self.groupware.create_collection("alice", KIND_TASKS,
                                                           "Work (Calendar)"))
        self.reconcile()
        self.assertEqual(self.shown()[groupware_backend_id(clash.collection_id)][0],
                         "Work (Calendar) (Tasks)")
        self.assertEqual(self.reconcile(), 0)

    def test_swapped_names(self) -> None:
        a = result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "A"))
        b = result_of(self.groupware.create_collection("alice", KIND_CONTACTS, "B"))
        self.reconcile()
        result_of(self.groupware.rename_collection("alice", a.collection_id, "tmp"))
        result_of(self.groupware.rename_collection("alice", b.collection_id, "A"))
        result_of(self.groupware.rename_collection("alice", a.collection_id, "B"))
        self.reconcile()
        shown = self.shown()
        self.assertEqual(shown[groupware_backend_id(a.collection_id)][0], "B")
        self.assertEqual(shown[groupware_backend_id(b.collection_id)][0], "A")

    def test_foldersync_without_groupware_shows_no_collections(self) -> None:
        ctx = make_context(self.store, "FolderSync")
        response = result_of(FolderSyncCommand().run(ctx, request("0")))
        self.assertEqual(adds(response), [])
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "Status"), "1")

    def test_changes_leave_out_skipped_revisions(self) -> None:
        self.reconcile()
        start = result_of(self.store.folder_revision("alice"))
        own = result_of(self.store.add_folder("alice", "0", "Mine", 14, "groupware:90"))
        theirs = result_of(self.store.add_folder("alice", "0", "Theirs", 14, "groupware:91"))
        skipped = HierarchyPoint(start, (start + 1,))
        now = result_of(self.store.folder_revision("alice"))
        changes = result_of(hierarchy_changes(self.store, "alice", skipped, now))
        self.assertEqual([f.server_id for f in changes.added], [theirs.server_id])
        self.assertEqual((changes.changed, changes.deleted), ((), ()))
        # Later changes to the device's own folder are reported as such.
        result_of(self.store.update_folder("alice", own.server_id, "Mine2", "0"))
        now = result_of(self.store.folder_revision("alice"))
        changes = result_of(hierarchy_changes(self.store, "alice", skipped, now))
        self.assertEqual([f.display_name for f in changes.changed], ["Mine2"])
        result_of(self.store.delete_folder("alice", own.server_id))
        result_of(self.store.delete_folder("alice", theirs.server_id))
        now = result_of(self.store.folder_revision("alice"))
        changes = result_of(hierarchy_changes(self.store, "alice", skipped, now))
        self.assertEqual((changes.added, changes.changed), ((), ()))
        self.assertEqual(changes.deleted, (own.server_id,))
