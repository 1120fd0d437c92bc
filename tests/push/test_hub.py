"""The push hub with a fake clock: waiting, waking, timeouts, cancellation
and polling for other processes' changes."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from easyncd.push.hub import PushHub
from easyncd.push.interfaces import IPushHub
from easyncd.testing.memory_groupware import MemoryGroupwareBackend


class FakeRevisions:
    """watch_revisions answering from a dict another "process" changes."""

    def __init__(self) -> None:
        self.revisions: dict[tuple[str, str], int] = {}
        self.calls: list[tuple[str, list[str]]] = []
        self.pending: list[Deferred[dict[str, int]]] | None = None
        self.broken = False

    def watch_revisions(self, user: str, ids: list[str]) -> Deferred[dict[str, int]]:
        self.calls.append((user, list(ids)))
        if self.broken:
            return fail(RuntimeError("database down"))
        answer = {i: self.revisions[(user, i)] for i in ids if (user, i) in self.revisions}
        if self.pending is not None:
            d: Deferred[dict[str, int]] = Deferred()
            self.pending.append(d)
            d.answer = answer  # type: ignore[attr-defined]
            return d
        return succeed(answer)


def _cancel(case: unittest.TestCase, d: Deferred[Any]) -> None:
    """Cancel a wait the way a vanished client does, and consume the result."""
    d.cancel()
    case.failureResultOf(d, CancelledError)


class HubTests(unittest.TestCase):
    """In-process waiting and notifying."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.hub = PushHub(self.clock)

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IPushHub, self.hub))

    def test_notify_wakes_at_once(self) -> None:
        d = self.hub.wait("alice", ["groupware:1", "groupware:2"], 60)
        self.assertNoResult(d)
        self.hub.notify("alice", ["groupware:2", "groupware:3"])
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:2"}))
        self.assertEqual(self.hub.waiter_count(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])  # the timeout is gone

    def test_other_users_and_topics_do_not_wake(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.hub.notify("bob", ["groupware:1"])
        self.hub.notify("alice", ["groupware:9", "imap:INBOX"])
        self.assertNoResult(d)
        self.hub.notify("alice", ["groupware:1"])
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:1"}))

    def test_timeout(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 30)
        self.clock.advance(29.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), frozenset())
        self.assertEqual(self.hub.waiter_count(), 0)
        # A late notify finds nobody.
        self.hub.notify("alice", ["groupware:1"])

    def test_zero_timeout(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 0)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), frozenset())

    def test_cancel_removes_the_waiter(self) -> None:
        d = self.hub.wait("alice", ["groupware:1", "imap:INBOX"], 60)
        other = self.hub.wait("alice", ["groupware:1"], 60)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.hub.waiter_count(), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.hub.notify("alice", ["groupware:1"])
        self.assertEqual(self.successResultOf(other), frozenset({"groupware:1"}))
        self.assertEqual(self.hub._waiters, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_many_waiters(self) -> None:
        waits = [self.hub.wait(f"user{i % 10}", [f"groupware:{i % 7}"], 60)
                 for i in range(1000)]
        self.assertEqual(self.hub.waiter_count(), 1000)
        for i in range(0, 1000, 3):
            waits[i].cancel()
        self.hub.notify("user3", ["groupware:3"])
        woken = [i for i, d in enumerate(waits) if i % 3 and d.called]
        self.assertEqual(woken, [i for i in range(1000)
                                 if i % 3 and i % 10 == 3 and i % 7 == 3])
        for i in range(1000):
            if i % 3:
                self.hub.notify(f"user{i % 10}", [f"groupware:{i % 7}"])
        self.assertEqual(self.hub._waiters, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])
        for i, d in enumerate(waits):
            if i % 3 == 0:
                self.failureResultOf(d, CancelledError)
            else:
                self.assertEqual(self.successResultOf(d), frozenset({f"groupware:{i % 7}"}))

    def test_same_waiter_woken_once(self) -> None:
        d = self.hub.wait("alice", ["a", "b"], 60)
        self.hub.notify("alice", ["a", "b"])
        self.assertEqual(self.successResultOf(d), frozenset({"a", "b"}))
        self.hub.notify("alice", ["a"])  # nothing fires twice

    def test_stop_wakes_everybody(self) -> None:
        self.hub.startService()
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.successResultOf(self.hub.stopService())
        self.assertEqual(self.successResultOf(d), frozenset())
        self.assertEqual(self.successResultOf(self.hub.wait("alice", ["x"], 60)), frozenset())
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.hub.startService()
        again = self.hub.wait("alice", ["x"], 60)
        self.assertNoResult(again)
        _cancel(self, again)


