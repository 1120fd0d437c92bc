"""Push for mail folders: keeping the user's IMAP watch alive across requests,
and telling whether a mail folder has news the device has not synced.

:func:`watch_mail` is called by Ping and by Sync's Wait before they wait on
the push hub.  It makes sure the mail backend watches the mailboxes
(``mail.watch(user, password, mailboxes, on_change)``) with ``on_change``
notifying the hub's topic ``imap:<mailbox>``.  One registration per user is
kept in a :class:`MailWatchRegistry`: a request asking for mailboxes already
watched costs nothing; one asking for more replaces the registration with one
on the union (the new one is in place before the old one is stopped, so the
backend's IDLE session stays).  The registration lingers after the last
request: it is stopped ``hold + linger`` seconds after the last call
(``hold``: how long the caller itself waits, the Ping heartbeat), so the
device's next Ping, usually seconds later, finds the IDLE running.

:func:`mail_pending_topics` compares each mail folder's ``folder_state``
(one STATUS) with the point the device's mail Sync state stands for, read
by :data:`point_reader` (the mail Sync installs its reader; see
:func:`set_point_reader`).  A folder never synced, or whose state cannot be
read, is not pending (its first Sync sends everything anyway).
"""
from __future__ import annotations

import hashlib
import importlib
import hmac
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from twisted.internet.defer import DeferredLock
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from easyncd.backends.interfaces import FolderPoint, MailError, NoSuchMailbox
from easyncd.protocol.mailfolders import MAIL_PREFIX, mail_backend_id

__all__ = [
    "DEFAULT_LINGER",
    "MailWatchRegistry",
    "PointReader",
    "mail_pending_topics",
    "point_behind",
    "registry_for",
    "set_point_reader",
    "watch_mail",
]

_log = Logger()

#: Seconds a registration stays after the last request's hold when the
#: config has no ``[imap] watch_linger``.
DEFAULT_LINGER = 60.0

#: Reads the point a mail folder's Sync state text stands for:
#: ``(point, has_unsent)``; ``point`` None when the text is not a mail state.
PointReader = Callable[[str | None], "tuple[FolderPoint | None, bool]"]


@dataclass(eq=False)
class _Entry:
    user: str
    lock: DeferredLock = field(default_factory=DeferredLock)
    mailboxes: frozenset[str] = frozenset()
    registration: Any = None
    password_key: bytes = b""
    expires: float = 0.0
    timer: IDelayedCall | None = None
    push: Any = None


