"""Push for mail: one dedicated IMAP session per watched user.

:class:`UserWatcher` keeps a connection of its own (from
:meth:`IMAPPool.open_dedicated`, outside the request sessions) and reports
changes in the watched mailboxes to the registered callbacks:

* the server has IDLE: it ``EXAMINE``\\s one mailbox (INBOX when watched,
  else the first) and IDLEs there — a new message, an expunge or a flag change
  is reported at once (well within a second); the other watched mailboxes are
  compared by ``STATUS`` every ``poll_interval`` seconds (the IDLE is ended
  with DONE for that and started again), so their latency is up to
  ``poll_interval``;
* no IDLE: every watched mailbox is polled by ``STATUS`` every
  ``poll_interval`` seconds.

``STATUS`` compares MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN and (with
CONDSTORE) HIGHESTMODSEQ: without CONDSTORE a polled mailbox's flag changes
other than \\Seen are not noticed until the next Sync.  The IDLE is renewed
every ``renew_interval`` seconds (servers end it after 30 minutes).  After a
dropped connection the watcher reconnects with the pool's backoff.  When the
last registration goes, the session stays ``linger`` seconds (the next Ping
usually comes right away) and is then closed.

NOTIFY (RFC 5465) would let one IDLE cover every mailbox; the client does not
offer it yet, so it is not used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from zope.interface import implementer

from easyncd.backends.imap.client import EASIMAPClient, IMAPError, MailboxStatus
from easyncd.backends.imap.pool import IMAPPool
from easyncd.backends.interfaces import IMailWatch, MailAuthFailed, MailBackendUnavailable, MailError

__all__ = ["UserWatcher", "MailWatchRegistration"]

log = Logger()
_STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")


@implementer(IMailWatch)
@dataclass(eq=False)
class MailWatchRegistration:
    """One caller's interest in some mailboxes of a user."""

    watcher: "UserWatcher"
    mailboxes: frozenset[str]
    on_change: Callable[[str], None]
    stopped: bool = False

    def stop(self) -> None:
        """Stop calling back."""
        if not self.stopped:
            self.stopped = True
            self.watcher.unregister(self)


def _fingerprint(status: MailboxStatus | Any) -> tuple[Any, ...]:
    return (getattr(status, "messages", None), getattr(status, "uidnext", None),
            getattr(status, "uidvalidity", None), getattr(status, "unseen", None),
            getattr(status, "highestmodseq", None))


