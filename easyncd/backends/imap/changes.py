"""Change detection for one mailbox, on a borrowed IMAP session.

Two paths, chosen per call:

* **QRESYNC/CONDSTORE** (the state has a HIGHESTMODSEQ and the server keeps
  modseqs for the mailbox): ``SELECT mailbox (QRESYNC (uidvalidity modseq))``
  returns what changed (``VANISHED (EARLIER)`` + ``FETCH``) — or, with
  CONDSTORE alone, ``SELECT (CONDSTORE)`` then ``UID FETCH 1:* (FLAGS)
  (CHANGEDSINCE modseq)`` plus a ``UID SEARCH`` of the UIDs for removals is
  avoided: removals are found by ``UID SEARCH UID known`` only when the
  message count says something went.  An unchanged mailbox costs one SELECT;
  a change costs what changed, not the mailbox size.
* **fallback** (no CONDSTORE, or ``NOMODSEQ``): ``UID FETCH 1:* (FLAGS)`` and a
  compare with the snapshot the caller kept
  (:class:`~easyncd.backends.interfaces.MailboxSnapshot`).

Either way ``\\Deleted`` messages count as removed, a UIDVALIDITY change is a
reset of this mailbox only, and the returned state is exact.
"""
from __future__ import annotations

import datetime
from typing import Iterable

from easyncd.backends.imap.client import EASIMAPClient, FetchedMessage, SelectResult
from easyncd.backends.imap.protocol_parse import format_uid_set
from easyncd.backends.interfaces import FolderPoint, MailboxSnapshot, MailChanges, MailState

__all__ = ["detect_changes", "visible", "DELETED"]

DELETED = "\\Deleted"
#: Flags that never count as a change (per session, or server-internal).
_IGNORED = frozenset({"\\Recent"})


def visible(flags: Iterable[str] | None) -> bool:
    """A message is shown unless it carries ``\\Deleted``."""
    return DELETED not in (flags or ())


def _clean(flags: Iterable[str] | None) -> frozenset[str]:
    return frozenset(flags or ()) - _IGNORED


def _in_window(message: FetchedMessage, window_start: datetime.datetime | None) -> bool:
    if window_start is None or message.internaldate is None:
        return True
    when = message.internaldate
    start = window_start
    if (when.tzinfo is None) != (start.tzinfo is None):
        when = when.replace(tzinfo=None) if when.tzinfo else when
        start = start.replace(tzinfo=None) if start.tzinfo else start
    return when >= start


def _point(selected: SelectResult) -> FolderPoint:
    return FolderPoint(
        uidvalidity=selected.uidvalidity,
        uidnext=selected.uidnext or 0,
        highestmodseq=selected.highestmodseq,
        messages=selected.exists,
    )


async def _select(client: EASIMAPClient, mailbox: str, since: MailState | None) -> SelectResult:
    """EXAMINE the mailbox, with QRESYNC data when we can use it."""
    point = since.point if since is not None else None
    if point is not None and point.highestmodseq is not None and client.qresync_enabled:
        return await client.select_mailbox(
            mailbox, readonly=True, qresync=(point.uidvalidity, point.highestmodseq, None))
    return await client.select_mailbox(mailbox, readonly=True, condstore=client.condstore_enabled)


async def _full_listing(client: EASIMAPClient, selected: SelectResult,
                        window_start: datetime.datetime | None) -> dict[int, frozenset[str]]:
    """``{uid: flags}`` of every visible message (in the window): one UID FETCH."""
    if selected.exists == 0:
        return {}
    items = ["FLAGS"] if window_start is None else ["FLAGS", "INTERNALDATE"]
    messages, _ = await client.uid_fetch("1:*", items)
    return {
        m.uid: _clean(m.flags)
        for m in messages
        if m.uid and visible(m.flags) and _in_window(m, window_start)
    }


async def _dates_in_window(client: EASIMAPClient, uids: Iterable[int],
                           window_start: datetime.datetime | None) -> set[int]:
    wanted = sorted(uids)
    if window_start is None or not wanted:
        return set(wanted)
    messages, _ = await client.uid_fetch(format_uid_set(wanted), ["INTERNALDATE"])
    return {m.uid for m in messages if _in_window(m, window_start)}


