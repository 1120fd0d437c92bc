"""An IMAP4rev1 client with the extensions a mail sync server needs.

:class:`EASIMAPClient` subclasses Twisted's ``IMAP4Client`` but reads the
wire itself: every server response (with its literals) is parsed by
:mod:`easyncd.backends.imap.protocol_parse` into nested lists, and the
commands below parse those into plain dataclasses.  Extensions used when the
server offers them, with fallbacks when it does not: IDLE, CONDSTORE and
QRESYNC (HIGHESTMODSEQ, CHANGEDSINCE, VANISHED), ENABLE, UIDPLUS, MOVE,
SPECIAL-USE, LIST-STATUS (else STATUS per mailbox), LITERAL+, NOTIFY
(RFC 5465: :meth:`EASIMAPClient.notify_set` / :meth:`EASIMAPClient.notify_none`).

Untagged responses that report mailbox changes (``EXISTS``, ``EXPUNGE``,
``VANISHED``, ``FETCH``) are never lost:

* during ``IDLE`` they go to the ``on_event`` callback given to :meth:`idle`;
* otherwise they go to :attr:`EASIMAPClient.on_unsolicited` ``(kind, data)`` —
  except those that are the answer of the command in flight: all of them for
  ``SELECT``/``EXAMINE`` (they describe the new mailbox), ``FETCH`` for
  ``FETCH``/``STORE``, ``EXPUNGE``/``VANISHED`` for ``EXPUNGE``/``MOVE``.
  ``VANISHED (EARLIER)`` is always a command's answer.  :meth:`noop_poll`
  returns the events of its ``NOOP`` *and* they go to ``on_unsolicited``.

Event data: ``("EXISTS", n)``, ``("EXPUNGE", seq)``, ``("VANISHED",
frozenset[int])``, ``("FETCH", FetchedMessage)`` (``uid`` 0 when the server
sent none; ``seq`` is the sequence number), ``("BYE", text)``.  With NOTIFY
on, also ``("STATUS", MailboxStatus)`` (a change in a mailbox that is not
selected; the server may send only some items, the others are ``None``),
``("LIST", MailboxInfo)`` (a mailbox created, deleted — ``\\NonExistent`` —
or renamed — ``old_name``) and ``("NOTIFICATIONOVERFLOW", text)`` (the
server stopped notifying: as after ``NOTIFY NONE``).  ``STATUS`` / ``LIST``
answers of the ``STATUS`` / ``LIST`` / ``NOTIFY`` command in flight are the
command's, not events (for ``STATUS``: only the asked mailbox's while NOTIFY
is on).  With NOTIFY the server may send events while no command runs: they
go to ``on_unsolicited``.

Only one command is on the wire at a time; others queue.  Sending a command
while ``IDLE`` runs ends the IDLE first (``DONE``).
"""
from __future__ import annotations

import base64
import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.mail.imap4 import Command, IMAP4Client, IMAP4Exception
from twisted.python.failure import Failure

from easyncd.backends.imap.protocol_parse import (
    IMAPParseError,
    astring,
    decode_mutf7,
    encode_mutf7,
    format_internaldate,
    literal_size,
    parse_internaldate,
    parse_uid_set,
    quote,
    split_status,
    tokenize,
    uid_list,
)

__all__ = [
    "IMAPError", "MailboxInfo", "MailboxStatus", "SelectResult", "FetchedMessage", "FetchList",
    "EASIMAPClient", "SPECIAL_USES", "DEFAULT_STATUS_ITEMS", "MESSAGE_EVENTS", "NOTIFY_SCOPES",
]

DEFAULT_STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")
#: The RFC 5465 message events a sync server wants (MessageNew needs MessageExpunge,
#: FlagChange needs both).
MESSAGE_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange")
#: RFC 5465 mailbox filters; the first two take mailbox names.
NOTIFY_SCOPES = ("MAILBOXES", "SUBTREE", "PERSONAL", "INBOXES", "SUBSCRIBED")
#: The special-use attributes we report (RFC 6154), plus the ``\\Inbox`` pseudo attribute.
SPECIAL_USES = ("\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")
_SPECIAL_BY_LOWER = {name.lower(): name for name in SPECIAL_USES}
_KNOWN_ATTRIBUTES = {
    name.lower(): name
    for name in (
        "\\Noselect", "\\NoInferiors", "\\Marked", "\\Unmarked", "\\HasChildren",
        "\\HasNoChildren", "\\NonExistent", "\\Subscribed", "\\Remote", *SPECIAL_USES,
    )
}
#: Per-session flags left out of ``FetchedMessage.flags`` (they would look like changes).
_SESSION_FLAGS = frozenset({"\\Recent"})
_EVENT_KINDS = frozenset({"EXISTS", "EXPUNGE", "VANISHED", "FETCH"})
_STATUS_WORDS = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)


class IMAPError(IMAP4Exception):
    """The server answered a command with ``NO`` or ``BAD``.

    ``response`` is the text, ``code`` the response code (``"TRYCREATE"``,
    ``"UNAVAILABLE"``...) or ``None``, ``status`` ``"NO"`` or ``"BAD"``.
    """

    def __init__(self, response: str, code: str | None = None, status: str = "NO") -> None:
        super().__init__(response)
        self.response = response
        self.code = code
        self.status = status

    def __str__(self) -> str:
        code = f"[{self.code}] " if self.code else ""
        return f"{self.status} {code}{self.response}"


@dataclass
class MailboxInfo:
    """One ``LIST`` answer: the decoded name, hierarchy delimiter, attributes and special use."""

    name: str
    delimiter: str | None
    flags: frozenset[str]
    special_use: str | None
    #: The name as the server sent it (modified UTF-7 bytes), for commands.
    raw_name: bytes = b""
    #: A rename's former name (the ``OLDNAME`` extended item, RFC 5465 / 9051), else ``None``.
    old_name: str | None = None

    @property
    def selectable(self) -> bool:
        """False for ``\\Noselect`` / ``\\NonExistent`` mailboxes."""
        return not ({"\\Noselect", "\\NonExistent"} & self.flags)

    @property
    def parent(self) -> str | None:
        """The parent mailbox's name (``None`` at the top level)."""
        if not self.delimiter or self.delimiter not in self.name:
            return None
        return self.name.rsplit(self.delimiter, 1)[0]


@dataclass
class MailboxStatus:
    """A ``STATUS`` answer; items the server did not send are ``None``."""

    name: str
    messages: int | None = None
    uidnext: int | None = None
    uidvalidity: int | None = None
    unseen: int | None = None
    highestmodseq: int | None = None


