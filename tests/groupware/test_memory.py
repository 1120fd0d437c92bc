"""The groupware conformance suite against the in-memory fake."""
from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from easyncd.testing.memory_groupware import MemoryGroupwareBackend
from tests.groupware.conformance import GroupwareConformanceMixin, vcard


class MemoryGroupwareTests(GroupwareConformanceMixin, unittest.TestCase):
    """MemoryGroupwareBackend passes the shared suite."""

    def make_backend(self, clock: Any, hub: Any) -> Any:
        return MemoryGroupwareBackend(clock, hub)

    def fail_history_inserts(self, backend: Any) -> None:
        backend.fail_history_writes = True


class MemoryGroupwareExtraTests(unittest.TestCase):
    """What only the fake does."""

    def test_deferreds_fire_at_once(self) -> None:
        backend = MemoryGroupwareBackend()
        collections = self.successResultOf(backend.list_collections("alice", "contacts"))
        item = self.successResultOf(
            backend.add_item("alice", collections[0].collection_id, vcard("u")))
        self.assertEqual(item.revision, 1)
        written_at = backend._collections[int(item.collection_id)].history[0][3]
        self.assertGreater(written_at, 1e9)  # the wall clock