class MailWatchRegistry:
    """One mail watch registration per user, shared by the user's requests
    (see the module doc).  ``clock``: for the linger timers."""

    def __init__(self, mail: Any, clock: Any, linger: float = DEFAULT_LINGER,
                 log: Logger | None = None) -> None:
        self.mail = mail
        self.clock = clock
        self.linger = linger
        self.log = log or _log
        self._entries: dict[str, _Entry] = {}
        # Passwords are compared through a keyed hash, never kept here.
        self._key = os.urandom(32)

    def _password_key(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def watched(self, user: str) -> frozenset[str]:
        """The mailboxes watched for ``user`` now (empty: none)."""
        entry = self._entries.get(user)
        if entry is None or entry.registration is None:
            return frozenset()
        return entry.mailboxes

    async def watch(self, user: str, password: str, mailboxes: Iterable[str], push: Any,
                    hold: float = 0.0) -> bool:
        """Make sure ``mailboxes`` of ``user`` are watched, changes going to
        ``push.notify(user, ["imap:<mailbox>"])``, for at least ``hold`` +
        linger seconds from now.  Fires with True once the watch is in place,
        False if the mail backend could not set it up (logged; the caller
        then waits without mail push)."""
        wanted = frozenset(mailboxes)
        entry = self._entries.get(user)
        if entry is None:
            entry = self._entries[user] = _Entry(user)
        entry.push = push
        self._extend(entry, hold)
        if not wanted:
            return True
        await entry.lock.acquire()
        try:
            key = self._password_key(password)
            if (entry.registration is not None and wanted <= entry.mailboxes
                    and key == entry.password_key and not _finished(entry.registration)):
                return True
            union = wanted
            if entry.registration is not None and key == entry.password_key \
                    and not _finished(entry.registration):
                union = wanted | entry.mailboxes
            try:
                registration = await self.mail.watch(user, password, sorted(union),
                                                     self._on_change(entry))
            except MailError as exc:
                self.log.warn("Mail push for {user} not set up: {error}", user=user,
                              error=str(exc))
                return False
            old, entry.registration = entry.registration, registration
            entry.mailboxes, entry.password_key = union, key
            if old is not None:
                old.stop()
            if self._entries.get(user) is not entry:
                # Expired while we were registering: keep it anyway.
                self._entries[user] = entry
            return True
        finally:
            entry.lock.release()

    def _on_change(self, entry: _Entry) -> Callable[[str], None]:
        def on_change(mailbox: str) -> None:
            push = entry.push
            if push is not None:
                push.notify(entry.user, [mail_backend_id(mailbox)])

        return on_change

    def _extend(self, entry: _Entry, hold: float) -> None:
        now = float(self.clock.seconds())
        expires = now + max(0.0, hold) + self.linger
        if expires <= entry.expires and entry.timer is not None and entry.timer.active():
            return
        entry.expires = max(entry.expires, expires)
        if entry.timer is not None and entry.timer.active():
            entry.timer.cancel()
        entry.timer = self.clock.callLater(entry.expires - now, self._expire, entry)

    def _expire(self, entry: _Entry) -> None:
        entry.timer = None
        now = float(self.clock.seconds())
        if now < entry.expires:
            entry.timer = self.clock.callLater(entry.expires - now, self._expire, entry)
            return
        if self._entries.get(entry.user) is entry:
            del self._entries[entry.user]
        registration, entry.registration = entry.registration, None
        entry.mailboxes = frozenset()
        if registration is not None:
            registration.stop()

    def stop_all(self) -> None:
        """Stop every registration and timer (daemon shutdown)."""
        for entry in list(self._entries.values()):
            if entry.timer is not None and entry.timer.active():
                entry.timer.cancel()
            entry.timer = None
            registration, entry.registration = entry.registration, None
            if registration is not None:
                registration.stop()
        self._entries.clear()


def _finished(registration: Any) -> bool:
    """Whether the backend ended the watching behind a registration (the
    IMAP backend's registrations tell; others are taken as alive)."""
    if getattr(registration, "stopped", False):
        return True
    watcher = getattr(registration, "watcher", None)
    return bool(getattr(watcher, "finished", False))


_registries: "weakref.WeakKeyDictionary[Any, MailWatchRegistry]" = weakref.WeakKeyDictionary()


def registry_for(ctx: Any) -> MailWatchRegistry | None:
    """The registry of the request's mail backend: ``ctx.services["mailpush"]``
    when the daemon provides one, else one per mail backend object (made on
    first use).  None without a mail backend."""
    given = ctx.services.get("mailpush")
    if given is not None:
        return given  # type: ignore[no-any-return]
    mail = ctx.services.get("mail")
    if mail is None:
        return None
    registry = _registries.get(mail)
    if registry is None:
        linger = DEFAULT_LINGER
        imap = getattr(ctx.config, "imap", None)
        if imap is not None and getattr(imap, "watch_linger", None) is not None:
            linger = float(imap.watch_linger)
        registry = MailWatchRegistry(mail, ctx.clock, linger)
        _registries[mail] = registry
    return registry


async def watch_mail(ctx: Any, mailboxes: Iterable[str], *, hold: float = 0.0) -> bool:
    """Watch ``mailboxes`` of the request's user (see the module doc); True
    once the watch is in place, False without a mail backend or push hub or
    when the backend failed (the caller waits without mail push then)."""
    registry = registry_for(ctx)
    push = ctx.services.get("push")
    if registry is None or push is None:
        return False
    return await registry.watch(ctx.request.account, ctx.password or "", mailboxes, push, hold)


# -- pending changes ------------------------------------------------------------------


def _no_reader(text: str | None) -> tuple[FolderPoint | None, bool]:
    return None, False


#: The installed reader of mail Sync states (see :func:`set_point_reader`).
point_reader: PointReader = _no_reader


def set_point_reader(reader: PointReader) -> None:
    """Install the mail Sync's reader of its state text: it returns the
    :class:`FolderPoint` the state stands for (None: not a mail state) and
    whether the state still holds changes not sent (MoreAvailable)."""
    global point_reader
    point_reader = reader


_reader_loaded = False


def _load_reader() -> None:
    """Import the mail Sync once (it installs its reader when imported)."""
    global _reader_loaded
    if _reader_loaded or point_reader is not _no_reader:
        return
    _reader_loaded = True
    try:
        importlib.import_module("easyncd.protocol.mailsync")
    except ImportError:
        _log.debug("no mail Sync module: mail folders are never pending in Ping")


def point_behind(saved: FolderPoint, current: FolderPoint) -> bool:
    """Whether a mailbox now at ``current`` has news for a device whose Sync
    stands at ``saved``: another UIDVALIDITY, UIDNEXT or message count, or
    (with CONDSTORE on both) a higher HIGHESTMODSEQ."""
    if (saved.uidvalidity, saved.uidnext, saved.messages) != \
            (current.uidvalidity, current.uidnext, current.messages):
        return True
    if saved.highestmodseq is not None and current.highestmodseq is not None:
        return current.highestmodseq > saved.highestmodseq
    return False


async def mail_pending_topics(ctx: Any, folders: Sequence[tuple[str, str]],
                              gone: list[str] | None = None) -> set[str]:
    """The topics among ``folders`` (``(server id, topic)`` pairs; only
    ``imap:`` topics are looked at) whose mailbox has news the device's Sync
    state has not got.  One sync state read and one STATUS per mail folder
    the device has synced.  A backend error counts as no news (logged); a
    mailbox that no longer exists puts the folder's server id in ``gone``."""
    mail = ctx.services.get("mail")
    mail_folders = [(sid, topic) for sid, topic in folders if topic.startswith(MAIL_PREFIX)]
    if mail is None or not mail_folders:
        return set()
    _load_reader()
    store: Any = ctx.store
    req = ctx.request
    pending: set[str] = set()
    for server_id, topic in mail_folders:
        if topic in pending:
            continue
        state = await store.get_sync_state(req.device_id, req.account, server_id)
        if state is None:
            continue
        saved, unsent = point_reader(state.state)
        if saved is None:
            continue
        if unsent:
            pending.add(topic)
            continue
        try:
            current: FolderPoint = await mail.folder_state(req.account, ctx.password or "",
                                                           topic[len(MAIL_PREFIX):])
        except NoSuchMailbox:
            if gone is not None:
                gone.append(server_id)
            continue
        except MailError as exc:
            ctx.log.info("Ping: no state of mailbox {mailbox} for {user}: {error}",
                         mailbox=topic[len(MAIL_PREFIX):], user=req.account, error=str(exc))
            continue
        if point_behind(saved, current):
            pending.add(topic)
    return pending
