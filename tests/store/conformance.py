"""One suite of tests that every IStateStore implementation must pass.

A test case mixes :class:`StateStoreConformanceMixin` into a trial TestCase
and provides the engine-specific hooks below.
"""
from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any, Generator

from twisted.internet.defer import inlineCallbacks
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from easyncd.store.interfaces import (
    HIERARCHY,
    WIPE_ACCOUNT,
    WIPE_DEVICE,
    WIPE_NONE,
    WIPE_PENDING,
    WIPE_WIPED,
    FolderChanges,
    FolderExists,
    IStateStore,
    NoSuchDevice,
    NoSuchFolder,
    SchemaTooNew,
    StoreError,
    SyncStateConflict,
)

DEFAULTS = [
    ("Inbox", 2, "imap:INBOX"),
    ("Contacts", 9, "groupware:contacts:default"),
    ("Calendar", 8, "groupware:calendar:default"),
]

Gen = Generator[Any, Any, None]

if TYPE_CHECKING:
    _Base = unittest.TestCase
else:
    _Base = object


class StateStoreConformanceMixin(_Base):
    """The behaviour every state store shares.  Hooks to provide:

    - ``make_store()``: a fresh store, already migrated (may return a Deferred);
      the hook registers its own cleanup.
    - ``set_schema_version(store, version)``: write the stored schema version
      behind the store's back.
    - ``fail_account_inserts(store, user)``: make every insert of an account of
      ``user`` fail inside the database (a constraint, a trigger...).
    """

    def make_store(self) -> Any:
        raise NotImplementedError

    def set_schema_version(self, store: Any, version: int) -> Any:
        raise NotImplementedError

    def fail_account_inserts(self, store: Any, user: str) -> Any:
        raise NotImplementedError

    # helpers -----------------------------------------------------------------

    @inlineCallbacks
    def _store(self) -> Generator[Any, Any, Any]:
        store = yield self.make_store()
        return store

    @inlineCallbacks
    def _folders(self, store: Any, user: str) -> Generator[Any, Any, Any]:
        folders = yield store.list_folders(user)
        return {folder.display_name: folder for folder in folders}

    # schema -------------------------------------------------------------------

    @inlineCallbacks
    def test_provides_interface(self) -> Gen:
        store = yield self._store()
        self.assertTrue(verifyObject(IStateStore, store))
        self.assertIn(store.engine, ("sqlite", "postgresql", "memory"))

    @inlineCallbacks
    def test_migrate_twice_is_noop(self) -> Gen:
        store = yield self._store()
        version = yield store.schema_version()
        self.assertGreaterEqual(version, 1)
        yield store.register_account("dev1", "alice", "iPhone", None, 10.0)
        yield store.migrate()
        again = yield store.schema_version()
        self.assertEqual(again, version)
        account = yield store.get_account("dev1", "alice")
        self.assertIsNotNone(account)

    @inlineCallbacks
    def test_schema_too_new(self) -> Gen:
        store = yield self._store()
        version = yield store.schema_version()
        yield self.set_schema_version(store, version + 1)
        yield self.assertFailure(store.migrate(), SchemaTooNew)

    # devices and accounts ---------------------------------------------------------

    @inlineCallbacks
    def test_register_account(self) -> Gen:
        store = yield self._store()
        account = yield store.register_account("dev1", "alice", "iPhone", "Apple-iPhone/1", 10.0)
        self.assertEqual(account.device_id, "dev1")
        self.assertEqual(account.user, "alice")
        self.assertEqual(account.wipe_state, WIPE_NONE)
        self.assertIsNone(account.policy_key)
        self.assertEqual(account.first_seen, 10.0)
        device = yield store.get_device("dev1")
        self.assertEqual(device.device_type, "iPhone")
        self.assertEqual(device.user_agent, "Apple-iPhone/1")
        self.assertEqual(device.first_seen, 10.0)
        self.assertEqual(dict(device.info), {})
        self.assertFalse(device.trace)
        self.assertEqual([a.user for a in device.accounts], ["alice"])

        # A second registration refreshes the device and keeps first_seen.
        again = yield store.register_account("dev1", "alice", "iPad", None, 20.0)
        self.assertEqual(again.first_seen, 10.0)
        device = yield store.get_device("dev1")
        self.assertEqual(device.device_type, "iPad")
        self.assertEqual(device.user_agent, "Apple-iPhone/1")
        self.assertEqual((device.first_seen, device.last_seen), (10.0, 20.0))

        yield store.register_account("dev1", "bob", "iPad", "UA2", 30.0)
        device = yield store.get_device("dev1")
        self.assertEqual([a.user for a in device.accounts], ["alice", "bob"])
        self.assertEqual(device.user_agent, "UA2")

    @inlineCallbacks
    def test_get_unknown(self) -> Gen:
        store = yield self._store()
        device = yield store.get_device("nope")
        account = yield store.get_account("nope", "alice")
        self.assertIsNone(device)
        self.assertIsNone(account)
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        account = yield store.get_account("dev1", "bob")
        self.assertIsNone(account)

    @inlineCallbacks
    def test_record_request(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.record_request("dev1", "alice", "Sync", "16.1", 5.0)
        account = yield store.get_account("dev1", "alice")
        self.assertEqual(
            (account.last_seen, account.last_command, account.protocol_version),
            (5.0, "Sync", "16.1"),
        )
        device = yield store.get_device("dev1")
        self.assertEqual(device.last_seen, 5.0)
        # Unknown account: nothing happens, nothing is created.
        yield store.record_request("dev2", "alice", "Sync", "16.1", 6.0)
        yield store.record_request("dev1", "bob", "Sync", "16.1", 6.0)
        self.assertIsNone((yield store.get_device("dev2")))
        self.assertIsNone((yield store.get_account("dev1", "bob")))
        device = yield store.get_device("dev1")
        self.assertEqual(device.last_seen, 5.0)

    @inlineCallbacks
    def test_list_devices(self) -> Gen:
        store = yield self._store()
        self.assertEqual((yield store.list_devices()), [])
        yield store.register_account("dev-b", "alice", "iPhone", None, 1.0)
        yield store.register_account("dev-a", "bob", "Android", None, 1.0)
        yield store.register_account("dev-c", "bob", "Android", None, 1.0)
        yield store.register_account("dev-c", "alice", "Android", None, 1.0)
        devices = yield store.list_devices()
        self.assertEqual([d.device_id for d in devices], ["dev-a", "dev-b", "dev-c"])
        self.assertEqual([a.user for a in devices[2].accounts], ["alice", "bob"])
        alices = yield store.list_devices("alice")
        self.assertEqual([d.device_id for d in alices], ["dev-b", "dev-c"])
        self.assertEqual((yield store.list_devices("carol")), [])

    @inlineCallbacks
    def test_remove_device_cascades(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.register_account("dev1", "bob", "iPhone", None, 1.0)
        yield store.register_account("dev2", "alice", "iPhone", None, 1.0)
        yield store.advance_sync_state("dev1", "alice", HIERARCHY, None, 1, "r1")
        yield store.advance_sync_state("dev1", "bob", "5", None, 1, "s")
        yield store.advance_sync_state("dev2", "alice", HIERARCHY, None, 7, "r7")
        yield store.remove_device("dev1")
        self.assertIsNone((yield store.get_device("dev1")))
        self.assertIsNone((yield store.get_account("dev1", "alice")))
        # Registering the same id again starts clean.
        yield store.register_account("dev1", "alice", "iPhone", None, 2.0)
        self.assertIsNone(
            (yield store.get_sync_state("dev1", "alice", HIERARCHY)))
        self.assertIsNone((yield store.get_sync_state("dev1", "bob", "5")))
        other = yield store.get_sync_state("dev2", "alice", HIERARCHY)
        self.assertEqual(other.sync_key, 7)
        yield self.assertFailure(store.remove_device("nope"), NoSuchDevice)

    @inlineCallbacks
    def test_remove_account(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.register_account("dev1", "bob", "iPhone", None, 1.0)
        yield store.advance_sync_state("dev1", "alice", "1", None, 3, "a")
        yield store.advance_sync_state("dev1", "bob", "1", None, 4, "b")
        yield store.remove_account("dev1", "alice")
        device = yield store.get_device("dev1")
        self.assertEqual([a.user for a in device.accounts], ["bob"])
        yield store.register_account("dev1", "alice", "iPhone", None, 2.0)
        self.assertIsNone((yield store.get_sync_state("dev1", "alice", "1")))
        bob = yield store.get_sync_state("dev1", "bob", "1")
        self.assertEqual(bob.sync_key, 4)
        yield self.assertFailure(
            store.remove_account("dev1", "carol"), NoSuchDevice)
        yield self.assertFailure(
            store.remove_account("nope", "alice"), NoSuchDevice)

    @inlineCallbacks
    def test_device_info_and_trace(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        info = {"Model": "iPhone 15", "IMEI": "1234", "FriendlyName": "Ål's phone"}
        yield store.set_device_info("dev1", info)
        yield store.set_device_trace("dev1", True)
        device = yield store.get_device("dev1")
        self.assertEqual(dict(device.info), info)
        self.assertIs(device.trace, True)
        yield store.set_device_info("dev1", {"Model": "X"})
        yield store.set_device_trace("dev1", False)
        device = yield store.get_device("dev1")
        self.assertEqual(dict(device.info), {"Model": "X"})
        self.assertIs(device.trace, False)
        yield self.assertFailure(
            store.set_device_info("nope", {}), NoSuchDevice)
        yield self.assertFailure(
            store.set_device_trace("nope", True), NoSuchDevice)

    # provisioning ------------------------------------------------------------------

    @inlineCallbacks
    def test_provision_flow(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.begin_provision("dev1", "alice", 111)
        account = yield store.get_account("dev1", "alice")
        self.assertEqual((account.pending_policy_key, account.policy_key), (111, None))
        # A wrong temporary key does not match and changes nothing.
        matched = yield store.confirm_provision("dev1", "alice", 999, 222, 5.0)
        self.assertIs(matched, False)
        account = yield store.get_account("dev1", "alice")
        self.assertEqual((account.pending_policy_key, account.policy_key), (111, None))
        matched = yield store.confirm_provision("dev1", "alice", 111, 222, 5.0)
        self.assertIs(matched, True)
        account = yield store.get_account("dev1", "alice")
        self.assertEqual(
            (account.pending_policy_key, account.policy_key, account.provisioned_at),
            (None, 222, 5.0),
        )
        # The same confirmation again no longer matches.
        again = yield store.confirm_provision("dev1", "alice", 111, 333, 6.0)
        self.assertIs(again, False)
        unknown = yield store.confirm_provision("nope", "alice", 111, 333, 6.0)
        self.assertIs(unknown, False)
        yield self.assertFailure(
            store.begin_provision("dev1", "bob", 1), NoSuchDevice)

    @inlineCallbacks
    def test_policy_keys_beyond_32_bits_signed(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.begin_provision("dev1", "alice", 4294967295)
        self.assertTrue(
            (yield store.confirm_provision("dev1", "alice", 4294967295, 4294967294, 2.0)))
        account = yield store.get_account("dev1", "alice")
        self.assertEqual(account.policy_key, 4294967294)

    @inlineCallbacks
    def test_clear_policy_key(self) -> Gen:
        store = yield self._store()
        for user, key in (("alice", 10), ("bob", 20)):
            yield store.register_account("dev1", user, "iPhone", None, 1.0)
            yield store.begin_provision("dev1", user, key)
            yield store.confirm_provision("dev1", user, key, key + 1, 2.0)
        yield store.clear_policy_key("dev1", "alice")
        alice = yield store.get_account("dev1", "alice")
        bob = yield store.get_account("dev1", "bob")
        self.assertIsNone(alice.policy_key)
        self.assertEqual(bob.policy_key, 21)
        yield store.begin_provision("dev1", "bob", 30)
        yield store.clear_policy_key("dev1")
        bob = yield store.get_account("dev1", "bob")
        self.assertEqual((bob.policy_key, bob.pending_policy_key), (None, None))
        yield store.clear_policy_key("nope")  # unknown: nothing to do

    # remote wipe -------------------------------------------------------------------

    @inlineCallbacks
    def _two_accounts(self) -> Generator[Any, Any, Any]:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.register_account("dev1", "bob", "iPhone", None, 1.0)
        yield store.register_account("dev2", "alice", "iPhone", None, 1.0)
        return store

    @inlineCallbacks
    def _wipe_states(self, store: Any, device_id: str) -> Generator[Any, Any, Any]:
        device = yield store.get_device(device_id)
        return {a.user: (a.wipe_state, a.wipe_kind) for a in device.accounts}

    @inlineCallbacks
    def test_device_wipe(self) -> Gen:
        store = yield self._two_accounts()
        yield store.request_wipe("dev1", WIPE_DEVICE, None, 5.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_PENDING, WIPE_DEVICE), "bob": (WIPE_PENDING, WIPE_DEVICE)})
        other = yield self._wipe_states(store, "dev2")
        self.assertEqual(other, {"alice": (WIPE_NONE, None)})
        alice = yield store.get_account("dev1", "alice")
        self.assertEqual(alice.wipe_requested_at, 5.0)
        # One account acknowledges: the whole device is wiped.
        yield store.acknowledge_wipe("dev1", "bob", 7.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_WIPED, WIPE_DEVICE), "bob": (WIPE_WIPED, WIPE_DEVICE)})
        alice = yield store.get_account("dev1", "alice")
        self.assertEqual(alice.wipe_acknowledged_at, 7.0)
        # Nothing pending any more: cancel reports False and keeps "wiped".
        cancelled = yield store.cancel_wipe("dev1")
        self.assertIs(cancelled, False)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states["alice"][0], WIPE_WIPED)

    @inlineCallbacks
    def test_account_wipe(self) -> Gen:
        store = yield self._two_accounts()
        yield store.request_wipe("dev1", WIPE_ACCOUNT, "alice", 5.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_PENDING, WIPE_ACCOUNT), "bob": (WIPE_NONE, None)})
        yield store.acknowledge_wipe("dev1", "alice", 6.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_WIPED, WIPE_ACCOUNT), "bob": (WIPE_NONE, None)})
        # Acknowledging with nothing pending changes nothing.
        yield store.acknowledge_wipe("dev1", "bob", 7.0)
        yield store.acknowledge_wipe("nope", "bob", 7.0)
        bob = yield store.get_account("dev1", "bob")
        self.assertEqual((bob.wipe_state, bob.wipe_acknowledged_at), (WIPE_NONE, None))

    @inlineCallbacks
    def test_account_wipe_of_every_account(self) -> Gen:
        store = yield self._two_accounts()
        yield store.request_wipe("dev1", WIPE_ACCOUNT, None, 5.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_PENDING, WIPE_ACCOUNT), "bob": (WIPE_PENDING, WIPE_ACCOUNT)})
        # Each account acknowledges for itself only.
        yield store.acknowledge_wipe("dev1", "alice", 6.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_WIPED, WIPE_ACCOUNT), "bob": (WIPE_PENDING, WIPE_ACCOUNT)})

    @inlineCallbacks
    def test_cancel_wipe(self) -> Gen:
        store = yield self._two_accounts()
        self.assertIs((yield store.cancel_wipe("dev1")), False)
        yield store.request_wipe("dev1", WIPE_DEVICE, None, 5.0)
        self.assertIs((yield store.cancel_wipe("dev1")), True)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_NONE, None), "bob": (WIPE_NONE, None)})
        alice = yield store.get_account("dev1", "alice")
        self.assertIsNone(alice.wipe_requested_at)
        # After a cancel, an acknowledgement (late device) changes nothing.
        yield store.acknowledge_wipe("dev1", "alice", 9.0)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states["alice"], (WIPE_NONE, None))
        yield self.assertFailure(store.cancel_wipe("nope"), NoSuchDevice)

    @inlineCallbacks
    def test_wipe_errors(self) -> Gen:
        store = yield self._two_accounts()
        yield self.assertFailure(
            store.request_wipe("nope", WIPE_DEVICE, None, 1.0), NoSuchDevice)
        yield self.assertFailure(
            store.request_wipe("dev1", WIPE_ACCOUNT, "carol", 1.0), NoSuchDevice)
        yield self.assertFailure(
            store.request_wipe("dev1", "everything", None, 1.0), ValueError)
        states = yield self._wipe_states(store, "dev1")
        self.assertEqual(states, {
            "alice": (WIPE_NONE, None), "bob": (WIPE_NONE, None)})

    # folders ----------------------------------------------------------------------

    @inlineCallbacks
    def test_add_folder(self) -> Gen:
        store = yield self._store()
        top = yield store.add_folder("alice", "0", "Work", 12, "imap:Work")
        self.assertEqual(
            (top.user, top.parent_id, top.display_name, top.folder_type, top.backend_id),
            ("alice", "0", "Work", 12, "imap:Work"),
        )
        sub = yield store.add_folder("alice", top.server_id, "Projects", 12, "imap:Work/Projects")
        self.assertEqual(sub.parent_id, top.server_id)
        self.assertEqual((yield store.get_folder("alice", sub.server_id)), sub)
        self.assertEqual((yield store.folder_revision("alice")), 2)
        # Names are unique among live siblings, case-sensitively.
        yield self.assertFailure(
            store.add_folder("alice", "0", "Work", 12, "x"), FolderExists)
        yield store.add_folder("alice", "0", "work", 12, "imap:work")
        yield store.add_folder("alice", top.server_id, "Work", 12, "imap:Work/Work")
        yield store.add_folder("bob", "0", "Work", 12, "imap:Work")
        yield self.assertFailure(
            store.add_folder("alice", "999", "X", 12, "x"), NoSuchFolder)
        yield self.assertFailure(
            store.add_folder("carol", top.server_id, "X", 12, "x"), NoSuchFolder)
        # Failed adds did not raise the revision.
        self.assertEqual((yield store.folder_revision("alice")), 4)

    @inlineCallbacks
    def test_server_ids_never_reused(self) -> Gen:
        store = yield self._store()
        first = yield store.add_folder("alice", "0", "A", 12, "a")
        yield store.delete_folder("alice", first.server_id)
        yield self.assertFailure(
            store.get_folder("alice", first.server_id), NoSuchFolder)
        second = yield store.add_folder("alice", "0", "A", 12, "a")  # the name is free again
        self.assertNotEqual(second.server_id, first.server_id)
        yield self.assertFailure(
            store.add_folder("alice", first.server_id, "B", 12, "b"), NoSuchFolder)

    @inlineCallbacks
    def test_list_folders_ordered_by_server_id(self) -> Gen:
        store = yield self._store()
        added = []
        for number in range(12):
            folder = yield store.add_folder("alice", "0", f"F{number:02}", 12, f"f{number}")
            added.append(folder)
        folders = yield store.list_folders("alice")
        self.assertEqual(folders, added)
        self.assertEqual(
            [int(f.server_id) for f in folders], sorted(int(f.server_id) for f in folders))

    @inlineCallbacks
    def test_update_folder(self) -> Gen:
        store = yield self._store()
        work = yield store.add_folder("alice", "0", "Work", 12, "imap:Work")
        home = yield store.add_folder("alice", "0", "Home", 12, "imap:Home")
        sub = yield store.add_folder("alice", work.server_id, "Sub", 12, "imap:Work/Sub")
        renamed = yield store.update_folder("alice", work.server_id, "Job", None)
        self.assertEqual(
            (renamed.display_name, renamed.parent_id, renamed.backend_id), ("Job", "0", "imap:Work"))
        moved = yield store.update_folder("alice", sub.server_id, None, home.server_id)
        self.assertEqual((moved.display_name, moved.parent_id), ("Sub", home.server_id))
        self.assertEqual((yield store.get_folder("alice", sub.server_id)), moved)
        both = yield store.update_folder("alice", sub.server_id, "Top", "0")
        self.assertEqual((both.display_name, both.parent_id), ("Top", "0"))
        # Same name and place is allowed (nothing collides with itself).
        yield store.update_folder("alice", both.server_id, "Top", "0")
        revision = yield store.folder_revision("alice")
        self.assertEqual(revision, 7)
        # A backend rename (an IMAP mailbox's new name) keeps the server id.
        rebound = yield store.update_folder("alice", both.server_id, None, None,
                                            backend_id="imap:Top")
        self.assertEqual((rebound.server_id, rebound.backend_id), (both.server_id, "imap:Top"))
        self.assertEqual((yield store.get_folder("alice", both.server_id)), rebound)
        revision = yield store.folder_revision("alice")
        self.assertEqual(revision, 8)
        yield self.assertFailure(
            store.update_folder("alice", both.server_id, "Home", None), FolderExists)
        yield self.assertFailure(
            store.update_folder("alice", "999", "X", None), NoSuchFolder)
        yield self.assertFailure(
            store.update_folder("alice", both.server_id, None, "999"), NoSuchFolder)
        # No folder may move under itself or its own sub-folder.
        inner = yield store.add_folder("alice", home.server_id, "Inner", 12, "i")
        yield self.assertFailure(
            store.update_folder("alice", home.server_id, None, home.server_id), NoSuchFolder)
        yield self.assertFailure(
            store.update_folder("alice", home.server_id, None, inner.server_id), NoSuchFolder)
        # Failed updates left everything as it was.
        self.assertEqual((yield store.folder_revision("alice")), revision + 1)
        self.assertEqual((yield store.get_folder("alice", home.server_id)), home)

    @inlineCallbacks
    def test_delete_folder_with_subfolders(self) -> Gen:
        store = yield self._store()
        top = yield store.add_folder("alice", "0", "Top", 12, "t")
        mid = yield store.add_folder("alice", top.server_id, "Mid", 12, "m")
        low = yield store.add_folder("alice", mid.server_id, "Low", 12, "l")
        other = yield store.add_folder("alice", "0", "Other", 12, "o")
        before = yield store.folder_revision("alice")
        yield store.delete_folder("alice", top.server_id)
        self.assertEqual((yield store.folder_revision("alice")), before + 1)
        self.assertEqual((yield store.list_folders("alice")), [other])
        for folder in (top, mid, low):
            yield self.assertFailure(
                store.get_folder("alice", folder.server_id), NoSuchFolder)
        changes = yield store.folder_changes("alice", before, before + 1)
        self.assertEqual(
            changes, FolderChanges(deleted=(top.server_id, mid.server_id, low.server_id)))
        yield self.assertFailure(
            store.delete_folder("alice", top.server_id), NoSuchFolder)
        yield self.assertFailure(
            store.delete_folder("bob", other.server_id), NoSuchFolder)
        self.assertEqual((yield store.folder_revision("alice")), before + 1)

    @inlineCallbacks
    def test_folder_changes_over_ranges(self) -> Gen:
        store = yield self._store()
        a = yield store.add_folder("alice", "0", "A", 12, "a")        # r1
        b = yield store.add_folder("alice", "0", "B", 12, "b")        # r2
        c = yield store.add_folder("alice", "0", "C", 12, "c")        # r3
        b2 = yield store.update_folder("alice", b.server_id, "B2", None)  # r4
        yield store.delete_folder("alice", c.server_id)               # r5
        d = yield store.add_folder("alice", "0", "D", 12, "d")        # r6
        yield store.delete_folder("alice", d.server_id)               # r7
        e = yield store.add_folder("alice", "0", "E", 12, "e")        # r8
        e2 = yield store.update_folder("alice", e.server_id, "E2", None)  # r9
        self.assertEqual((yield store.folder_revision("alice")), 9)

        def check(changes: FolderChanges, added: Any = (), changed: Any = (),
                  deleted: Any = ()) -> None:
            self.assertEqual(
                changes, FolderChanges(tuple(added), tuple(changed), tuple(deleted)))

        # Everything from the start: only the live folders, as adds.
        check((yield store.folder_changes("alice", 0, 9)), added=[a, b2, e2])
        self.assertEqual(len((yield store.folder_changes("alice", 0, 9))), 3)
        # Added and changed inside the range: an add (with the newest data).
        check((yield store.folder_changes("alice", 0, 4)), added=[a, b2, c])
        # Changed: created before since.
        check((yield store.folder_changes("alice", 3, 4)), changed=[b2])
        # Deleted, existed before since.
        check((yield store.folder_changes("alice", 3, 5)), changed=[b2], deleted=[c.server_id])
        check((yield store.folder_changes("alice", 4, 5)), deleted=[c.server_id])
        # Added and deleted inside the range: nothing.
        check((yield store.folder_changes("alice", 5, 7)))
        check((yield store.folder_changes("alice", 6, 7)), deleted=[d.server_id])
        check((yield store.folder_changes("alice", 5, 6)), added=[d])
        check((yield store.folder_changes("alice", 7, 9)), added=[e2])
        check((yield store.folder_changes("alice", 8, 9)), changed=[e2])
        # An empty range and another user's folders.
        check((yield store.folder_changes("alice", 9, 9)))
        check((yield store.folder_changes("bob", 0, 9)))

    @inlineCallbacks
    def test_folder_changes_retried_range(self) -> Gen:
        # A retried FolderSync recomputes an older range after later changes.
        store = yield self._store()
        for name, folder_type, backend_id in DEFAULTS:  # r1..r3
            yield store.add_folder("alice", "0", name, folder_type, backend_id)
        folders = yield self._folders(store, "alice")
        work = yield store.add_folder("alice", "0", "Work", 12, "w")  # r4
        first = yield store.folder_changes("alice", 3, 4)
        yield store.delete_folder("alice", folders["Inbox"].server_id)  # r5
        again = yield store.folder_changes("alice", 3, 4)
        self.assertEqual(first, again)
        self.assertEqual(first, FolderChanges(added=(work,)))
        later = yield store.folder_changes("alice", 4, 5)
        self.assertEqual(
            later, FolderChanges(deleted=(folders["Inbox"].server_id,)))

    # sync states ----------------------------------------------------------------------

    @inlineCallbacks
    def test_sync_state_compare_and_set(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        self.assertIsNone((yield store.get_sync_state("dev1", "alice", HIERARCHY)))
        yield store.advance_sync_state("dev1", "alice", HIERARCHY, None, 1, "rev:3")
        state = yield store.get_sync_state("dev1", "alice", HIERARCHY)
        self.assertEqual(
            (state.sync_key, state.state, state.previous_key, state.previous_state),
            (1, "rev:3", None, None))
        yield store.advance_sync_state("dev1", "alice", HIERARCHY, 1, 2, "rev:5")
        state = yield store.get_sync_state("dev1", "alice", HIERARCHY)
        self.assertEqual(
            (state.sync_key, state.state, state.previous_key, state.previous_state),
            (2, "rev:5", 1, "rev:3"))
        # A stale key (a concurrent request won) conflicts and changes nothing.
        yield self.assertFailure(
            store.advance_sync_state("dev1", "alice", HIERARCHY, 1, 3, "x"), SyncStateConflict)
        yield self.assertFailure(
            store.advance_sync_state("dev1", "alice", "7", 1, 2, "x"), SyncStateConflict)
        self.assertEqual(
            (yield store.get_sync_state("dev1", "alice", HIERARCHY)).sync_key, 2)
        # Starting over drops the previous key.
        yield store.advance_sync_state("dev1", "alice", HIERARCHY, None, 1, "rev:9")
        state = yield store.get_sync_state("dev1", "alice", HIERARCHY)
        self.assertEqual(
            (state.sync_key, state.state, state.previous_key, state.previous_state),
            (1, "rev:9", None, None))
        # Big keys and large opaque states survive.
        big = "x" * 100_000
        yield store.advance_sync_state("dev1", "alice", "5", None, 2**40, big)
        state = yield store.get_sync_state("dev1", "alice", "5")
        self.assertEqual((state.sync_key, state.state), (2**40, big))
        yield self.assertFailure(
            store.advance_sync_state("dev1", "bob", "5", None, 1, "s"), NoSuchDevice)

    @inlineCallbacks
    def test_sync_state_retry(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.advance_sync_state("dev1", "alice", "3", None, 1, "s1")
        yield store.advance_sync_state("dev1", "alice", "3", 1, 2, "s2")
        # The client did not get the answer and repeats key 1: the store still
        # knows what key 1 stood for, and key 2 stays current.
        state = yield store.get_sync_state("dev1", "alice", "3")
        self.assertEqual((state.previous_key, state.previous_state), (1, "s1"))
        yield self.assertFailure(
            store.advance_sync_state("dev1", "alice", "3", 1, 3, "s3"), SyncStateConflict)
        # The client then goes on from key 2.
        yield store.advance_sync_state("dev1", "alice", "3", 2, 3, "s3")
        state = yield store.get_sync_state("dev1", "alice", "3")
        self.assertEqual(
            (state.sync_key, state.state, state.previous_key, state.previous_state),
            (3, "s3", 2, "s2"))

    @inlineCallbacks
    def test_sync_states_are_per_collection_and_account(self) -> Gen:
        store = yield self._store()
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.register_account("dev1", "bob", "iPhone", None, 1.0)
        yield store.advance_sync_state("dev1", "alice", HIERARCHY, None, 1, "h")
        yield store.advance_sync_state("dev1", "alice", "1", None, 5, "one")
        yield store.advance_sync_state("dev1", "bob", "1", None, 9, "bob")
        self.assertEqual((yield store.get_sync_state("dev1", "alice", "1")).state, "one")
        self.assertEqual((yield store.get_sync_state("dev1", "bob", "1")).state, "bob")
        yield store.reset_sync_states("dev1", "alice")
        self.assertIsNone((yield store.get_sync_state("dev1", "alice", "1")))
        self.assertIsNone((yield store.get_sync_state("dev1", "alice", HIERARCHY)))
        self.assertEqual((yield store.get_sync_state("dev1", "bob", "1")).sync_key, 9)
        yield store.reset_sync_states("nope", "alice")

    # atomicity ---------------------------------------------------------------------------

    @inlineCallbacks
    def test_failed_write_leaves_nothing_half_written(self) -> Gen:
        store = yield self._store()
        yield self.fail_account_inserts(store, "mallory")
        # register_account writes the device first, then the account: the
        # failing account insert must take the device write back with it.
        error = yield self.assertFailure(
            store.register_account("dev9", "mallory", "iPhone", "UA", 1.0), StoreError)
        self.assertIn("register_account", str(error))
        self.assertIsNone((yield store.get_device("dev9")))
        # An existing device is not refreshed either.
        yield store.register_account("dev1", "alice", "iPhone", "UA1", 1.0)
        yield self.assertFailure(
            store.register_account("dev1", "mallory", "Android", "UA2", 2.0), StoreError)
        device = yield store.get_device("dev1")
        self.assertEqual(
            (device.device_type, device.user_agent, device.last_seen), ("iPhone", "UA1", 1.0))
        # And the store still works.
        yield store.register_account("dev9", "alice", "iPhone", None, 3.0)
        self.assertIsNotNone((yield store.get_device("dev9")))

    # mail follow-up flags ----------------------------------------------------------

    @inlineCallbacks
    def test_mail_flags_round_trip(self) -> Gen:
        store = yield self._store()
        due = {"Email:Status": "2", "Email:FlagType": "Flag for follow up",
               "Tasks:DueDate": "2024-05-01T00:00:00.000Z", "Tasks:Subject": "Ünïcode"}
        done = {"Email:Status": "1", "Email:CompleteTime": "2024-05-02T08:00:00.000Z"}
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 7, [1, 2])), {})
        yield store.set_mail_flags("alice", "INBOX", 7, {5: due, 9: done, 2**40: due})
        found = yield store.get_mail_flags("alice", "INBOX", 7, [1, 5, 9, 2**40])
        self.assertEqual(found, {5: due, 9: done, 2**40: due})
        # Only the UIDs asked for, even inside the range of those stored.
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 7, [5, 2**40])),
                         {5: due, 2**40: due})
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 7, [])), {})
        # Per user, mailbox and UIDVALIDITY.
        self.assertEqual((yield store.get_mail_flags("bob", "INBOX", 7, [5])), {})
        self.assertEqual((yield store.get_mail_flags("alice", "Sent", 7, [5])), {})
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 8, [5])), {})
        # Replace one, forget another.
        yield store.set_mail_flags("alice", "INBOX", 7, {5: done, 9: None, 11: None})
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 7, [5, 9])), {5: done})

    @inlineCallbacks
    def test_drop_mail_flags(self) -> Gen:
        store = yield self._store()
        flag = {"Email:Status": "2"}
        yield store.set_mail_flags("alice", "INBOX", 7, {1: flag, 2: flag})
        yield store.set_mail_flags("alice", "INBOX", 8, {1: flag})
        yield store.set_mail_flags("alice", "Sent", 7, {1: flag})
        yield store.set_mail_flags("bob", "INBOX", 7, {1: flag})
        self.assertEqual((yield store.drop_mail_flags("alice", "INBOX", keep_uidvalidity=8)), 2)
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 7, [1, 2])), {})
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 8, [1])), {1: flag})
        self.assertEqual((yield store.drop_mail_flags("alice", "INBOX")), 1)
        self.assertEqual((yield store.get_mail_flags("alice", "INBOX", 8, [1])), {})
        self.assertEqual((yield store.get_mail_flags("alice", "Sent", 7, [1])), {1: flag})
        self.assertEqual((yield store.get_mail_flags("bob", "INBOX", 7, [1])), {1: flag})


