"""IMAPMailBackend on the fake IMAP server (with and without CONDSTORE/QRESYNC), and MailboxSnapshot."""
from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from easyncd.backends.imap.backend import IMAPMailBackend
from easyncd.backends.imap.client import MailboxInfo
from easyncd.backends.imap.folders import map_folders
from easyncd.backends.imap.pool import IMAPPool
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_INBOX,
    FOLDER_SENT,
    FOLDER_USER_MAIL,
    IMailBackend,
    MailAuthFailed,
    MailboxExists,
    MailboxSnapshot,
    MailChanges,
    MailQuery,
    MailState,
    NoSuchMailbox,
)

from tests.backends.imap.fakes import BASIC, FULL, FakeIMAPServer

UTC = datetime.timezone.utc


class SnapshotTests(TestCase):
    def test_runs_and_lookup(self) -> None:
        flags = {uid: frozenset({"\\Seen"}) for uid in range(1, 1001)}
        flags[500] = frozenset()
        del flags[700]
        snap = MailboxSnapshot.from_flags(flags)
        self.assertEqual(len(snap), 999)
        self.assertEqual(len(snap.runs), 4)
        self.assertEqual(snap.flags_of(500), frozenset())
        self.assertEqual(snap.flags_of(501), frozenset({"\\Seen"}))
        self.assertIsNone(snap.flags_of(700))
        self.assertNotIn(0, snap)
        self.assertIn(1000, snap)
        self.assertEqual(snap.as_dict(), flags)
        self.assertEqual(list(snap.uids())[:3], [1, 2, 3])

    def test_serialisation_is_compact_and_exact(self) -> None:
        typical = MailboxSnapshot.from_flags({uid: {"\\Seen"} for uid in range(1, 10001)})
        self.assertLess(len(typical.to_bytes()), 64)
        worst = {uid * 2: ({"\\Seen"} if uid % 2 else {"$label1", "\\Flagged"}) for uid in range(1, 10001)}
        snap = MailboxSnapshot.from_flags(worst)
        data = snap.to_bytes()
        self.assertLess(len(data), 5 * 10000)
        self.assertEqual(MailboxSnapshot.from_bytes(data).as_dict(), {k: frozenset(v) for k, v in worst.items()})
        empty = MailboxSnapshot.from_flags({})
        self.assertEqual(len(MailboxSnapshot.from_bytes(empty.to_bytes())), 0)
        with_empty_set = MailboxSnapshot.from_flags({3: set()})
        self.assertEqual(MailboxSnapshot.from_bytes(with_empty_set.to_bytes()).as_dict(), {3: frozenset()})
        self.assertRaises(ValueError, MailboxSnapshot.from_bytes, b"nope")

    def test_state_round_trip(self) -> None:
        from easyncd.backends.interfaces import FolderPoint

        for modseq in (None, 0, 12345678901):
            state = MailState(FolderPoint(7, 99, modseq, 42), MailboxSnapshot.from_flags({1: {"\\Seen"}, 5: ()}))
            again = MailState.from_bytes(state.to_bytes())
            self.assertEqual(again.point, state.point)
            self.assertEqual(again.snapshot, state.snapshot)

    def test_updated(self) -> None:
        snap = MailboxSnapshot.from_flags({1: (), 2: (), 3: ()})
        new = snap.updated({2: {"\\Seen"}, 9: ()}, removed=[1])
        self.assertEqual(new.as_dict(), {2: frozenset({"\\Seen"}), 3: frozenset(), 9: frozenset()})
        self.assertIs(snap.updated(), snap)


