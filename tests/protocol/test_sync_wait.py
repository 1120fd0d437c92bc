"""Sync with Wait / HeartbeatInterval: woken by a change (notified, or found
by the hub's polling however it interleaves with the wait), timing out with
the clock, cancelled when the device goes away."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CONTACTS
from easyncd.push.hub import PushHub
from tests.protocol.groupware_helpers import GroupwareHarness, collection, read_sync, sync_request
from tests.protocol.helpers import result_of


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


class WaitPollingTests(SynchronousTestCase):
    """Sync's wait with a hub that polls the backend, and writes that notify
    nobody (another process: the CLI, another node)."""

    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CONTACTS]
        self.key = self.h.initial(KIND_CONTACTS)
        self.h.hub = PushHub(self.h.clock, backend=self.h.backend, poll_interval=0.5)
        self.h.hub.startService()
        self.addCleanup(self.h.hub.stopService)
        self.h.backend._hub = None
        self.topic = "groupware:" + self.h.collections[KIND_CONTACTS]
        self.outcome: list[Any] = []

    def start(self, **kwargs: Any) -> Any:
        deferred = self.h.start(sync_request(collection(self.folder, self.key), **kwargs))
        deferred.addBoth(self.outcome.append)
        return deferred

    def revision(self) -> int:
        cid = self.h.collections[KIND_CONTACTS]
        return int(result_of(self.h.backend.watch_revisions(self.h.user, [cid]))[cid])

    def test_wait_knows_what_the_sync_looked_at(self) -> None:
        seen: list[Any] = []
        original = self.h.hub.wait

        def spy(user: str, topics: Any, timeout: float, known: Any = None) -> Any:
            seen.append(known)
            return original(user, topics, timeout, known=known)

        self.patch(self.h.hub, "wait", spy)
        self.start(heartbeat=300)
        self.assertEqual([{self.topic: self.revision()}], seen)
        self.h.clock.advance(300)
        self.assertEqual(1, len(self.outcome))

    def test_change_right_after_the_wait_starts(self) -> None:
        """The CLI imports right after the Sync started waiting, before the
        hub's first poll: answered at that poll."""
        self.start(heartbeat=300)
        item = self.h.add(KIND_CONTACTS, FileAs="from the CLI")
        self.assertEqual([], self.outcome)
        self.h.clock.advance(0.5)
        self.assertEqual(1, len(self.outcome))
        answer = read_sync(self.outcome[0])[self.folder]
        self.assertEqual([self.h.server_id(KIND_CONTACTS, item)], answer.ops("Add"))

    def test_change_between_the_look_and_the_wait(self) -> None:
        original = self.h.hub.wait
        added: list[str] = []

        def racing(user: str, topics: Any, timeout: float, known: Any = None) -> Any:
            if not added:
                added.append(self.h.add(KIND_CONTACTS, FileAs="racing"))
            return original(user, topics, timeout, known=known)

        self.patch(self.h.hub, "wait", racing)
        self.start(heartbeat=300)
        self.assertEqual([], self.outcome)
        self.h.clock.advance(0.5)
        self.assertEqual(1, len(self.outcome))
        answer = read_sync(self.outcome[0])[self.folder]
        self.assertEqual([self.h.server_id(KIND_CONTACTS, added[0])], answer.ops("Add"))

    def test_nothing_new_keeps_waiting(self) -> None:
        """No busy loop: the polls find nothing above what the sync saw."""
        self.start(heartbeat=120)
        self.h.clock.pump([0.5] * 200)
        self.assertEqual([], self.outcome)
        self.h.clock.advance(20)
        self.assertEqual(1, len(self.outcome))
        self.assertIsNone(self.outcome[0].body)
