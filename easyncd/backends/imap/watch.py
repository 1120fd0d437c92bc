"""Push for mail: one dedicated IMAP session per watched user.

:class:`UserWatcher` keeps a connection of its own (from
:meth:`IMAPPool.open_dedicated`, outside the request sessions) and reports
changes in the watched mailboxes to the registered callbacks:

* the server has NOTIFY (RFC 5465) and IDLE: one ``NOTIFY SET STATUS
  (SELECTED ...) (MAILBOXES (<every watched mailbox>) (MessageNew
  MessageExpunge FlagChange))`` and then ``IDLE`` with no mailbox selected.
  The server reports a new message, an expunge or (with CONDSTORE) a flag
  change in any of them at once as an untagged ``STATUS``; the watcher
  merges it into what it knows of the mailbox and reports the mailbox when
  something changed (the duplicates Dovecot sends are not reported twice).
  Dovecot 2.3 does not match non-ASCII names given to ``MAILBOXES`` (it
  compares them undecoded): when a watched name is not ASCII the filter is
  ``PERSONAL`` instead (every personal mailbox; the STATUS of unwatched ones
  are ignored here).
  A new mailbox set is announced by a fresh ``NOTIFY SET`` (its ``STATUS``
  answers, compared with what was known, catch what changed meanwhile, e.g.
  while reconnecting).  A server that refuses the ``NOTIFY`` (or announces
  ``[NOTIFICATIONOVERFLOW]`` twice in a row before a renewal) makes this
  watcher use the next way;
* the server has IDLE (no NOTIFY): it ``EXAMINE``\\s one mailbox (INBOX when watched,
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

``mode`` tells which way is in use (``"notify"``, ``"idle"``, ``"poll"``;
``""`` between sessions); ``use_notify=False`` keeps to IDLE and polling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from zope.interface import implementer

from easyncd.backends.imap.client import MESSAGE_EVENTS, EASIMAPClient, IMAPError, MailboxStatus
from easyncd.backends.imap.pool import IMAPPool
from easyncd.backends.interfaces import IMailWatch, MailAuthFailed, MailBackendUnavailable, MailError

__all__ = ["UserWatcher", "MailWatchRegistration"]

log = Logger()
_STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")
_STATUS_FIELDS = ("messages", "uidnext", "uidvalidity", "unseen", "highestmodseq")
_MESSAGE_EVENT_KINDS = frozenset({"EXISTS", "EXPUNGE", "VANISHED", "FETCH"})


class _NotifyRefused(Exception):
    """The server would not (or no longer) NOTIFY: use IDLE and polling."""


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
    use_notify: bool = True
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
    #: Which way the current session watches: "notify", "idle", "poll" ("" between sessions).
    mode: str = ""
    #: NOTIFY mode: what the server told of each mailbox (STATUS items, merged).
    _known: dict[str, dict[str, int]] = field(default_factory=dict)
    _notify_refused: bool = False
    _overflowed: bool = False

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
        try:
            if (self.use_notify and not self._notify_refused and client.has_capability("NOTIFY")
                    and client.has_capability("IDLE")):
                try:
                    return await self._session_notify(client)
                except _NotifyRefused as exc:
                    log.info("mail watcher of {user}: {reason}; using IDLE and polling",
                             user=self.user, reason=str(exc))
                    self._notify_refused = True
                    client.on_unsolicited = None
            return await self._session_idle(client)
        finally:
            self.mode = ""
            self.idle_mailbox = None

    # -- NOTIFY ----------------------------------------------------------

    async def _session_notify(self, client: EASIMAPClient) -> str:
        self.mode = "notify"
        client.on_unsolicited = self._on_notify_event
        announced: list[str] | None = None
        while self.registrations:
            boxes = self.mailboxes()
            if boxes != announced or not client.notifying:
                if announced is not None and not client.notifying:
                    if self._overflowed:
                        raise _NotifyRefused("the server keeps dropping NOTIFY (overflow)")
                    self._overflowed = True
                try:
                    if all(box.isascii() for box in boxes):
                        statuses = await client.notify_set(boxes, events=MESSAGE_EVENTS, status=True)
                    else:
                        statuses = await client.notify_set(scope="PERSONAL", events=MESSAGE_EVENTS, status=True)
                except IMAPError as exc:
                    raise _NotifyRefused(f"NOTIFY refused: {exc}") from None
                announced = boxes
                for status in statuses:
                    self._merge_status(status, unsolicited=False)
            await client.idle(self._on_notify_event)
            self._fire_armed()
            reason = await self._wait(self.renew_interval)
            if reason == "closed":
                raise ConnectionLost("the NOTIFY session was closed")
            await client.done()
            if reason == "stop":
                return "stop"
            if reason == "timer":
                self._overflowed = False
        return "stop"

    def _on_notify_event(self, kind: str, data: Any) -> None:
        if kind == "STATUS":
            self._merge_status(data, unsolicited=True)
        elif kind == "NOTIFICATIONOVERFLOW":
            # Events were lost: every watched mailbox may have changed.
            log.info("mail watcher of {user}: the server dropped NOTIFY ({text})", user=self.user, text=data)
            for box in self.mailboxes():
                self._notify(box)
            self._kick("overflow")

    def _watched_name(self, name: str) -> str | None:
        for box in self.mailboxes():
            if box == name or (box.upper() == "INBOX" and name.upper() == "INBOX"):
                return box
        return None

    def _merge_status(self, status: MailboxStatus, *, unsolicited: bool) -> None:
        """Take a STATUS in; report the mailbox when it says something new.

        An unsolicited STATUS of a mailbox not seen before is news too (the
        server sends them on events only); a NOTIFY's STATUS answer of one is
        not (it is the starting point).
        """
        box = self._watched_name(status.name)
        if box is None:
            return
        known = self._known.get(box)
        merged = dict(known or {})
        for name in _STATUS_FIELDS:
            value = getattr(status, name, None)
            if value is not None:
                merged[name] = value
        self._known[box] = merged
        if (known is None and unsolicited) or (known is not None and merged != known):
            self._notify(box)

    # -- IDLE and polling --------------------------------------------------

    async def _session_idle(self, client: EASIMAPClient) -> str:
        can_idle = client.has_capability("IDLE")
        self.mode = "idle" if can_idle else "poll"
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
        if kind not in _MESSAGE_EVENT_KINDS:
            return
        # Reported now: the next SELECT takes the new point without reporting it again.
        self._silent.add(mailbox)
        self._notify(mailbox)
