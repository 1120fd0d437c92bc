"""What the HTTP layer hands to a command, and what a command hands back.

The protocol layer knows nothing of HTTP or SQL: it sees an :class:`EASRequest`
(parsed from the query string and headers by :mod:`easyncd.protocol.request`),
the store behind :class:`~easyncd.store.interfaces.IStateStore`, the config and
a clock, and answers with a :class:`CommandResponse`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from easyncd.config import Config
from easyncd.store.interfaces import DeviceAccount, IStateStore
from easyncd.wbxml import Element


@dataclass(frozen=True)
class EASRequest:
    """One EAS request, as the device sent it (MS-ASHTTP 2.2.1.1).

    ``user`` is the name from the query (as sent); ``account`` is the
    authenticated account name after the configured username map.
    ``parameters`` holds the command parameters of the query (``ItemId``,
    ``CollectionId``, ``SaveInSent``, ``LongId``, ``Occurrence``,
    ``AttachmentName`` ...), whichever query form carried them.
    """

    command: str
    user: str
    account: str
    device_id: str
    device_type: str
    protocol_version: str
    policy_key: int | None = None
    user_agent: str | None = None
    accept_multipart: bool = False
    query_form: str = "plain"  # or "base64"
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass
class CommandContext:
    """Everything a command may use to run."""

    request: EASRequest
    #: The device account of the request, or None if the store has none.
    account: DeviceAccount | None
    store: IStateStore
    config: Config
    clock: IReactorTime
    log: Logger
    #: Services of later issues (mail backend, groupware, push hub), by name.
    services: Mapping[str, Any] = field(default_factory=dict)
    #: Whether ``account`` was already read from the store (so the dispatcher
    #: need not read it again).
    account_loaded: bool = False
    #: The password the device authenticated with, for backends that log in
    #: as the user (IMAP, SMTP).  Never logged, never stored.
    password: str | None = field(default=None, repr=False)


@dataclass
class CommandResponse:
    """A command's answer: a WBXML body (or none), an HTTP status, extra headers.

    ``raw_body`` is for the few answers that are not WBXML (ItemOperations
    multipart, 2.5's GetAttachment); it wins over ``body``.
    """

    body: Element | None = None
    http_status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    #: Status reported in the access log (the command's top Status, if any).
    status: str | None = None
    #: A body too large to hold in memory (attachments): called once with a
    #: ``write(bytes)`` that may return a Deferred (wait for it: the client
    #: is slow); the returned Deferred fires when everything was written.
    #: Wins over ``raw_body`` and ``body``.  ``stream_length`` is the exact
    #: octet count (Content-Length), None for chunked transfer encoding.
    stream: Callable[[Callable[[bytes], Any]], Any] | None = None
    stream_length: int | None = None