class SchemaMigrationMixin(_Base):
    """Upgrades through delta files, for the SQL engines.  Hook:
    ``make_unmigrated_store(schema_dir)``: a store of a fresh, empty database
    reading its schema files from ``schema_dir``, closed by the hook's cleanup;
    ``database_key()``: something identifying that database, so that a second
    store of the same database can be made with ``make_unmigrated_store(dir, key)``."""

    def make_unmigrated_store(self, schema_dir: str, key: Any = None) -> Any:
        raise NotImplementedError

    def _schema_dir(self, files: dict[str, str]) -> str:
        directory = tempfile.mkdtemp(prefix="easyncd-schema-")
        self.addCleanup(_remove_tree, directory)
        for name, text in files.items():
            with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        return directory

    @inlineCallbacks
    def test_deltas_upgrade_an_older_database(self) -> Gen:
        from easyncd.store.migrations import SCHEMA_DIR

        with open(os.path.join(SCHEMA_DIR, "full_001.sql"), encoding="utf-8") as handle:
            full = handle.read()
        v1 = self._schema_dir({"full_001.sql": full})
        store, key = yield self.make_unmigrated_store(v1)
        yield store.migrate()
        self.assertEqual((yield store.schema_version()), 1)
        yield store.register_account("dev1", "alice", "iPhone", None, 1.0)
        yield store.close()

        v3 = self._schema_dir({
            "full_001.sql": full,
            "delta_002_notes.sql": "-- a note table\nCREATE TABLE notes (id INTEGER PRIMARY KEY,"
                                   " body TEXT);\nINSERT INTO notes (id, body) VALUES (1, 'a');\n",
            "delta_003_more.sql": "ALTER TABLE notes ADD COLUMN extra TEXT;\n",
            "delta_003_more.sqlite.sql": "ALTER TABLE notes ADD COLUMN extra TEXT DEFAULT 's';\n",
            "delta_003_more.postgresql.sql":
                "ALTER TABLE notes ADD COLUMN extra TEXT DEFAULT 'p';\n",
        })
        upgraded, _ = yield self.make_unmigrated_store(v3, key)
        yield upgraded.migrate()
        self.assertEqual((yield upgraded.schema_version()), 3)
        # The data of version 1 survived.
        self.assertIsNotNone((yield upgraded.get_account("dev1", "alice")))
        yield upgraded.migrate()
        self.assertEqual((yield upgraded.schema_version()), 3)
        yield upgraded.close()

        # The old easyncd refuses the newer database.
        old, _ = yield self.make_unmigrated_store(v1, key)
        yield self.assertFailure(old.migrate(), SchemaTooNew)

    @inlineCallbacks
    def test_failed_delta_changes_nothing(self) -> Gen:
        from easyncd.store.migrations import SCHEMA_DIR

        with open(os.path.join(SCHEMA_DIR, "full_001.sql"), encoding="utf-8") as handle:
            full = handle.read()
        v1 = self._schema_dir({"full_001.sql": full})
        store, key = yield self.make_unmigrated_store(v1)
        yield store.migrate()
        yield store.close()
        broken = self._schema_dir({
            "full_001.sql": full,
            "delta_002_broken.sql": "CREATE TABLE fine (id INTEGER);\nTHIS IS NOT SQL;\n",
        })
        again, _ = yield self.make_unmigrated_store(broken, key)
        error = yield self.assertFailure(again.migrate(), StoreError)
        self.assertIn("migrate", str(error))
        self.assertEqual((yield again.schema_version()), 1)
        yield again.close()
        fixed = self._schema_dir({
            "full_001.sql": full,
            "delta_002_fine.sql": "CREATE TABLE fine (id INTEGER);\n",
        })
        last, _ = yield self.make_unmigrated_store(fixed, key)
        yield last.migrate()  # "fine" was rolled back, so it can be created now
        self.assertEqual((yield last.schema_version()), 2)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)

