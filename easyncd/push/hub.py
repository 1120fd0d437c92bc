"""The push hub: requests (Ping, Sync with Wait) wait on topics; writers
notify them.

In-process writers (the groupware backend of this daemon) call
:meth:`PushHub.notify` after they committed.  Changes made by another process
on the same database (``easyncd-admin``, another easyncd node) are found by
polling: while anybody waits on ``groupware:<id>`` topics, the hub asks the
backend's ``watch_revisions`` every ``poll_interval`` seconds, one query per
user with waiters, and wakes the waiters of every collection whose revision
moved since the last look.  Nobody waiting: no polling at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from easyncd.push.interfaces import IPushHub

GROUPWARE_PREFIX = "groupware:"

#: Seconds a remembered revision is trusted after the last waiter on it left.
BASELINE_TTL = 300.0


@dataclass(eq=False)
class _Waiter:
    user: str
    topics: frozenset[str]
    deferred: "Deferred[frozenset[str]]" = field(default_factory=Deferred)
    timer: IDelayedCall | None = None


@implementer(IPushHub)
class PushHub(Service):
    """IPushHub for one process, with polling for other processes' changes.

    ``backend`` (an IGroupwareBackend, settable after construction since the
    backend is usually given the hub) answers ``watch_revisions``; without it
    the hub only relays in-process notifications.

    A twisted Service: ``startService`` (or :meth:`start`) is optional for
    waiting and notifying; ``stopService`` (or :meth:`stop`) wakes every
    waiter with an empty set, stops polling and answers later waits at once.
    """

    log = Logger()

    def __init__(
        self, clock: IReactorTime, backend: Any = None, poll_interval: float = 0.5,
        baseline_ttl: float = BASELINE_TTL,
    ) -> None:
        self._clock = clock
        self.backend = backend
        self.poll_interval = poll_interval
        self._baseline_ttl = baseline_ttl
        self._waiters: dict[tuple[str, str], set[_Waiter]] = {}
        #: (user, collection id) -> (last revision seen, when last watched).
        self._baselines: dict[tuple[str, str], tuple[int, float]] = {}
        #: (user, collection id) -> serial of the last in-process notify.
        self._notified: dict[tuple[str, str], int] = {}
        self._serial = 0
        self._poll_call: IDelayedCall | None = None
        self._polling = False
        self._stopped = False

    # service --------------------------------------------------------------------

    def start(self) -> None:
        """Accept waiters (again)."""
        self._stopped = False

    def stop(self) -> None:
        """Wake every waiter with an empty set and stop polling."""
        self._stopped = True
        if self._poll_call is not None and self._poll_call.active():
            self._poll_call.cancel()
        self._poll_call = None
        for waiter in {w for waiters in list(self._waiters.values()) for w in waiters}:
            self._finish(waiter, frozenset())

    def startService(self) -> None:  # noqa: N802 (Twisted hook)
        """Service start: :meth:`start`."""
        super().startService()
        self.start()

    def stopService(self) -> "Deferred[None]":  # noqa: N802 (Twisted hook)
        """Service stop: :meth:`stop`."""
        super().stopService()
        self.stop()
        return succeed(None)

    # IPushHub -----------------------------------------------------------------------

    def notify(self, user: str, topics: Iterable[str]) -> None:
        """Wake the waiters of ``user`` on any of ``topics``."""
        topics = list(topics)
        self._serial += 1
        for topic in topics:
            if topic.startswith(GROUPWARE_PREFIX):
                key = (user, topic[len(GROUPWARE_PREFIX):])
                # Our own change: the next poll takes its revision silently.
                self._baselines.pop(key, None)
                if self._polling:
                    self._notified[key] = self._serial
        self._wake(user, topics)

    def wait(
        self, user: str, topics: Iterable[str], timeout: float
    ) -> "Deferred[frozenset[str]]":
        """Fires with the changed topics, or an empty set after ``timeout``."""
        if self._stopped:
            return succeed(frozenset())
        waiter = _Waiter(user, frozenset(topics))
        waiter.deferred = Deferred(lambda _: self._remove(waiter))
        for topic in waiter.topics:
            self._waiters.setdefault((user, topic), set()).add(waiter)
        waiter.timer = self._clock.callLater(max(0.0, timeout), self._finish, waiter,
                                             frozenset())
        self._schedule_poll()
        return waiter.deferred

    # waiters --------------------------------------------------------------------------

    def waiter_count(self) -> int:
        """How many requests wait (for metrics and tests)."""
        return len({w for waiters in self._waiters.values() for w in waiters})

    def _wake(self, user: str, topics: Iterable[str]) -> None:
        woken: dict[_Waiter, set[str]] = {}
        for topic in topics:
            for waiter in self._waiters.get((user, topic), ()):
                woken.setdefault(waiter, set()).add(topic)
        for waiter, changed in woken.items():
            self._finish(waiter, frozenset(changed))

    def _remove(self, waiter: _Waiter) -> None:
        for topic in waiter.topics:
            key = (waiter.user, topic)
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[key]
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        waiter.timer = None

    def _finish(self, waiter: _Waiter, changed: frozenset[str]) -> None:
        self._remove(waiter)
        if not waiter.deferred.called:
            waiter.deferred.callback(changed)

    # polling ----------------------------------------------------------------------------

    def _watched(self) -> dict[str, set[str]]:
        """user -> groupware collection ids somebody waits on."""
        watched: dict[str, set[str]] = {}
        for user, topic in self._waiters:
            if topic.startswith(GROUPWARE_PREFIX):
                watched.setdefault(user, set()).add(topic[len(GROUPWARE_PREFIX):])
        return watched

    def _schedule_poll(self) -> None:
        if (self.backend is None or self._stopped or self._polling
                or (self._poll_call is not None and self._poll_call.active())):
            return
        if not any(topic.startswith(GROUPWARE_PREFIX) for _, topic in self._waiters):
            return
        self._poll_call = self._clock.callLater(self.poll_interval, self._tick)

    def _tick(self) -> None:
        self._poll_call = None
        watched = self._watched()
        if not watched or self._stopped:
            return
        now = self._clock.seconds()
        for key in [k for k, (_, used) in self._baselines.items()
                    if used < now - self._baseline_ttl]:
            del self._baselines[key]
        self._polling = True
        serial = self._serial
        polls = [self._poll_user(user, ids, serial) for user, ids in watched.items()]

        def done(_: Any) -> None:
            self._polling = False
            self._notified.clear()
            self._schedule_poll()

        DeferredList(polls).addBoth(done)

    def _poll_user(self, user: str, ids: set[str], serial: int) -> "Deferred[None]":
        assert self.backend is not None
        d = maybeDeferred(self.backend.watch_revisions, user, sorted(ids))

        def compare(revisions: dict[str, int]) -> None:
            now = self._clock.seconds()
            changed = []
            for collection_id in ids:
                key = (user, collection_id)
                if self._notified.get(key, 0) > serial:
                    continue  # notified in-process while we asked: not ours to judge
                revision = revisions.get(collection_id)
                known = self._baselines.get(key)
                if revision is None:
                    if known is not None:
                        changed.append(collection_id)  # the collection is gone
                    self._baselines.pop(key, None)
                    continue
                if known is not None and known[0] != revision:
                    changed.append(collection_id)
                self._baselines[key] = (revision, now)
            if changed:
                self._wake(user, [GROUPWARE_PREFIX + c for c in changed])

        def failed(failure: Failure) -> None:
            self.log.warn("push hub: revision poll for {user} failed: {error}", user=user,
                          error=failure.getErrorMessage())

        return d.addCallbacks(compare, failed)
