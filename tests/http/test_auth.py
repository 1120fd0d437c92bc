"""Tests for easyncd.http.auth: Basic parsing, username maps, cache, throttle."""
from __future__ import annotations

import base64
import os
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator
from easyncd.backends.users_file import UsersFile
from easyncd.config import load_config
from easyncd.http.auth import (
    CHALLENGE,
    AuthUnavailable,
    Authenticator,
    CredentialCache,
    FailureThrottle,
    Unauthorized,
    build_checkers,
    map_username,
    parse_basic,
)


def config(*overrides: str) -> Any:
    return load_config(None, overrides, use_default_path=False)


def basic(user: str | bytes, password: str | bytes) -> bytes:
    if isinstance(user, str):
        user = user.encode("utf-8")
    if isinstance(password, str):
        password = password.encode("utf-8")
    return b"Basic " + base64.b64encode(user + b":" + password)


@implementer(IAuthenticator)
class FakeChecker:
    """Knows a dict of passwords; counts calls; can be down or slow."""

    def __init__(self, passwords: dict[str, str], *, down: bool = False) -> None:
        self.passwords = passwords
        self.down = down
        self.calls: list[str] = []
        self.hold: list[Deferred[None]] | None = None

    def authenticate(self, username: str, password: str) -> "Deferred[bool]":
        self.calls.append(username)
        if self.down:
            return fail(AuthBackendUnavailable("connection refused"))
        ok = self.passwords.get(username) == password
        if self.hold is not None:
            held: Deferred[None] = Deferred()
            self.hold.append(held)
            return held.addCallback(lambda _: ok)
        return succeed(ok)


class ParseBasicTests(SynchronousTestCase):
    def test_good(self) -> None:
        self.assertEqual(parse_basic(basic("alice", "pw")), ("alice", "pw"))
        self.assertEqual(parse_basic(basic("DOM\\bob", "a:b")), ("DOM\\bob", "a:b"))
        self.assertEqual(parse_basic(basic("jürgen", "pässwörd")), ("jürgen", "pässwörd"))
        self.assertEqual(parse_basic(b"basic " + base64.b64encode(b"u:")), ("u", ""))

    def test_bad(self) -> None:
        for header in (
            None,
            b"",
            b"Bearer abc",
            b"Basic",
            b"Basic !!!notbase64",
            b"Basic " + base64.b64encode(b"nocolon"),
            b"Basic " + base64.b64encode(b"al\xffce:pw"),
            b"Basic " + base64.b64encode(b"alice:\xe9t\xe9"),
            b"Digest " + base64.b64encode(b"alice:pw"),
        ):
            self.assertRaises(Unauthorized, parse_basic, header)

    def test_challenge(self) -> None:
        self.assertEqual(Unauthorized.challenge, CHALLENGE)
        self.assertTrue(CHALLENGE.startswith(b'Basic realm="'))


class MapUsernameTests(SynchronousTestCase):
    def test_strip_domain_default(self) -> None:
        c = config()
        self.assertEqual(map_username("DOMAIN\\Alice", c), "alice")
        self.assertEqual(map_username("Alice@Example.org", c), "alice@example.org")
        self.assertEqual(map_username("alice", c), "alice")

    def test_as_is(self) -> None:
        c = config("auth.username_map=as_is", "auth.lowercase=no")
        self.assertEqual(map_username("DOMAIN\\Alice", c), "DOMAIN\\Alice")

    def test_local_part(self) -> None:
        c = config("auth.username_map=local_part")
        self.assertEqual(map_username("DOMAIN\\alice", c), "alice")
        self.assertEqual(map_username("Alice@example.org", c), "alice")

    def test_email(self) -> None:
        c = config("auth.username_map=email", "auth.default_domain=example.org")
        self.assertEqual(map_username("DOMAIN\\alice", c), "alice@example.org")
        self.assertEqual(map_username("alice", c), "alice@example.org")
        self.assertEqual(map_username("alice@other.net", c), "alice@other.net")

    def test_no_lowercase(self) -> None:
        c = config("auth.lowercase=no")
        self.assertEqual(map_username("Alice", c), "Alice")


