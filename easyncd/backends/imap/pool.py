"""Warm IMAP sessions per user, lent for one operation at a time.

:class:`IMAPPool` keeps logged-in :class:`~easyncd.backends.imap.client.EASIMAPClient`
connections per user so an EAS request never pays for a TCP + TLS + LOGIN:

* a session is lent to one operation at a time (``async with
  pool.session(user, password) as client`` or ``await pool.run(user,
  password, fn)``); a user's concurrent requests share up to
  ``max_per_user`` connections and queue beyond (Dovecot allows 10 per user
  and address; the user's IDLE session from :meth:`IMAPPool.open_dedicated`
  comes on top);
* at most ``max_total`` connections in all (idle ones of other users, the
  oldest first, are closed to make room; beyond that requests queue);
* an idle session is closed after ``idle_timeout`` seconds; a session whose
  connection dropped is thrown away, and :meth:`run` retries an idempotent
  operation once on a fresh connection when a reused one turns out dead;
* after a failed connection attempt (server down, ``NO [UNAVAILABLE]``) the
  user's next attempts wait ``backoff[0]``, doubling up to ``backoff[1]``
  seconds: a request arriving inside that window fails at once with
  :class:`~easyncd.backends.interfaces.MailBackendUnavailable` instead of
  hammering the server;
* credentials: each session remembers a keyed hash of the password it logged
  in with (never the password).  A request with another password opens a new
  session; once that login succeeded, the sessions of the old password are
  closed (busy ones when they come back).  With a master user
  (``shared_credentials=True``) the request password plays no part.

``connect(user, password)`` returns a logged-in client (see
:func:`imap_connector`); the clock (``reactor.seconds``/``callLater``) is
injected, so tests run on :class:`twisted.internet.task.Clock`.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from twisted.internet.defer import CancelledError, Deferred, TimeoutError as DeferredTimeoutError
from twisted.internet.error import ConnectionClosed, ConnectionDone, ConnectionLost
from twisted.logger import Logger

from easyncd.backends.imap.client import EASIMAPClient
from easyncd.backends.imap.connect import IMAPAuthError, IMAPConnectError, connect_imap
from easyncd.backends.interfaces import MailAuthFailed, MailBackendUnavailable

__all__ = ["IMAPPool", "ConnectFunction", "imap_connector"]

T = TypeVar("T")
#: ``connect(user, password)`` -> a logged-in client.
ConnectFunction = Callable[[str, str], Awaitable[EASIMAPClient]]

log = Logger()


def imap_connector(
    reactor: Any,
    host: str,
    port: int,
    tls: str,
    ca_file: str | None,
    *,
    master_user: str | None = None,
    master_password: str | None = None,
    master_separator: str | None = None,
    timeout: float = 30,
    client_factory: Callable[[], EASIMAPClient] = EASIMAPClient,
) -> ConnectFunction:
    """A ``connect(user, password)`` for :class:`IMAPPool` from the ``[imap]`` settings.

    Without ``master_user`` the user logs in with the request's password.
    With it, the master password is used: ``LOGIN user<sep>master`` when
    ``master_separator`` is set (Dovecot ``auth_master_user_separator``),
    else ``AUTHENTICATE PLAIN`` with the user as authorization identity.
    """

    async def connect(user: str, password: str) -> EASIMAPClient:
        if master_user:
            secret = master_password or ""
            if master_separator:
                return await connect_imap(reactor, host, port, tls, ca_file, f"{user}{master_separator}{master_user}",
                                          secret, timeout=timeout, client_factory=client_factory)
            return await connect_imap(reactor, host, port, tls, ca_file, user, secret, timeout=timeout,
                                      client_factory=client_factory, master_user=master_user)
        return await connect_imap(reactor, host, port, tls, ca_file, user, password, timeout=timeout,
                                  client_factory=client_factory)

    return connect


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _alive(client: EASIMAPClient) -> bool:
    closed = getattr(client, "closed", None)
    if closed is not None and closed.called:
        return False
    return getattr(client, "transport", None) is not None


@dataclass(eq=False)
class _Session:
    client: EASIMAPClient
    user: str
    key: bytes
    last_used: float
    timer: Any = None
    busy: bool = False
    dead: bool = False


@dataclass(eq=False)
class _UserSlot:
    user: str
    key: bytes | None = None
    idle: list[_Session] = field(default_factory=list)
    busy: set[_Session] = field(default_factory=set)
    connecting: int = 0
    waiters: deque[Deferred[_Session | None]] = field(default_factory=deque)
    failures: int = 0
    retry_at: float = 0.0
    dedicated: int = 0

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.connecting


class IMAPPool:
    """Warm, bounded, per-user IMAP sessions (see the module doc)."""

    def __init__(
        self,
        reactor: Any,
        connect: ConnectFunction,
        *,
        max_per_user: int = 2,
        max_total: int = 200,
        idle_timeout: float = 300,
        backoff: tuple[float, float] = (1, 30),
        shared_credentials: bool = False,
        op_timeout: float | None = 120,
    ) -> None:
        if max_per_user < 1 or max_total < 1:
            raise ValueError("max_per_user and max_total must be at least 1")
        self.reactor = reactor
        self.connect = connect
        self.max_per_user = max_per_user
        self.max_total = max_total
        self.idle_timeout = idle_timeout
        self.backoff = backoff
        self.shared_credentials = shared_credentials
        self.op_timeout = op_timeout
        self._secret = os.urandom(32)
        self._slots: dict[str, _UserSlot] = {}
        self._global_waiters: deque[Deferred[_Session | None]] = deque()
        self._closing = False
        #: How many logins the pool made (for tests and metrics).
        self.logins = 0

    # -- bookkeeping ------------------------------------------------------

    def _key(self, password: str) -> bytes:
        if self.shared_credentials:
            return b"shared"
        return hmac.new(self._secret, password.encode("utf-8"), hashlib.sha256).digest()

    def _slot(self, user: str) -> _UserSlot:
        slot = self._slots.get(user)
        if slot is None:
            slot = self._slots[user] = _UserSlot(user)
        return slot

    def total(self) -> int:
        """Open (or opening) connections, dedicated ones included."""
        return sum(slot.size + slot.dedicated for slot in self._slots.values())

    def stats(self, user: str) -> dict[str, int]:
        """``{"idle", "busy", "connecting", "waiting", "dedicated"}`` for a user (tests, metrics)."""
        slot = self._slots.get(user) or _UserSlot(user)
        return {"idle": len(slot.idle), "busy": len(slot.busy), "connecting": slot.connecting,
                "waiting": len(slot.waiters), "dedicated": slot.dedicated}

    def _forget_if_empty(self, slot: _UserSlot) -> None:
        if (not slot.size and not slot.waiters and not slot.dedicated and not slot.failures
                and self._slots.get(slot.user) is slot):
            del self._slots[slot.user]

    def _waiter(self, queue: deque[Deferred[_Session | None]]) -> Deferred[_Session | None]:
        def cancel(d: Deferred[_Session | None]) -> None:
            try:
                queue.remove(d)
            except ValueError:
                pass

        d: Deferred[_Session | None] = Deferred(cancel)
        queue.append(d)
        return d

    def _wake_global(self) -> None:
        if self._global_waiters:
            self._global_waiters.popleft().callback(None)

    def _close_session(self, session: _Session, slot: _UserSlot) -> None:
        """Drop a session from the pool and log it out."""
        if session.timer is not None and session.timer.active():
            session.timer.cancel()
        session.timer = None
        if session in slot.idle:
            slot.idle.remove(session)
        slot.busy.discard(session)
        already_dead = session.dead
        session.dead = True
        if not already_dead and _alive(session.client):
            logout = getattr(session.client, "logout_quietly", None)
            if logout is not None:
                logout().addErrback(lambda _: None)
            elif session.client.transport is not None:
                session.client.transport.loseConnection()
        if slot.waiters:
            slot.waiters.popleft().callback(None)
        self._wake_global()
        self._forget_if_empty(slot)

    def _evict_one(self) -> bool:
        """Close the longest-idle session of any user; False when none is idle."""
        oldest: tuple[float, _Session, _UserSlot] | None = None
        for slot in self._slots.values():
            for session in slot.idle:
                if oldest is None or session.last_used < oldest[0]:
                    oldest = (session.last_used, session, slot)
        if oldest is None:
            return False
        log.debug("IMAP pool full: closing the idle session of {user}", user=oldest[1].user)
        self._close_session(oldest[1], oldest[2])
        return True

    # -- lending ----------------------------------------------------------

    async def _open(self, slot: _UserSlot, password: str, key: bytes) -> _Session:
        now = self.reactor.seconds()
        if now < slot.retry_at:
            raise MailBackendUnavailable(
                f"IMAP server unavailable for {slot.user}; next attempt in {slot.retry_at - now:.0f}s")
        slot.connecting += 1
        try:
            client = await self.connect(slot.user, password)
        except IMAPAuthError as exc:
            raise MailAuthFailed(str(exc)) from None
        except (IMAPConnectError, OSError, ConnectionClosed) as exc:
            slot.failures += 1
            delay = min(self.backoff[1], self.backoff[0] * 2 ** (slot.failures - 1))
            slot.retry_at = self.reactor.seconds() + delay
            log.warn("IMAP connection for {user} failed ({error}); backing off {delay}s",
                     user=slot.user, error=str(exc), delay=delay)
            raise MailBackendUnavailable(str(exc)) from None
        finally:
            slot.connecting -= 1
            if slot.waiters and slot.size < self.max_per_user:
                # A failed attempt frees a place: let a waiter try.
                slot.waiters.popleft().callback(None)
            self._wake_global()
        self.logins += 1
        slot.failures = 0
        slot.retry_at = 0.0
        if slot.key != key:
            # The new password works: the sessions of the old one go.
            slot.key = key
            for old in [s for s in slot.idle if s.key != key]:
                self._close_session(old, slot)
        session = _Session(client, slot.user, key, self.reactor.seconds(), busy=True)
        slot.busy.add(session)
        closed = getattr(client, "closed", None)
        if isinstance(closed, Deferred):
            closed.addBoth(lambda _: self._connection_closed(session, slot))
        return session

    def _connection_closed(self, session: _Session, slot: _UserSlot) -> None:
        if session.dead:
            return
        session.dead = True
        if not session.busy:
            log.debug("warm IMAP session of {user} dropped", user=session.user)
            self._close_session(session, slot)

    async def _acquire(self, user: str, password: str) -> _Session:
        if self._closing:
            raise MailBackendUnavailable("the IMAP pool is shutting down")
        key = self._key(password)
        slot = self._slot(user)
        while True:
            for session in reversed(slot.idle):  # the most recently used first
                if session.key == key and slot.key == key and not session.dead and _alive(session.client):
                    slot.idle.remove(session)
                    if session.timer is not None and session.timer.active():
                        session.timer.cancel()
                    session.timer = None
                    session.busy = True
                    slot.busy.add(session)
                    return session
            for session in [s for s in slot.idle if s.dead or not _alive(s.client)]:
                self._close_session(session, slot)
            if slot.size < self.max_per_user or (slot.key != key and slot.idle):
                if slot.size >= self.max_per_user:
                    # Another password wants in: make room with an idle session of the old one.
                    self._close_session(slot.idle[0], slot)
                if self.total() >= self.max_total and not self._evict_one():
                    got = await self._waiter(self._global_waiters)
                    if got is not None:  # pragma: no cover - global waiters only get None
                        return got
                    continue
                return await self._open(slot, password, key)
            got = await self._waiter(slot.waiters)
            if got is not None:
                if got.key == key and not got.dead and _alive(got.client):
                    return got
                self._release(got)

    def _release(self, session: _Session) -> None:
        slot = self._slot(session.user)
        session.busy = False
        slot.busy.discard(session)
        if session.dead or self._closing or session.key != slot.key or not _alive(session.client):
            self._close_session(session, slot)
            return
        session.last_used = self.reactor.seconds()
        if slot.waiters:
            waiter = slot.waiters.popleft()
            session.busy = True
            slot.busy.add(session)
            waiter.callback(session)
            return
        slot.idle.append(session)
        session.timer = self.reactor.callLater(self.idle_timeout, self._idle_expired, session)
        self._wake_global()

    def _idle_expired(self, session: _Session) -> None:
        session.timer = None
        slot = self._slots.get(session.user)
        if slot is not None and session in slot.idle:
            log.debug("closing the idle IMAP session of {user}", user=session.user)
            self._close_session(session, slot)

    @asynccontextmanager
    async def session(self, user: str, password: str) -> AsyncIterator[EASIMAPClient]:
        """Borrow a logged-in client of ``user`` for one operation."""
        session = await self._acquire(user, password)
        broken = False
        try:
            yield session.client
        except (ConnectionClosed, CancelledError, DeferredTimeoutError):
            broken = True
            raise
        finally:
            if broken and not _alive(session.client):
                session.dead = True
            elif broken:
                # Cancelled or timed out mid-command: the connection's state is unknown.
                session.dead = True
                transport = getattr(session.client, "transport", None)
                if transport is not None:
                    transport.loseConnection()
            self._release(session)

    async def run(self, user: str, password: str, fn: Callable[[EASIMAPClient], Awaitable[T]],
                  *, idempotent: bool = True) -> T:
        """``await fn(client)`` on a borrowed session.

        When the connection turns out dead (``ConnectionLost``/``Done``) and
        ``fn`` is ``idempotent``, it runs once more on a fresh connection.  An
        operation taking longer than ``op_timeout`` seconds loses its
        connection and fails with MailBackendUnavailable.
        """
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            try:
                async with self.session(user, password) as client:
                    d: Deferred[T] = Deferred.fromCoroutine(_as_coroutine(fn(client)))
                    if self.op_timeout is not None:
                        d.addTimeout(self.op_timeout, self.reactor)
                    return await d
            except DeferredTimeoutError:
                raise MailBackendUnavailable(
                    f"IMAP operation of {user} took longer than {self.op_timeout}s") from None
            except (ConnectionLost, ConnectionDone) as exc:
                if attempt + 1 >= attempts:
                    raise MailBackendUnavailable(f"IMAP connection of {user} lost: {exc}") from None
                log.info("IMAP connection of {user} lost; retrying once", user=user)
        raise AssertionError("unreachable")  # pragma: no cover

    def run_deferred(self, user: str, password: str, fn: Callable[[EASIMAPClient], Awaitable[T]],
                     *, idempotent: bool = True) -> "Deferred[T]":
        """:meth:`run` as a Deferred."""
        return Deferred.fromCoroutine(self.run(user, password, fn, idempotent=idempotent))

    # -- dedicated sessions (IDLE) ---------------------------------------------

    async def open_dedicated(self, user: str, password: str) -> EASIMAPClient:
        """A connection of ``user`` outside the lending (for IDLE); counted in
        the total; give it back with :meth:`close_dedicated`.  Obeys the backoff."""
        slot = self._slot(user)
        now = self.reactor.seconds()
        if now < slot.retry_at:
            raise MailBackendUnavailable(f"IMAP server unavailable for {user}")
        if self.total() >= self.max_total:
            self._evict_one()
        slot.dedicated += 1
        try:
            client = await self.connect(user, password)
        except IMAPAuthError as exc:
            slot.dedicated -= 1
            self._forget_if_empty(slot)
            raise MailAuthFailed(str(exc)) from None
        except (IMAPConnectError, OSError, ConnectionClosed) as exc:
            slot.dedicated -= 1
            slot.failures += 1
            slot.retry_at = self.reactor.seconds() + min(self.backoff[1], self.backoff[0] * 2 ** (slot.failures - 1))
            raise MailBackendUnavailable(str(exc)) from None
        self.logins += 1
        slot.failures = 0
        slot.retry_at = 0.0
        return client

    def close_dedicated(self, user: str, client: EASIMAPClient) -> None:
        """Log out a connection from :meth:`open_dedicated`."""
        slot = self._slot(user)
        slot.dedicated = max(0, slot.dedicated - 1)
        if _alive(client):
            logout = getattr(client, "logout_quietly", None)
            if logout is not None:
                logout().addErrback(lambda _: None)
        self._wake_global()
        self._forget_if_empty(slot)

    def retry_delay(self, user: str) -> float:
        """Seconds until the user's next connection attempt is allowed (0: now)."""
        slot = self._slots.get(user)
        if slot is None:
            return 0.0
        return max(0.0, slot.retry_at - self.reactor.seconds())

    # -- shutdown ---------------------------------------------------------

    def close_all(self) -> None:
        """Log out every idle session; busy ones close when given back; waiters fail."""
        self._closing = True
        for slot in list(self._slots.values()):
            for session in list(slot.idle):
                self._close_session(session, slot)
            while slot.waiters:
                slot.waiters.popleft().errback(MailBackendUnavailable("the IMAP pool is shutting down"))
        while self._global_waiters:
            self._global_waiters.popleft().errback(MailBackendUnavailable("the IMAP pool is shutting down"))
