"""The push hub's contract.

Topics are strings naming a backend collection, the folders' ``backend_id``
(``"groupware:<collection id>"``; the mail issue adds ``"imap:<mailbox>"``).
"""
from __future__ import annotations

from zope.interface import Interface


class IPushHub(Interface):
    """Fan-in of change notifications, fan-out to waiting requests."""

    def notify(user, topics):  # type: ignore[misc,no-untyped-def]
        """Something changed in these topics of ``user`` (called after the
        change committed).  Wakes every waiter on any of them.  Returns None."""

    def wait(user, topics, timeout, known=None):  # type: ignore[misc,no-untyped-def]
        """Deferred[frozenset[str]]: fires with the topics that changed (at
        least one) as soon as one does, or with an empty set after ``timeout``
        seconds.  Cancelling the Deferred (the client went away) removes the
        waiter and fires nothing else.

        ``known``: an optional mapping topic -> revision the device is known
        to have (for topics whose backend has revisions, the groupware ones).
        A hub that finds changes by comparing revisions (other processes'
        writes) wakes the waiter as soon as it sees a revision above that,
        whenever the change was committed -- also before this call.  Without
        it, only changes the hub notices after the call are reported."""
