"""Sync with Wait / HeartbeatInterval: woken by a change, timing out with the
clock, cancelled when the device goes away."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CONTACTS
from tests.protocol.groupware_helpers import GroupwareHarness, collection, read_sync, sync_request


class WaitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CONTACTS]
        self.key = self.h.initial(KIND_CONTACTS)
        self.outcome: list[Any] = []

    def start(self, **kwargs: Any) -> Any:
        deferred = self.h.start(sync_request(collection(self.folder, self.key), **kwargs))
        deferred.addBoth(self.outcome.append)
        return deferred

    def test_woken_by_a_change(self) -> None:
        self.start(heartbeat=300)
        self.assertEqual([], self.outcome)
        self.assertEqual(1, self.h.hub.waiter_count())
        self.h.clock.advance(10)
        item = self.h.add(KIND_CONTACTS, FileAs="new")
        self.assertEqual(1, len(self.outcome))
        answer = read_sync(self.outcome[0])[self.folder]
        self.assertEqual([self.h.server_id(KIND_CONTACTS, item)], answer.ops("Add"))
        self.assertEqual(0, self.h.hub.waiter_count())

    def test_wait_in_minutes_times_out_with_the_empty_response(self) -> None:
        self.start(wait=2)
        self.h.clock.advance(119)
        self.assertEqual([], self.outcome)
        self.h.clock.advance(1)
        self.assertEqual(1, len(self.outcome))
        self.assertIsNone(self.outcome[0].body)
        self.assertEqual(200, self.outcome[0].http_status)

    def test_changes_already_there_answer_at_once(self) -> None:
        self.h.add(KIND_CONTACTS, FileAs="new")
        self.start(heartbeat=300)
        self.assertEqual(1, len(self.outcome))
        self.assertEqual(0, self.h.hub.waiter_count())

    def test_cancel_removes_the_waiter(self) -> None:
        deferred = self.start(heartbeat=300)
        deferred.cancel()
        self.assertEqual(1, len(self.outcome))
        self.assertIsInstance(self.outcome[0].value, CancelledError)
        self.assertEqual(0, self.h.hub.waiter_count())
        self.h.add(KIND_CONTACTS, FileAs="later")
        self.h.clock.advance(400)
        self.assertEqual(1, len(self.outcome))
