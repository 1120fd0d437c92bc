"""Tests for easyncd.admin.devices: actions against the memory store, formatting."""
from __future__ import annotations

import datetime
import json
from typing import Any, Coroutine

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from easyncd.admin import devices
from easyncd.admin.errors import AdminError
from easyncd.store.interfaces import (
    HIERARCHY,
    WIPE_ACCOUNT,
    WIPE_DEVICE,
    WIPE_NONE,
    WIPE_PENDING,
    Device,
    DeviceAccount,
)
from easyncd.testing.memory_store import MemoryStateStore

UTC = datetime.timezone.utc


class DeviceActionTests(TestCase):
    """The device actions, on a MemoryStateStore."""

    def setUp(self) -> None:
        self.store = MemoryStateStore()
        self.successResultOf(self.store.migrate())
        for device_id, user, version in (
            ("dev1", "alice", "16.1"),
            ("dev1", "bob", "14.1"),
            ("dev2", "alice", "16.1"),
        ):
            self.successResultOf(
                self.store.register_account(device_id, user, "iPhone", "Apple-iPhone/1", 100.0))
            self.successResultOf(
                self.store.record_request(device_id, user, "Sync", version, 200.0))

    def run_action(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.successResultOf(Deferred.fromCoroutine(coroutine))

    def fail_action(self, coroutine: Coroutine[Any, Any, Any]) -> str:
        failure = self.failureResultOf(Deferred.fromCoroutine(coroutine), AdminError)
        return str(failure.value)

    def device(self, device_id: str) -> Device:
        found = self.successResultOf(self.store.get_device(device_id))
        assert found is not None
        return found

    def account(self, device_id: str, user: str) -> DeviceAccount:
        return next(a for a in self.device(device_id).accounts if a.user == user)

    def test_list(self) -> None:
        found = self.run_action(devices.list_devices(self.store))
        self.assertEqual([d.device_id for d in found], ["dev1", "dev2"])
        mine = self.run_action(devices.list_devices(self.store, "bob"))
        self.assertEqual([d.device_id for d in mine], ["dev1"])

    def test_list_empty(self) -> None:
        store = MemoryStateStore()
        self.successResultOf(store.migrate())
        self.assertEqual(self.run_action(devices.list_devices(store)), [])

    def test_get_unknown(self) -> None:
        self.assertEqual(self.fail_action(devices.get_device(self.store, "nope")),
                         "no such device: nope")

    def test_wipe_device(self) -> None:
        warnings = self.run_action(devices.wipe_device(self.store, "dev1", now=300.0))
        self.assertEqual(warnings, [])
        for user in ("alice", "bob"):
            account = self.account("dev1", user)
            self.assertEqual(account.wipe_state, WIPE_PENDING)
            self.assertEqual(account.wipe_kind, WIPE_DEVICE)
            self.assertEqual(account.wipe_requested_at, 300.0)
        self.assertEqual(self.account("dev2", "alice").wipe_state, WIPE_NONE)

    def test_wipe_unknown(self) -> None:
        self.assertEqual(self.fail_action(devices.wipe_device(self.store, "nope", now=1.0)),
                         "no such device: nope")

    def test_account_wipe_new_enough(self) -> None:
        warnings = self.run_action(devices.wipe_device(
            self.store, "dev1", now=300.0, account_only=True, user="alice"))
        self.assertEqual(warnings, [])
        self.assertEqual(self.account("dev1", "alice").wipe_state, WIPE_PENDING)
        self.assertEqual(self.account("dev1", "alice").wipe_kind, WIPE_ACCOUNT)
        self.assertEqual(self.account("dev1", "bob").wipe_state, WIPE_NONE)

    def test_account_wipe_old_version_warns(self) -> None:
        warnings = self.run_action(devices.wipe_device(
            self.store, "dev1", now=300.0, account_only=True, user="bob"))
        self.assertEqual(len(warnings), 1)
        self.assertIn("bob", warnings[0])
        self.assertIn("14.1", warnings[0])
        self.assertIn("16.1", warnings[0])
        self.assertIn("refused (HTTP 403)", warnings[0])
        self.assertEqual(self.account("dev1", "bob").wipe_state, WIPE_PENDING)

    def test_account_wipe_all_accounts(self) -> None:
        warnings = self.run_action(devices.wipe_device(
            self.store, "dev1", now=300.0, account_only=True))
        self.assertEqual(len(warnings), 1)  # bob's 14.1
        for user in ("alice", "bob"):
            self.assertEqual(self.account("dev1", user).wipe_kind, WIPE_ACCOUNT)

    def test_user_needs_account_only(self) -> None:
        message = self.fail_action(devices.wipe_device(self.store, "dev1", now=1.0, user="bob"))
        self.assertIn("--account-only", message)
        self.assertEqual(self.account("dev1", "bob").wipe_state, WIPE_NONE)

    def test_wipe_user_without_account(self) -> None:
        message = self.fail_action(devices.wipe_device(
            self.store, "dev2", now=1.0, account_only=True, user="bob"))
        self.assertEqual(message, "no account of bob on device dev2")

    def test_cancel_wipe(self) -> None:
        self.run_action(devices.wipe_device(self.store, "dev1", now=300.0))
        self.assertTrue(self.run_action(devices.cancel_wipe(self.store, "dev1")))
        self.assertEqual(self.account("dev1", "alice").wipe_state, WIPE_NONE)
        self.assertFalse(self.run_action(devices.cancel_wipe(self.store, "dev1")))
        self.assertEqual(self.fail_action(devices.cancel_wipe(self.store, "nope")),
                         "no such device: nope")

    def test_remove(self) -> None:
        self.run_action(devices.remove_device(self.store, "dev1"))
        self.assertIsNone(self.successResultOf(self.store.get_device("dev1")))
        self.assertEqual(self.fail_action(devices.remove_device(self.store, "dev1")),
                         "no such device: dev1")

    def test_trace(self) -> None:
        self.assertFalse(self.device("dev1").trace)
        self.run_action(devices.set_trace(self.store, "dev1", True))
        self.assertTrue(self.device("dev1").trace)
        self.run_action(devices.set_trace(self.store, "dev1", False))
        self.assertFalse(self.device("dev1").trace)
        self.assertEqual(self.fail_action(devices.set_trace(self.store, "nope", True)),
                         "no such device: nope")

    def test_resync(self) -> None:
        for user in ("alice", "bob"):
            self.successResultOf(self.store.begin_provision("dev1", user, 11))
            self.assertTrue(self.successResultOf(
                self.store.confirm_provision("dev1", user, 11, 12, 250.0)))
            self.successResultOf(
                self.store.advance_sync_state("dev1", user, HIERARCHY, None, 1, "r1"))
        names = self.run_action(devices.resync_device(self.store, "dev1", "alice"))
        self.assertEqual(names, ["alice"])
        self.assertIsNone(self.account("dev1", "alice").policy_key)
        self.assertEqual(self.account("dev1", "bob").policy_key, 12)
        self.assertIsNone(self.successResultOf(
            self.store.get_sync_state("dev1", "alice", HIERARCHY)))
        self.assertIsNotNone(self.successResultOf(
            self.store.get_sync_state("dev1", "bob", HIERARCHY)))
        names = self.run_action(devices.resync_device(self.store, "dev1"))
        self.assertEqual(names, ["alice", "bob"])
        self.assertIsNone(self.account("dev1", "bob").policy_key)


class FormattingTests(TestCase):
    """Tables, details and JSON."""

    def make_device(self) -> Device:
        return Device(
            device_id="ABC123",
            device_type="iPhone",
            user_agent="Apple-iPhone/1",
            first_seen=0.0,
            last_seen=86400.0,
            info={"Model": "iPhone12,1", "OS": "iOS 17"},
            trace=True,
            accounts=(
                DeviceAccount("ABC123", "alice", policy_key=7, protocol_version="16.1",
                              last_command="Ping", last_seen=86400.0),
                DeviceAccount("ABC123", "bob", pending_policy_key=3,
                              wipe_state=WIPE_PENDING, wipe_kind=WIPE_ACCOUNT,
                              wipe_requested_at=3600.0),
            ),
        )

    def test_format_time(self) -> None:
        self.assertEqual(devices.format_time(None), "-")
        self.assertEqual(devices.format_time(86400.0, UTC), "1970-01-02 00:00:00")

    def test_states(self) -> None:
        alice, bob = self.make_device().accounts
        self.assertEqual(devices.policy_state(alice), "provisioned")
        self.assertEqual(devices.policy_state(bob), "pending")
        self.assertEqual(devices.policy_state(DeviceAccount("x", "y")), "none")
        self.assertEqual(devices.wipe_state(alice), "none")
        self.assertEqual(devices.wipe_state(bob), "pending (account)")

    def test_table(self) -> None:
        table = devices.format_device_table([self.make_device()], UTC)
        self.assertEqual(table.splitlines(), [
            "DEVICE ID  TYPE    USERS      LAST SEEN            POLICY               WIPE",
            "ABC123     iPhone  alice,bob  1970-01-02 00:00:00  provisioned,pending"
            "  none,pending (account)",
        ])
        self.assertEqual(devices.format_device_table([], UTC), "")

    def test_details(self) -> None:
        text = devices.format_device_details(self.make_device(), UTC)
        self.assertIn("device id:    ABC123\n", text)
        self.assertIn("trace:        on\n", text)
        self.assertIn("  Model: iPhone12,1\n", text)
        self.assertIn("account alice:\n  protocol version: 16.1\n  last command:     Ping\n", text)
        self.assertIn("  policy key:       7\n", text)
        self.assertIn("  wipe:             pending (account)\n"
                      "  wipe requested:   1970-01-01 01:00:00\n", text)

    def test_json(self) -> None:
        data = json.loads(json.dumps(devices.device_to_json(self.make_device())))
        self.assertEqual(data["device_id"], "ABC123")
        self.assertEqual(data["info"], {"Model": "iPhone12,1", "OS": "iOS 17"})
        self.assertEqual([a["user"] for a in data["accounts"]], ["alice", "bob"])
        self.assertEqual(data["accounts"][1]["wipe_state"], "pending")