class FolderMappingTests(TestCase):
    def info(self, name: str, special: str | None = None, flags: tuple[str, ...] = ()) -> MailboxInfo:
        return MailboxInfo(name, ".", frozenset(flags + ((special,) if special else ())), special)

    def test_special_use_and_hierarchy(self) -> None:
        folders = map_folders([
            self.info("INBOX", "\\Inbox"), self.info("Work"), self.info("Work.Projects"),
            self.info("Brouillons", "\\Drafts"), self.info("Envoyés", "\\Sent"), self.info("Corbeille", "\\Trash"),
            self.info("Pourriel", "\\Junk"), self.info("Archive", flags=("\\Noselect",)), self.info("Archive.2023"),
            self.info("INBOX.Sub"), self.info("Gone", flags=("\\NonExistent",)),
        ])
        by_name = {f.name: f for f in folders}
        self.assertEqual(folders[0].name, "INBOX")
        self.assertEqual(by_name["INBOX"].eas_type, FOLDER_INBOX)
        self.assertEqual(by_name["Brouillons"].eas_type, FOLDER_DRAFTS)
        self.assertEqual(by_name["Envoyés"].eas_type, FOLDER_SENT)
        self.assertEqual(by_name["Corbeille"].eas_type, FOLDER_DELETED)
        self.assertEqual((by_name["Pourriel"].eas_type, by_name["Pourriel"].special_use),
                         (FOLDER_USER_MAIL, "\\Junk"))
        self.assertEqual((by_name["Work.Projects"].parent, by_name["Work.Projects"].display_name),
                         ("Work", "Projects"))
        self.assertEqual(by_name["INBOX.Sub"].parent, "INBOX")
        self.assertFalse(by_name["Archive"].selectable)
        self.assertEqual(by_name["Archive.2023"].parent, "Archive")
        self.assertNotIn("Gone", by_name)

    def test_configured_and_common_names(self) -> None:
        infos = [self.info("INBOX", "\\Inbox"), self.info("Sent Items"), self.info("Deleted Items"),
                 self.info("Trash"), self.info("Entwürfe"), self.info("Drafts")]
        folders = {f.name: f for f in map_folders(infos, {"drafts": "Entwürfe", "trash": "Trash"})}
        self.assertEqual(folders["Entwürfe"].eas_type, FOLDER_DRAFTS)
        self.assertEqual(folders["Drafts"].eas_type, FOLDER_USER_MAIL)  # one Drafts only
        self.assertEqual(folders["Sent Items"].eas_type, FOLDER_SENT)
        self.assertEqual(folders["Trash"].eas_type, FOLDER_DELETED)
        self.assertEqual(folders["Deleted Items"].eas_type, FOLDER_USER_MAIL)


if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object