class CacheAndThrottleUnitTests(SynchronousTestCase):
    def test_cache_expiry_and_bound(self) -> None:
        clock = Clock()
        cache = CredentialCache(clock, ttl=10, max_entries=2)
        a, b, c = cache.key("a", "1"), cache.key("b", "1"), cache.key("c", "1")
        cache.add(a)
        self.assertIn(a, cache)
        clock.advance(10)
        self.assertNotIn(a, cache)
        for key in (a, b, c):
            cache.add(key)
        self.assertEqual(len(cache), 2)
        self.assertNotIn(a, cache)

    def test_keyed_hash(self) -> None:
        cache = CredentialCache(Clock(), ttl=10)
        key = cache.key("alice", "hunter2-secret")
        self.assertEqual(len(key), 32)
        self.assertNotIn(b"hunter2", key)
        self.assertNotEqual(key, cache.key("alice", "hunter2-secreT"))
        self.assertNotEqual(key, cache.key("alice\x00hunter2", "-secret"))
        # another process (another key) gives another hash
        self.assertNotEqual(key, CredentialCache(Clock(), ttl=10).key("alice", "hunter2-secret"))

    def test_throttle_bound_and_memory(self) -> None:
        clock = Clock()
        throttle = FailureThrottle(clock, 1, 30, memory=100, max_entries=3)
        for n in range(5):
            throttle.failed(f"10.0.0.{n}", "a")
        self.assertEqual(len(throttle), 3)
        self.assertEqual(throttle.failed("10.0.0.9", "a"), 1)
        self.assertEqual(throttle.failed("10.0.0.9", "a"), 2)
        clock.advance(101)
        self.assertEqual(throttle.failed("10.0.0.9", "a"), 1)


class AuthenticatorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.checker = FakeChecker({"alice": "pw", "bob": "bobpw"})
        self.auth = Authenticator(
            config("auth.cache_ttl=60", "auth.failure_delay=1", "auth.max_failure_delay=8"),
            self.clock,
            checkers=[self.checker],
        )

    def test_success_and_cache_hit(self) -> None:
        self.assertEqual(self.successResultOf(self.auth.authenticate(basic("ALICE", "pw"), "1.2.3.4")), "alice")
        self.assertEqual(self.successResultOf(self.auth.authenticate(basic("alice", "pw"), "1.2.3.4")), "alice")
        self.assertEqual(self.checker.calls, ["alice"])

    def test_cache_expiry(self) -> None:
        self.successResultOf(self.auth.authenticate(basic("alice", "pw"), "a"))
        self.clock.advance(59)
        self.successResultOf(self.auth.authenticate(basic("alice", "pw"), "a"))
        self.assertEqual(len(self.checker.calls), 1)
        self.clock.advance(1)
        self.successResultOf(self.auth.authenticate(basic("alice", "pw"), "a"))
        self.assertEqual(len(self.checker.calls), 2)

    def test_cache_disabled(self) -> None:
        auth = Authenticator(config("auth.cache_ttl=0"), self.clock, checkers=[self.checker])
        self.successResultOf(auth.authenticate(basic("alice", "pw"), "a"))
        self.successResultOf(auth.authenticate(basic("alice", "pw"), "a"))
        self.assertEqual(len(self.checker.calls), 2)

    def test_cache_never_holds_password(self) -> None:
        import hashlib

        self.checker.passwords["alice"] = "hunter2-secret"
        self.successResultOf(self.auth.authenticate(basic("alice", "hunter2-secret"), "a"))
        keys = self.auth.cache.keys()
        self.assertEqual(keys, [self.auth.cache.key("alice", "hunter2-secret")])
        self.assertEqual(len(keys[0]), 32)
        self.assertNotIn(b"hunter2", keys[0])
        self.assertNotIn(b"alice", keys[0])
        # keyed: not a plain hash anyone could recompute
        self.assertNotEqual(keys[0], hashlib.sha256(b"alice\x00hunter2-secret").digest())

    def test_wrong_password_not_cached(self) -> None:
        d = self.auth.authenticate(basic("alice", "nope"), "a")
        self.clock.advance(1)
        self.failureResultOf(d, Unauthorized)
        self.assertEqual(len(self.auth.cache), 0)

    def test_different_password_is_checked(self) -> None:
        self.successResultOf(self.auth.authenticate(basic("alice", "pw"), "a"))
        d = self.auth.authenticate(basic("alice", "pw2"), "a")
        self.assertEqual(len(self.checker.calls), 2)
        self.clock.advance(1)
        self.failureResultOf(d, Unauthorized)

    def test_throttle_doubles_and_resets(self) -> None:
        expected = [1, 2, 4, 8, 8]
        for delay in expected:
            d = self.auth.authenticate(basic("alice", "bad"), "10.0.0.1")
            self.clock.advance(delay - 0.01)
            self.assertNoResult(d)
            self.clock.advance(0.01)
            self.failureResultOf(d, Unauthorized)
        # another address, and another account, are not slowed by these
        d = self.auth.authenticate(basic("alice", "bad"), "10.0.0.2")
        self.clock.advance(1)
        self.failureResultOf(d, Unauthorized)
        d = self.auth.authenticate(basic("bob", "bad"), "10.0.0.1")
        self.clock.advance(1)
        self.failureResultOf(d, Unauthorized)
        # a success resets
        self.successResultOf(self.auth.authenticate(basic("alice", "pw"), "10.0.0.1"))
        d = self.auth.authenticate(basic("alice", "bad"), "10.0.0.1")
        self.clock.advance(1)
        self.failureResultOf(d, Unauthorized)

    def test_bad_header_is_unauthorized_at_once(self) -> None:
        for header in (None, b"Bearer x", b"Basic %%%", basic(b"\xff", b"x")):
            self.failureResultOf(self.auth.authenticate(header, "a"), Unauthorized)
        self.assertEqual(self.checker.calls, [])

    def test_empty_password(self) -> None:
        d = self.auth.authenticate(basic("alice", ""), "a")
        self.clock.advance(1)
        self.failureResultOf(d, Unauthorized)
        self.assertEqual(self.checker.calls, [])

    def test_checkers_in_order(self) -> None:
        second = FakeChecker({"carol": "cpw"})
        auth = Authenticator(config(), self.clock, checkers=[self.checker, second])
        self.assertEqual(self.successResultOf(auth.authenticate(basic("alice", "pw"), "a")), "alice")
        self.assertEqual(second.calls, [])
        self.assertEqual(self.successResultOf(auth.authenticate(basic("carol", "cpw"), "a")), "carol")
        self.assertEqual(second.calls, ["carol"])

    def test_unavailable(self) -> None:
        down = FakeChecker({}, down=True)
        auth = Authenticator(config(), self.clock, checkers=[down])
        f = self.failureResultOf(auth.authenticate(basic("alice", "pw"), "a"), AuthUnavailable)
        self.assertNotIn("pw", str(f.value).replace("password", ""))
        # a later checker that accepts wins over an earlier one that is down
        auth = Authenticator(config(), self.clock, checkers=[down, self.checker])
        self.assertEqual(self.successResultOf(auth.authenticate(basic("alice", "pw"), "a")), "alice")
        # ... but a refusal plus an outage is an outage, not a 401
        auth = Authenticator(config(), self.clock, checkers=[self.checker, down])
        self.failureResultOf(auth.authenticate(basic("alice", "nope"), "a"), AuthUnavailable)

    def test_concurrent_requests_share_one_check(self) -> None:
        self.checker.hold = []
        first = self.auth.authenticate(basic("alice", "pw"), "a")
        second = self.auth.authenticate(basic("alice", "pw"), "b")
        self.assertEqual(len(self.checker.calls), 1)
        self.checker.hold[0].callback(None)
        self.assertEqual(self.successResultOf(first), "alice")
        self.assertEqual(self.successResultOf(second), "alice")

    def test_logs_never_hold_password_or_header(self) -> None:
        from twisted.logger import capturedLogs, formatEvent

        down = FakeChecker({}, down=True)
        header = basic("alice", "s3cr3t-pass")
        with capturedLogs() as events:
            d = self.auth.authenticate(header, "a")  # wrong password
            self.clock.advance(1)
            self.failureResultOf(d, Unauthorized)
            auth = Authenticator(config(), self.clock, checkers=[down])
            self.failureResultOf(auth.authenticate(header, "a"), AuthUnavailable)
        self.assertTrue(events)
        text = " ".join(formatEvent(e) + repr(e) for e in events)
        self.assertIn("alice", text)
        self.assertNotIn("s3cr3t", text)
        self.assertNotIn(header.split()[1].decode(), text)

    def test_rejects_non_authenticator(self) -> None:
        self.assertRaises(TypeError, Authenticator, config(), self.clock, checkers=[object()])