@dataclass(eq=False)
class UserWatcher:
    """The watching of one user's mailboxes (see the module doc)."""

    reactor: Any
    pool: IMAPPool
    user: str
    password: str
    poll_interval: float = 30.0
    renew_interval: float = 25 * 60.0
    linger: float = 60.0
    on_finished: Callable[["UserWatcher"], None] | None = None
    registrations: list[MailWatchRegistration] = field(default_factory=list)
    client: EASIMAPClient | None = None
    idle_mailbox: str | None = None
    failure: Exception | None = None
    _fingerprints: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _wake: Deferred[str] | None = None
    _armed: list[Deferred[None]] = field(default_factory=list)
    _running: bool = False
    _finished: bool = False
    _linger_call: Any = None
    _pending_wake: str | None = None
    _silent: set[str] = field(default_factory=set)

    @property
    def finished(self) -> bool:
        """The watcher ended (stopped, or the login was refused)."""
        return self._finished

    # -- registrations ---------------------------------------------------

    def mailboxes(self) -> list[str]:
        """The union of the watched mailboxes, INBOX first."""
        boxes = {box for reg in self.registrations for box in reg.mailboxes}
        return sorted(boxes, key=lambda b: (b.upper() != "INBOX", b))

    def register(self, mailboxes: Iterable[str], on_change: Callable[[str], None]) -> "Deferred[MailWatchRegistration]":
        """Add a registration; fires once the new set of mailboxes is watched."""
        if self._finished:
            raise RuntimeError("this watcher has finished")
        registration = MailWatchRegistration(self, frozenset(mailboxes), on_change)
        before = set(self.mailboxes())
        self.registrations.append(registration)
        self._cancel_linger()
        armed: Deferred[None] = Deferred()
        if not self._running:
            self._running = True
            self._armed.append(armed)
            Deferred.fromCoroutine(self._main()).addErrback(
                lambda f: log.failure("mail watcher of {user} crashed", f, user=self.user))
        elif set(self.mailboxes()) - before:
            self._armed.append(armed)
            self._kick("changed")
        elif self._armed:
            self._armed.append(armed)
        else:
            armed = succeed(None)
        return armed.addCallback(lambda _: registration)

    def unregister(self, registration: MailWatchRegistration) -> None:
        """Remove a registration; the session lingers, then closes, when none is left."""
        if registration in self.registrations:
            self.registrations.remove(registration)
        if not self.registrations and not self._finished:
            if self._linger_call is None or not self._linger_call.active():
                self._linger_call = self.reactor.callLater(self.linger, self._linger_over)

    def _linger_over(self) -> None:
        self._linger_call = None
        if not self.registrations:
            self._kick("stop")

    def stop(self) -> None:
        """End the watching now (daemon shutdown)."""
        self.registrations.clear()
        self._cancel_linger()
        self._kick("stop")

    def _cancel_linger(self) -> None:
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None

    # -- events ----------------------------------------------------------

    def _kick(self, reason: str) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.called:
            wake.callback(reason)
        else:
            self._pending_wake = reason if self._pending_wake != "stop" else "stop"

    def _notify(self, mailbox: str) -> None:
        for registration in list(self.registrations):
            if mailbox in registration.mailboxes and not registration.stopped:
                try:
                    registration.on_change(mailbox)
                except Exception:
                    log.failure("mail change callback failed for {user}", user=self.user)

    def _fire_armed(self, failure: Exception | None = None) -> None:
        armed, self._armed = self._armed, []
        for d in armed:
            if failure is None:
                d.callback(None)
            else:
                d.errback(failure)

    def _wait(self, timeout: float) -> "Deferred[str]":
        if self._pending_wake is not None:
            reason, self._pending_wake = self._pending_wake, None
            return succeed(reason)
        wake: Deferred[str] = Deferred()
        self._wake = wake
        call = self.reactor.callLater(timeout, self._kick, "timer")
        return wake.addBoth(lambda result: (call.cancel() if call.active() else None, result)[1])

    # -- the loop --------------------------------------------------------

    async def _main(self) -> None:
        failures = 0
        try:
            while self.registrations:
                try:
                    self.client = await self.pool.open_dedicated(self.user, self.password)
                except MailAuthFailed as exc:
                    self.failure = exc
                    self._fire_armed(exc)
                    return
                except MailBackendUnavailable as exc:
                    failures += 1
                    if self._armed:
                        self._fire_armed(exc)
                    delay = max(self.pool.retry_delay(self.user),
                                min(self.pool.backoff[1], self.pool.backoff[0] * 2 ** (failures - 1)))
                    if await self._wait(delay) == "stop":
                        return
                    continue
                client = self.client
                closed = getattr(client, "closed", None)
                if isinstance(closed, Deferred):
                    closed.addBoth(self._closed, client)
                try:
                    failures = 0
                    if await self._session(client) == "stop":
                        return
                except (ConnectionLost, IMAPError, MailError) as exc:
                    log.info("mail watcher of {user}: {error}; reconnecting", user=self.user, error=str(exc))
                except Exception as exc:  # a dropped connection mid-command shows as many things
                    if getattr(client, "transport", None) is not None and not (closed is not None and closed.called):
                        raise
                    log.info("mail watcher of {user} lost its connection ({error})", user=self.user, error=str(exc))
                finally:
                    self.client = None
                    self.pool.close_dedicated(self.user, client)
                if await self._wait(self.pool.backoff[0]) == "stop":
                    return
        finally:
            self._finished = True
            self._running = False
            self._cancel_linger()
            self._fire_armed(MailBackendUnavailable("mail watcher stopped"))
            if self.on_finished is not None:
                self.on_finished(self)

    def _closed(self, result: object, client: EASIMAPClient) -> None:
        if self.client is client:
            self._kick("closed")

    async def _status_all(self, client: EASIMAPClient, boxes: list[str], report: bool) -> None:
        for box in boxes:
            try:
                status = await client.status(box, _STATUS_ITEMS)
            except IMAPError:
                continue  # deleted meanwhile: the FolderSync will tell
            fingerprint = _fingerprint(status)
            old = self._fingerprints.get(box)
            self._fingerprints[box] = fingerprint
            if report and old is not None and old != fingerprint:
                self._notify(box)

    async def _session(self, client: EASIMAPClient) -> str:
        can_idle = client.has_capability("IDLE")
        while self.registrations:
            boxes = self.mailboxes()
            new = [box for box in boxes if box not in self._fingerprints]
            if can_idle:
                idle_box = boxes[0]
                others = [box for box in boxes if box != idle_box]
                await self._status_all(client, [b for b in new if b != idle_box], report=False)
                selected = await client.select_mailbox(idle_box, readonly=True, condstore=client.condstore_enabled)
                fingerprint = (selected.exists, selected.uidnext, selected.uidvalidity, None, selected.highestmodseq)
                old = self._fingerprints.get(idle_box)
                if idle_box in self._silent:
                    self._silent.discard(idle_box)
                    old = None  # already reported during the IDLE
                if old is not None and (old[0], old[1], old[2], old[4]) != (fingerprint[0], fingerprint[1], fingerprint[2], fingerprint[4]):
                    self._notify(idle_box)
                self._fingerprints[idle_box] = fingerprint
                self.idle_mailbox = idle_box
                await client.idle(self._idle_callback(idle_box))
                self._fire_armed()
                reason = await self._wait(self.poll_interval if others else self.renew_interval)
                if reason == "closed":
                    raise ConnectionLost("the IDLE session was closed")
                await client.done()
                self.idle_mailbox = None
                if reason == "stop":
                    return "stop"
                if others:
                    await self._status_all(client, others, report=True)
            else:
                await self._status_all(client, new, report=False)
                self._fire_armed()
                reason = await self._wait(self.poll_interval)
                if reason == "closed":
                    raise ConnectionLost("the polling session was closed")
                if reason == "stop":
                    return "stop"
                await self._status_all(client, self.mailboxes(), report=True)
        return "stop"

    def _idle_callback(self, mailbox: str) -> Callable[[str, Any], None]:
        def on_event(kind: str, data: Any) -> None:
            self._on_idle_event(mailbox, kind)

        return on_event

    def _on_idle_event(self, mailbox: str, kind: str) -> None:
        if kind == "BYE":
            return
        # Reported now: the next SELECT takes the new point without reporting it again.
        self._silent.add(mailbox)
        self._notify(mailbox)
