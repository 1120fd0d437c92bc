"""A fake IMailBackend (messages from the recorded fixtures) and a harness for
the mail Sync tests: memory store, push hub, clock, INBOX / Drafts / Trash."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.mail.imap4 import parseNestedParens

from easyncd.backends.imap.client import FetchedMessage
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    FOLDER_DRAFTS,
    FOLDER_INBOX,
    FolderPoint,
    MailboxSnapshot,
    MailChanges,
    MailError,
    MailState,
    NoSuchMailbox,
)
from easyncd.protocol.commands.getitemestimate import GetItemEstimateCommand
from easyncd.protocol.commands.sync import SyncCommand
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.push.hub import PushHub
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element
from tests.protocol.groupware_helpers import STUB_CODECS
from tests.protocol.helpers import START_TIME, make_clock, make_context, result_of

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")
NOW = datetime.fromtimestamp(START_TIME, timezone.utc)


def load_fixture(name: str) -> tuple[list[Any], int, dict[str, bytes]]:
    """(raw BODYSTRUCTURE list, size, sections) of a recorded message."""
    with open(os.path.join(FIXTURES, name + ".imap.json"), encoding="ascii") as handle:
        raw = json.load(handle)
    structure = parseNestedParens(raw["bodystructure"].encode("latin-1"))[0]
    return structure, int(raw["size"]), {k: v.encode("latin-1") for k, v in raw["sections"].items()}


def content_of(fixture: str) -> tuple[list[Any], int, dict[str, bytes]]:
    """A fixture's content; ``raw:<message>`` (appended drafts) is read as a
    single text/plain part."""
    if not fixture.startswith("raw:"):
        return load_fixture(fixture)
    raw = fixture[4:].encode("utf-8")
    head, _, body = raw.partition(b"\r\n\r\n")
    if not body and b"\n\n" in raw:
        head, _, body = raw.partition(b"\n\n")
    structure = parseNestedParens(
        b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" %d 1 NIL NIL NIL NIL)' % len(body))[0]
    return structure, len(raw), {"": raw, "HEADER": head + b"\r\n\r\n", "TEXT": body, "1": body}


@dataclass
class FakeMessage:
    """One stored message."""

    uid: int
    fixture: str
    flags: set[str]
    date: datetime
    modseq: int
    broken: bool = False


@dataclass
class FakeMailbox:
    """One mailbox."""

    name: str
    uidvalidity: int = 1
    uidnext: int = 1
    messages: dict[int, FakeMessage] = field(default_factory=dict)


class FakeWatch:
    """A watch registration."""

    def __init__(self, owner: "FakeMailBackend", mailboxes: Sequence[str],
                 on_change: Callable[[str], None]) -> None:
        self.owner = owner
        self.mailboxes = list(mailboxes)
        self.on_change = on_change
        self.stopped = False

    def stop(self) -> None:
        """Stop."""
        self.stopped = True


class FakeMailBackend:
    """IMailBackend over in-memory mailboxes; every call is recorded in ``calls``."""

    def __init__(self) -> None:
        self.boxes: dict[str, FakeMailbox] = {n: FakeMailbox(n) for n in ("INBOX", "Drafts", "Trash")}
        self.modseq = 1
        self.calls: list[tuple[str, Any]] = []
        self.appended: list[tuple[str, bytes, tuple[str, ...]]] = []
        self.watches: list[FakeWatch] = []
        self.fail_fetch = False

    # -- test helpers ------------------------------------------------------------------

    def deliver(self, mailbox: str = "INBOX", fixture: str = "plain", *,
                flags: Iterable[str] = (), date: datetime | None = None,
                broken: bool = False) -> int:
        """Add a message; its UID."""
        box = self.boxes[mailbox]
        uid = box.uidnext
        box.uidnext += 1
        self.modseq += 1
        box.messages[uid] = FakeMessage(uid, fixture, set(flags), date or NOW, self.modseq, broken)
        for watch in self.watches:
            if not watch.stopped and mailbox in watch.mailboxes:
                watch.on_change(mailbox)
        return uid

    def store(self, mailbox: str, uid: int, flags: Iterable[str]) -> None:
        """Replace a message's flags (another client)."""
        self.modseq += 1
        message = self.boxes[mailbox].messages[uid]
        message.flags = set(flags)
        message.modseq = self.modseq

    def expunge(self, mailbox: str, uid: int) -> None:
        """Remove a message (another client)."""
        self.modseq += 1
        del self.boxes[mailbox].messages[uid]

    def count(self, name: str) -> int:
        """How many calls of a method were made."""
        return sum(1 for n, _ in self.calls if n == name)

    # -- IMailBackend -----------------------------------------------------------------

    def _box(self, mailbox: str) -> FakeMailbox:
        if mailbox not in self.boxes:
            raise NoSuchMailbox(mailbox)
        return self.boxes[mailbox]

    def _point(self, box: FakeMailbox) -> FolderPoint:
        return FolderPoint(box.uidvalidity, box.uidnext, self.modseq, len(box.messages))

    def folder_state(self, user: str, password: str, mailbox: str) -> "Deferred[FolderPoint]":
        self.calls.append(("folder_state", mailbox))
        return succeed(self._point(self._box(mailbox)))

    def changes(self, user: str, password: str, mailbox: str, since: MailState | None,
                window_start: datetime | None = None) -> "Deferred[MailChanges]":
        self.calls.append(("changes", mailbox))
        try:
            box = self._box(mailbox)
        except MailError as exc:
            return fail(exc)
        current = {m.uid: frozenset(m.flags) for m in box.messages.values()
                   if "\\Deleted" not in m.flags
                   and (window_start is None or m.date >= window_start)}
        point = self._point(box)
        state = MailState(point, MailboxSnapshot.from_flags(current))
        if since is None:
            return succeed(MailChanges(state, tuple(sorted(current))))
        old = since.snapshot.as_dict()
        if since.point.uidvalidity != box.uidvalidity:
            return succeed(MailChanges(state, tuple(sorted(current)), {}, tuple(sorted(old)), True))
        # A message outside the window stays unknown (as the real backend).
        added = tuple(sorted(u for u in current if u not in old))
        removed = tuple(sorted(u for u in old if u not in current
                               and not (u in box.messages and "\\Deleted" not in box.messages[u].flags)))
        changed = {u: f for u, f in current.items() if u in old and old[u] != f}
        known = {u: f for u, f in current.items()}
        return succeed(MailChanges(MailState(point, MailboxSnapshot.from_flags(known)),
                                   added, changed, removed))

    def fetch_messages(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                       items: Sequence[str]) -> "Deferred[list[FetchedMessage]]":
        self.calls.append(("fetch_messages", (mailbox, list(uids), list(items))))
        if self.fail_fetch:
            return fail(MailError("fetch failed"))
        box = self._box(mailbox)
        out: list[FetchedMessage] = []
        for uid in uids:
            message = box.messages.get(uid)
            if message is None:
                continue
            structure, size, sections = content_of(message.fixture)
            fetched = FetchedMessage(uid=uid, flags=frozenset(message.flags),
                                     internaldate=message.date, size=size)
            for item in items:
                if item == "BODYSTRUCTURE":
                    fetched.bodystructure = None if message.broken else structure
                elif item.startswith("BODY.PEEK["):
                    section, _, rest = item[len("BODY.PEEK["):].partition("]")
                    if message.broken and section != "HEADER":
                        continue  # nothing usable comes back for it
                    data = b"" if message.broken else sections.get(section, b"")
                    if rest.startswith("<"):
                        start, _, length = rest[1:-1].partition(".")
                        fetched.sections[f"{section}<{start}>"] = data[int(start):int(start) + int(length)]
                    else:
                        fetched.sections[section] = data
            out.append(fetched)
        return succeed(out)

    def fetch_part(self, user: str, password: str, mailbox: str, uid: int, part: str,
                   offset: int = 0, length: int | None = None) -> "Deferred[bytes]":
        self.calls.append(("fetch_part", (mailbox, uid, part)))
        message = self._box(mailbox).messages.get(uid)
        if message is None:
            return fail(MailError(f"no message {uid}"))
        return succeed(content_of(message.fixture)[2][part])

    def set_flags(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                  add: Iterable[str] = (), remove: Iterable[str] = ()) -> "Deferred[dict[int, frozenset[str]]]":
        self.calls.append(("set_flags", (mailbox, list(uids), sorted(add), sorted(remove))))
        box = self._box(mailbox)
        result: dict[int, frozenset[str]] = {}
        for uid in uids:
            message = box.messages.get(uid)
            if message is None:
                continue
            self.modseq += 1
            message.flags = (message.flags | set(add)) - set(remove)
            message.modseq = self.modseq
            result[uid] = frozenset(message.flags)
        return succeed(result)

    def delete(self, user: str, password: str, mailbox: str, uids: Sequence[int],
               to_trash: bool) -> "Deferred[dict[int, int]]":
        self.calls.append(("delete", (mailbox, list(uids), to_trash)))
        box = self._box(mailbox)
        moved: dict[int, int] = {}
        for uid in uids:
            message = box.messages.pop(uid, None)
            if message is None:
                continue
            self.modseq += 1
            if to_trash and mailbox != "Trash":
                moved[uid] = self.deliver("Trash", message.fixture, flags=message.flags,
                                          date=message.date)
        return succeed(moved)

    def append(self, user: str, password: str, mailbox: str, message: bytes,
               flags: Iterable[str] = (), date: datetime | None = None) -> "Deferred[int]":
        self.calls.append(("append", mailbox))
        self.appended.append((mailbox, message, tuple(flags)))
        return succeed(self.deliver(mailbox, "raw:" + message.decode("utf-8"), flags=flags))

    def watch(self, user: str, password: str, mailboxes: Sequence[str],
              on_change: Callable[[str], None]) -> "Deferred[FakeWatch]":
        self.calls.append(("watch", list(mailboxes)))
        watch = FakeWatch(self, mailboxes, on_change)
        self.watches.append(watch)
        return succeed(watch)