@dataclass
class FetchedMessage:
    """One ``FETCH`` answer.

    ``bodystructure`` and ``envelope`` are the raw nested lists (atoms
    ``str``, strings ``bytes``, ``NIL`` ``None``).  ``sections`` maps the
    section the server echoed (``"HEADER"``, ``"1.2"``, ``"TEXT"``, ``""`` for
    ``BODY[]``, ``"1.2<0>"`` for a partial fetch) to its octets (``b""`` for
    ``NIL``); ``flags`` leaves out the per-session ``\\Recent``; ``RFC822``, ``RFC822.HEADER`` and ``RFC822.TEXT`` land under
    ``""``, ``"HEADER"`` and ``"TEXT"``.  ``BINARY[...]`` answers go to
    ``binary`` keyed the same way.  ``uid`` is 0 when the server sent none.
    """

    uid: int
    flags: frozenset[str] | None = None
    modseq: int | None = None
    internaldate: datetime.datetime | None = None
    size: int | None = None
    bodystructure: list[Any] | None = None
    envelope: list[Any] | None = None
    sections: dict[str, bytes] = field(default_factory=dict)
    seq: int | None = None
    binary: dict[str, bytes] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class FetchList(list[FetchedMessage]):
    """``list[FetchedMessage]`` with the UIDs a conditional STORE did not change (``[MODIFIED]``)."""

    modified: frozenset[int] = frozenset()


@dataclass
class SelectResult:
    """What ``SELECT``/``EXAMINE`` told us (with QRESYNC: what changed since the given state)."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None
    vanished: frozenset[int] = frozenset()
    changed: list[FetchedMessage] = field(default_factory=list)
    readonly: bool = False
    flags: frozenset[str] = frozenset()
    permanentflags: frozenset[str] = frozenset()


@dataclass
class _Response:
    """One parsed server response (untagged or tagged)."""

    tag: bytes
    kind: str
    number: int | None = None
    values: list[Any] = field(default_factory=list)
    code: str = ""
    code_args: list[Any] = field(default_factory=list)
    text: str = ""
    texts: list[bytes] = field(default_factory=list)
    literals: list[bytes] = field(default_factory=list)
    fetched: FetchedMessage | None = None

    @property
    def raw(self) -> bytes:
        """The response after its tag, literals inline (as the stock client keeps it)."""
        tag_length = len(self.tag) + 1
        return b"".join(
            (text[tag_length:] if index == 0 else text)
            + (b"\r\n" + self.literals[index] if index < len(self.literals) else b"")
            for index, text in enumerate(self.texts)
        )

    def fetch(self) -> FetchedMessage | None:
        """A ``FETCH`` response as a :class:`FetchedMessage` (parsed once)."""
        if self.fetched is None and self.kind == "FETCH" and self.values and isinstance(self.values[0], list):
            self.fetched = parse_fetch(self.number, self.values[0])
        return self.fetched


class _Literal(bytes):
    """Marks an argument that must be sent as a literal."""


class _Command(Command):  # type: ignore[misc]
    """A command whose arguments may carry literals; collects its untagged answers."""

    def __init__(self, client: "EASIMAPClient", name: bytes, args: Sequence[bytes], *, owns: Iterable[str] = ()) -> None:
        super().__init__(name, None)
        self.client = client
        self.owns = frozenset(owns)
        self.responses: list[_Response] = []
        self.events: list[tuple[str, Any]] = []
        self.tagged: _Response | None = None
        self.on_ok: Callable[[], None] | None = None
        #: Narrows ``owns``: an owned-kind event is the command's only if this says so.
        self.claims: Callable[[tuple[str, Any]], bool] | None = None
        self.pieces: list[bytes] = []
        self.literals: list[bytes] = []
        words: list[bytes] = [name]
        for arg in args:
            if isinstance(arg, _Literal):
                self.pieces.append(b" ".join(words) + b" ")
                self.literals.append(bytes(arg))
                words = [b""]  # what follows a literal starts with a space
            else:
                words.append(arg)
        self.pieces.append(b" ".join(words) if words != [b""] else b"")
        # Twisted's Command stores a continuation closure on the instance;
        # drop it so that the class's method answers.  (Storing the bound
        # method instead would make every command a reference cycle that keeps
        # its fetched literals alive until the garbage collector runs.)
        del self.continuation

    def format(self, tag: bytes) -> bytes:
        """The first line (everything, with LITERAL+)."""
        if not self.literals:
            return tag + b" " + self.pieces[0]
        if self.client.has_capability("LITERAL+"):
            out = [tag, b" "]
            for piece, literal in zip(self.pieces, self.literals):
                out += [piece, b"{%d+}\r\n" % len(literal), literal]
            out.append(self.pieces[-1])
            return b"".join(out)
        self._sent = 0
        return tag + b" " + self.pieces[0] + b"{%d}" % len(self.literals[0])

    #: A one-off answer to the server's "+" (AUTHENTICATE, IDLE); None: the
    #: server asks for the next literal.
    on_continue: Callable[[bytes], None] | None = None

    def continuation(self, text: bytes) -> None:
        """The server sent "+": answer it, or send the next literal."""
        if self.on_continue is not None:
            self.on_continue(text)
            return
        index = getattr(self, "_sent", None)
        if index is None or index >= len(self.literals):
            self.client.log.warn("unexpected continuation for {command}", command=self.command)
            return
        self._sent = index + 1
        line = self.literals[index] + self.pieces[index + 1]
        if index + 1 < len(self.literals):
            line += b"{%d}" % len(self.literals[index + 1])
        self.client.sendLine(line)


class _IdleState:
    """The IDLE command in progress."""

    def __init__(self, on_event: Callable[[str, Any], None]) -> None:
        self.on_event = on_event
        self.accepted: Deferred[None] = Deferred()
        self.active = False
        self.done_sent = False
        self.done_wanted = False
        self.finished = False
        self.result: Failure | None = None
        self.waiters: list[Deferred[None]] = []

    def finish(self, result: Failure | None) -> None:
        self.finished = True
        self.result = result
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if result is None:
                waiter.callback(None)
            else:
                waiter.errback(result)


def _mailbox_arg(name: str) -> bytes:
    if name.upper() == "INBOX":
        return b"INBOX"
    return quote(encode_mutf7(name))


def _event_list(events: Sequence[str]) -> bytes:
    if not events:
        return b"NONE"
    for event in events:
        if not event.isalnum():
            raise ValueError(f"not a NOTIFY event: {event!r}")
    return b"(" + " ".join(events).encode("ascii") + b")"


def _as_bytes(token: Any) -> bytes:
    if isinstance(token, bytes):
        return token
    if token is None:
        return b""
    return str(token).encode("latin-1")


def _as_text(token: Any) -> str:
    if isinstance(token, bytes):
        return token.decode("utf-8", "replace")
    return "" if token is None else str(token)


def _int(token: Any) -> int | None:
    try:
        return int(_as_text(token))
    except ValueError:
        return None


def _decode_name(token: Any) -> tuple[str, bytes]:
    raw = _as_bytes(token)
    if raw.upper() == b"INBOX":
        return "INBOX", raw
    return decode_mutf7(raw), raw


def _same_mailbox(a: str, b: str) -> bool:
    return a == b or (a.upper() == "INBOX" and b.upper() == "INBOX")


def parse_fetch(number: int | None, pairs: list[Any]) -> FetchedMessage:
    """A ``FETCH`` answer's item list as a :class:`FetchedMessage`."""
    message = FetchedMessage(uid=0, seq=number)
    for index in range(0, len(pairs) - 1, 2):
        key, value = pairs[index], pairs[index + 1]
        if not isinstance(key, str):
            continue
        name = key.upper()
        if name == "UID":
            message.uid = _int(value) or 0
        elif name == "FLAGS":
            message.flags = frozenset(_as_text(flag) for flag in (value or ())) - _SESSION_FLAGS
        elif name == "MODSEQ":
            if isinstance(value, list) and value:
                message.modseq = _int(value[0])
        elif name == "INTERNALDATE":
            message.internaldate = parse_internaldate(_as_bytes(value))
        elif name == "RFC822.SIZE":
            message.size = _int(value)
        elif name in ("BODYSTRUCTURE", "BODY"):
            message.bodystructure = value if isinstance(value, list) else None
        elif name == "ENVELOPE":
            message.envelope = value if isinstance(value, list) else None
        elif name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            section = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[name]
            message.sections[section] = _as_bytes(value)
        elif "[" in key:
            head, _, rest = key.partition("[")
            section = rest.replace("]", "", 1)
            head = head.upper()
            if head == "BODY":
                message.sections[section] = _as_bytes(value)
            elif head == "BINARY":
                message.binary[section] = _as_bytes(value)
            else:
                message.extra[key] = value
        else:
            message.extra[name] = value
    return message