class BackendTestsMixin(_Base):
    capabilities = FULL

    def setUp(self) -> None:
        self.clock = Clock()
        self.server = FakeIMAPServer({"alice": "pw"}, self.capabilities)
        self.pool = IMAPPool(self.clock, self.server.connect)
        self.backend = IMAPMailBackend(self.clock, self.pool, poll_interval=30)

    def wait(self, d: "Deferred[Any]") -> Any:
        return self.successResultOf(d)

    def changes(self, since: MailState | None, mailbox: str = "INBOX", **kw: Any) -> MailChanges:
        return self.wait(self.backend.changes("alice", "pw", mailbox, since, **kw))

    def test_interface(self) -> None:
        verifyObject(IMailBackend, self.backend)

    def test_list_folders(self) -> None:
        folders = self.wait(self.backend.list_folders("alice", "pw"))
        self.assertEqual([(f.name, f.eas_type) for f in folders],
                         [("INBOX", 2), ("Drafts", 3), ("Junk", 12), ("Sent", 5), ("Trash", 4)])
        self.assertEqual(self.wait(self.backend.special_folder("alice", "pw", FOLDER_DELETED)), "Trash")
        self.assertEqual(self.wait(self.backend.special_folder("alice", "pw", "junk")), "Junk")

    def test_change_detection_exact(self) -> None:
        s = self.server
        uids = [s.deliver("alice", "INBOX", b"m%d" % i) for i in range(5)]
        s.store("alice", "INBOX", uids[4], {"\\Deleted"})
        first = self.changes(None)
        self.assertEqual(first.added, tuple(uids[:4]))
        self.assertFalse(first.reset)
        self.assertEqual(len(first.state.snapshot), 4)
        again = self.changes(first.state)
        self.assertTrue(again.empty)

        new = s.deliver("alice", "INBOX", b"new")
        s.store("alice", "INBOX", uids[0], {"\\Seen"})
        s.store("alice", "INBOX", uids[1], {"\\Deleted"})
        s.expunge("alice", "INBOX", [uids[2]])
        later = s.deliver("alice", "INBOX", b"later")
        s.store("alice", "INBOX", later, {"\\Deleted"})  # added and hidden: never shown
        back = self.changes(first.state)
        self.assertEqual(back.added, (new,))
        self.assertEqual(dict(back.changed), {uids[0]: frozenset({"\\Seen"})})
        self.assertEqual(back.removed, (uids[1], uids[2]))
        self.assertEqual(sorted(back.state.snapshot.uids()), [uids[0], uids[3], new])
        # The saved state survives serialisation and gives "no change" afterwards.
        stored = MailState.from_bytes(back.state.to_bytes())
        self.assertTrue(self.changes(stored).empty)

    def test_own_flag_change_not_echoed_when_snapshot_updated(self) -> None:
        uid = self.server.deliver("alice", "INBOX")
        first = self.changes(None)
        flags = self.wait(self.backend.set_flags("alice", "pw", "INBOX", [uid], add=["\\Seen", "$Work"]))
        self.assertEqual(flags, {uid: frozenset({"\\Seen", "$Work"})})
        state = MailState(first.state.point, first.state.snapshot.updated(flags))
        self.assertEqual(dict(self.changes(state).changed), {})
        removed = self.wait(self.backend.set_flags("alice", "pw", "INBOX", [uid], remove=["$Work"]))
        self.assertEqual(removed, {uid: frozenset({"\\Seen"})})

    def test_uidvalidity_change_resets_that_folder_only(self) -> None:
        self.server.deliver("alice", "INBOX")
        self.server.deliver("alice", "Sent")
        inbox = self.changes(None)
        sent = self.changes(None, "Sent")
        self.server.recreate("alice", "INBOX")
        fresh = self.server.deliver("alice", "INBOX")
        result = self.changes(inbox.state)
        self.assertTrue(result.reset)
        self.assertEqual(result.added, (fresh,))
        self.assertEqual(result.removed, tuple(inbox.state.snapshot.uids()))
        self.assertTrue(self.changes(sent.state, "Sent").empty)

    def test_window_start(self) -> None:
        old = self.server.deliver("alice", "INBOX", date=datetime.datetime(2020, 1, 1, tzinfo=UTC))
        recent = self.server.deliver("alice", "INBOX", date=datetime.datetime(2024, 6, 1, tzinfo=UTC))
        window = datetime.datetime(2024, 1, 1, tzinfo=UTC)
        first = self.changes(None, window_start=window)
        self.assertEqual(first.added, (recent,))
        self.server.store("alice", "INBOX", old, {"\\Seen"})
        moved_in_old = self.server.deliver("alice", "INBOX", date=datetime.datetime(2019, 1, 1, tzinfo=UTC))
        newer = self.server.deliver("alice", "INBOX", date=datetime.datetime(2024, 7, 1, tzinfo=UTC))
        later = self.changes(first.state, window_start=window)
        self.assertEqual((later.added, dict(later.changed), later.removed), ((newer,), {}, ()))
        self.assertNotIn(moved_in_old, later.state.snapshot)

    def test_folder_state(self) -> None:
        self.server.deliver("alice", "INBOX")
        point = self.wait(self.backend.folder_state("alice", "pw", "INBOX"))
        box = self.server.boxes["alice"]["INBOX"]
        self.assertEqual((point.uidvalidity, point.uidnext, point.messages), (box.uidvalidity, 2, 1))

    def test_fetch_messages_batched_in_order(self) -> None:
        self.backend.fetch_batch = 2
        uids = [self.server.deliver("alice", "INBOX", b"body %d" % i) for i in range(5)]
        wanted = [uids[4], uids[0], 999, uids[2]]
        got = self.wait(self.backend.fetch_messages("alice", "pw", "INBOX", wanted, ["FLAGS", "BODY.PEEK[]"]))
        self.assertEqual([m.uid for m in got], [uids[4], uids[0], uids[2]])
        self.assertEqual(got[0].sections[""], b"body 4")
        fetches = [c for u, c in self.server.commands if c.startswith("UID FETCH")]
        self.assertEqual(len(fetches), 2)

    def test_fetch_and_stream_part(self) -> None:
        uid = self.server.deliver("alice", "INBOX", b"0123456789" * 10)
        part = self.wait(self.backend.fetch_part("alice", "pw", "INBOX", uid, "", 5, 10))
        self.assertEqual(part, b"5678901234")
        chunks: list[bytes] = []
        total = self.wait(self.backend.stream_part("alice", "pw", "INBOX", uid, "", chunks.append, chunk_size=30))
        self.assertEqual(total, 100)
        self.assertEqual([len(c) for c in chunks], [30, 30, 30, 10])
        self.assertEqual(b"".join(chunks), b"0123456789" * 10)

    def test_move_delete_append_empty(self) -> None:
        uids = [self.server.deliver("alice", "INBOX", b"m%d" % i) for i in range(4)]
        mapping = self.wait(self.backend.move("alice", "pw", "INBOX", [uids[0], uids[1]], "Junk"))
        self.assertEqual(sorted(mapping), [uids[0], uids[1]])
        junk = self.server.boxes["alice"]["Junk"].messages
        self.assertEqual([junk[mapping[u]].body for u in (uids[0], uids[1])], [b"m0", b"m1"])
        trashed = self.wait(self.backend.delete("alice", "pw", "INBOX", [uids[2]], True))
        trash = self.server.boxes["alice"]["Trash"].messages
        self.assertEqual(trash[trashed[uids[2]]].body, b"m2")
        self.assertEqual(self.wait(self.backend.delete("alice", "pw", "INBOX", [uids[3]], False)), {})
        self.assertEqual(self.server.boxes["alice"]["INBOX"].messages, {})
        # In the Trash itself a delete expunges.
        self.assertEqual(self.wait(self.backend.delete("alice", "pw", "Trash", list(trash), True)), {})
        self.assertEqual(trash, {})
        uid = self.wait(self.backend.append("alice", "pw", "Drafts", b"draft", ["\\Draft", "\\Seen"]))
        self.assertEqual(self.server.boxes["alice"]["Drafts"].messages[uid].flags, {"\\Draft", "\\Seen"})
        self.assertEqual(self.wait(self.backend.empty("alice", "pw", "Junk")), 2)
        self.assertEqual(self.server.boxes["alice"]["Junk"].messages, {})

    def test_folder_operations(self) -> None:
        created = self.wait(self.backend.create_folder("alice", "pw", None, "Work"))
        self.assertEqual((created.name, created.eas_type, created.parent), ("Work", 12, None))
        child = self.wait(self.backend.create_folder("alice", "pw", "Work", "Projects"))
        self.assertEqual((child.name, child.parent, child.display_name), ("Work/Projects", "Work", "Projects"))
        self.failureResultOf(self.backend.create_folder("alice", "pw", None, "Work"), MailboxExists)
        self.failureResultOf(self.backend.create_folder("alice", "pw", "Nope", "X"), NoSuchMailbox)
        renamed = self.wait(self.backend.rename_folder("alice", "pw", "Work/Projects", None, "Projects"))
        self.assertEqual((renamed.name, renamed.parent), ("Projects", None))
        self.wait(self.backend.delete_folder("alice", "pw", "Projects"))
        self.failureResultOf(self.backend.delete_folder("alice", "pw", "Projects"), NoSuchMailbox)
        self.failureResultOf(self.backend.changes("alice", "pw", "Projects", None), NoSuchMailbox)

    def test_search(self) -> None:
        self.server.deliver("alice", "INBOX", b"Subject: budget\r\n\r\nq3", date=datetime.datetime(2024, 1, 2, tzinfo=UTC))
        hit2 = self.server.deliver("alice", "Sent", b"Re: BUDGET", date=datetime.datetime(2024, 3, 1, tzinfo=UTC))
        self.server.deliver("alice", "INBOX", b"other")
        hits = self.wait(self.backend.search("alice", "pw", MailQuery(text="budget")))
        self.assertEqual([(h.mailbox, h.uid) for h in hits], [("Sent", hit2), ("INBOX", 1)])
        limited = self.wait(self.backend.search("alice", "pw", MailQuery(text="budget", mailboxes=("INBOX",)), 5))
        self.assertEqual([(h.mailbox, h.uid) for h in limited], [("INBOX", 1)])
        dated = self.wait(self.backend.search(
            "alice", "pw", MailQuery(text="budget", since=datetime.datetime(2024, 2, 1, tzinfo=UTC))))
        self.assertEqual([h.uid for h in dated], [hit2])

    def test_auth_error(self) -> None:
        self.failureResultOf(self.backend.list_folders("alice", "bad"), MailAuthFailed)