class MailHarness:
    """Store + fake mail backend + hub + clock, with INBOX (2), Drafts (3) and
    Trash (4) folders in the store."""

    def __init__(self, user: str = "alice@example.com") -> None:
        self.user = user
        self.clock = make_clock()
        self.store: Any = MemoryStateStore()
        self.hub = PushHub(self.clock)
        self.mail = FakeMailBackend()
        result_of(self.store.register_account("dev1", user, "TestDevice", "t/1", START_TIME))
        self.folders: dict[str, str] = {}
        for name, kind in (("INBOX", FOLDER_INBOX), ("Drafts", FOLDER_DRAFTS),
                           ("Trash", FOLDER_DELETED)):
            folder = result_of(self.store.add_folder(user, "0", name, kind, "imap:" + name))
            self.folders[name] = folder.server_id

    def ctx(self, command: str = "Sync", version: str = "16.1") -> CommandContext:
        """A context for one request."""
        ctx = make_context(self.store, command, version, self.user, clock=self.clock,
                           services={"mail": self.mail, "push": self.hub,
                                     "groupware": object()})
        ctx.password = "secret"
        return ctx

    def start(self, body: Element | None, version: str = "16.1") -> "Deferred[CommandResponse]":
        """Start a Sync."""
        return Deferred.fromCoroutine(
            SyncCommand(codecs=STUB_CODECS).run(self.ctx("Sync", version), body))

    def sync(self, body: Element | None, version: str = "16.1") -> CommandResponse:
        """Run a Sync that finishes at once."""
        return result_of(self.start(body, version))

    def estimate(self, body: Element, version: str = "16.1") -> CommandResponse:
        """Run a GetItemEstimate."""
        return result_of(GetItemEstimateCommand(codecs=STUB_CODECS).run(
            self.ctx("GetItemEstimate", version), body))

    def sid(self, uid: int, mailbox: str = "INBOX") -> str:
        """The ServerId of a message."""
        return f"{self.folders[mailbox]}:{uid}"


def days_ago(days: float) -> datetime:
    """A date ``days`` before the test clock's start."""
    return NOW - timedelta(days=days)
