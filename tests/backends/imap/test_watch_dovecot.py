"""Mail push against a real Dovecot: NOTIFY covers every watched mailbox; without it, IDLE + polling."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.backend import IMAPMailBackend
from easyncd.backends.imap.client import EASIMAPClient, MailboxStatus
from easyncd.backends.imap.pool import IMAPPool, imap_connector
from easyncd.backends.interfaces import MailQuery
from easyncd.testing.dovecot import DovecotServer
from tests.backends.imap.test_backend_dovecot import MAILBOXES, message

PW = "alice pw"


class _Base(TestCase):
    extra_config = MAILBOXES

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.server = DovecotServer({"alice": PW}, extra_config=self.extra_config)
        self.server.start()
        self.addCleanup(self.server.stop)
        self.backend = self.make_backend(poll_interval=30)
        self.other = self.make_backend(poll_interval=30)  # "another mail client"
        self.latencies: list[float] = []

    def make_backend(self, poll_interval: float) -> IMAPMailBackend:
        connect = imap_connector(self.reactor, "localhost", self.server.imap_port, "starttls",
                                 self.server.ca_file, timeout=10)
        backend = IMAPMailBackend(self.reactor, IMAPPool(self.reactor, connect, idle_timeout=30),
                                  poll_interval=poll_interval)
        self.addCleanup(self.shutdown, backend)
        return backend

    async def shutdown(self, backend: IMAPMailBackend) -> None:
        backend.stop()
        await _sleep(self.reactor, 0.05)

    async def append_and_wait(self, seen: list[tuple[str, float]], mailbox: str, within: float) -> float:
        """APPEND to ``mailbox`` from the other client; the seconds until ``on_change(mailbox)``."""
        arrived: Deferred[float] = Deferred()
        start = len(seen)

        def check() -> None:
            for box, when in seen[start:]:
                if box == mailbox and not arrived.called:
                    arrived.callback(when)
                    return
            if not arrived.called:
                self.reactor.callLater(0.005, check)

        await self.other.append("alice", PW, mailbox, message(f"to {mailbox}"))
        appended = self.reactor.seconds()
        check()
        arrived.addTimeout(within + 5, self.reactor)
        when = await arrived
        # The APPEND's tagged OK may come after the server's STATUS: count from before it then.
        return max(0.0, when - appended)


    async def _close(self, client: EASIMAPClient) -> None:
        await client.logout_quietly()
        await _sleep(self.reactor, 0.05)


class NotifyDovecotTests(_Base):
    async def watch_three(self, parent: str, child: str) -> None:
        """Watch INBOX, Sent and ``parent/child``; APPEND to each: woken within a second."""
        await self.backend.create_folder("alice", PW, None, parent)
        other = (await self.backend.create_folder("alice", PW, parent, child)).name
        seen: list[tuple[str, float]] = []
        registration = await self.backend.watch(
            "alice", PW, ["INBOX", "Sent", other], lambda box: seen.append((box, self.reactor.seconds())))
        watcher = self.backend._watchers["alice"]
        self.assertEqual(watcher.mode, "notify")
        for mailbox in ("Sent", other, "INBOX", other):
            latency = await self.append_and_wait(seen, mailbox, within=1.0)
            self.latencies.append(latency)
            self.assertLess(latency, 1.0, mailbox)
        # A flag change elsewhere (CONDSTORE is on) is news too.
        hits = await self.other.search("alice", PW, MailQuery(mailboxes=(other,)))
        before = len(seen)
        await self.other.set_flags("alice", PW, other, [hits[0].uid], add=["\\Flagged"])
        deadline = self.reactor.seconds() + 2
        while len(seen) == before and self.reactor.seconds() < deadline:
            await _sleep(self.reactor, 0.01)
        self.assertEqual([box for box, _ in seen[before:]][:1], [other])
        # Nothing is reported twice (Dovecot repeats STATUS lines) or for no change.
        await _sleep(self.reactor, 1.0)
        self.assertEqual([box for box, _ in seen], ["Sent", other, "INBOX", other, other])
        registration.stop()
        print(f"\nNOTIFY latencies (s): {', '.join(f'{x:.3f}' for x in self.latencies)}")

    async def test_ascii_folders_notify_mailboxes(self) -> None:
        await self.watch_three("Projects", "Q3")

    async def test_non_ascii_folders_notify_personal(self) -> None:
        await self.watch_three("Entw\u00fcrfe", "Pl\u00e4ne")

    async def test_client_notify_set_and_idle(self) -> None:
        connect = imap_connector(self.reactor, "localhost", self.server.imap_port, "starttls",
                                 self.server.ca_file, timeout=10)
        client: EASIMAPClient = await connect("alice", PW)
        self.addCleanup(self._close, client)
        self.assertTrue(client.has_capability("NOTIFY"))
        statuses = await client.notify_set(["INBOX", "Sent", "Nope"], status=True)
        self.assertIn("Sent", [s.name for s in statuses])
        events: list[tuple[str, Any]] = []
        await client.idle(lambda kind, data: events.append((kind, data)))
        await self.other.append("alice", PW, "Sent", message("x"))
        deadline = self.reactor.seconds() + 2
        while not any(k == "STATUS" and d.messages == 1 for k, d in events) and self.reactor.seconds() < deadline:
            await _sleep(self.reactor, 0.01)
        status = [d for k, d in events if k == "STATUS" and d.messages == 1][0]
        self.assertIsInstance(status, MailboxStatus)
        self.assertEqual((status.name, status.uidnext), ("Sent", 2))
        await client.done()
        await client.notify_none()
        self.assertFalse(client.notifying)


class IdleOnlyDovecotTests(_Base):
    """Dovecot announcing no NOTIFY: IDLE on INBOX, the other folders polled."""

    extra_config = MAILBOXES + (
        "imap_capability = IMAP4rev1 IDLE CONDSTORE QRESYNC ENABLE UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED\n")

    async def test_old_path(self) -> None:
        self.backend = self.make_backend(poll_interval=1)
        seen: list[tuple[str, float]] = []
        registration = await self.backend.watch(
            "alice", PW, ["INBOX", "Sent"], lambda box: seen.append((box, self.reactor.seconds())))
        self.assertEqual(self.backend._watchers["alice"].mode, "idle")
        self.assertLess(await self.append_and_wait(seen, "INBOX", within=1.0), 1.0)
        self.assertLess(await self.append_and_wait(seen, "Sent", within=2.0), 2.0)  # the 1 s poll
        registration.stop()


def _sleep(reactor: Any, seconds: float) -> "Deferred[None]":
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