def _compare(old: dict[int, frozenset[str]], new: dict[int, frozenset[str]], point: FolderPoint,
             reset: bool = False) -> MailChanges:
    added = tuple(sorted(uid for uid in new if uid not in old))
    removed = tuple(sorted(uid for uid in old if uid not in new))
    changed = {uid: flags for uid, flags in new.items() if uid in old and old[uid] != flags}
    return MailChanges(MailState(point, MailboxSnapshot.from_flags(new)), added, changed, removed, reset)


async def detect_changes(client: EASIMAPClient, mailbox: str, since: MailState | None,
                         window_start: datetime.datetime | None = None) -> MailChanges:
    """What changed in ``mailbox`` since ``since`` (None: first sync, everything is added)."""
    selected = await _select(client, mailbox, since)
    point = _point(selected)
    if since is None or since.point.uidvalidity != selected.uidvalidity:
        current = await _full_listing(client, selected, window_start)
        old = since.snapshot.as_dict() if since is not None else {}
        if since is None:
            return _compare({}, current, point, reset=False)
        # UIDVALIDITY changed: the old UIDs mean nothing any more.
        return MailChanges(MailState(point, MailboxSnapshot.from_flags(current)),
                           tuple(sorted(current)), {}, tuple(sorted(old)), True)
    old_point = since.point
    if old_point.highestmodseq is not None and selected.highestmodseq is not None and client.condstore_enabled:
        return await modseq_changes(client, selected, point, since, window_start)
    current = await _full_listing(client, selected, window_start)
    return _compare(since.snapshot.as_dict(), current, point)


async def modseq_changes(client: EASIMAPClient, selected: SelectResult, point: FolderPoint,
                          since: MailState, window_start: datetime.datetime | None) -> MailChanges:
    old_point = since.point
    assert old_point.highestmodseq is not None
    if (selected.highestmodseq == old_point.highestmodseq and point.uidnext == old_point.uidnext
            and not selected.vanished and not selected.changed):
        return MailChanges(MailState(point, since.snapshot))
    snapshot = since.snapshot
    if client.qresync_enabled:
        fetched: list[FetchedMessage] = list(selected.changed)
        gone = set(selected.vanished)
    else:
        # CONDSTORE without QRESYNC: changed flags by modseq; removals from the UID list
        # of the known range only when the count says something went.
        fetched, _ = await client.uid_fetch("1:*", ["FLAGS"], changedsince=old_point.highestmodseq)
        gone = set()
        # Every message that arrived since has a newer modseq, so it is in ``fetched``:
        # the counts tell whether anything was expunged.
        arrived = sum(1 for m in fetched if m.uid >= old_point.uidnext)
        if len(snapshot) and point.messages < old_point.messages + arrived:
            present = set(await client.uid_search(f"UID {format_uid_set(snapshot.uids())}", charset=None))
            gone = {uid for uid in snapshot.uids() if uid not in present}
    old_flags: dict[int, frozenset[str]] = {}
    new_flags: dict[int, frozenset[str]] = {}
    candidates: dict[int, frozenset[str]] = {}
    removed: set[int] = set()
    for uid in gone:
        if uid in snapshot:
            removed.add(uid)
    for message in fetched:
        if not message.uid or message.uid in gone:
            continue
        flags = _clean(message.flags)
        known = snapshot.flags_of(message.uid)
        if known is not None:
            if not visible(flags):
                removed.add(message.uid)
            elif flags != known:
                old_flags[message.uid] = known
                new_flags[message.uid] = flags
        elif visible(flags):
            candidates[message.uid] = flags
    in_window = await _dates_in_window(client, candidates, window_start)
    added = {uid: flags for uid, flags in candidates.items() if uid in in_window}
    new_snapshot = snapshot.updated({**new_flags, **added}, removed)
    return MailChanges(MailState(point, new_snapshot), tuple(sorted(added)), new_flags,
                       tuple(sorted(removed)), False)