class FullBackendTests(BackendTestsMixin, TestCase):
    capabilities = FULL

    def test_no_change_check_needs_no_select(self) -> None:
        for i in range(50):
            self.server.deliver("alice", "INBOX", b"m%d" % i)
        first = self.changes(None)
        self.server.commands.clear()
        self.assertTrue(self.changes(first.state).empty)
        self.assertEqual([c for _, c in self.server.commands], ["NOOP", "STATUS INBOX"])
        self.server.store("alice", "INBOX", 7, {"\\Flagged"})
        self.server.commands.clear()
        self.assertEqual(dict(self.changes(first.state).changed), {7: frozenset({"\\Flagged"})})
        self.assertEqual([c for _, c in self.server.commands],
                         ["NOOP", "STATUS INBOX", "UID FETCH 1:* FLAGS CHANGEDSINCE 51"])


class CondstoreOnlyBackendTests(BackendTestsMixin, TestCase):
    capabilities = FULL - {"QRESYNC"}


class BasicBackendTests(BackendTestsMixin, TestCase):
    capabilities = BASIC

    def test_fallback_fetches_flags(self) -> None:
        self.server.deliver("alice", "INBOX")
        first = self.changes(None)
        self.assertIsNone(first.state.point.highestmodseq)
        self.server.commands.clear()
        self.changes(first.state)
        self.assertEqual([c for _, c in self.server.commands], ["EXAMINE INBOX", "UID FETCH 1:* FLAGS"])


class WatchTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()

    def make(self, capabilities: frozenset[str]) -> None:
        self.server = FakeIMAPServer({"alice": "pw"}, capabilities)
        self.pool = IMAPPool(self.clock, self.server.connect)
        self.backend = IMAPMailBackend(self.clock, self.pool, poll_interval=30, watch_linger=60)
        self.seen: list[str] = []

    def test_idle_and_polling(self) -> None:
        self.make(FULL)
        registration = self.successResultOf(self.backend.watch("alice", "pw", ["Sent", "INBOX"], self.seen.append))
        self.assertEqual(self.pool.stats("alice")["dedicated"], 1)
        client = self.server.live("alice")[0]
        self.assertTrue(client.idling)
        self.assertEqual(client.selected, "INBOX")
        self.server.deliver("alice", "INBOX")
        self.assertEqual(self.seen, ["INBOX"])  # at once
        self.server.deliver("alice", "Sent")
        self.assertEqual(self.seen, ["INBOX"])
        self.clock.advance(30)
        self.assertEqual(self.seen, ["INBOX", "Sent"])
        self.assertTrue(client.idling)  # back to IDLE after polling
        self.clock.advance(30)
        self.assertEqual(self.seen, ["INBOX", "Sent"])  # nothing new: no repeat
        registration.stop()
        self.server.deliver("alice", "INBOX")
        self.assertEqual(self.seen, ["INBOX", "Sent"])
        self.clock.advance(60)
        self.assertEqual(self.server.live("alice"), [])
        self.assertEqual(self.pool.total(), 0)

    def test_second_registration_adds_mailbox(self) -> None:
        self.make(FULL)
        other: list[str] = []
        self.successResultOf(self.backend.watch("alice", "pw", ["Sent"], self.seen.append))
        client = self.server.live("alice")[0]
        self.assertEqual(client.selected, "Sent")
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX"], other.append))
        self.assertEqual(self.server.live("alice"), [client])  # same session
        self.assertEqual(client.selected, "INBOX")
        self.server.deliver("alice", "INBOX")
        self.assertEqual((self.seen, other), ([], ["INBOX"]))

    def test_polling_without_idle(self) -> None:
        self.make(frozenset({"IMAP4REV1"}))
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX"], self.seen.append))
        self.server.deliver("alice", "INBOX")
        self.assertEqual(self.seen, [])
        self.clock.advance(30)
        self.assertEqual(self.seen, ["INBOX"])

    def test_reconnects_after_drop(self) -> None:
        self.make(FULL)
        self.successResultOf(self.backend.watch("alice", "pw", ["INBOX"], self.seen.append))
        first = self.server.live("alice")[0]
        self.server.down = True
        self.server.drop(first)
        self.clock.advance(1)  # reconnect attempt fails: backoff
        self.assertEqual(self.server.live("alice"), [])
        self.server.down = False
        self.clock.advance(2)
        self.clock.advance(2)
        second = self.server.live("alice")
        self.assertEqual(len(second), 1)
        self.assertTrue(second[0].idling)
        self.server.deliver("alice", "INBOX")
        self.assertIn("INBOX", self.seen)

    def test_wrong_password(self) -> None:
        self.make(FULL)
        self.failureResultOf(self.backend.watch("alice", "bad", ["INBOX"], self.seen.append), MailAuthFailed)
