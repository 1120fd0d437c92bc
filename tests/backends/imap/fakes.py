"""An in-memory IMAP server and a client with the EASIMAPClient methods the pool and backend use.

Only for unit tests of the pool, the change detection and the watcher; the
real client is exercised against Dovecot in the integration tests.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure

from easyncd.backends.imap.client import FetchedMessage, FetchList, IMAPError, MailboxInfo, MailboxStatus, SelectResult
from easyncd.backends.imap.connect import IMAPAuthError, IMAPConnectError
from easyncd.backends.imap.protocol_parse import parse_uid_set

FULL = frozenset({"IMAP4REV1", "IDLE", "CONDSTORE", "QRESYNC", "ENABLE", "UIDPLUS", "MOVE", "SPECIAL-USE",
                  "LIST-EXTENDED"})
BASIC = frozenset({"IMAP4REV1", "IDLE"})


@dataclass
class FakeMessage:
    uid: int
    flags: set[str]
    modseq: int
    date: datetime.datetime
    body: bytes


@dataclass
class FakeMailbox:
    name: str
    uidvalidity: int
    special_use: str | None = None
    uidnext: int = 1
    modseq: int = 1
    messages: dict[int, FakeMessage] = field(default_factory=dict)
    expunged: dict[int, int] = field(default_factory=dict)  # uid -> modseq of the expunge


class FakeTransport:
    def __init__(self, client: "FakeClient") -> None:
        self.client = client

    def loseConnection(self) -> None:
        self.client.server.drop(self.client)


class FakeIMAPServer:
    """Users' mailboxes; hands out :class:`FakeClient` connections."""

    def __init__(self, users: dict[str, str], capabilities: frozenset[str] = FULL) -> None:
        self.users = dict(users)
        self.capabilities = capabilities
        self.boxes: dict[str, dict[str, FakeMailbox]] = {}
        self.clients: list[FakeClient] = []
        self.logins: list[str] = []
        self.down = False
        self.commands: list[tuple[str, str]] = []
        self.connect_gate: Deferred[None] | None = None
        #: With NOTIFY in ``capabilities``: answer NOTIFY with NO.
        self.refuse_notify = False
        self._validity = 100
        for user in users:
            self.boxes[user] = {}
            for name, special in (("INBOX", None), ("Drafts", "\\Drafts"), ("Sent", "\\Sent"),
                                  ("Trash", "\\Trash"), ("Junk", "\\Junk")):
                self.create(user, name, special)

    def create(self, user: str, name: str, special: str | None = None) -> FakeMailbox:
        self._validity += 1
        box = FakeMailbox(name, self._validity, special)
        self.boxes[user][name] = box
        return box

    async def connect(self, user: str, password: str) -> Any:
        """A logged-in :class:`FakeClient` (typed Any: it stands in for an EASIMAPClient)."""
        if self.connect_gate is not None:
            await self.connect_gate
        if self.down:
            raise IMAPConnectError("fake server is down")
        if self.users.get(user) != password:
            raise IMAPAuthError(f"IMAP login refused for {user}")
        self.logins.append(user)
        client = FakeClient(self, user)
        self.clients.append(client)
        return client

    def live(self, user: str | None = None) -> list["FakeClient"]:
        return [c for c in self.clients if c.transport is not None and (user is None or c.user == user)]

    def drop(self, client: "FakeClient", reason: Exception | None = None) -> None:
        if client.transport is None:
            return
        client.transport = None
        if client.idle_state is not None:
            state, client.idle_state = client.idle_state, None
            for waiter in state["waiters"]:
                waiter.errback(Failure(ConnectionLost()))
        client.closed.callback(None)

    # -- changes made "by another client" --------------------------------

    def _bump(self, box: FakeMailbox) -> int:
        box.modseq += 1
        return box.modseq

    def deliver(self, user: str, mailbox: str, body: bytes = b"Subject: hi\r\n\r\nhello\r\n",
                flags: Iterable[str] = (), date: datetime.datetime | None = None) -> int:
        box = self.boxes[user][mailbox]
        uid = box.uidnext
        box.uidnext += 1
        when = date or datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
        box.messages[uid] = FakeMessage(uid, set(flags), self._bump(box), when, body)
        self._event(user, mailbox, "EXISTS", len(box.messages))
        return uid

    def store(self, user: str, mailbox: str, uid: int, flags: Iterable[str]) -> None:
        box = self.boxes[user][mailbox]
        message = box.messages[uid]
        message.flags = set(flags)
        message.modseq = self._bump(box)
        self._event(user, mailbox, "FETCH", FetchedMessage(uid, frozenset(message.flags)))

    def expunge(self, user: str, mailbox: str, uids: Iterable[int]) -> None:
        box = self.boxes[user][mailbox]
        for uid in list(uids):
            if box.messages.pop(uid, None) is not None:
                box.expunged[uid] = self._bump(box)
                self._event(user, mailbox, "EXPUNGE", 1)

    def recreate(self, user: str, mailbox: str) -> FakeMailbox:
        old = self.boxes[user].pop(mailbox)
        return self.create(user, mailbox, old.special_use)

    def _event(self, user: str, mailbox: str, kind: str, data: Any) -> None:
        for client in self.live(user):
            state = client.idle_state
            if state is not None and client.selected == mailbox and state["active"]:
                state["on_event"](kind, data)
            elif (client.notify_boxes is not None and client.selected != mailbox
                  and (mailbox in client.notify_boxes or client.notify_scope == "PERSONAL")):
                # RFC 5465: a change elsewhere comes as STATUS, during IDLE or not.
                event = ("STATUS", client.status_of(self.boxes[user][mailbox]))
                if state is not None and state["active"]:
                    state["on_event"](*event)
                elif client.on_unsolicited is not None:
                    client.on_unsolicited(*event)

    def overflow(self, user: str) -> None:
        """Every NOTIFYing connection of ``user`` gets ``[NOTIFICATIONOVERFLOW]`` (and stops)."""
        for client in self.live(user):
            if client.notify_boxes is not None:
                client.notify_boxes = None
                state = client.idle_state
                target = state["on_event"] if state is not None else client.on_unsolicited
                if target is not None:
                    target("NOTIFICATIONOVERFLOW", "Too many events")


