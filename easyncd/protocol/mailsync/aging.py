"""Keeping a mail folder's FilterType window on the device (MS-ASCMD 2.2.3.68.2:
"The server sends SoftDelete operations for objects on the client when they
become older than the window").

* :func:`aging_due` -- the held messages are checked at most once per UTC day
  (the window start moves by whole days of age; a check per Sync would cost
  a FETCH each time);
* :func:`aged_out` -- which held UIDs are now older than the window: one
  ``UID FETCH <held> (INTERNALDATE)`` limited to the UIDs the device holds
  (the snapshot minus what is still pending), never the folder;
* :func:`refilter` -- the device changed its FilterType under a non-zero
  SyncKey: one listing of the folder with the new window gives what to add
  (newly inside), what to SoftDelete (now outside) and what changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from easyncd.backends.interfaces import MailState

DAY = 86400.0


def aging_due(last: float | None, now: float) -> bool:
    """Whether the held messages are to be checked against the window again:
    never checked, a new UTC day (the window start crossed a day boundary) or
    the clock went back."""
    if last is None or now < last:
        return True
    return now - last >= DAY or int(now // DAY) != int(last // DAY)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


async def aged_out(backend: Any, user: str, password: str | None, mailbox: str,
                   held: Iterable[int], start: datetime) -> set[int]:
    """The UIDs of ``held`` received (INTERNALDATE) before ``start``.  UIDs that
    no longer exist are left to the change detection."""
    wanted = sorted(set(held))
    if not wanted:
        return set()
    messages = await backend.fetch_messages(user, password, mailbox, wanted, ["INTERNALDATE"])
    begin = _aware(start)
    return {m.uid for m in messages
            if m.uid and m.internaldate is not None and _aware(m.internaldate) < begin}


@dataclass(frozen=True)
class Refiltered:
    """A folder's sync state under a new FilterType window."""

    mail: MailState
    #: UIDs to send as Add (descending), with flag changes to send...
    adds: list[int]
    changes: set[int]
    #: ... and the UIDs the device holds that are outside the new window.
    soft: list[int]


async def refilter(backend: Any, user: str, password: str | None, mailbox: str,
                   mail: MailState, pending_adds: Iterable[int], pending_changes: Iterable[int],
                   start: datetime | None) -> Refiltered | None:
    """Re-list ``mailbox`` under the window starting at ``start`` (None: no
    window) and compare with what the device holds.  None when the
    UIDVALIDITY changed meanwhile (the caller starts over)."""
    listing = await backend.changes(user, password, mailbox, None, start)
    state: MailState = listing.state
    if state.point.uidvalidity != mail.point.uidvalidity:
        return None
    old, new = mail.snapshot, state.snapshot
    pending = set(pending_adds)
    soft = [uid for uid in old.uids() if uid not in pending and uid not in new]
    adds: list[int] = []
    changes = {uid for uid in pending_changes if uid in new and uid not in pending}
    for uid in new.uids():
        known = old.flags_of(uid)
        if known is None or uid in pending:
            adds.append(uid)
        elif known != new.flags_of(uid):
            changes.add(uid)
    adds.sort(reverse=True)
    return Refiltered(state, adds, changes, soft)


__all__ = ["DAY", "Refiltered", "aged_out", "aging_due", "refilter"]
