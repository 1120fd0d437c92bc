"""Tests for easyncd.backends.imap.login: byte-exact client tests and a real Dovecot."""
from __future__ import annotations

import os
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.login import ImapLoginChecker
from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator
from easyncd.testing.dovecot import DovecotServer, make_certificates

USERS = {"alice": "correct horse", "bob": 'p"w\\d', "carol": "pässwörd"}


class DovecotTests(TestCase):
    """The checker against a real Dovecot started for each test."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.server = DovecotServer(USERS)
        self.server.start()
        self.addCleanup(self.server.stop)

    def checker(self, tls: str, ca_file: str | None = None, port: int | None = None) -> ImapLoginChecker:
        if port is None:
            port = self.server.imaps_port if tls == "implicit" else self.server.imap_port
        return ImapLoginChecker(
            self.reactor, "localhost", port, tls,
            self.server.ca_file if ca_file is None else ca_file, timeout=10,
        )

    async def assert_outcomes(self, checker: ImapLoginChecker, bad: tuple[str, str]) -> None:
        """All users log in; then one failure.

        Only one: Dovecot delays every further failure from the same address
        (its auth penalty: 2 s, 4 s, 8 s...), and each test has its own Dovecot.
        """
        self.assertTrue(IAuthenticator.providedBy(checker))
        self.assertTrue(await checker.authenticate("alice", "correct horse"))
        self.assertTrue(await checker.authenticate("bob", 'p"w\\d'))
        self.assertTrue(await checker.authenticate("carol", "pässwörd"))
        self.assertFalse(await checker.authenticate(*bad))

    async def test_plain_wrong_password(self) -> None:
        await self.assert_outcomes(self.checker("none"), ("alice", "wrong"))

    async def test_plain_unknown_user(self) -> None:
        await self.assert_outcomes(self.checker("none"), ("mallory", "correct horse"))

    async def test_starttls(self) -> None:
        await self.assert_outcomes(self.checker("starttls"), ("alice", "correct horse "))

    async def test_implicit_tls(self) -> None:
        await self.assert_outcomes(self.checker("implicit"), ("carol", "passwört"))

    async def test_wrong_ca(self) -> None:
        other = self.mktemp()
        os.mkdir(other)
        wrong_ca = make_certificates(other)["ca"]
        for tls in ("starttls", "implicit"):
            checker = self.checker(tls, wrong_ca)
            with self.assertRaises(AuthBackendUnavailable):
                await checker.authenticate("alice", "correct horse")
        with open(self.server.log_file, encoding="utf-8") as handle:
            self.assertNotIn("Login: user=<alice>", handle.read())

    async def test_wrong_hostname(self) -> None:
        checker = ImapLoginChecker(
            self.reactor, "127.0.0.2", self.server.imaps_port, "implicit", self.server.ca_file,
            timeout=10,
        )
        with self.assertRaises(AuthBackendUnavailable):
            await checker.authenticate("alice", "correct horse")

    async def test_starttls_against_implicit_port(self) -> None:
        """A TLS port spoken to in clear text never greets: a timeout, not a success."""
        checker = ImapLoginChecker(
            self.reactor, "localhost", self.server.imaps_port, "starttls", self.server.ca_file,
            timeout=1,
        )
        with self.assertRaises(AuthBackendUnavailable):
            await checker.authenticate("alice", "correct horse")


class UnavailableTests(TestCase):
    """Failures that are not a wrong password, against real sockets."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor

    async def test_connection_refused(self) -> None:
        from easyncd.testing.dovecot import free_port

        checker = ImapLoginChecker(self.reactor, "127.0.0.1", free_port(), "none", timeout=5)
        with self.assertRaises(AuthBackendUnavailable) as caught:
            await checker.authenticate("alice", "sekrit")
        self.assertNotIn("sekrit", str(caught.exception))

    async def test_silent_server_times_out(self) -> None:
        port = self.reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        checker = ImapLoginChecker(
            self.reactor, "127.0.0.1", port.getHost().port, "none", timeout=0.5
        )
        with self.assertRaises(AuthBackendUnavailable):
            await checker.authenticate("alice", "sekrit")

    async def test_no_unavailable_is_not_a_wrong_password(self) -> None:
        class Server(Protocol):
            transport: Any

            def connectionMade(self) -> None:
                self.transport.write(b"* OK [CAPABILITY IMAP4rev1] hi\r\n")

            def dataReceived(self, data: bytes) -> None:
                tag = data.split(b" ", 1)[0]
                self.transport.write(tag + b" NO [UNAVAILABLE] Temporary authentication failure\r\n")

        port = self.reactor.listenTCP(0, Factory.forProtocol(Server), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        checker = ImapLoginChecker(self.reactor, "127.0.0.1", port.getHost().port, "none", timeout=5)
        with self.assertRaises(AuthBackendUnavailable):
            await checker.authenticate("alice", "sekrit")

    def test_bad_mode(self) -> None:
        self.assertRaises(ValueError, ImapLoginChecker, self.reactor, "h", 1, "ssl")