class UsersFileIntegrationTests(TestCase):
    """Authenticator built from config with a real users file and the real thread pool."""

    async def test_users_file(self) -> None:
        from twisted.internet import reactor

        path = os.path.abspath(self.mktemp())
        UsersFile(path, log_n=4).add("alice", "pw")
        c = config(f"auth.users_file={path}", "auth.failure_delay=0")
        auth = Authenticator(c, reactor)
        self.assertEqual(len(auth.checkers), 1)
        self.assertEqual(await auth.authenticate(basic("Alice", "pw"), "127.0.0.1"), "alice")
        with self.assertRaises(Unauthorized):
            await auth.authenticate(basic("alice", "nope"), "127.0.0.1")

    def test_build_checkers(self) -> None:
        from easyncd.backends.imap.login import ImapLoginChecker
        from easyncd.backends.users_file import UsersFileChecker

        c = config("auth.checkers=imap, users_file", "auth.imap_tls=none")
        checkers = build_checkers(c, Clock())
        self.assertEqual([type(x) for x in checkers], [ImapLoginChecker, UsersFileChecker])


class CredTests(SynchronousTestCase):
    """The twisted.cred side: the checker chain behind the portal, and the realm."""

    def login(self, authenticators: list[Any], user: bytes, password: bytes) -> Any:
        from twisted.cred.credentials import UsernamePassword
        from twisted.cred.portal import Portal

        from easyncd.http.auth import CheckerChain, EASRealm, IEASAccount

        portal = Portal(EASRealm(), [CheckerChain(authenticators)])
        outcome: list[Any] = []
        portal.login(UsernamePassword(user, password), None, IEASAccount).addBoth(outcome.append)
        return outcome[0]

    def test_first_accepting_backend_wins(self) -> None:
        first, second = FakeChecker({"alice": "a"}), FakeChecker({"bob": "b"})
        interface, avatar, logout = self.login([first, second], b"bob", b"b")
        self.assertEqual(avatar.name, "bob")
        self.assertEqual((first.calls, second.calls), (["bob"], ["bob"]))
        interface, avatar, logout = self.login([first, second], b"alice", b"a")
        self.assertEqual(second.calls, ["bob"])  # not asked once the first accepted

    def test_refusals(self) -> None:
        from twisted.cred.error import UnauthorizedLogin

        checker = FakeChecker({"alice": "a"})
        for user, password in ((b"alice", b"wrong"), (b"nobody", b"a"), (b"alice", b"\xff")):
            result = self.login([checker], user, password)
            self.assertIsInstance(result, Failure)
            self.assertTrue(result.check(UnauthorizedLogin), result)

    def test_backend_down_is_not_a_wrong_password(self) -> None:
        result = self.login([FakeChecker({}, down=True), FakeChecker({"x": "y"})], b"alice", b"a")
        self.assertIsInstance(result, Failure)
        self.assertTrue(result.check(AuthBackendUnavailable))
        ok = self.login([FakeChecker({}, down=True), FakeChecker({"alice": "a"})], b"alice", b"a")
        self.assertEqual(ok[1].name, "alice")