class EASIMAPClient(IMAP4Client):  # type: ignore[misc]
    """Twisted ``IMAP4Client`` with IDLE, CONDSTORE/QRESYNC, UIDPLUS, MOVE and friends.

    Commands return Deferreds; NO/BAD answers fail them with :class:`IMAPError`.
    """

    log = Logger()
    #: Longest line accepted from the server (SEARCH/VANISHED answers can be long).
    MAX_LENGTH = 64 * 1024 * 1024

    def __init__(self, contextFactory: Any = None) -> None:
        super().__init__(contextFactory)
        self.greeted: Deferred[None] = Deferred()
        self.closed: Deferred[None] = Deferred()
        self.capabilities_set: frozenset[str] = frozenset()
        self.enabled: frozenset[str] = frozenset()
        self.selected: str | None = None
        self.selected_readonly = False
        #: Called ``(kind, data)`` for change notices not answered to a command (see module doc).
        self.on_unsolicited: Callable[[str, Any], None] | None = None
        self._texts: list[bytes] = []
        self._literals: list[bytes] = []
        self._literal_left = 0
        self._literal_chunks: list[bytes] = []
        self._idle: _IdleState | None = None
        #: A ``NOTIFY SET`` is in force (cleared by ``NOTIFY NONE`` or ``[NOTIFICATIONOVERFLOW]``).
        self.notifying = False

    # -- capabilities -------------------------------------------------

    def has_capability(self, name: str) -> bool:
        """Whether the server announced ``name`` (case-insensitive)."""
        return name.upper() in self.capabilities_set

    @property
    def qresync_enabled(self) -> bool:
        """QRESYNC is ENABLEd on this connection."""
        return "QRESYNC" in self.enabled

    @property
    def condstore_enabled(self) -> bool:
        """CONDSTORE is on (ENABLEd, or implied by QRESYNC)."""
        return bool({"CONDSTORE", "QRESYNC"} & self.enabled)

    def _set_capabilities(self, names: Iterable[Any]) -> None:
        caps = frozenset(_as_text(name).upper() for name in names if name is not None)
        self.capabilities_set = caps
        cache: dict[bytes, Any] = {}
        for cap in sorted(caps):
            key, _, value = cap.partition("=")
            if value:
                cache[key.encode()] = (cache.get(key.encode()) or []) + [value.encode()]
            else:
                cache.setdefault(key.encode(), None)
        self._capCache = cache

    # -- reading the wire ---------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        """Twisted hook: one line (or the part of a response before a literal)."""
        if self.timeout > 0:
            self.resetTimeout()
        self._texts.append(line)
        size = literal_size(line)
        if size is not None and not line.startswith(b"+"):
            if size == 0:
                self._literals.append(b"")
                return
            self._literal_left = size
            self._literal_chunks = []
            self.setRawMode()
            return
        texts, literals = self._texts, self._literals
        self._texts, self._literals = [], []
        try:
            self._response_received(texts, literals)
        except Exception:
            self.log.failure("cannot handle IMAP response {line!r}", line=texts[0][:200])
            if self.transport is not None:
                self.transport.loseConnection()

    def rawDataReceived(self, data: bytes) -> None:
        """Twisted hook: literal octets."""
        if self.timeout > 0:
            self.resetTimeout()
        take = data[: self._literal_left]
        self._literal_chunks.append(take)
        self._literal_left -= len(take)
        if self._literal_left == 0:
            self._literals.append(b"".join(self._literal_chunks))
            self._literal_chunks = []
            self.setLineMode(data[len(take):])

    def _response_received(self, texts: list[bytes], literals: list[bytes]) -> None:
        first = texts[0]
        tag, _, rest = first.partition(b" ")
        if tag == b"+":
            self._continuation(rest)
            return
        if tag == b"*":
            response = self._parse_untagged(texts, literals, rest)
            if response is not None:
                self._untagged(response)
        else:
            status, _, text = rest.partition(b" ")
            code, code_args, message = split_status(text)
            self._tagged(
                _Response(tag, status.upper().decode("ascii", "replace"), None, [], code, code_args, message,
                          texts, literals)
            )

    def _parse_untagged(self, texts: list[bytes], literals: list[bytes], rest: bytes) -> _Response | None:
        word, _, after = rest.partition(b" ")
        upper = word.upper().decode("ascii", "replace")
        if upper in _STATUS_WORDS:
            code, code_args, message = split_status(after)
            return _Response(b"*", upper, None, [], code, code_args, message, texts, literals)
        try:
            tokens = tokenize(texts, literals)
        except IMAPParseError as exc:
            self.log.warn("unreadable IMAP response {line!r}: {error}", line=texts[0][:200], error=str(exc))
            return None
        if len(tokens) >= 3 and isinstance(tokens[1], str) and tokens[1].isdigit():
            return _Response(b"*", _as_text(tokens[2]).upper(), int(tokens[1]), tokens[3:],
                             texts=texts, literals=literals)
        return _Response(b"*", upper, None, tokens[2:], texts=texts, literals=literals)

    def _continuation(self, text: bytes) -> None:
        cmd = self.tags.get(self.waiting) if self.waiting and self.tags else None
        if cmd is None:
            self.log.warn("continuation without a command: {text!r}", text=text[:100])
            return
        cmd.continuation(text)

    def _current(self) -> Any:
        if self.waiting and self.tags:
            return self.tags.get(self.waiting)
        return None

    def _untagged(self, response: _Response) -> None:
        if self.state is None:
            self._greeting(response)
            return
        kind = response.kind
        if kind == "CAPABILITY":
            self._set_capabilities(response.values)
        elif response.code == "CAPABILITY":
            self._set_capabilities(response.code_args)
        elif kind == "ENABLED":
            self.enabled = self.enabled | {_as_text(v).upper() for v in response.values}
        cmd = self._current()
        if isinstance(cmd, _Command):
            cmd.responses.append(response)
        elif cmd is not None:
            cmd.lines.append(response.raw)
        idle = self._idle
        if kind == "FETCH" and isinstance(cmd, _Command) and "FETCH" in cmd.owns and cmd.command != b"IDLE":
            return  # the command's answer; parsed by the command
        if kind in ("LIST", "STATUS") and isinstance(cmd, _Command) and kind in cmd.owns and cmd.claims is None:
            return  # likewise (LIST, LIST-STATUS, STATUS, NOTIFY SET STATUS)
        event = self._event_of(response)
        if kind == "BYE":
            event = ("BYE", response.text)
        if event is None:
            return
        if idle is not None and cmd is not None and cmd.command == b"IDLE" and not idle.finished:
            self._deliver(idle.on_event, event)
            return
        if isinstance(cmd, _Command):
            cmd.events.append(event)
            if event[0] in cmd.owns and (cmd.claims is None or cmd.claims(event)):
                return
        if self.on_unsolicited is not None:
            self._deliver(self.on_unsolicited, event)

    def _deliver(self, callback: Callable[[str, Any], None], event: tuple[str, Any]) -> None:
        try:
            callback(*event)
        except Exception:
            self.log.failure("IMAP event handler failed for {kind}", kind=event[0])

    def _event_of(self, response: _Response) -> tuple[str, Any] | None:
        kind = response.kind
        if kind in ("EXISTS", "EXPUNGE") and response.number is not None:
            return (kind, response.number)
        if kind == "STATUS":
            status = self._parse_status(response)
            return None if status is None else ("STATUS", status)
        if kind == "LIST":
            info = self._mailbox_info(response)
            return None if info is None else ("LIST", info)
        if kind == "OK" and response.code == "NOTIFICATIONOVERFLOW":
            self.notifying = False
            return ("NOTIFICATIONOVERFLOW", response.text)
        if kind == "FETCH":
            fetched = response.fetch()
            return None if fetched is None else ("FETCH", fetched)
        if kind == "VANISHED" and response.values:
            if isinstance(response.values[0], list):
                return None  # VANISHED (EARLIER): a command's answer
            return ("VANISHED", parse_uid_set(_as_text(response.values[0])))
        return None

    def _greeting(self, response: _Response) -> None:
        if response.kind == "OK":
            self.state = "unauth"
        elif response.kind == "PREAUTH":
            self.state = "auth"
        else:
            if not self.greeted.called:
                self.greeted.errback(IMAPError(response.text, response.code or None, response.kind))
            if self.transport is not None:
                self.transport.loseConnection()
            return
        if response.code == "CAPABILITY":
            self._set_capabilities(response.code_args)
        self.serverGreeting(self._capCache)
        if not self.greeted.called:
            self.greeted.callback(None)

    def _tagged(self, response: _Response) -> None:
        cmd = self.tags.pop(response.tag, None) if self.tags is not None else None
        if cmd is None:
            self.log.warn("answer for an unknown tag {tag!r}", tag=response.tag)
            if self.transport is not None:
                self.transport.loseConnection()
            return
        if self.waiting == response.tag:
            self.waiting = None
        if response.code == "CAPABILITY":
            self._set_capabilities(response.code_args)
        ok = response.kind == "OK"
        if isinstance(cmd, _Command):
            cmd.tagged = response
            if ok and cmd.on_ok is not None:
                cmd.on_ok()
        self._flushQueue()
        d, cmd.defer = cmd.defer, None
        if d is None:
            return
        if not ok:
            d.errback(IMAPError(response.text, response.code or None, response.kind))
        elif isinstance(cmd, _Command):
            d.callback(cmd)
        else:
            cmd.defer = d
            cmd.finish(response.raw, self._unused)

    def _unused(self, lines: Any) -> None:
        """Answers a stock command did not want (already reported)."""

    def _flushQueue(self) -> None:
        if self.queued:
            cmd = self.queued.pop(0)
            tag = self.makeTag()
            self.tags[tag] = cmd
            self.waiting = tag
            self._lastCmd = cmd
            self.sendLine(cmd.format(tag))

    def sendCommand(self, cmd: Any) -> "Deferred[Any]":
        """Send ``cmd`` now or after the one in flight (ending an IDLE first)."""
        if self.queued is None or self.tags is None:  # the connection is gone
            return fail(ConnectionLost("the IMAP connection is closed"))
        idle = self._idle
        if idle is not None and not idle.finished and cmd.command != b"IDLE":
            self._send_done(idle)
        return super().sendCommand(cmd)  # type: ignore[no-any-return]

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        """Twisted hook: fail everything that waits, then fire :attr:`closed`."""
        idle, self._idle = self._idle, None
        super().connectionLost(reason)
        if idle is not None:
            if not idle.accepted.called:
                idle.accepted.errback(reason)
            if not idle.finished:
                idle.finish(reason)
        if not self.greeted.called:
            self.greeted.errback(reason)
        if not self.closed.called:
            self.closed.callback(None)

    # -- sending ------------------------------------------------------

    def _run(self, name: bytes, *args: bytes, owns: Iterable[str] = ()) -> "Deferred[_Command]":
        return self.sendCommand(_Command(self, name, args, owns=owns))

    # -- session commands ---------------------------------------------

    def capability(self) -> "Deferred[frozenset[str]]":
        """``CAPABILITY``: refresh :attr:`capabilities_set`."""
        return self._run(b"CAPABILITY").addCallback(lambda _: self.capabilities_set)

    def starttls(self, context_factory: Any) -> "Deferred[frozenset[str]]":
        """``STARTTLS``, then the TLS handshake and a fresh ``CAPABILITY``."""
        cmd = _Command(self, b"STARTTLS", ())

        def secure() -> None:
            self.capabilities_set = frozenset()
            self._capCache = None
            transport: Any = self.transport
            transport.startTLS(context_factory)
            self.startedTLS = True

        cmd.on_ok = secure
        d = self.sendCommand(cmd)
        d.addCallback(lambda _: self.capability())
        return d

    def login_plain(self, username: str, password: str) -> "Deferred[frozenset[str]]":
        """``LOGIN`` (strings quoted, or literals when not 7-bit); then capabilities are current."""
        args: list[bytes] = []
        for value in (username.encode("utf-8"), password.encode("utf-8")):
            token, literal = astring(value)
            args.append(_Literal(literal) if literal is not None else token)
        return self._logged_in(self._run(b"LOGIN", *args))

    def authenticate_plain(self, authzid: str, authcid: str, password: str) -> "Deferred[frozenset[str]]":
        """``AUTHENTICATE PLAIN`` (RFC 4616): log in as ``authzid`` with ``authcid``'s password.

        A Dovecot master user logs in for a user this way (``authzid`` the
        user, ``authcid`` the master user).  Uses SASL-IR when offered.
        """
        blob = base64.b64encode(
            authzid.encode("utf-8") + b"\0" + authcid.encode("utf-8") + b"\0" + password.encode("utf-8")
        )
        if self.has_capability("SASL-IR"):
            cmd = _Command(self, b"AUTHENTICATE", (b"PLAIN", blob))
        else:
            cmd = _Command(self, b"AUTHENTICATE", (b"PLAIN",))

            def answer(_challenge: bytes) -> None:
                self.sendLine(blob)

            cmd.on_continue = answer
        return self._logged_in(self.sendCommand(cmd))

    def _logged_in(self, d: "Deferred[_Command]") -> "Deferred[frozenset[str]]":
        def after(cmd: _Command) -> Any:
            self.state = "auth"
            assert cmd.tagged is not None
            if cmd.tagged.code == "CAPABILITY" or any(r.kind == "CAPABILITY" for r in cmd.responses):
                return self.capabilities_set
            return self.capability()

        return d.addCallback(after)

    def enable(self, *caps: str) -> "Deferred[frozenset[str]]":
        """``ENABLE``: fires with the extensions the server enabled."""
        if not caps:
            return succeed(frozenset())

        def done(cmd: _Command) -> frozenset[str]:
            got: set[str] = set()
            for response in cmd.responses:
                if response.kind == "ENABLED":
                    got.update(_as_text(v).upper() for v in response.values)
            return frozenset(got)

        return self._run(b"ENABLE", *(cap.upper().encode("ascii") for cap in caps)).addCallback(done)

    def noop_poll(self) -> "Deferred[list[tuple[str, Any]]]":
        """``NOOP``: fires with the change events it brought (also given to ``on_unsolicited``)."""
        return self._run(b"NOOP").addCallback(lambda cmd: list(cmd.events))

    def logout_quietly(self) -> "Deferred[None]":
        """``LOGOUT`` and drop the connection; errors are ignored."""
        d = self._run(b"LOGOUT")

        def close(_: Any) -> None:
            if self.transport is not None:
                self.transport.loseConnection()

        return d.addBoth(close)

    # -- mailboxes ----------------------------------------------------

    def _mailbox_info(self, response: _Response) -> MailboxInfo | None:
        values = response.values
        if len(values) < 3 or not isinstance(values[0], list):
            return None
        attributes = frozenset(
            _KNOWN_ATTRIBUTES.get(_as_text(a).lower(), _as_text(a)) for a in values[0]
        )
        delimiter = None if values[1] is None else _as_text(values[1])
        name, raw = _decode_name(values[2])
        special = None
        if name == "INBOX":
            special = "\\Inbox"
        else:
            for attribute in attributes:
                if attribute.lower() in _SPECIAL_BY_LOWER:
                    special = _SPECIAL_BY_LOWER[attribute.lower()]
                    break
        old_name = None
        extended = values[3] if len(values) > 3 and isinstance(values[3], list) else []
        for index in range(0, len(extended) - 1, 2):
            value = extended[index + 1]
            if _as_text(extended[index]).upper() == "OLDNAME" and isinstance(value, list) and value:
                old_name = _decode_name(value[0])[0]
        return MailboxInfo(name, delimiter, attributes, special, raw, old_name)

    def _list_command(self, pattern: str, status_items: Sequence[str] | None) -> "Deferred[_Command]":
        args = [b'""', quote(encode_mutf7(pattern))]
        returns: list[bytes] = []
        if self.has_capability("SPECIAL-USE") and self.has_capability("LIST-EXTENDED"):
            returns.append(b"SPECIAL-USE")
        if status_items is not None:
            returns.append(b"STATUS (" + " ".join(status_items).encode("ascii") + b")")
        if returns:
            args.append(b"RETURN (" + b" ".join(returns) + b")")
        return self._run(b"LIST", *args, owns=("LIST", "STATUS"))

    def list_mailboxes(self, pattern: str = "*") -> "Deferred[list[MailboxInfo]]":
        """``LIST "" pattern`` (with ``RETURN (SPECIAL-USE)`` when offered)."""
        def done(cmd: _Command) -> list[MailboxInfo]:
            infos = [self._mailbox_info(r) for r in cmd.responses if r.kind == "LIST"]
            return [info for info in infos if info is not None]

        return self._list_command(pattern, None).addCallback(done)

    def _status_items(self, items: Sequence[str]) -> list[str]:
        wanted = [item.upper() for item in items]
        if not self.has_capability("CONDSTORE") and not self.has_capability("QRESYNC"):
            wanted = [item for item in wanted if item != "HIGHESTMODSEQ"]
        return wanted

    @staticmethod
    def _parse_status(response: _Response) -> MailboxStatus | None:
        if len(response.values) < 2 or not isinstance(response.values[1], list):
            return None
        name, _ = _decode_name(response.values[0])
        status = MailboxStatus(name)
        pairs = response.values[1]
        for index in range(0, len(pairs) - 1, 2):
            key = _as_text(pairs[index]).lower()
            if key in ("messages", "uidnext", "uidvalidity", "unseen", "highestmodseq"):
                setattr(status, key, _int(pairs[index + 1]))
        return status

    def status(self, mailbox: str, items: Sequence[str] = DEFAULT_STATUS_ITEMS) -> "Deferred[MailboxStatus]":
        """``STATUS``; HIGHESTMODSEQ is asked only from servers with CONDSTORE.

        While NOTIFY is on, the answer is the ``STATUS`` response naming
        ``mailbox``; those of other mailboxes are events.
        """
        wanted = self._status_items(items)

        def done(cmd: _Command) -> MailboxStatus:
            answers = [status for status in (self._parse_status(r) for r in cmd.responses if r.kind == "STATUS")
                       if status is not None]
            for status in sorted(answers, key=lambda s: not _same_mailbox(s.name, mailbox)):
                status.name = mailbox
                return status
            return MailboxStatus(mailbox)

        cmd = _Command(self, b"STATUS", (_mailbox_arg(mailbox), b"(" + " ".join(wanted).encode("ascii") + b")"),
                       owns=("STATUS",))
        if self.notifying:
            cmd.claims = lambda event: _same_mailbox(event[1].name, mailbox)
        return self.sendCommand(cmd).addCallback(done)

    def list_status(
        self, items: Sequence[str] = DEFAULT_STATUS_ITEMS, pattern: str = "*"
    ) -> "Deferred[list[tuple[MailboxInfo, MailboxStatus | None]]]":
        """Every mailbox with its status (``None`` for non-selectable ones or a failed STATUS).

        One ``LIST ... RETURN (STATUS ...)`` with LIST-STATUS, else LIST and one
        STATUS per mailbox.
        """
        wanted = self._status_items(items)
        if self.has_capability("LIST-STATUS"):
            def done(cmd: _Command) -> list[tuple[MailboxInfo, MailboxStatus | None]]:
                infos: list[MailboxInfo] = []
                statuses: dict[str, MailboxStatus] = {}
                for response in cmd.responses:
                    if response.kind == "LIST":
                        info = self._mailbox_info(response)
                        if info is not None:
                            infos.append(info)
                    elif response.kind == "STATUS":
                        parsed = self._parse_status(response)
                        if parsed is not None:
                            statuses[parsed.name] = parsed
                return [(info, statuses.get(info.name) if info.selectable else None) for info in infos]

            return self._list_command(pattern, wanted).addCallback(done)
        return Deferred.fromCoroutine(self._list_then_status(pattern, wanted))

    async def _list_then_status(
        self, pattern: str, wanted: list[str]
    ) -> list[tuple[MailboxInfo, MailboxStatus | None]]:
        infos = await self.list_mailboxes(pattern)
        result: list[tuple[MailboxInfo, MailboxStatus | None]] = []
        for info in infos:
            status: MailboxStatus | None = None
            if info.selectable:
                try:
                    status = await self.status(info.name, wanted)
                except IMAPError:
                    status = None
            result.append((info, status))
        return result

    def create_mailbox(self, name: str) -> "Deferred[None]":
        """``CREATE`` (name sent in modified UTF-7)."""
        return self._run(b"CREATE", _mailbox_arg(name)).addCallback(lambda _: None)

    def rename_mailbox(self, old: str, new: str) -> "Deferred[None]":
        """``RENAME``."""
        return self._run(b"RENAME", _mailbox_arg(old), _mailbox_arg(new)).addCallback(lambda _: None)

    def delete_mailbox(self, name: str) -> "Deferred[None]":
        """``DELETE``."""
        return self._run(b"DELETE", _mailbox_arg(name)).addCallback(lambda _: None)

    def subscribe_mailbox(self, name: str) -> "Deferred[None]":
        """``SUBSCRIBE``."""
        return self._run(b"SUBSCRIBE", _mailbox_arg(name)).addCallback(lambda _: None)

    # -- selected state -----------------------------------------------

    def select_mailbox(
        self,
        mailbox: str,
        *,
        readonly: bool = False,
        condstore: bool = False,
        qresync: tuple[int, int, str | None] | None = None,
    ) -> "Deferred[SelectResult]":
        """``SELECT``/``EXAMINE``, optionally ``(CONDSTORE)`` or ``(QRESYNC (uidvalidity modseq [uids]))``.

        With ``qresync`` the answer's ``vanished`` and ``changed`` say what
        happened since that state (only meaningful when the UIDVALIDITY is
        unchanged).  QRESYNC must be ENABLEd first (:class:`IMAPError` if not).
        """
        args = [_mailbox_arg(mailbox)]
        if qresync is not None:
            if not self.qresync_enabled:
                return fail(IMAPError("QRESYNC is not enabled on this connection", "CLIENTBUG", "BAD"))
            uidvalidity, modseq, known = qresync
            inner = b"%d %d" % (uidvalidity, modseq)
            if known:
                inner += b" " + known.encode("ascii")
            args.append(b"(QRESYNC (" + inner + b"))")
        elif condstore and (self.has_capability("CONDSTORE") or self.has_capability("QRESYNC")):
            args.append(b"(CONDSTORE)")
        self.selected = None
        d = self._run(b"EXAMINE" if readonly else b"SELECT", *args, owns=_EVENT_KINDS)

        def done(cmd: _Command) -> SelectResult:
            result = self._parse_select(cmd)
            self.selected = mailbox
            self.selected_readonly = result.readonly
            return result

        return d.addCallback(done)

    @staticmethod
    def _parse_select(cmd: _Command) -> SelectResult:
        result = SelectResult(uidvalidity=0, uidnext=None, exists=0, highestmodseq=None)
        vanished: set[int] = set()
        changed: dict[int, FetchedMessage] = {}
        for response in cmd.responses:
            kind = response.kind
            if kind == "OK" and response.code == "CLOSED":
                # Everything before [CLOSED] was about the mailbox we left.
                result = SelectResult(uidvalidity=0, uidnext=None, exists=0, highestmodseq=None)
                vanished.clear()
                changed.clear()
            elif kind == "EXISTS" and response.number is not None:
                result.exists = response.number
            elif kind == "FLAGS" and response.values and isinstance(response.values[0], list):
                result.flags = frozenset(_as_text(f) for f in response.values[0])
            elif kind == "OK" and response.code_args:
                value = response.code_args[0]
                if response.code == "UIDVALIDITY":
                    result.uidvalidity = _int(value) or 0
                elif response.code == "UIDNEXT":
                    result.uidnext = _int(value)
                elif response.code == "HIGHESTMODSEQ":
                    result.highestmodseq = _int(value)
                elif response.code == "PERMANENTFLAGS" and isinstance(value, list):
                    result.permanentflags = frozenset(_as_text(f) for f in value)
            elif kind == "VANISHED" and response.values:
                vanished.update(parse_uid_set(_as_text(response.values[-1])))
            elif kind == "FETCH" and response.fetch() is not None:
                message = response.fetch()
                assert message is not None
                changed[message.uid] = message
        assert cmd.tagged is not None
        result.readonly = cmd.tagged.code == "READ-ONLY"
        result.vanished = frozenset(vanished)
        result.changed = list(changed.values())
        return result

    def unselect(self) -> "Deferred[None]":
        """``UNSELECT`` when offered, else ``CLOSE`` after ``EXAMINE``-ing nothing is not possible:
        falls back to ``CLOSE`` (which expunges ``\\Deleted`` messages of a read-write mailbox)."""
        name = b"UNSELECT" if self.has_capability("UNSELECT") else b"CLOSE"
        self.selected = None
        return self._run(name, owns=_EVENT_KINDS).addCallback(lambda _: None)

    def uid_fetch(
        self,
        uid_set: str,
        items: Sequence[str],
        *,
        changedsince: int | None = None,
        vanished: bool = False,
    ) -> "Deferred[tuple[list[FetchedMessage], frozenset[int]]]":
        """``UID FETCH uid_set (items) [(CHANGEDSINCE n [VANISHED])]``.

        Fires with the messages (in the server's order) and the UIDs reported
        by ``VANISHED (EARLIER)`` (``vanished=True`` needs QRESYNC enabled and
        ``changedsince``).
        """
        wanted = [item for item in items if item.upper() != "UID"]
        args = [uid_set.encode("ascii"), b"(" + " ".join(["UID", *wanted]).encode("ascii") + b")"]
        if changedsince is not None:
            modifiers = b"CHANGEDSINCE %d" % changedsince
            if vanished:
                modifiers += b" VANISHED"
            args.append(b"(" + modifiers + b")")
        elif vanished:
            raise ValueError("VANISHED needs CHANGEDSINCE")

        def done(cmd: _Command) -> tuple[list[FetchedMessage], frozenset[int]]:
            messages: list[FetchedMessage] = []
            gone: set[int] = set()
            for response in cmd.responses:
                if response.kind == "FETCH":
                    fetched = response.fetch()
                    if fetched is not None:
                        messages.append(fetched)
                elif response.kind == "VANISHED" and response.values and isinstance(response.values[0], list):
                    gone.update(parse_uid_set(_as_text(response.values[-1])))
            return messages, frozenset(gone)

        return self._run(b"UID FETCH", *args, owns=("FETCH",)).addCallback(done)

    def uid_search(self, criteria: str, *, charset: str | None = "UTF-8") -> "Deferred[list[int]]":
        """``UID SEARCH criteria``; fires with the UIDs.

        ``criteria`` is IMAP search syntax; quoted strings holding non-ASCII
        text are sent as literals, with ``CHARSET charset`` (only then).
        """
        args: list[bytes] = []
        position = 0
        needs_charset = False
        for match in _QUOTED.finditer(criteria):
            before = criteria[position:match.start()].strip()
            if before:
                args.append(before.encode("ascii"))
            inner = re.sub(r"\\(.)", r"\1", match.group(1))
            if inner.isascii():
                args.append(quote(inner.encode("ascii")))
            else:
                needs_charset = True
                args.append(_Literal(inner.encode(charset or "utf-8")))
            position = match.end()
        tail = criteria[position:].strip()
        if tail:
            args.append(tail.encode("ascii"))
        if needs_charset and charset:
            args[:0] = [b"CHARSET", charset.encode("ascii")]

        def done(cmd: _Command) -> list[int]:
            uids: list[int] = []
            for response in cmd.responses:
                if response.kind == "SEARCH":
                    uids.extend(int(v) for v in response.values if isinstance(v, str) and v.isdigit())
            return uids

        return self._run(b"UID SEARCH", *args).addCallback(done)

    def uid_store(
        self,
        uid_set: str,
        mode: str,
        flags: Iterable[str],
        *,
        unchangedsince: int | None = None,
        silent: bool = True,
    ) -> "Deferred[FetchList]":
        """``UID STORE uid_set [(UNCHANGEDSINCE n)] {+,-,}FLAGS[.SILENT] (flags)``.

        Fires with the FETCH answers as a :class:`FetchList` whose
        ``modified`` holds the UIDs refused by ``UNCHANGEDSINCE``.
        """
        if mode not in ("+", "-", ""):
            raise ValueError("mode must be '+', '-' or ''")
        args = [uid_set.encode("ascii")]
        if unchangedsince is not None:
            args.append(b"(UNCHANGEDSINCE %d)" % unchangedsince)
        args.append(mode.encode("ascii") + b"FLAGS" + (b".SILENT" if silent else b""))
        args.append(b"(" + " ".join(flags).encode("ascii") + b")")

        def done(cmd: _Command) -> FetchList:
            result = FetchList(
                fetched for fetched in (r.fetch() for r in cmd.responses if r.kind == "FETCH")
                if fetched is not None
            )
            assert cmd.tagged is not None
            if cmd.tagged.code == "MODIFIED" and cmd.tagged.code_args:
                result.modified = parse_uid_set(_as_text(cmd.tagged.code_args[0]))
            return result

        return self._run(b"UID STORE", *args, owns=("FETCH",)).addCallback(done)

    @staticmethod
    def _copyuid(cmd: _Command) -> dict[int, int] | None:
        candidates = list(cmd.responses)
        if cmd.tagged is not None:
            candidates.append(cmd.tagged)
        for response in candidates:
            if response.code == "COPYUID" and len(response.code_args) >= 3:
                sources = uid_list(_as_text(response.code_args[1]))
                targets = uid_list(_as_text(response.code_args[2]))
                return dict(zip(sources, targets))
        return None

    def uid_copy(self, uid_set: str, mailbox: str) -> "Deferred[dict[int, int] | None]":
        """``UID COPY``; fires with ``{old uid: new uid}`` from COPYUID (UIDPLUS), else ``None``."""
        return self._run(b"UID COPY", uid_set.encode("ascii"), _mailbox_arg(mailbox)).addCallback(self._copyuid)

    def uid_move(self, uid_set: str, mailbox: str) -> "Deferred[dict[int, int] | None]":
        """``UID MOVE`` (RFC 6851), else COPY + ``\\Deleted`` + UID EXPUNGE (or EXPUNGE).

        Fires with the COPYUID map when the server gives one.
        """
        if self.has_capability("MOVE"):
            return self._run(
                b"UID MOVE", uid_set.encode("ascii"), _mailbox_arg(mailbox), owns=("EXPUNGE", "VANISHED")
            ).addCallback(self._copyuid)
        return Deferred.fromCoroutine(self._copy_and_expunge(uid_set, mailbox))

    async def _copy_and_expunge(self, uid_set: str, mailbox: str) -> dict[int, int] | None:
        mapping = await self.uid_copy(uid_set, mailbox)
        await self.uid_expunge(uid_set)
        return mapping

    def uid_expunge(self, uid_set: str) -> "Deferred[None]":
        """Mark ``uid_set`` ``\\Deleted`` and expunge it: ``UID EXPUNGE`` (UIDPLUS), else ``EXPUNGE``.

        Without UIDPLUS, other messages already marked ``\\Deleted`` go too.
        """
        d = self.uid_store(uid_set, "+", ["\\Deleted"])
        if self.has_capability("UIDPLUS"):
            d.addCallback(lambda _: self._run(b"UID EXPUNGE", uid_set.encode("ascii"), owns=("EXPUNGE", "VANISHED")))
        else:
            d.addCallback(lambda _: self._run(b"EXPUNGE", owns=("EXPUNGE", "VANISHED")))
        return d.addCallback(lambda _: None)

    def append_message(
        self,
        mailbox: str,
        message: bytes,
        flags: Iterable[str] = (),
        date: datetime.datetime | None = None,
    ) -> "Deferred[int | None]":
        """``APPEND`` (a LITERAL+ literal when offered); fires with the APPENDUID UID or ``None``."""
        args = [_mailbox_arg(mailbox)]
        flag_list = list(flags)
        if flag_list:
            args.append(b"(" + " ".join(flag_list).encode("ascii") + b")")
        if date is not None:
            args.append(format_internaldate(date))
        args.append(_Literal(message))

        def done(cmd: _Command) -> int | None:
            assert cmd.tagged is not None
            if cmd.tagged.code == "APPENDUID" and len(cmd.tagged.code_args) >= 2:
                return _int(cmd.tagged.code_args[1])
            return None

        return self._run(b"APPEND", *args).addCallback(done)

    # -- NOTIFY (RFC 5465) ---------------------------------------------

    def notify_set(
        self,
        mailboxes: Iterable[str] = (),
        *,
        scope: str = "MAILBOXES",
        events: Sequence[str] = MESSAGE_EVENTS,
        selected_events: Sequence[str] | None = MESSAGE_EVENTS,
        status: bool = False,
    ) -> "Deferred[list[MailboxStatus]]":
        """``NOTIFY SET [STATUS] (SELECTED (events)) (scope [(mailboxes)] (events))``.

        ``scope`` is one of :data:`NOTIFY_SCOPES`; ``MAILBOXES`` and
        ``SUBTREE`` take ``mailboxes`` (decoded names, sent in modified
        UTF-7), the others none.  ``selected_events`` ``None`` leaves out the
        ``SELECTED`` group, empty sends ``NONE`` for it; empty ``events``
        leaves out the mailbox group.  With ``status`` the server first sends
        the current ``STATUS`` of every mailbox in the scope: the Deferred
        fires with those (else ``[]``).  From the tagged OK on, changes come
        as events (see the module doc); :attr:`notifying` is then True.
        A server without NOTIFY answers BAD: :class:`IMAPError`.
        """
        scope = scope.upper()
        if scope not in NOTIFY_SCOPES:
            raise ValueError(f"unknown NOTIFY scope {scope!r}")
        names = list(mailboxes)
        if scope in ("MAILBOXES", "SUBTREE"):
            if events and not names:
                raise ValueError(f"NOTIFY {scope} needs mailbox names")
        elif names:
            raise ValueError(f"NOTIFY {scope} takes no mailbox names")
        groups: list[bytes] = []
        if selected_events is not None:
            groups.append(b"(SELECTED " + _event_list(selected_events) + b")")
        if events:
            target = scope.encode("ascii")
            if names:
                target += b" (" + b" ".join(_mailbox_arg(name) for name in names) + b")"
            groups.append(b"(" + target + b" " + _event_list(events) + b")")
        if not groups:
            raise ValueError("NOTIFY SET needs events (use notify_none to stop)")
        args = [b"SET"] + ([b"STATUS"] if status else []) + groups

        def done(cmd: _Command) -> list[MailboxStatus]:
            self.notifying = True
            answers = (self._parse_status(r) for r in cmd.responses if r.kind == "STATUS")
            return [answer for answer in answers if answer is not None]

        return self._run(b"NOTIFY", *args, owns=("STATUS",)).addCallback(done)

    def notify_none(self) -> "Deferred[None]":
        """``NOTIFY NONE``: no more events for other mailboxes (and the selected one as without NOTIFY)."""
        def done(_cmd: _Command) -> None:
            self.notifying = False

        return self._run(b"NOTIFY", b"NONE").addCallback(done)

    # -- IDLE ---------------------------------------------------------

    @property
    def idling(self) -> bool:
        """An IDLE is on the wire and not yet ended."""
        return self._idle is not None and not self._idle.finished

    def idle(self, on_event: Callable[[str, Any], None]) -> "Deferred[None]":
        """Start ``IDLE``; fires once the server accepted it (its ``+``).

        Until :meth:`done`, change events go to ``on_event(kind, data)``.
        Sending any other command ends the IDLE first.  Servers end an IDLE
        after about 30 minutes: renew it sooner.
        """
        if self.idling:
            raise RuntimeError("IDLE is already running")
        state = _IdleState(on_event)
        self._idle = state
        cmd = _Command(self, b"IDLE", (), owns=_EVENT_KINDS)

        def accepted(_text: bytes) -> None:
            state.active = True
            if state.done_wanted:
                self._send_done(state)
            if not state.accepted.called:
                state.accepted.callback(None)

        cmd.on_continue = accepted
        d = self.sendCommand(cmd)

        def ended(result: Any) -> None:
            failure = result if isinstance(result, Failure) else None
            if failure is not None and not state.accepted.called:
                state.accepted.errback(failure)
                failure = None  # reported through accepted
            if self._idle is state:
                self._idle = None
            state.finish(failure)

        d.addBoth(ended)
        return state.accepted

    def _send_done(self, state: _IdleState) -> None:
        if state.done_sent or state.finished:
            return
        if not state.active:
            state.done_wanted = True
            return
        state.done_sent = True
        self.sendLine(b"DONE")

    def done(self) -> "Deferred[None]":
        """End the IDLE (``DONE``); fires on the IDLE command's tagged OK."""
        state = self._idle
        if state is None or state.finished:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        state.waiters.append(waiter)
        self._send_done(state)
        return waiter
