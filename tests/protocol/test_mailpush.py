"""Mail push: one lingering watch registration per user, and the pending check."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import FolderPoint, NoSuchMailbox
from easyncd.protocol.commands.ping import PingCommand
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailfolders import reconcile_mail_folders
from easyncd.protocol import mailpush
from easyncd.protocol.mailpush import (
    MailWatchRegistry,
    mail_pending_topics,
    point_behind,
    registry_for,
    watch_mail,
)
from easyncd.push.hub import PushHub
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element
from tests.protocol.helpers import make_clock, make_context, result_of
from tests.protocol.test_mailfolders import FakeMailBackend


class FakeHub:
    def __init__(self) -> None:
        self.notified: list[tuple[str, list[str]]] = []

    def notify(self, user: str, topics: Any) -> None:
        self.notified.append((user, list(topics)))


class RegistryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = make_clock()
        self.mail = FakeMailBackend()
        self.hub = FakeHub()
        self.registry = MailWatchRegistry(self.mail, self.clock, linger=60)

    def watch(self, boxes: list[str], hold: float = 0, password: str = "pw",
              user: str = "alice") -> bool:
        return result_of(self.registry.watch(user, password, boxes, self.hub, hold))

    def live(self) -> list[frozenset[str]]:
        return [r.mailboxes for r in self.mail.registrations if not r.stopped]

    def test_change_notifies_hub_topic(self) -> None:
        self.assertTrue(self.watch(["INBOX"]))
        self.mail.change("INBOX")
        self.assertEqual(self.hub.notified, [("alice", ["imap:INBOX"])])

    def test_one_registration_reused(self) -> None:
        self.watch(["INBOX", "Work"])
        self.watch(["INBOX"])
        self.watch(["Work", "INBOX"])
        self.assertEqual(len(self.mail.registrations), 1)

    def test_more_mailboxes_replace_with_union(self) -> None:
        self.watch(["INBOX"])
        self.watch(["Work"])
        self.assertEqual(self.live(), [frozenset({"INBOX", "Work"})])
        self.assertEqual(len(self.mail.registrations), 2)
        self.assertEqual(self.registry.watched("alice"), frozenset({"INBOX", "Work"}))

    def test_lingers_then_stops(self) -> None:
        self.watch(["INBOX"], hold=100)
        self.clock.advance(159)
        self.assertEqual(len(self.live()), 1)
        self.watch(["INBOX"], hold=10)  # a shorter hold does not shorten it
        self.clock.advance(2)
        self.assertEqual(len(self.live()), 1)
        self.clock.advance(70)
        self.assertEqual(self.live(), [])
        self.assertEqual(self.registry.watched("alice"), frozenset())
        self.watch(["INBOX"])
        self.assertEqual(len(self.live()), 1)

    def test_later_request_extends(self) -> None:
        self.watch(["INBOX"])
        self.clock.advance(50)
        self.watch(["INBOX"])
        self.clock.advance(50)
        self.assertEqual(len(self.live()), 1)
        self.clock.advance(11)
        self.assertEqual(self.live(), [])

    def test_new_password_registers_again(self) -> None:
        self.watch(["INBOX", "Work"])
        self.watch(["INBOX"], password="new")
        self.assertEqual(self.live(), [frozenset({"INBOX"})])

    def test_users_are_separate(self) -> None:
        self.watch(["INBOX"])
        self.watch(["INBOX"], user="bob")
        self.mail.registrations[1].on_change("INBOX")
        self.assertEqual(self.hub.notified, [("bob", ["imap:INBOX"])])

    def test_backend_failure_gives_false(self) -> None:
        self.mail.broken = True
        self.assertFalse(self.watch(["INBOX"]))
        self.mail.broken = False
        self.assertTrue(self.watch(["INBOX"]))

    def test_stopped_registration_is_renewed(self) -> None:
        self.watch(["INBOX"])
        self.mail.registrations[0].stopped = True
        self.watch(["INBOX"])
        self.assertEqual(len(self.live()), 1)
        self.assertEqual(len(self.mail.registrations), 2)

    def test_stop_all(self) -> None:
        self.watch(["INBOX"])
        self.registry.stop_all()
        self.assertEqual(self.live(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class WatchMailTests(SynchronousTestCase):
    def test_registry_per_backend_from_context(self) -> None:
        store: Any = MemoryStateStore()
        mail = FakeMailBackend()
        hub = FakeHub()
        ctx = make_context(store, "Ping", services={"mail": mail, "push": hub})
        ctx.password = "pw"
        self.assertTrue(result_of(watch_mail(ctx, ["INBOX"], hold=60)))
        self.assertIs(registry_for(ctx), registry_for(ctx))
        self.assertEqual(mail.calls, [("watch", "alice", ("INBOX",))])
        registry = registry_for(ctx)
        assert registry is not None
        self.assertEqual(registry.linger, 60.0)  # [imap] watch_linger
        registry.stop_all()

    def test_without_mail_backend(self) -> None:
        ctx = make_context(MemoryStateStore(), "Ping", services={"push": FakeHub()})
        self.assertFalse(result_of(watch_mail(ctx, ["INBOX"])))


class PendingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.mail = FakeMailBackend()
        self.ctx = make_context(self.store, "Ping", services={"mail": self.mail})
        self.ctx.password = "pw"
        result_of(self.store.register_account("dev1", "alice", "T", None, 0))
        self.saved: dict[str, tuple[FolderPoint | None, bool]] = {}
        old = mailpush.point_reader
        mailpush.set_point_reader(lambda text: self.saved.get(text or "", (None, False)))
        self.addCleanup(mailpush.set_point_reader, old)

    def save(self, server_id: str, text: str) -> None:
        result_of(self.store.advance_sync_state("dev1", "alice", server_id, None, 1, text))

    def pending(self) -> set[str]:
        return result_of(mail_pending_topics(self.ctx, [
            ("1", "imap:INBOX"), ("2", "imap:Work"), ("3", "groupware:x"), ("4", "imap:Never")]))

    def test_compares_saved_point_with_status(self) -> None:
        self.save("1", "inbox-state")
        self.save("2", "work-state")
        self.saved["inbox-state"] = (FolderPoint(1, 5, 10, 4), False)
        self.saved["work-state"] = (FolderPoint(1, 7, 3, 6), False)
        self.mail.points["INBOX"] = FolderPoint(1, 6, 11, 5)
        self.mail.points["Work"] = FolderPoint(1, 7, 3, 6)
        self.assertEqual(self.pending(), {"imap:INBOX"})
        # Never-synced folders and groupware ones are not looked at.
        self.assertEqual(sorted(c[1] for c in self.mail.calls), ["INBOX", "Work"])

    def test_unsent_changes_are_pending_without_status(self) -> None:
        self.save("2", "work-state")
        self.saved["work-state"] = (FolderPoint(1, 7, 3, 6), True)
        self.assertEqual(self.pending(), {"imap:Work"})
        self.assertEqual(self.mail.calls, [])

    def test_unreadable_state_and_backend_errors_are_not_pending(self) -> None:
        self.save("1", "something else")
        self.save("2", "work-state")
        self.saved["work-state"] = (FolderPoint(1, 7, 3, 6), False)
        self.mail.broken = True
        self.assertEqual(self.pending(), set())

    def test_point_behind(self) -> None:
        base = FolderPoint(5, 10, 100, 9)
        self.assertFalse(point_behind(base, base))
        self.assertTrue(point_behind(base, FolderPoint(6, 10, 100, 9)))
        self.assertTrue(point_behind(base, FolderPoint(5, 11, 100, 9)))
        self.assertTrue(point_behind(base, FolderPoint(5, 10, 100, 8)))
        self.assertTrue(point_behind(base, FolderPoint(5, 10, 101, 9)))
        self.assertFalse(point_behind(FolderPoint(5, 10, None, 9), FolderPoint(5, 10, 7, 9)))



class PingMailTests(SynchronousTestCase):
    """Ping on mail folders through the real push hub (on a Clock)."""

    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()
        self.clock = make_clock()
        self.hub = PushHub(self.clock)
        self.mail = FakeMailBackend()
        self.mail.mailboxes |= {"Work"}
        self.services = {"mail": self.mail, "push": self.hub}
        result_of(self.store.register_account("dev1", "alice", "T", None, 0))
        result_of(reconcile_mail_folders(self.store, self.mail, "alice", "pw"))
        ids = {f.backend_id: f.server_id for f in result_of(self.store.list_folders("alice"))}
        self.inbox, self.work = ids["imap:INBOX"], ids["imap:Work"]
        self.saved: dict[str, tuple[FolderPoint | None, bool]] = {}
        old = mailpush.point_reader
        mailpush.set_point_reader(lambda text: self.saved.get(text or "", (None, False)))
        self.addCleanup(mailpush.set_point_reader, old)

    def tearDown(self) -> None:
        registry = registry_for(self.ctx())
        if registry is not None:
            registry.stop_all()

    def ctx(self) -> CommandContext:
        ctx = make_context(self.store, "Ping", clock=self.clock, services=self.services)
        ctx.password = "pw"
        return ctx

    def ping(self, *server_ids: str) -> "Deferred[CommandResponse]":
        body = Element("Ping:Ping")
        body.add("Ping:HeartbeatInterval", "300")
        folders = body.add("Ping:Folders")
        for server_id in server_ids:
            folder = folders.add("Ping:Folder")
            folder.add("Ping:Id", server_id)
            folder.add("Ping:Class", "Email")
        return Deferred.fromCoroutine(PingCommand().run(self.ctx(), body))

    def answer(self, response: CommandResponse) -> tuple[str | None, list[str]]:
        assert response.body is not None
        return (response.body.findtext("Ping:Status"),
                [str(e.text or "") for e in response.body.findall("Ping:Folders/Ping:Folder")])

    def test_new_mail_wakes_ping(self) -> None:
        waiting = self.ping(self.inbox, self.work)
        self.assertNoResult(waiting)
        [registration] = self.mail.registrations
        self.assertEqual(registration.mailboxes, frozenset({"INBOX", "Work"}))
        self.mail.change("Work")
        self.assertEqual(self.answer(self.successResultOf(waiting)), ("2", [self.work]))
        # The registration stays for the next Ping.
        waiting = self.ping(self.inbox)
        self.assertEqual(len(self.mail.registrations), 1)
        self.clock.advance(300)
        self.assertEqual(self.answer(self.successResultOf(waiting)), ("1", []))
        self.clock.advance(59)
        self.assertFalse(registration.stopped)
        self.clock.advance(60)
        self.assertTrue(registration.stopped)

    def test_mail_arrived_before_ping_is_pending(self) -> None:
        result_of(self.store.advance_sync_state("dev1", "alice", self.inbox, None, 1, "inbox"))
        self.saved["inbox"] = (FolderPoint(1, 5, 10, 4), False)
        self.mail.points["INBOX"] = FolderPoint(1, 6, 12, 5)
        response = self.successResultOf(self.ping(self.inbox, self.work))
        self.assertEqual(self.answer(response), ("2", [self.inbox]))

    def test_up_to_date_waits(self) -> None:
        result_of(self.store.advance_sync_state("dev1", "alice", self.inbox, None, 1, "inbox"))
        self.saved["inbox"] = (FolderPoint(1, 5, 10, 4), False)
        self.mail.points["INBOX"] = FolderPoint(1, 5, 10, 4)
        waiting = self.ping(self.inbox)
        self.assertNoResult(waiting)
        self.clock.advance(300)
        self.assertEqual(self.answer(self.successResultOf(waiting)), ("1", []))

    def test_mailbox_gone_asks_for_folder_sync(self) -> None:
        result_of(self.store.advance_sync_state("dev1", "alice", self.work, None, 1, "work"))
        self.saved["work"] = (FolderPoint(1, 5, 10, 4), False)
        self.mail.mailboxes.discard("Work")
        self.mail.points.pop("Work", None)

        def gone(user: str, password: str, mailbox: str) -> "Deferred[FolderPoint]":
            return fail(NoSuchMailbox(mailbox))

        self.mail.folder_state = gone  # type: ignore[method-assign]
        response = self.successResultOf(self.ping(self.work))
        self.assertEqual(self.answer(response), ("7", []))
