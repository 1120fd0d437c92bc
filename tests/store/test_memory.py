"""The conformance suite against the in-memory store of easyncd.testing."""
from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from easyncd.store.interfaces import DeviceAccount, StoreUnavailable
from easyncd.testing.memory_store import MemoryStateStore, _Data
from tests.store.conformance import StateStoreConformanceMixin


class _FailingInsert(Exception):
    """Stands for a constraint the database refuses."""


class MemoryStoreConformanceTests(StateStoreConformanceMixin, unittest.TestCase):
    """MemoryStateStore behaves as the SQL stores do."""

    def make_store(self) -> Any:
        store = MemoryStateStore()
        d = store.migrate()
        d.addCallback(lambda _: store)
        return d

    def set_schema_version(self, store: Any, version: int) -> None:
        store._data.schema_version = version

    def fail_account_inserts(self, store: Any, user: str) -> None:
        original = store._insert_account

        def insert(data: _Data, account: DeviceAccount) -> None:
            if account.user == user:
                raise _FailingInsert(f"account of {user} refused")
            original(data, account)

        store._insert_account = insert


class MemoryStoreTests(unittest.TestCase):
    """What only the memory store does."""

    def test_closed_store_refuses_calls(self) -> None:
        store = MemoryStateStore()
        self.successResultOf(store.migrate())
        self.successResultOf(store.close())
        self.failureResultOf(store.get_device("dev1"), StoreUnavailable)
        self.failureResultOf(
            store.register_account("dev1", "alice", "iPhone", None, 1.0), StoreUnavailable)

    def test_results_are_synchronous(self) -> None:
        store = MemoryStateStore()
        self.successResultOf(store.migrate())
        account = self.successResultOf(
            store.register_account("dev1", "alice", "iPhone", None, 1.0))
        self.assertEqual(account.user, "alice")
        self.assertEqual(self.successResultOf(store.schema_version()), 1)