class PollingTests(unittest.TestCase):
    """Changes written by other processes wake waiters within poll_interval."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.backend = FakeRevisions()
        self.hub = PushHub(self.clock, self.backend, poll_interval=0.5)
        self.hub.startService()
        self.backend.revisions[("alice", "1")] = 10
        self.backend.revisions[("alice", "2")] = 20

    def test_no_polling_without_waiters(self) -> None:
        self.clock.advance(10)
        self.assertEqual(self.backend.calls, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # Waiting on non-groupware topics does not poll either.
        d = self.hub.wait("alice", ["imap:INBOX"], 5)
        self.clock.pump([0.5] * 4)
        self.assertEqual(self.backend.calls, [])
        self.clock.advance(5)
        self.successResultOf(d)

    def test_external_change_wakes(self) -> None:
        d = self.hub.wait("alice", ["groupware:1", "groupware:2", "imap:INBOX"], 60)
        self.clock.advance(0.5)  # first look: the revisions as they are
        self.assertEqual(self.backend.calls, [("alice", ["1", "2"])])
        self.assertNoResult(d)
        self.clock.advance(0.5)
        self.assertNoResult(d)
        self.backend.revisions[("alice", "2")] = 21  # the CLI imported something
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:2"}))
        self.assertEqual(len(self.backend.calls), 3)
        # Nobody waits: polling stops.
        self.clock.advance(5)
        self.assertEqual(len(self.backend.calls), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_baseline_survives_between_waits(self) -> None:
        # Ping, woken by a change; the device syncs and pings again: a change
        # made in between (before the next first look) still wakes it.
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.clock.advance(0.5)
        self.backend.revisions[("alice", "1")] = 11
        self.clock.advance(0.5)
        self.successResultOf(d)
        self.backend.revisions[("alice", "1")] = 12
        again = self.hub.wait("alice", ["groupware:1"], 60)
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(again), frozenset({"groupware:1"}))

    def test_old_baselines_are_forgotten(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 1)
        self.clock.advance(0.5)
        self.clock.advance(0.5)
        self.successResultOf(d)
        self.backend.revisions[("alice", "1")] = 15  # long ago, already synced
        self.clock.advance(3600)
        again = self.hub.wait("alice", ["groupware:1"], 60)
        self.clock.advance(0.5)
        self.assertNoResult(again)
        _cancel(self, again)

    def test_own_notify_does_not_wake_twice(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        self.clock.advance(0.5)
        self.backend.revisions[("alice", "1")] = 11  # our backend wrote...
        self.hub.notify("alice", ["groupware:1"])  # ...and told us
        self.successResultOf(d)
        # The device synced revision 11 and waits again.
        again = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 11})
        self.clock.pump([0.5] * 4)
        self.assertNoResult(again)
        _cancel(self, again)

    def test_notify_during_a_poll(self) -> None:
        self.backend.pending = []
        d = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        self.clock.advance(0.5)
        first = self.backend.pending.pop()
        first.callback(first.answer)  # type: ignore[attr-defined]
        self.clock.advance(0.5)  # a poll is under way with revision 10...
        stale = self.backend.pending.pop()
        self.backend.revisions[("alice", "1")] = 11
        self.hub.notify("alice", ["groupware:1"])  # ...when our own write lands
        self.successResultOf(d)
        again = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 11})
        stale.callback(stale.answer)  # type: ignore[attr-defined]
        self.backend.pending = None
        self.clock.pump([0.5] * 4)
        self.assertNoResult(again)  # no spurious wake from the stale answer
        self.backend.revisions[("alice", "1")] = 12
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(again), frozenset({"groupware:1"}))

    def test_one_query_per_user_per_tick(self) -> None:
        self.backend.revisions[("bob", "5")] = 1
        waits = [self.hub.wait("alice", ["groupware:1"], 60),
                 self.hub.wait("alice", ["groupware:2"], 60),
                 self.hub.wait("alice", ["groupware:1", "groupware:2"], 60),
                 self.hub.wait("bob", ["groupware:5"], 60)]
        self.clock.advance(0.5)
        self.assertEqual(sorted(self.backend.calls), [("alice", ["1", "2"]), ("bob", ["5"])])
        self.backend.revisions[("alice", "1")] = 11
        self.clock.advance(0.5)
        self.assertEqual([d.called for d in waits], [True, False, True, False])
        self.assertEqual(self.successResultOf(waits[2]), frozenset({"groupware:1"}))
        for d in waits[1::2]:
            _cancel(self, d)

    def test_deleted_collection_wakes(self) -> None:
        d = self.hub.wait("alice", ["groupware:2"], 60)
        self.clock.advance(0.5)
        del self.backend.revisions[("alice", "2")]
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:2"}))

    def test_poll_failure_keeps_polling(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.clock.advance(0.5)
        self.backend.broken = True
        self.clock.advance(0.5)
        self.backend.broken = False
        self.backend.revisions[("alice", "1")] = 11
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:1"}))

    def test_stop_stops_polling(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.hub.stopService()
        self.successResultOf(d)
        self.clock.advance(5)
        self.assertEqual(self.backend.calls, [])


class RaceTests(unittest.TestCase):
    """A change by another process is never taken for the baseline: it
    wakes the waiter at the next poll however it interleaves with the
    registration, the first poll and in-process notifications."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.backend = FakeRevisions()
        self.hub = PushHub(self.clock, self.backend, poll_interval=0.5)
        self.hub.startService()
        self.backend.revisions[("alice", "1")] = 10
        self.backend.revisions[("alice", "2")] = 20

    def tearDown(self) -> None:
        self.hub.stopService()

    def test_change_between_registration_and_first_poll(self) -> None:
        # The device has revision 10; the CLI imports right after the Ping
        # registered, before the hub's first look.
        d = self.hub.wait("alice", ["groupware:1", "groupware:2"], 60,
                          known={"groupware:1": 10, "groupware:2": 20})
        self.backend.revisions[("alice", "1")] = 11
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:1"}))
        self.assertEqual(len(self.backend.calls), 1)

    def test_change_before_registration(self) -> None:
        # The change committed after the device's last look but before the
        # wait was even registered.
        self.backend.revisions[("alice", "2")] = 21
        d = self.hub.wait("alice", ["groupware:1", "groupware:2"], 60,
                          known={"groupware:1": 10, "groupware:2": 20})
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:2"}))

    def test_known_up_to_date_does_not_wake(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        self.clock.pump([0.5] * 10)
        self.assertNoResult(d)
        self.assertEqual(len(self.backend.calls), 10)
        self.clock.advance(55)
        self.assertEqual(self.successResultOf(d), frozenset())
        calls = len(self.backend.calls)
        self.clock.advance(10)
        self.assertEqual(len(self.backend.calls), calls)  # nobody waits: no polling

    def test_each_waiter_against_what_it_knows(self) -> None:
        # Two devices on one collection: one synced 10, the other 12.
        self.backend.revisions[("alice", "1")] = 12
        behind = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        current = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 12})
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(behind), frozenset({"groupware:1"}))
        self.assertNoResult(current)
        self.assertEqual(self.backend.calls, [("alice", ["1"])])  # one query for both
        self.backend.revisions[("alice", "1")] = 13
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(current), frozenset({"groupware:1"}))

    def test_change_before_first_poll_without_known_after_a_baseline(self) -> None:
        # No known value: the hub's own baseline (from an earlier waiter's
        # poll) is the reference, not the next poll's answer.
        first = self.hub.wait("alice", ["groupware:1"], 1)
        self.clock.advance(1)
        self.assertEqual(self.successResultOf(first), frozenset())
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.backend.revisions[("alice", "1")] = 11
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:1"}))

    def test_change_after_notify_without_known(self) -> None:
        # An in-process write and its notify, then another process writes
        # before the hub looks again: that change is not lost.
        d = self.hub.wait("alice", ["groupware:1"], 60)
        self.clock.advance(0.5)  # baseline 10
        self.backend.revisions[("alice", "1")] = 11
        self.hub.notify("alice", ["groupware:1"])
        self.successResultOf(d)
        again = self.hub.wait("alice", ["groupware:1"], 60)
        self.backend.revisions[("alice", "1")] = 12  # the CLI
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(again), frozenset({"groupware:1"}))

    def test_change_after_notify_with_known(self) -> None:
        d = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        self.clock.advance(0.5)
        self.backend.revisions[("alice", "1")] = 11
        self.hub.notify("alice", ["groupware:1"])
        self.successResultOf(d)
        # The device synced 11, waits again; the CLI writes 12 at once.
        again = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 11})
        self.backend.revisions[("alice", "1")] = 12
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(again), frozenset({"groupware:1"}))

    def test_notify_before_any_poll_keeps_nothing_silent(self) -> None:
        # A waiter registered, an in-process notify wakes it before the
        # first poll; the next waiter (knowing 11) must still hear of 12.
        d = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        self.backend.revisions[("alice", "1")] = 11
        self.hub.notify("alice", ["groupware:1"])
        self.successResultOf(d)
        again = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 11})
        self.backend.revisions[("alice", "1")] = 12
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(again), frozenset({"groupware:1"}))

    def test_known_raises_the_baseline(self) -> None:
        # An earlier poll saw 10; a device then synced up to 12 and waits
        # knowing it.  A later waiter without known measures against 12.
        first = self.hub.wait("alice", ["groupware:1"], 0.5)
        self.clock.advance(0.5)
        self.successResultOf(first)
        self.backend.revisions[("alice", "1")] = 12
        knowing = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 12})
        other = self.hub.wait("alice", ["groupware:1"], 60)
        self.clock.pump([0.5] * 4)
        self.assertNoResult(knowing)
        self.assertNoResult(other)
        self.backend.revisions[("alice", "1")] = 13
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(knowing), frozenset({"groupware:1"}))
        self.assertEqual(self.successResultOf(other), frozenset({"groupware:1"}))

    def test_change_during_a_poll_is_not_taken_silently(self) -> None:
        # The first poll is under way (it read 10) when the change commits;
        # its answer must not become the reference for a waiter that knows.
        self.backend.pending = []
        d = self.hub.wait("alice", ["groupware:1"], 60, known={"groupware:1": 10})
        self.clock.advance(0.5)
        under_way = self.backend.pending.pop()
        self.backend.revisions[("alice", "1")] = 11
        under_way.callback(under_way.answer)  # type: ignore[attr-defined]
        self.assertNoResult(d)
        self.backend.pending = None
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({"groupware:1"}))

    def test_known_for_other_topics_is_ignored(self) -> None:
        d = self.hub.wait("alice", ["imap:INBOX"], 5, known={"imap:INBOX": 3})
        self.clock.pump([0.5] * 4)
        self.assertEqual(self.backend.calls, [])
        self.clock.advance(5)
        self.assertEqual(self.successResultOf(d), frozenset())


