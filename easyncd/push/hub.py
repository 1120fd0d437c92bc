"""The push hub: requests (Ping, Sync with Wait) wait on topics; writers
notify them.

In-process writers (the groupware backend of this daemon) call
:meth:`PushHub.notify` after they committed.  Changes made by another process
on the same database (``easyncd-admin``, another easyncd node) are found by
polling: while anybody waits on ``groupware:<id>`` topics, the hub asks the
backend's ``watch_revisions`` every ``poll_interval`` seconds, one query per
user with waiters.  Nobody waiting: no polling at all.

What a poll compares.  Each waiter holds, per groupware topic, the revision
it is measured against (its *threshold*); a poll answer above it wakes the
waiter.  The threshold is

* the ``known`` revision the caller passed -- what the device is known to
  have (Ping: the revision its pending check found the device up to date
  with; Sync's Wait: the revision the sync just looked at).  A change
  committed at any time after that look is above it, so it wakes the waiter
  at the next poll whenever it landed: before the waiter registered, before
  the hub's first poll, during a poll, or after an in-process notify;
* otherwise the hub's *baseline* of the collection at registration: the last
  revision a poll saw or a waiter's ``known`` value, whichever is higher
  (both are revisions the collection had reached, so anything above is news);
* otherwise (nothing known at all) the first poll's answer, taken silently.

An in-process :meth:`notify` wakes at once and keeps the baseline as it was:
the hub is not told the new revision, and forgetting the old one would let
a change from another process slip through as the next baseline.  At worst
a waiter without ``known`` registered after a notify wakes once for it.
A collection that disappears wakes everybody waiting on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

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
    #: groupware collection id -> the revision a poll must exceed to wake us
    #: (None: not known yet, the first poll's answer becomes it).
    thresholds: dict[str, int | None] = field(default_factory=dict)
    deferred: "Deferred[frozenset[str]]" = field(default_factory=Deferred)
    timer: IDelayedCall | None = None


def _collection_id(topic: str) -> str | None:
    if topic.startswith(GROUPWARE_PREFIX):
        return topic[len(GROUPWARE_PREFIX):]
    return None


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
        #: (user, collection id) -> (highest revision known reached, when last used).
        self._baselines: dict[tuple[str, str], tuple[int, float]] = {}
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
        """Wake the waiters of ``user`` on any of ``topics``.

        The baselines stay as they are (see the module docstring)."""
        self._wake(user, topics)

    def wait(
        self, user: str, topics: Iterable[str], timeout: float,
        known: Mapping[str, int] | None = None,
    ) -> "Deferred[frozenset[str]]":
        """Fires with the changed topics, or an empty set after ``timeout``.

        ``known``: topic -> revision the device is known to have; a polled
        revision above it wakes the waiter (see the module docstring)."""
        if self._stopped:
            return succeed(frozenset())
        waiter = _Waiter(user, frozenset(topics))
        waiter.deferred = Deferred(lambda _: self._remove(waiter))
        now = self._clock.seconds()
        known = known or {}
        for topic in waiter.topics:
            collection_id = _collection_id(topic)
            if collection_id is not None:
                key = (user, collection_id)
                baseline = self._baseline(key, now)
                revision = known.get(topic)
                if revision is not None:
                    revision = int(revision)
                    if baseline is None or baseline[0] < revision:
                        self._baselines[key] = (revision, now)
                elif baseline is not None:
                    revision = baseline[0]
                waiter.thresholds[collection_id] = revision
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
        self._finish_all(woken)

    def _finish_all(self, woken: Mapping[_Waiter, set[str]]) -> None:
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

    def _baseline(self, key: tuple[str, str], now: float) -> tuple[int, float] | None:
        """The remembered revision of a collection, unless it is too old to
        trust (the device has probably synced past it since)."""
        baseline = self._baselines.get(key)
        if baseline is not None and baseline[1] < now - self._baseline_ttl:
            del self._baselines[key]
            return None
        return baseline

    def _watched(self) -> dict[str, set[str]]:
        """user -> groupware collection ids somebody waits on."""
        watched: dict[str, set[str]] = {}
        for user, topic in self._waiters:
            collection_id = _collection_id(topic)
            if collection_id is not None:
                watched.setdefault(user, set()).add(collection_id)
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
        polls = [self._poll_user(user, ids) for user, ids in watched.items()]

        def done(_: Any) -> None:
            self._polling = False
            self._schedule_poll()

        DeferredList(polls).addBoth(done)

    def _poll_user(self, user: str, ids: set[str]) -> "Deferred[None]":
        assert self.backend is not None
        d = maybeDeferred(self.backend.watch_revisions, user, sorted(ids))

        def compare(revisions: dict[str, int]) -> None:
            now = self._clock.seconds()
            woken: dict[_Waiter, set[str]] = {}
            for collection_id in ids:
                key = (user, collection_id)
                topic = GROUPWARE_PREFIX + collection_id
                revision = revisions.get(collection_id)
                waiters = self._waiters.get((user, topic), ())
                if revision is None:
                    # The collection is gone: news for everybody waiting on it.
                    self._baselines.pop(key, None)
                    for waiter in waiters:
                        woken.setdefault(waiter, set()).add(topic)
                    continue
                revision = int(revision)
                baseline = self._baselines.get(key)
                highest = revision if baseline is None else max(revision, baseline[0])
                self._baselines[key] = (highest, now)
                for waiter in waiters:
                    threshold = waiter.thresholds.get(collection_id)
                    if threshold is None:
                        waiter.thresholds[collection_id] = revision
                    elif revision > threshold:
                        woken.setdefault(waiter, set()).add(topic)
            self._finish_all(woken)

        def failed(failure: Failure) -> None:
            self.log.warn("push hub: revision poll for {user} failed: {error}", user=user,
                          error=failure.getErrorMessage())

        return d.addCallbacks(compare, failed)
