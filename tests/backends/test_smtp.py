"""Tests for easyncd.backends.smtp: byte-exact client tests and a real Postfix + Dovecot."""
from __future__ import annotations

import base64
import email
import email.policy
from types import SimpleNamespace
from typing import Any

import atexit

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from easyncd.backends.smtp import (
    SMTPAuthFailed,
    SMTPRejected,
    SMTPSender,
    SMTPUnavailable,
    _SendProtocol,
    dot_stuff,
)
from easyncd.testing.dovecot import free_port
from easyncd.testing.smtpserver import MailServers, wait_for_inbox

USERS = {"alice": "alice secret", "bob": "bob secret", "carol": "pässwörd"}
EHLO = b"250-mail.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"


class DotStuffTests(SynchronousTestCase):
    def test_crlf_and_dots(self) -> None:
        self.assertEqual(dot_stuff(b"a\n.b\r\n..c\rd"), b"a\r\n..b\r\n...c\r\nd\r\n")

    def test_leading_dot_and_final_newline(self) -> None:
        self.assertEqual(dot_stuff(b".\r\n"), b"..\r\n")
        self.assertEqual(dot_stuff(b"x\r\n\r\n"), b"x\r\n\r\n")


class ProtocolTests(SynchronousTestCase):
    """What the client writes for the server lines fed to it."""

    def connect(self, credentials: tuple[bytes, bytes, bytes] | None = None,
                recipients: tuple[bytes, ...] = (b"bob@example.test",),
                data: bytes = b"Subject: x\r\n\r\nhi\r\n") -> _SendProtocol:
        self.transport = StringTransport()
        self.clock = Clock()
        protocol = _SendProtocol(
            identity=b"client.test", context=None, require_tls=False,
            credentials=credentials, sender=b"alice@example.test",
            recipients=list(recipients), data=data,
            eight_bit=any(byte >= 0x80 for byte in data), timeout=30,
        )
        protocol.callLater = self.clock.callLater  # type: ignore[assignment]
        protocol.makeConnection(self.transport)
        protocol.dataReceived(b"220 mail.example.test ESMTP\r\n")
        self.assertEqual(self.take(), b"EHLO client.test\r\n")
        return protocol

    def take(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return bytes(value)

    def test_success_only_after_final_250(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO)
        self.assertEqual(self.take(), b"MAIL FROM:<alice@example.test>\r\n")
        protocol.dataReceived(b"250 2.1.0 Ok\r\n")
        self.assertEqual(self.take(), b"RCPT TO:<bob@example.test>\r\n")
        protocol.dataReceived(b"250 2.1.5 Ok\r\n")
        self.assertEqual(self.take(), b"DATA\r\n")
        protocol.dataReceived(b"354 go ahead\r\n")
        self.assertEqual(self.take(), b"Subject: x\r\n\r\nhi\r\n.\r\n")
        self.assertNoResult(protocol.result)
        protocol.dataReceived(b"250 2.0.0 queued\r\n")
        self.assertIsNone(self.successResultOf(protocol.result))
        self.assertEqual(self.take(), b"QUIT\r\n")

    def test_reply_timeout(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO)
        self.clock.advance(29)
        self.assertNoResult(protocol.result)
        self.clock.advance(2)
        self.failureResultOf(protocol.result, SMTPUnavailable)
        self.assertTrue(self.transport.disconnecting)

    def test_eight_bit_body(self) -> None:
        protocol = self.connect(data="Subject: x\r\n\r\nGrüße\r\n".encode())
        protocol.dataReceived(EHLO)
        self.assertEqual(self.take(), b"MAIL FROM:<alice@example.test> BODY=8BITMIME\r\n")

    def test_lost_after_data_is_not_sent(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO + b"250 Ok\r\n250 Ok\r\n354 go\r\n")
        protocol.connectionLost(Failure(ConnectionLost()))
        self.failureResultOf(protocol.result, SMTPUnavailable)

    def test_refused_after_data(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO + b"250 Ok\r\n250 Ok\r\n354 go\r\n")
        self.take()
        protocol.dataReceived(b"552 5.3.4 Message too big\r\n")
        error = self.failureResultOf(protocol.result, SMTPRejected).value
        self.assertTrue(error.permanent)
        self.assertEqual(error.code, 552)
        self.assertEqual(self.take(), b"QUIT\r\n")

    def test_one_refused_recipient_sends_nothing(self) -> None:
        protocol = self.connect(recipients=(b"bob@example.test", b"nobody@example.test",
                                            b"later@example.test"))
        protocol.dataReceived(EHLO + b"250 Ok\r\n")
        protocol.dataReceived(b"250 Ok\r\n")
        protocol.dataReceived(b"550 5.1.1 unknown\r\n")
        self.take()
        protocol.dataReceived(b"451 4.3.0 later\r\n")
        error = self.failureResultOf(protocol.result, SMTPRejected).value
        self.assertTrue(error.permanent)
        self.assertEqual(error.code, 550)
        self.assertEqual(error.recipients, ("nobody@example.test", "later@example.test"))
        self.assertEqual(self.take(), b"QUIT\r\n")

    def test_temporary_recipient_refusal(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO + b"250 Ok\r\n450 4.2.1 busy\r\n")
        error = self.failureResultOf(protocol.result, SMTPRejected).value
        self.assertFalse(error.permanent)
        self.assertEqual((error.code, error.recipients), (450, ("bob@example.test",)))

    def test_sender_refused(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO + b"553 5.7.1 not yours\r\n")
        error = self.failureResultOf(protocol.result, SMTPRejected).value
        self.assertEqual((error.permanent, error.code, error.recipients), (True, 553, ()))

    def test_421_is_unavailable(self) -> None:
        protocol = self.connect()
        protocol.dataReceived(EHLO + b"421 4.3.2 shutting down\r\n")
        self.failureResultOf(protocol.result, SMTPUnavailable)

    def test_bad_greeting(self) -> None:
        transport = StringTransport()
        protocol = _SendProtocol(
            identity=b"c", context=None, require_tls=False, credentials=None,
            sender=b"a@b", recipients=[b"c@d"], data=b"x\r\n", eight_bit=False, timeout=30,
        )
        protocol.callLater = Clock().callLater  # type: ignore[assignment]
        protocol.makeConnection(transport)
        protocol.dataReceived(b"554 go away\r\n")
        self.failureResultOf(protocol.result, SMTPUnavailable)

    def test_auth_plain(self) -> None:
        protocol = self.connect(credentials=(b"", b"alice", b"s3cret"))
        protocol.dataReceived(EHLO)
        token = base64.b64encode(b"\0alice\0s3cret")
        self.assertEqual(self.take(), b"AUTH PLAIN " + token + b"\r\n")
        protocol.dataReceived(b"235 2.7.0 ok\r\n")
        self.assertEqual(self.take(), b"MAIL FROM:<alice@example.test>\r\n")

    def test_auth_plain_master(self) -> None:
        protocol = self.connect(credentials=(b"alice", b"master", b"m"))
        protocol.dataReceived(EHLO)
        self.assertEqual(self.take(), b"AUTH PLAIN " + base64.b64encode(b"alice\0master\0m") + b"\r\n")

    def test_auth_refused_once_only(self) -> None:
        protocol = self.connect(credentials=(b"", b"alice", b"bad"))
        protocol.dataReceived(EHLO)
        self.take()
        protocol.dataReceived(b"535 5.7.8 authentication failed\r\n")
        self.failureResultOf(protocol.result, SMTPAuthFailed)
        self.assertEqual(self.take(), b"QUIT\r\n")

    def test_auth_temporary_failure(self) -> None:
        protocol = self.connect(credentials=(b"", b"alice", b"pw"))
        protocol.dataReceived(EHLO + b"454 4.7.0 auth unavailable\r\n")
        self.failureResultOf(protocol.result, SMTPUnavailable)

    def test_auth_login(self) -> None:
        protocol = self.connect(credentials=(b"", b"alice", b"pw"))
        protocol.dataReceived(b"250-mail\r\n250 AUTH LOGIN\r\n")
        self.assertEqual(self.take(), b"AUTH LOGIN\r\n")
        protocol.dataReceived(b"334 VXNlcm5hbWU6\r\n")
        self.assertEqual(self.take(), base64.b64encode(b"alice") + b"\r\n")
        protocol.dataReceived(b"334 UGFzc3dvcmQ6\r\n")
        self.assertEqual(self.take(), base64.b64encode(b"pw") + b"\r\n")
        protocol.dataReceived(b"235 ok\r\n")
        self.assertEqual(self.take(), b"MAIL FROM:<alice@example.test>\r\n")

    def test_auth_not_offered(self) -> None:
        protocol = self.connect(credentials=(b"", b"alice", b"pw"))
        protocol.dataReceived(b"250-mail\r\n250 8BITMIME\r\n")
        self.failureResultOf(protocol.result, SMTPUnavailable)

    def test_starttls_required_but_missing(self) -> None:
        transport = StringTransport()
        protocol = _SendProtocol(
            identity=b"c", context=object(), require_tls=True, credentials=None,
            sender=b"a@b", recipients=[b"c@d"], data=b"x\r\n", eight_bit=False, timeout=30,
        )
        protocol.callLater = Clock().callLater  # type: ignore[assignment]
        protocol.makeConnection(transport)
        protocol.dataReceived(b"220 hi\r\n250-mail\r\n250 8BITMIME\r\n")
        self.failureResultOf(protocol.result, SMTPUnavailable)
        self.assertNotIn(b"MAIL FROM", transport.value())

    def test_non_utf8_server_refuses_utf8_address(self) -> None:
        protocol = self.connect(recipients=("jürgen@example.test".encode(),))
        protocol.dataReceived(EHLO)
        self.failureResultOf(protocol.result, SMTPRejected)
        self.assertEqual(self.take(), b"QUIT\r\n")


class ConfigTests(SynchronousTestCase):
    def test_bad_modes(self) -> None:
        self.assertRaises(ValueError, SMTPSender, object(), "h", 25, "ssl")
        self.assertRaises(ValueError, SMTPSender, object(), "h", 25, "none", None, "maybe")
        self.assertRaises(ValueError, SMTPSender, object(), "h", 25, "none", None, "master")

    def test_from_config(self) -> None:
        config = SimpleNamespace(smtp=SimpleNamespace(
            host="mx", port=587, tls="none", ca_file="", auth="none",
            master_user="", master_password="", helo_name="", timeout=60.0,
        ))
        sender = SMTPSender.from_config(config, object())
        self.assertEqual((sender.host, sender.port, sender.tls, sender.auth, sender.timeout),
                         ("mx", 587, "none", "none", 60.0))

    def test_bad_envelope(self) -> None:
        sender = SMTPSender(object(), "h", 25, "none", None, "none")
        self.assertRaises(ValueError, sender.send, "a@b", ["x y@z"], b"x")
        self.assertRaises(ValueError, sender.send, "a@b", [], b"x")
        self.assertRaises(ValueError, sender.send, "a@b\r\nRCPT TO:<c@d>", ["c@d"], b"x")

    def test_user_auth_needs_password(self) -> None:
        sender = SMTPSender(object(), "h", 25, "none", None, "user")
        self.assertRaises(ValueError, sender.send, "a@b", ["c@d"], b"x", username="a")


_shared: list[MailServers] = []


def shared_servers() -> MailServers:
    """One Postfix + Dovecot for this module's tests, stopped when the run ends."""
    if not _shared:
        servers = MailServers(USERS)
        servers.start()
        atexit.register(servers.stop)
        _shared.append(servers)
    return _shared[0]


class RealServerTests(TestCase):
    """Against Postfix delivering by LMTP into Dovecot."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.servers = shared_servers()

    def sender(self, port: int, tls: str, auth: str = "none", **kwargs: Any) -> SMTPSender:
        return SMTPSender(self.reactor, "localhost", port, tls, self.servers.ca_file, auth,
                          **kwargs)

    def inbox(self, user: str, count: int) -> "Deferred[list[bytes]]":
        s = self.servers
        return ensureDeferred(wait_for_inbox(
            self.reactor, s.host, s.dovecot.imap_port, user, USERS[user], count
        ))

    async def _count(self, user: str) -> int:
        return len(await self.inbox(user, 0))

    async def send_and_find(self, sender: SMTPSender, marker: str, user: str = "bob",
                            **credentials: Any) -> bytes:
        before = await self._count(user)
        message = (
            f"From: alice@example.test\r\nTo: {user}@example.test\r\nSubject: {marker}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n.leading dot\r\nGrüße\r\n"
        ).encode()
        sent = sender.send("alice@example.test", [f"{user}@example.test"], message, **credentials)
        outcome: list[object] = []
        sent.addCallback(outcome.append)
        await sent
        self.assertEqual(outcome, [None])
        messages = await self.inbox(user, before + 1)
        found = [m for m in messages if marker.encode() in m]
        self.assertEqual(len(found), 1, f"{marker} not delivered")
        return found[0]

    async def test_plain(self) -> None:
        raw = await self.send_and_find(self.sender(self.servers.smtp_port, "none"), "plain-1")
        self.assertIn(b"with ESMTP id", raw)
        parsed = email.message_from_bytes(raw)
        self.assertEqual(parsed["Subject"], "plain-1")
        body = parsed.get_payload(decode=True)
        self.assertEqual(body, ".leading dot\r\nGrüße\r\n".encode())

    async def test_starttls(self) -> None:
        raw = await self.send_and_find(self.sender(self.servers.smtp_port, "starttls"), "tls-2")
        self.assertIn(b"with ESMTPS id", raw)  # Postfix's Received: TLS was used

    async def test_starttls_auth(self) -> None:
        sender = self.sender(self.servers.submission_port, "starttls", "user")
        raw = await self.send_and_find(sender, "auth-3", username="carol",
                                       password=USERS["carol"])
        self.assertIn(b"with ESMTPSA id", raw)  # TLS and AUTH were used

    async def test_implicit_tls_auth(self) -> None:
        sender = self.sender(self.servers.smtps_port, "implicit", "user")
        await self.send_and_find(sender, "smtps-4", user="carol", username="alice",
                                 password=USERS["alice"])

    async def test_wrong_password(self) -> None:
        sender = self.sender(self.servers.submission_port, "starttls", "user")
        with self.assertRaises(SMTPAuthFailed):
            await sender.send("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx",
                              username="alice", password="wrong")

    async def test_submission_without_auth_refused(self) -> None:
        sender = self.sender(self.servers.submission_port, "starttls")
        with self.assertRaises(SMTPRejected):
            await sender.send("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx")

    async def test_unknown_recipient_permanent(self) -> None:
        before = await self._count("bob")
        sender = self.sender(self.servers.smtp_port, "starttls")
        with self.assertRaises(SMTPRejected) as caught:
            await sender.send("alice@example.test", ["bob@example.test", "nobody@example.test"],
                              b"Subject: never\r\n\r\nx")
        self.assertTrue(caught.exception.permanent)
        self.assertEqual(caught.exception.code, 550)
        self.assertEqual(caught.exception.recipients, ("nobody@example.test",))
        # Nothing went to bob either.
        self.assertEqual(len(await self.inbox("bob", 0)), before)

    async def test_busy_recipient_temporary(self) -> None:
        sender = self.sender(self.servers.smtp_port, "none")
        with self.assertRaises(SMTPRejected) as caught:
            await sender.send("alice@example.test", [self.servers.busy_address],
                              b"Subject: x\r\n\r\nx")
        self.assertFalse(caught.exception.permanent)
        self.assertEqual(caught.exception.code, 450)

    async def test_untrusted_certificate(self) -> None:
        sender = SMTPSender(self.reactor, "localhost", self.servers.smtp_port, "starttls", None,
                              "none")
        with self.assertRaises(SMTPUnavailable):
            await sender.send("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx")

    async def test_wrong_host_name(self) -> None:
        sender = SMTPSender(self.reactor, "127.0.0.2", self.servers.smtps_port, "implicit",
                            self.servers.ca_file, "none", connect_timeout=5)
        with self.assertRaises(SMTPUnavailable):
            await sender.send("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx")

    async def test_implicit_tls_against_plain_port(self) -> None:
        sender = self.sender(self.servers.smtp_port, "implicit", timeout=5)
        with self.assertRaises(SMTPUnavailable):
            await sender.send("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx")


    async def test_compose_forward_end_to_end(self) -> None:
        """SmartForward-style: composed, sent with AUTH, arrives with the
        original's attachment; the Bcc recipient gets it without seeing Bcc."""
        import datetime

        from easyncd.protocol.compose import Identity, compose_forward

        original = (
            b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: menu\r\n"
            b"Message-ID: <menu@example.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nLe caf\xe9\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=menu.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n"
        )
        device = (
            b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
            b"Bcc: carol@example.test\r\nSubject: FW: menu e2e\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nVoil\xc3\xa0\r\n"
        )
        out = compose_forward(device, original, Identity("alice@example.test"),
                              now=datetime.datetime.now(datetime.timezone.utc))
        before = {user: await self._count(user) for user in ("bob", "carol")}
        sender = self.sender(self.servers.submission_port, "starttls", "user")
        await sender.send(out.sender, list(out.recipients), out.message,
                          username="alice", password=USERS["alice"])
        for user in ("bob", "carol"):
            messages = await self.inbox(user, before[user] + 1)
            found = [m for m in messages if out.message_id.encode() in m]
            self.assertEqual(len(found), 1, user)
            parsed = email.message_from_bytes(found[0], policy=email.policy.default)
            self.assertNotIn("Bcc", parsed)
            self.assertNotIn(b"carol@", found[0].split(b"\r\n\r\n", 1)[1])
            attachments = list(parsed.iter_attachments())  # type: ignore[attr-defined]
            self.assertEqual([a.get_content() for a in attachments], [b"\x00\x01\x02\x03"])
            body = parsed.get_body(("plain",))  # type: ignore[attr-defined]
            assert body is not None
            self.assertIn("Voilà", body.get_content())
            self.assertIn("Le café", body.get_content())


class UnavailableTests(TestCase):
    """No server, a silent server, a server that hangs up."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor

    async def test_connection_refused(self) -> None:
        sender = SMTPSender(self.reactor, "127.0.0.1", free_port(), "none", None, "none")
        with self.assertRaises(SMTPUnavailable):
            await sender.send("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx")

    async def test_silent_server_times_out(self) -> None:
        port = self.reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sender = SMTPSender(self.reactor, "127.0.0.1", port.getHost().port, "none", None, "none",
                            reply_timeout=0.3)
        with self.assertRaises(SMTPUnavailable):
            await sender.send("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx")

    async def test_overall_timeout(self) -> None:
        port = self.reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sender = SMTPSender(self.reactor, "127.0.0.1", port.getHost().port, "none", None, "none",
                            timeout=0.3)
        with self.assertRaises(SMTPUnavailable):
            await sender.send("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx")

    async def test_hang_up_after_data(self) -> None:
        class Server(Protocol):
            def connectionMade(self) -> None:
                assert self.transport is not None
                self.transport.write(b"220 hi\r\n")
                self.buffer = b""

            def dataReceived(self, data: bytes) -> None:
                assert self.transport is not None
                self.buffer += data
                while b"\r\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\r\n", 1)
                    if line.startswith(b"EHLO"):
                        self.transport.write(b"250 hi\r\n")
                    elif line in (b"DATA",):
                        self.transport.write(b"354 go\r\n")
                    elif line == b".":
                        self.transport.loseConnection()  # no 250: not sent
                    elif line.startswith((b"MAIL", b"RCPT")):
                        self.transport.write(b"250 ok\r\n")

        port = self.reactor.listenTCP(0, Factory.forProtocol(Server), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sender = SMTPSender(self.reactor, "127.0.0.1", port.getHost().port, "none", None, "none")
        with self.assertRaises(SMTPUnavailable):
            await sender.send("a@example.test", ["b@example.test"], b"Subject: x\r\n\r\nx")