class FakeClient:
    """The EASIMAPClient surface over :class:`FakeIMAPServer`."""

    def __init__(self, server: FakeIMAPServer, user: str) -> None:
        self.server = server
        self.user = user
        self.capabilities_set = server.capabilities
        self.enabled = frozenset(server.capabilities & {"CONDSTORE", "QRESYNC"})
        self.transport: FakeTransport | None = FakeTransport(self)
        self.closed: Deferred[None] = Deferred()
        self.selected: str | None = None
        self.selected_readonly = False
        self.idle_state: dict[str, Any] | None = None
        self.on_unsolicited: Callable[[str, Any], None] | None = None
        self.fail_next: Exception | None = None
        #: The mailboxes of the NOTIFY SET in force (None: no NOTIFY).
        self.notify_boxes: set[str] | None = None
        self.notify_scope = ""

    # -- helpers ----------------------------------------------------------

    def has_capability(self, name: str) -> bool:
        return name.upper() in self.capabilities_set

    @property
    def qresync_enabled(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def condstore_enabled(self) -> bool:
        return bool({"CONDSTORE", "QRESYNC"} & self.enabled)

    def _check(self, command: str) -> None:
        self.server.commands.append((self.user, command))
        if self.transport is None:
            raise ConnectionLost("fake connection closed")
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            if isinstance(error, ConnectionLost):
                self.server.drop(self)
            raise error
        if self.idle_state is not None:
            self._end_idle()

    def _d(self, command: str, fn: Callable[[], Any]) -> Deferred[Any]:
        try:
            self._check(command)
            return succeed(fn())
        except Exception as exc:
            return fail(exc)

    def _box(self, name: str) -> FakeMailbox:
        box = self.server.boxes[self.user].get(name)
        if box is None:
            raise IMAPError("Mailbox doesn't exist", "NONEXISTENT")
        return box

    def _selected(self) -> FakeMailbox:
        if self.selected is None:
            raise IMAPError("No mailbox selected", None, "BAD")
        return self._box(self.selected)

    def _uids(self, box: FakeMailbox, uid_set: str) -> list[int]:
        if uid_set == "1:*":
            return sorted(box.messages)
        if uid_set.endswith(":*"):
            low = int(uid_set[:-2])
            top = max(box.messages, default=low)
            return sorted(u for u in box.messages if u >= min(low, top))
        return sorted(u for u in parse_uid_set(uid_set) if u in box.messages)

    def _fetched(self, message: FakeMessage, items: Sequence[str]) -> FetchedMessage:
        result = FetchedMessage(message.uid, frozenset(message.flags), message.modseq)
        for item in items:
            upper = item.upper()
            if upper == "INTERNALDATE":
                result.internaldate = message.date
            elif upper == "RFC822.SIZE":
                result.size = len(message.body)
            elif upper.startswith("BODY.PEEK["):
                section = item[len("BODY.PEEK["):item.index("]")]
                data = message.body
                tail = item[item.index("]") + 1:]
                if tail.startswith("<"):
                    start, _, length = tail[1:-1].partition(".")
                    data = data[int(start):int(start) + int(length)]
                    section = f"{section}<{start}>"
                result.sections[section] = data
        return result

    # -- the surface ------------------------------------------------------

    def logout_quietly(self) -> Deferred[None]:
        self.server.commands.append((self.user, "LOGOUT"))
        self.server.drop(self)
        return succeed(None)

    def list_mailboxes(self, pattern: str = "*") -> Deferred[list[MailboxInfo]]:
        def run() -> list[MailboxInfo]:
            infos = []
            for box in self.server.boxes[self.user].values():
                special = "\\Inbox" if box.name == "INBOX" else box.special_use
                attributes = frozenset({box.special_use} if box.special_use else ())
                infos.append(MailboxInfo(box.name, "/", attributes, special))
            return infos

        return self._d("LIST", run)

    def status_of(self, box: FakeMailbox) -> MailboxStatus:
        unseen = sum(1 for m in box.messages.values() if "\\Seen" not in m.flags)
        modseq = box.modseq if self.condstore_enabled else None
        return MailboxStatus(box.name, len(box.messages), box.uidnext, box.uidvalidity, unseen, modseq)

    def status(self, mailbox: str, items: Sequence[str] = ()) -> Deferred[MailboxStatus]:
        return self._d(f"STATUS {mailbox}", lambda: self.status_of(self._box(mailbox)))

    @property
    def notifying(self) -> bool:
        return self.notify_boxes is not None

    def notify_set(self, mailboxes: Iterable[str] = (), *, scope: str = "MAILBOXES", events: Sequence[str] = (),
                   selected_events: Sequence[str] | None = (), status: bool = False) -> Deferred[list[MailboxStatus]]:
        names = list(mailboxes)

        def run() -> list[MailboxStatus]:
            if "NOTIFY" not in self.capabilities_set:
                raise IMAPError("Unknown command", None, "BAD")
            if self.server.refuse_notify:
                raise IMAPError("NOTIFY not allowed", "BADEVENT")
            self.notify_boxes = set(names)
            self.notify_scope = scope
            boxes = self.server.boxes[self.user]
            covered = list(boxes) if scope == "PERSONAL" else names
            return [self.status_of(boxes[name]) for name in covered if name in boxes] if status else []

        return self._d(f"NOTIFY SET {scope} " + " ".join(names), run)

    def notify_none(self) -> Deferred[None]:
        def run() -> None:
            self.notify_boxes = None

        return self._d("NOTIFY NONE", run)

    def noop_poll(self) -> Deferred[Any]:
        """NOOP: the fake server has no unsolicited events to report."""
        return self._d("NOOP", lambda: [])

    def select_mailbox(self, mailbox: str, *, readonly: bool = False, condstore: bool = False,
                       qresync: tuple[int, int, str | None] | None = None) -> Deferred[SelectResult]:
        def run() -> SelectResult:
            self.selected = None
            box = self._box(mailbox)
            if qresync is not None and not self.qresync_enabled:
                raise IMAPError("QRESYNC not enabled", "CLIENTBUG", "BAD")
            result = SelectResult(box.uidvalidity, box.uidnext, len(box.messages),
                                  box.modseq if self.condstore_enabled else None, readonly=readonly)
            if qresync is not None and qresync[0] == box.uidvalidity:
                since = qresync[1]
                result.vanished = frozenset(u for u, m in box.expunged.items() if m > since)
                result.changed = [FetchedMessage(m.uid, frozenset(m.flags), m.modseq)
                                  for m in box.messages.values() if m.modseq > since]
            self.selected = mailbox
            self.selected_readonly = readonly
            return result

        kind = "EXAMINE" if readonly else "SELECT"
        return self._d(f"{kind} {mailbox}" + (" QRESYNC" if qresync else ""), run)

    def unselect(self) -> Deferred[None]:
        def run() -> None:
            self.selected = None

        return self._d("UNSELECT", run)

    def uid_fetch(self, uid_set: str, items: Sequence[str], *, changedsince: int | None = None,
                  vanished: bool = False) -> Deferred[tuple[list[FetchedMessage], frozenset[int]]]:
        def run() -> tuple[list[FetchedMessage], frozenset[int]]:
            box = self._selected()
            found = []
            for uid in self._uids(box, uid_set):
                message = box.messages[uid]
                if changedsince is not None and message.modseq <= changedsince:
                    continue
                found.append(self._fetched(message, items))
            gone: frozenset[int] = frozenset()
            if vanished and changedsince is not None:
                gone = frozenset(u for u, m in box.expunged.items() if m > changedsince)
            return found, gone

        return self._d(f"UID FETCH {uid_set} {' '.join(items)}" + (f" CHANGEDSINCE {changedsince}" if changedsince else ""), run)

    def uid_search(self, criteria: str, *, charset: str | None = "UTF-8") -> Deferred[list[int]]:
        def run() -> list[int]:
            box = self._selected()
            uids = sorted(box.messages)
            words = criteria.split()
            if "UID" in words:
                uids = self._uids(box, words[words.index("UID") + 1])
            if "UNDELETED" in words:
                uids = [u for u in uids if "\\Deleted" not in box.messages[u].flags]
            if "TEXT" in criteria:
                needle = criteria.split('TEXT "', 1)[1].split('"', 1)[0].encode()
                uids = [u for u in uids if needle.lower() in box.messages[u].body.lower()]
            return uids

        return self._d(f"UID SEARCH {criteria}", run)

    def uid_store(self, uid_set: str, mode: str, flags: Iterable[str], *, unchangedsince: int | None = None,
                  silent: bool = True) -> Deferred[FetchList]:
        flag_list = list(flags)

        def run() -> FetchList:
            box = self._selected()
            result = FetchList()
            for uid in self._uids(box, uid_set):
                message = box.messages[uid]
                if mode == "+":
                    message.flags |= set(flag_list)
                elif mode == "-":
                    message.flags -= set(flag_list)
                else:
                    message.flags = set(flag_list)
                message.modseq = self.server._bump(box)
                if not silent:
                    result.append(FetchedMessage(uid, frozenset(message.flags), message.modseq))
            return result

        return self._d(f"UID STORE {uid_set} {mode}FLAGS", run)

    def uid_move(self, uid_set: str, mailbox: str) -> Deferred[dict[int, int] | None]:
        def run() -> dict[int, int] | None:
            source = self._selected()
            target = self.server.boxes[self.user].get(mailbox)
            if target is None:
                raise IMAPError("Mailbox doesn't exist", "TRYCREATE")
            mapping = {}
            for uid in self._uids(source, uid_set):
                message = source.messages.pop(uid)
                source.expunged[uid] = self.server._bump(source)
                new = target.uidnext
                target.uidnext += 1
                target.messages[new] = FakeMessage(new, set(message.flags), self.server._bump(target),
                                                   message.date, message.body)
                mapping[uid] = new
            return mapping if self.has_capability("UIDPLUS") else None

        return self._d(f"UID MOVE {uid_set} {mailbox}", run)

    def uid_expunge(self, uid_set: str) -> Deferred[None]:
        def run() -> None:
            box = self._selected()
            for uid in self._uids(box, uid_set):
                box.messages.pop(uid)
                box.expunged[uid] = self.server._bump(box)

        return self._d(f"UID EXPUNGE {uid_set}", run)

    def append_message(self, mailbox: str, message: bytes, flags: Iterable[str] = (),
                       date: datetime.datetime | None = None) -> Deferred[int | None]:
        flag_list = list(flags)

        def run() -> int | None:
            if mailbox not in self.server.boxes[self.user]:
                raise IMAPError("Mailbox doesn't exist", "TRYCREATE")
            uid = self.server.deliver(self.user, mailbox, message, flag_list, date)
            return uid if self.has_capability("UIDPLUS") else None

        return self._d(f"APPEND {mailbox}", run)

    def create_mailbox(self, name: str) -> Deferred[None]:
        def run() -> None:
            if name in self.server.boxes[self.user]:
                raise IMAPError("Mailbox already exists", "ALREADYEXISTS")
            self.server.create(self.user, name)

        return self._d(f"CREATE {name}", run)

    def rename_mailbox(self, old: str, new: str) -> Deferred[None]:
        def run() -> None:
            boxes = self.server.boxes[self.user]
            box = self._box(old)
            del boxes[old]
            box.name = new
            boxes[new] = box

        return self._d(f"RENAME {old} {new}", run)

    def delete_mailbox(self, name: str) -> Deferred[None]:
        def run() -> None:
            self._box(name)
            del self.server.boxes[self.user][name]

        return self._d(f"DELETE {name}", run)

    def subscribe_mailbox(self, name: str) -> Deferred[None]:
        return self._d(f"SUBSCRIBE {name}", lambda: None)

    def idle(self, on_event: Callable[[str, Any], None]) -> Deferred[None]:
        try:
            self._check("IDLE")
        except Exception as exc:
            return fail(exc)
        self.idle_state = {"on_event": on_event, "active": True, "waiters": []}
        return succeed(None)

    def _end_idle(self) -> None:
        state, self.idle_state = self.idle_state, None
        if state is not None:
            self.server.commands.append((self.user, "DONE"))
            for waiter in state["waiters"]:
                waiter.callback(None)

    def done(self) -> Deferred[None]:
        self._end_idle()
        return succeed(None)

    @property
    def idling(self) -> bool:
        return self.idle_state is not None