class HubWithBackendTests(unittest.TestCase):
    """The hub and the memory groupware backend together."""

    def test_in_process_write_and_other_process_write(self) -> None:
        clock = Clock()
        other_process = MemoryGroupwareBackend(clock)  # writes without telling the hub
        hub = PushHub(clock, other_process)
        ours = MemoryGroupwareBackend(clock, hub)
        hub.startService()
        cid = self.successResultOf(other_process.list_collections("alice", "contacts"))[0]
        d = hub.wait("alice", [f"groupware:{cid.collection_id}"], 60)
        clock.advance(0.5)
        self.successResultOf(other_process.add_item(
            "alice", cid.collection_id, "BEGIN:VCARD\r\nUID:x\r\nEND:VCARD\r\n"))
        clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), frozenset({f"groupware:{cid.collection_id}"}))
        mine = self.successResultOf(ours.list_collections("alice", "contacts"))[0]
        d2 = hub.wait("alice", [f"groupware:{mine.collection_id}"], 60)
        self.successResultOf(ours.add_item(
            "alice", mine.collection_id, "BEGIN:VCARD\r\nUID:y\r\nEND:VCARD\r\n"))
        self.assertEqual(self.successResultOf(d2),
                         frozenset({f"groupware:{mine.collection_id}"}))
        hub.stopService()


class HubServiceTests(unittest.TestCase):
    """The hub is a twisted Service."""

    def test_service(self) -> None:
        from twisted.application.service import IService, MultiService

        hub = PushHub(Clock())
        self.assertTrue(IService.providedBy(hub))
        parent = MultiService()
        hub.setServiceParent(parent)
        parent.startService()
        self.assertTrue(hub.running)
        d = hub.wait("alice", ["t"], 10)
        self.successResultOf(parent.stopService())
        self.assertEqual(self.successResultOf(d), frozenset())
