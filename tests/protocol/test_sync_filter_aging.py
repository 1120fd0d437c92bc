"""Items that leave the FilterType window by time alone get a SoftDelete (a
Delete in 2.5), checked at most once a day; a FilterType changed under a
non-zero SyncKey adds / SoftDeletes what the new window lets in / leaves out.
Groupware (calendar, tasks) and mail."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_TASKS, MailboxSnapshot, MailChanges, MailState
from easyncd.protocol.mailsync.aging import aging_due
from easyncd.protocol.mailsync.state import MailSyncState
from easyncd.protocol.sync.engine import aging_due as groupware_aging_due
from easyncd.protocol.sync.state import CollectionState
from tests.protocol.groupware_helpers import (
    GroupwareHarness,
    collection,
    eas_time,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import START_TIME, result_of
from tests.protocol.test_mailsync import mail_collection
from tests.protocol.test_mailsync_support import FakeMailBackend, MailHarness, days_ago

DAY = 86400.0
HOUR = 3600.0
#: START_TIME is 22:13 UTC: this much later is still the same UTC day.
SAME_DAY = HOUR
#: ... and this much later is the next one.
NEXT_DAY = 2 * HOUR


class DueTests(SynchronousTestCase):
    def test_at_most_once_per_utc_day(self) -> None:
        for due in (aging_due, groupware_aging_due):
            self.assertTrue(due(None, START_TIME))
            self.assertFalse(due(START_TIME, START_TIME + SAME_DAY))
            self.assertTrue(due(START_TIME, START_TIME + NEXT_DAY))
            self.assertTrue(due(START_TIME, START_TIME + DAY))
            self.assertTrue(due(START_TIME, START_TIME - 1))

    def test_states_keep_the_check_time(self) -> None:
        state = CollectionState(rev=3, held=frozenset({"1"}), checked=12.5)
        self.assertEqual(12.5, CollectionState.from_text(state.to_text()).checked)  # type: ignore[union-attr]
        self.assertIsNone(CollectionState.from_text(CollectionState(rev=1).to_text()).checked)  # type: ignore[union-attr]
        mail = MailSyncState(soft=(9, 8, 7, 3), aged=99.0)
        back = MailSyncState.from_text(mail.to_text())
        assert back is not None
        self.assertEqual(((9, 8, 7, 3), 99.0, True), (back.soft, back.aged, back.has_pending))


class GroupwareAgingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CALENDAR]
        # Inside a two-week window for 3 more hours (until 01:13 UTC the next day).
        self.ageing = self.h.add(KIND_CALENDAR, Subject="ageing",
                                 EndTime=eas_time(START_TIME - 14 * DAY + 3 * HOUR))
        self.fresh = self.h.add(KIND_CALENDAR, Subject="fresh",
                                EndTime=eas_time(START_TIME + DAY))
        self.gets: list[list[str]] = []
        original = self.h.backend.get_items

        def get_items(user: str, collection_id: str, ids: Any) -> Any:
            self.gets.append(list(ids))
            return original(user, collection_id, ids)

        self.h.backend.get_items = get_items  # type: ignore[method-assign,assignment]

    def sync(self, key: str, version: str = "16.1", **kwargs: Any) -> Any:
        response = self.h.sync(sync_request(collection(self.folder, key, **kwargs)), version)
        return read_sync(response)[self.folder] if response.body is not None else None

    def synced(self, filter_type: int = 4, version: str = "16.1", **kwargs: Any) -> str:
        key = self.h.initial(KIND_CALENDAR, version, filter_type=filter_type, **kwargs)
        answer = self.sync(key, version, **kwargs)
        self.assertEqual(2, len(answer.ops("Add")))
        return str(answer.key)

    def state(self) -> CollectionState:
        stored = result_of(self.h.store.get_sync_state("dev1", "alice", self.folder))
        state = CollectionState.from_text(stored.state)
        assert state is not None
        return state

    def test_item_ageing_out_is_soft_deleted_once_a_day(self) -> None:
        key = self.synced()
        # Within the same UTC day nothing is read again, even though the
        # event has left the window meanwhile.
        self.h.clock.advance(SAME_DAY)
        self.gets.clear()
        self.assertIsNone(self.sync(key))
        self.assertEqual([], self.gets)
        # The next day the held items are read once and the event goes.
        self.h.clock.advance(3 * HOUR)
        answer = self.sync(key)
        self.assertEqual([("SoftDelete", self.h.server_id(KIND_CALENDAR, self.ageing))],
                         [(op, sid) for op, sid, _ in answer.commands])
        self.assertEqual(sorted([self.ageing, self.fresh]), self.gets[0])
        self.assertEqual({self.fresh}, set(self.state().held or ()))
        # Nothing more, and no second check that day.
        self.gets.clear()
        self.assertIsNone(self.sync(answer.key))
        self.assertEqual([], self.gets)

    def test_check_without_result_is_kept_under_the_same_key(self) -> None:
        key = self.synced()
        self.h.clock.advance(NEXT_DAY)  # the next UTC day, the event still inside
        before = self.state().checked
        self.assertIsNone(self.sync(key))
        state = result_of(self.h.store.get_sync_state("dev1", "alice", self.folder))
        self.assertEqual(int(key), state.sync_key)
        self.assertNotEqual(before, self.state().checked)
        self.gets.clear()
        self.assertIsNone(self.sync(key))
        self.assertEqual([], self.gets)

    def test_soft_delete_is_delete_in_2_5(self) -> None:
        key = self.synced(version="2.5", eas_class="Calendar")
        self.h.clock.advance(DAY)
        answer = self.sync(key, "2.5", eas_class="Calendar")
        self.assertEqual([("Delete", self.h.server_id(KIND_CALENDAR, self.ageing))],
                         [(op, sid) for op, sid, _ in answer.commands])

    def test_aged_items_page_with_the_window_size_and_retry(self) -> None:
        older = self.h.add(KIND_CALENDAR, Subject="older",
                           EndTime=eas_time(START_TIME - 13 * DAY))
        key = self.h.initial(KIND_CALENDAR, filter_type=4)
        answer = self.sync(key)
        self.assertEqual(3, len(answer.ops("Add")))
        self.h.clock.advance(2 * DAY)
        first = self.sync(answer.key, window=1)
        self.assertTrue(first.more)
        self.assertEqual(["SoftDelete"], [op for op, _, _ in first.commands])
        # The answer was lost: the retry gets the same command.
        again = self.sync(answer.key, window=1)
        self.assertEqual(first.commands, again.commands)
        second = self.sync(first.key, window=1)
        self.assertFalse(second.more)
        gone = {sid for _, sid, _ in first.commands + second.commands}
        self.assertEqual({self.h.server_id(KIND_CALENDAR, i) for i in (self.ageing, older)}, gone)

    def test_item_back_in_the_window_is_not_soft_deleted(self) -> None:
        key = self.synced()
        self.h.clock.advance(DAY)
        self.h.change(KIND_CALENDAR, self.ageing, Subject="moved",
                      EndTime=eas_time(START_TIME + 3 * DAY))
        answer = self.sync(key)
        self.assertEqual([("Change", self.h.server_id(KIND_CALENDAR, self.ageing))],
                         [(op, sid) for op, sid, _ in answer.commands])

    def test_completed_task_leaves_incomplete_filter(self) -> None:
        folder = self.h.folders[KIND_TASKS]
        task = self.h.add(KIND_TASKS, Subject="open", Complete="0")
        key = self.h.initial(KIND_TASKS, filter_type=8)
        answer = read_sync(self.h.sync(sync_request(collection(folder, key))))[folder]
        self.assertEqual([self.h.server_id(KIND_TASKS, task)], answer.ops("Add"))
        self.h.change(KIND_TASKS, task, Subject="open", Complete="1")
        later = read_sync(self.h.sync(sync_request(collection(folder, answer.key))))[folder]
        self.assertEqual([self.h.server_id(KIND_TASKS, task)], later.ops("SoftDelete"))

    # -- FilterType changed under a non-zero key ---------------------------------------

    def test_wider_filter_adds_narrower_soft_deletes(self) -> None:
        month = self.h.add(KIND_CALENDAR, Subject="month", EndTime=eas_time(START_TIME - 25 * DAY))
        key = self.synced(filter_type=4)
        wider = self.sync(key, filter_type=5)
        self.assertEqual([("Add", self.h.server_id(KIND_CALENDAR, month))],
                         [(op, sid) for op, sid, _ in wider.commands])
        narrower = self.sync(wider.key, filter_type=3)
        self.assertEqual(
            sorted([("SoftDelete", self.h.server_id(KIND_CALENDAR, month)),
                    ("SoftDelete", self.h.server_id(KIND_CALENDAR, self.ageing))]),
            sorted((op, sid) for op, sid, _ in narrower.commands))
        self.assertEqual({self.fresh}, set(self.state().held or ()))
        self.assertEqual(3, self.state().options.filter_type)
        # The change is done: the same Options again give nothing.
        self.assertIsNone(self.sync(narrower.key, filter_type=3))

    def test_from_no_filter_to_a_window_and_back(self) -> None:
        old = self.h.add(KIND_CALENDAR, Subject="old", EndTime=eas_time(START_TIME - 90 * DAY))
        key = self.h.initial(KIND_CALENDAR, filter_type=0)
        everything = self.sync(key, filter_type=0)
        self.assertEqual(3, len(everything.ops("Add")))
        windowed = self.sync(everything.key, filter_type=4)
        self.assertEqual([self.h.server_id(KIND_CALENDAR, old)], windowed.ops("SoftDelete"))
        self.assertEqual({self.ageing, self.fresh}, set(self.state().held or ()))
        back = self.sync(windowed.key, filter_type=0)
        self.assertEqual([("Add", self.h.server_id(KIND_CALENDAR, old))],
                         [(op, sid) for op, sid, _ in back.commands])
        self.assertIsNone(self.state().held)

    def test_filter_change_with_nothing_to_send_is_remembered(self) -> None:
        key = self.synced(filter_type=4)
        self.assertIsNone(self.sync(key, filter_type=5))
        self.assertEqual(5, self.state().options.filter_type)
        self.gets.clear()
        self.assertIsNone(self.sync(key, filter_type=5))
        self.assertEqual([], self.gets)


class CondstoreFakeMailBackend(FakeMailBackend):
    """The fake with the real backend's CONDSTORE behaviour: a known message
    that is now outside the window stays in the snapshot (changes() only
    looks at what changed)."""

    def changes(self, user: str, password: str, mailbox: str, since: MailState | None,
                window_start: datetime | None = None) -> "Deferred[MailChanges]":
        d = super().changes(user, password, mailbox, since, window_start)
        result: MailChanges = self.successResult(d)
        if since is None or result.reset:
            return succeed(result)
        box = self.boxes[mailbox]
        known = result.state.snapshot.as_dict()
        for uid, flags in since.snapshot.as_dict().items():
            message = box.messages.get(uid)
            if uid not in known and uid not in result.removed and message is not None:
                known[uid] = frozenset(message.flags)
        return succeed(MailChanges(MailState(result.state.point,
                                             MailboxSnapshot.from_flags(known)),
                                   result.added, result.changed, result.removed))

    @staticmethod
    def successResult(d: "Deferred[Any]") -> Any:
        out: list[Any] = []
        d.addBoth(out.append)
        return out[0]


class MailAgingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = MailHarness()
        self.h.mail = CondstoreFakeMailBackend()
        self.inbox = self.h.folders["INBOX"]
        # Received 2 days and 21 hours ago: inside a 3-day window for 3 more hours.
        self.ageing = self.h.mail.deliver(date=days_ago(3 - 3 / 24))
        self.fresh = self.h.mail.deliver(date=days_ago(0.5))
        self.old = self.h.mail.deliver(date=days_ago(20))

    def sync(self, key: str, version: str = "16.1", **kwargs: Any) -> Any:
        response = self.h.sync(sync_request(mail_collection(self.inbox, key, **kwargs)), version)
        return read_sync(response)[self.inbox] if response.body is not None else None

    def synced(self, filter_type: int = 2, version: str = "16.1") -> str:
        key = self.sync("0", version, filter_type=filter_type).key
        answer = self.sync(key, version, filter_type=filter_type)
        self.assertEqual([self.h.sid(self.fresh), self.h.sid(self.ageing)], answer.ops("Add"))
        return str(answer.key)

    def date_fetches(self) -> list[list[int]]:
        return [args[1] for name, args in self.h.mail.calls
                if name == "fetch_messages" and args[2] == ["INTERNALDATE"]]

    def state(self) -> MailSyncState:
        stored = result_of(self.h.store.get_sync_state("dev1", self.h.user, self.inbox))
        state = MailSyncState.from_text(stored.state)
        assert state is not None
        return state

    def test_message_ageing_out_is_soft_deleted_once_a_day(self) -> None:
        key = self.synced()
        self.h.clock.advance(SAME_DAY)
        self.assertIsNone(self.sync(key, filter_type=2))
        self.assertEqual([], self.date_fetches())
        self.h.clock.advance(3 * HOUR)
        answer = self.sync(key, filter_type=2)
        self.assertEqual([("SoftDelete", self.h.sid(self.ageing))],
                         [(op, sid) for op, sid, _ in answer.commands])
        # Only the held messages' dates were asked for.
        self.assertEqual([[self.ageing, self.fresh]], self.date_fetches())
        mail = self.state().mail
        assert mail is not None
        self.assertEqual([self.fresh], list(mail.snapshot.uids()))
        self.assertIsNone(self.sync(answer.key, filter_type=2))
        self.assertEqual(1, len(self.date_fetches()))
        # The message itself is still on the server.
        self.assertIn(self.ageing, self.h.mail.boxes["INBOX"].messages)

    def test_check_without_result_is_kept_under_the_same_key(self) -> None:
        key = self.synced(filter_type=3)
        self.h.clock.advance(NEXT_DAY)
        self.assertIsNone(self.sync(key, filter_type=3))
        self.assertEqual(1, len(self.date_fetches()))
        self.assertEqual(int(key), result_of(self.h.store.get_sync_state(
            "dev1", self.h.user, self.inbox)).sync_key)
        self.assertIsNone(self.sync(key, filter_type=3))
        self.assertEqual(1, len(self.date_fetches()))

    def test_soft_delete_is_delete_in_2_5(self) -> None:
        key = self.synced(version="2.5")
        self.h.clock.advance(DAY)
        answer = self.sync(key, "2.5", filter_type=2)
        self.assertEqual([("Delete", self.h.sid(self.ageing))],
                         [(op, sid) for op, sid, _ in answer.commands])

    def test_retry_gets_the_soft_delete_again(self) -> None:
        key = self.synced()
        self.h.clock.advance(DAY)
        first = self.sync(key, filter_type=2)
        again = self.sync(key, filter_type=2)
        self.assertEqual(first.commands, again.commands)
        self.assertEqual(first.key, again.key)

    def test_wider_filter_adds_narrower_soft_deletes(self) -> None:
        key = self.synced(filter_type=2)
        wider = self.sync(key, filter_type=5)
        self.assertEqual([("Add", self.h.sid(self.old))],
                         [(op, sid) for op, sid, _ in wider.commands])
        narrower = self.sync(wider.key, filter_type=1)
        self.assertEqual(sorted([("SoftDelete", self.h.sid(self.old)),
                                 ("SoftDelete", self.h.sid(self.ageing))]),
                         sorted((op, sid) for op, sid, _ in narrower.commands))
        self.assertEqual(1, self.state().options.filter_type)
        self.assertIsNone(self.sync(narrower.key, filter_type=1))
        # New mail still arrives under the new window.
        new = self.h.mail.deliver()
        self.assertEqual([self.h.sid(new)], self.sync(narrower.key, filter_type=1).ops("Add"))

    def test_no_filter_never_checks(self) -> None:
        key = self.sync("0", filter_type=0).key
        answer = self.sync(key, filter_type=0)
        self.assertEqual(3, len(answer.ops("Add")))
        self.h.clock.advance(3 * DAY)
        self.assertIsNone(self.sync(answer.key, filter_type=0))
        self.assertEqual([], self.date_fetches())
