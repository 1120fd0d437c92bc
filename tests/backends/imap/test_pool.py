"""IMAPPool on a Clock with the fake IMAP server: reuse, limits, queueing, backoff, idle close, passwords."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.pool import IMAPPool, imap_connector
from easyncd.backends.interfaces import MailAuthFailed, MailBackendUnavailable

from tests.backends.imap.fakes import FakeIMAPServer


class PoolTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.server = FakeIMAPServer({"alice": "pw", "bob": "pw", "carol": "pw"})
        self.pool = IMAPPool(self.clock, self.server.connect, max_per_user=2, max_total=5, idle_timeout=300)

    def hold(self, user: str, password: str = "pw") -> tuple["Deferred[Any]", "Deferred[Any]"]:
        """Borrow a session until the returned gate fires; (gate, result)."""
        gate: Deferred[Any] = Deferred()

        async def fn(client: Any) -> Any:
            await gate
            return client

        return gate, self.pool.run_deferred(user, password, fn)

    def quick(self, user: str, password: str = "pw") -> Any:
        async def fn(client: Any) -> Any:
            return client

        return self.successResultOf(self.pool.run_deferred(user, password, fn))

    def test_session_reused(self) -> None:
        first = self.quick("alice")
        second = self.quick("alice")
        self.assertIs(first, second)
        self.assertEqual(self.server.logins, ["alice"])
        self.assertEqual(self.pool.stats("alice")["idle"], 1)

    def test_context_manager(self) -> None:
        async def use() -> Any:
            async with self.pool.session("alice", "pw") as client:
                self.assertEqual(self.pool.stats("alice")["busy"], 1)
                return client

        client = self.successResultOf(Deferred.fromCoroutine(use()))
        self.assertEqual(self.pool.stats("alice"), {"idle": 1, "busy": 0, "connecting": 0, "waiting": 0,
                                                    "dedicated": 0})
        self.assertIs(self.quick("alice"), client)

    def test_per_user_limit_queues(self) -> None:
        gate1, result1 = self.hold("alice")
        gate2, result2 = self.hold("alice")
        gate3, result3 = self.hold("alice")
        self.assertEqual(self.server.logins, ["alice", "alice"])
        self.assertEqual(self.pool.stats("alice")["waiting"], 1)
        self.assertNoResult(result3)
        gate1.callback(None)
        first = self.successResultOf(result1)
        self.assertEqual(self.pool.stats("alice")["waiting"], 0)
        gate3.callback(None)
        self.assertIs(self.successResultOf(result3), first)  # handed over, no new login
        gate2.callback(None)
        self.successResultOf(result2)
        self.assertEqual(len(self.server.logins), 2)
        # Other users are not held up by alice's queue.
        self.quick("bob")

    def test_cancelled_waiter_leaves_queue(self) -> None:
        gate1, result1 = self.hold("alice")
        gate2, result2 = self.hold("alice")
        _, result3 = self.hold("alice")
        result3.cancel()
        self.failureResultOf(result3, CancelledError)
        self.assertEqual(self.pool.stats("alice")["waiting"], 0)
        gate1.callback(None)
        gate2.callback(None)
        self.assertEqual(self.pool.stats("alice")["idle"], 2)

    def test_total_bound_evicts_oldest_idle(self) -> None:
        pool = IMAPPool(self.clock, self.server.connect, max_per_user=2, max_total=2)
        self.pool = pool
        alice = self.quick("alice")
        self.clock.advance(5)
        bob = self.quick("bob")
        self.clock.advance(5)
        self.quick("carol")
        self.assertIsNone(alice.transport)  # the oldest idle one went
        self.assertIsNotNone(bob.transport)
        self.assertEqual(pool.total(), 2)

    def test_total_bound_queues_when_all_busy(self) -> None:
        self.pool = IMAPPool(self.clock, self.server.connect, max_per_user=2, max_total=2)
        gate1, result1 = self.hold("alice")
        gate2, result2 = self.hold("bob")
        gate3, result3 = self.hold("carol")
        self.assertNoResult(result3)
        self.assertEqual(self.server.logins, ["alice", "bob"])
        gate1.callback(None)
        alice = self.successResultOf(result1)
        # alice's session went idle and was closed to make room for carol.
        self.assertIsNone(alice.transport)
        gate3.callback(None)
        self.successResultOf(result3)
        self.assertEqual(self.server.logins, ["alice", "bob", "carol"])
        gate2.callback(None)
        self.successResultOf(result2)

    def test_idle_timeout_closes(self) -> None:
        client = self.quick("alice")
        self.clock.advance(299)
        self.assertIsNotNone(client.transport)
        self.assertIs(self.quick("alice"), client)  # use resets the timer
        self.clock.advance(299)
        self.assertIsNotNone(client.transport)
        self.clock.advance(2)
        self.assertIsNone(client.transport)
        self.assertIn(("alice", "LOGOUT"), self.server.commands)
        self.assertEqual(self.pool.total(), 0)
        self.assertIsNot(self.quick("alice"), client)
        self.assertEqual(len(self.server.logins), 2)

    def test_dropped_idle_session_is_replaced(self) -> None:
        client = self.quick("alice")
        self.server.drop(client)
        self.assertEqual(self.pool.stats("alice")["idle"], 0)
        self.assertIsNot(self.quick("alice"), client)

    def test_connection_lost_mid_operation_retries_once(self) -> None:
        client = self.quick("alice")
        client.fail_next = ConnectionLost("gone")
        calls: list[Any] = []

        async def fn(c: Any) -> str:
            calls.append(c)
            await c.status("INBOX")
            return "ok"

        self.assertEqual(self.successResultOf(self.pool.run_deferred("alice", "pw", fn)), "ok")
        self.assertEqual(len(calls), 2)
        self.assertIs(calls[0], client)
        self.assertIsNot(calls[1], client)
        # Not idempotent: no second attempt.
        calls[1].fail_next = ConnectionLost("gone again")
        failure = self.failureResultOf(self.pool.run_deferred("alice", "pw", fn, idempotent=False),
                                       MailBackendUnavailable)
        self.assertIn("lost", failure.getErrorMessage())

    def test_operation_timeout_drops_session(self) -> None:
        client = self.quick("alice")
        never: Deferred[None] = Deferred()

        async def stuck(c: Any) -> None:
            await never

        result = self.pool.run_deferred("alice", "pw", stuck)
        self.clock.advance(119)
        self.assertNoResult(result)
        self.clock.advance(1)
        self.failureResultOf(result, MailBackendUnavailable)
        self.assertIsNone(client.transport)
        self.assertEqual(self.pool.total(), 0)
        self.assertIsNot(self.quick("alice"), client)

    def test_backoff_after_connect_failures(self) -> None:
        self.server.down = True
        attempts = []
        real_connect = self.server.connect

        async def counting(user: str, password: str) -> Any:
            attempts.append(self.clock.seconds())
            return await real_connect(user, password)

        self.pool.connect = counting

        async def fn(c: Any) -> Any:
            return c

        self.failureResultOf(self.pool.run_deferred("alice", "pw", fn), MailBackendUnavailable)
        self.failureResultOf(self.pool.run_deferred("alice", "pw", fn), MailBackendUnavailable)
        self.assertEqual(attempts, [0])  # inside the 1 s window: no new attempt
        self.clock.advance(1)
        self.failureResultOf(self.pool.run_deferred("alice", "pw", fn), MailBackendUnavailable)
        self.assertEqual(self.pool.retry_delay("alice"), 2)  # doubled
        self.clock.advance(2)
        self.failureResultOf(self.pool.run_deferred("alice", "pw", fn), MailBackendUnavailable)
        self.assertEqual(self.pool.retry_delay("alice"), 4)
        for _ in range(10):
            self.clock.advance(self.pool.retry_delay("alice"))
            self.failureResultOf(self.pool.run_deferred("alice", "pw", fn), MailBackendUnavailable)
        self.assertEqual(self.pool.retry_delay("alice"), 30)  # capped
        self.server.down = False
        self.clock.advance(30)
        self.successResultOf(self.pool.run_deferred("alice", "pw", fn))
        self.assertEqual(self.pool.retry_delay("alice"), 0)
        # Another user is not affected by alice's backoff.
        self.quick("bob")

    def test_wrong_password_keeps_warm_sessions(self) -> None:
        client = self.quick("alice")
        self.failureResultOf(self.pool.run_deferred("alice", "wrong", self._noop), MailAuthFailed)
        self.assertIsNotNone(client.transport)
        self.assertIs(self.quick("alice"), client)
        self.assertEqual(self.pool.retry_delay("alice"), 0)  # auth failures are no outage

    async def _noop(self, client: Any) -> None:
        return None

    def test_changed_password_invalidates_sessions(self) -> None:
        gate, busy = self.hold("alice")
        old_idle = self.quick("alice")
        self.assertEqual(self.pool.stats("alice")["busy"], 1)
        self.assertEqual(self.pool.stats("alice")["idle"], 1)
        self.server.users["alice"] = "new"
        new = self.quick("alice", "new")
        self.assertIsNot(new, old_idle)
        self.assertIsNone(old_idle.transport)  # idle session of the old password closed
        gate.callback(None)
        old_busy = self.successResultOf(busy)
        self.assertIsNot(old_busy, old_idle)
        self.assertIsNone(old_busy.transport)  # closed when given back
        self.assertIs(self.quick("alice", "new"), new)
        # The old password no longer gets a warm session: the server refuses it.
        self.failureResultOf(self.pool.run_deferred("alice", "pw", self._noop), MailAuthFailed)

    def test_shared_credentials_ignore_request_password(self) -> None:
        self.pool = IMAPPool(self.clock, self.server.connect, shared_credentials=True)
        first = self.quick("alice", "pw")
        self.assertIs(self.quick("alice", "anything"), first)

    def test_dedicated_sessions_count_in_total(self) -> None:
        self.pool = IMAPPool(self.clock, self.server.connect, max_per_user=2, max_total=2)
        idle = self.quick("bob")
        dedicated = self.successResultOf(Deferred.fromCoroutine(self.pool.open_dedicated("alice", "pw")))
        self.assertEqual(self.pool.stats("alice")["dedicated"], 1)
        self.assertEqual(self.pool.total(), 2)
        self.quick("carol")  # evicts bob's idle session, not the dedicated one
        self.assertIsNone(idle.transport)
        self.assertIsNotNone(dedicated.transport)
        self.pool.close_dedicated("alice", dedicated)
        self.assertIsNone(dedicated.transport)
        self.assertEqual(self.pool.total(), 1)

    def test_close_all(self) -> None:
        client = self.quick("alice")
        gate1, r1 = self.hold("bob")
        gate2, r2 = self.hold("bob")
        _, r3 = self.hold("bob")
        self.pool.close_all()
        self.assertIsNone(client.transport)
        self.failureResultOf(r3, MailBackendUnavailable)
        gate1.callback(None)
        self.assertIsNone(self.successResultOf(r1).transport)
        gate2.callback(None)
        self.successResultOf(r2)
        self.failureResultOf(self.pool.run_deferred("alice", "pw", self._noop), MailBackendUnavailable)


class ConnectorTests(TestCase):
    def test_master_user_login_names(self) -> None:
        import easyncd.backends.imap.pool as pool_module

        calls: list[tuple[Any, ...]] = []

        async def fake_connect(reactor: Any, host: str, port: int, tls: str, ca_file: Any, username: str,
                               password: str, **kwargs: Any) -> str:
            calls.append((username, password, kwargs.get("master_user")))
            return "client"

        self.patch(pool_module, "connect_imap", fake_connect)
        plain = imap_connector(None, "h", 143, "none", None)
        separator = imap_connector(None, "h", 143, "none", None, master_user="admin",
                                   master_password="m", master_separator="*")
        sasl = imap_connector(None, "h", 143, "none", None, master_user="admin", master_password="m")
        for connect in (plain, separator, sasl):
            self.successResultOf(Deferred.fromCoroutine(connect("alice", "user pw")))  # type: ignore[arg-type]
        self.assertEqual(calls, [("alice", "user pw", None), ("alice*admin", "m", None), ("alice", "m", "admin")])
