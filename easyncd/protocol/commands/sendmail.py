"""SendMail, SmartReply and SmartForward (MS-ASCMD 2.2.1.17, 2.2.1.20, 2.2.1.19).

Two request forms:

* 2.5 / 12.0 / 12.1: the raw MIME message is the body (``message/rfc822``);
  the query carries ``SaveInSent`` (``T``/``F``) and, for the Smart commands,
  ``ItemId`` / ``CollectionId`` / ``LongId`` (``Occurrence`` is accepted and
  ignored: only mail originals come from IMAP).  The dispatcher hands these
  bodies over undecoded (:attr:`ComposeCommand.raw_body_before`) to
  :meth:`ComposeCommand.run_raw`.  Errors are HTTP codes: 400 for a request
  or message that can never be sent, 500 for a refusal, 503 for "try later".
* 14.0 and later: WBXML ``ComposeMail:SendMail`` / ``SmartReply`` /
  ``SmartForward`` with ``ClientId``, ``AccountId``, ``SaveInSentItems``,
  ``ReplaceMime``, ``Source`` (``FolderId`` + ``ItemId``, or ``LongId``;
  ``InstanceId``) and ``Mime``.  Success is an empty 200; a failure is the
  command's element with a ``Status`` (MS-ASCMD 2.2.2).

The message is composed by :mod:`easyncd.protocol.compose` (the original
fetched whole from IMAP for the Smart commands), handed to SMTP, and only
once the server accepted it: the ``ClientId`` is remembered (a retried
request is answered 118 MessagePreviouslySent instead of sending twice), a
copy is appended to Sent (``\\Seen``) when asked, and the original gets
``\\Answered`` (reply) or ``$Forwarded`` (forward).  Nothing after the SMTP
acceptance can turn the answer into a failure, and a device that goes away
during the SMTP exchange does not cancel it (its retry waits for the outcome).

:func:`send_stored_message` sends a message already in a mailbox (16.x
drafts sent by Sync's ``Email2:Send``).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Mapping

from twisted.internet.defer import Deferred

from easyncd.backends.interfaces import (
    FOLDER_SENT,
    MailAuthFailed,
    MailBackendUnavailable,
    MailboxExists,
    MailError,
    NoSuchMailbox,
)
from easyncd.backends.smtp import SMTPAuthFailed, SMTPRejected, SMTPSendError
from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.foldersync import ensure_account
from easyncd.protocol.commands.settings import user_addresses
from easyncd.protocol.compose import (
    Identity,
    InvalidMime,
    NoRecipients,
    Outgoing,
    compose_forward,
    compose_new,
    compose_reply,
)
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.serverids import split_server_id
from easyncd.protocol.status import (
    HTTP_BAD_REQUEST,
    HTTP_SERVER_ERROR,
    HTTP_UNAVAILABLE,
    CommonStatus,
)
from easyncd.protocol.versions import at_least
from easyncd.store.interfaces import NoSuchFolder, SyncStateConflict
from easyncd.wbxml import Element

NS = "ComposeMail:"

#: The reserved collection id, in the state store's sync states of a device
#: account, under which the ClientIds of recently sent messages are kept.
SENT_IDS_COLLECTION = "_sent"
#: How long (seconds) and how many sent ClientIds are remembered.
SENT_IDS_KEEP = 7 * 24 * 3600
SENT_IDS_MAX = 500

#: The IMAP flag set on the original after SmartReply / SmartForward.
ANSWERED = "\\Answered"
FORWARDED = "$Forwarded"
IMAP_PREFIX = "imap:"
#: The name a Sent folder is created with when there is none.
DEFAULT_SENT_NAME = "Sent"


class Kind(Enum):
    """Which of the three commands."""

    SEND = "SendMail"
    REPLY = "SmartReply"
    FORWARD = "SmartForward"


class SendFailure(Exception):
    """The message was not sent; ``status`` says why (a common status code)."""

    def __init__(self, status: CommonStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class AlreadySent(Exception):
    """The request repeats one whose message was sent already."""


@dataclass(frozen=True)
class ComposeRequest:
    """One SendMail / SmartReply / SmartForward request, whichever its form."""

    kind: Kind
    mime: bytes
    client_id: str | None = None
    save_in_sent: bool = False
    replace_mime: bool = False
    folder_id: str | None = None
    item_id: str | None = None
    long_id: str | None = None
    instance_id: str | None = None
    #: The dedupe key of a request without ClientId (query form).
    fingerprint: str | None = None


# -- parsing ---------------------------------------------------------------------------


def parse_wbxml(kind: Kind, body: Element | None) -> ComposeRequest:
    """The 14.0+ request; SendFailure(InvalidXML / InvalidContent) when malformed."""
    if body is None or body.tag != NS + kind.value:
        raise SendFailure(CommonStatus.InvalidXML, f"expected {NS}{kind.value}")
    mime_element = body.find(NS + "Mime")
    if mime_element is None or not mime_element.text:
        raise SendFailure(CommonStatus.InvalidContent, "no Mime")
    text = mime_element.text
    mime = text if isinstance(text, bytes) else text.encode("utf-8")
    client_id = (body.findtext(NS + "ClientId") or "").strip()
    if not client_id:
        raise SendFailure(CommonStatus.InvalidXML, "no ClientId")
    source = body.find(NS + "Source")
    folder_id = item_id = long_id = instance_id = None
    if source is not None:
        folder_id = (source.findtext(NS + "FolderId") or "").strip() or None
        item_id = (source.findtext(NS + "ItemId") or "").strip() or None
        long_id = (source.findtext(NS + "LongId") or "").strip() or None
        instance_id = (source.findtext(NS + "InstanceId") or "").strip() or None
    if kind is not Kind.SEND and item_id is None and long_id is None:
        raise SendFailure(CommonStatus.InvalidXML, "no Source ItemId or LongId")
    return ComposeRequest(
        kind, mime, client_id=client_id,
        save_in_sent=body.find(NS + "SaveInSentItems") is not None,
        replace_mime=body.find(NS + "ReplaceMime") is not None,
        folder_id=folder_id, item_id=item_id, long_id=long_id, instance_id=instance_id,
    )


def parse_query(kind: Kind, parameters: Mapping[str, str], body: bytes) -> ComposeRequest:
    """The 2.5 / 12.x request: the parameters of the query, the MIME as body."""
    if not body.strip():
        raise SendFailure(CommonStatus.InvalidContent, "empty body")
    item_id = (parameters.get("ItemId") or "").strip() or None
    long_id = (parameters.get("LongId") or "").strip() or None
    if kind is not Kind.SEND and item_id is None and long_id is None:
        raise SendFailure(CommonStatus.InvalidIDs, "no ItemId or LongId")
    save = (parameters.get("SaveInSent") or "").strip().upper() == "T"
    digest = hashlib.sha256()
    digest.update(kind.value.encode("ascii") + b"\0")
    for name in ("ItemId", "LongId", "CollectionId"):
        digest.update((parameters.get(name) or "").encode("utf-8") + b"\0")
    digest.update(body)
    return ComposeRequest(
        kind, body, save_in_sent=save,
        folder_id=(parameters.get("CollectionId") or "").strip() or None,
        item_id=item_id, long_id=long_id,
        fingerprint="sha256:" + digest.hexdigest(),
    )


# -- the answer -------------------------------------------------------------------------

#: Before 14.0: the HTTP code for a failure status.
_HTTP_OF: dict[CommonStatus, int] = {
    CommonStatus.InvalidContent: HTTP_BAD_REQUEST,
    CommonStatus.InvalidXML: HTTP_BAD_REQUEST,
    CommonStatus.InvalidIDs: HTTP_BAD_REQUEST,
    CommonStatus.InvalidMIME: HTTP_BAD_REQUEST,
    CommonStatus.MessageHasNoRecipient: HTTP_BAD_REQUEST,
    CommonStatus.ServerErrorRetryLater: HTTP_UNAVAILABLE,
}


def failure_response(kind: Kind, version: str, status: CommonStatus) -> CommandResponse:
    """The answer for a message that was not sent."""
    if at_least(version, "14.0"):
        root = Element(NS + kind.value)
        root.add(NS + "Status", str(int(status)))
        return CommandResponse(body=root, status=str(int(status)))
    code = _HTTP_OF.get(status, HTTP_SERVER_ERROR)
    return CommandResponse(http_status=code, status=str(code))


def status_of_send_error(error: SMTPSendError) -> CommonStatus:
    """The status for an SMTP failure (the message was not sent)."""
    if isinstance(error, SMTPRejected):
        if not error.permanent:
            return CommonStatus.ServerErrorRetryLater
        if error.recipients:
            return CommonStatus.MessageRecipientUnresolved
        if error.code == 552:
            return CommonStatus.AttachmentIsTooLarge
        return CommonStatus.MailSubmissionFailed
    if isinstance(error, SMTPAuthFailed):
        return CommonStatus.MailSubmissionFailed
    return CommonStatus.ServerErrorRetryLater


# -- remembering sent ClientIds -----------------------------------------------------------


def _load_ids(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    ids = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(ids, dict):
        return {}
    return {str(k): float(v) for k, v in ids.items() if isinstance(v, (int, float))}


async def already_sent(ctx: CommandContext, key: str) -> bool:
    """Whether the message of ``key`` (a ClientId or fingerprint) was sent
    from this device account recently."""
    store: Any = ctx.store
    state = await store.get_sync_state(ctx.request.device_id, ctx.request.account,
                                       SENT_IDS_COLLECTION)
    if state is None:
        return False
    sent_at = _load_ids(state.state).get(key)
    return sent_at is not None and _now(ctx) - sent_at < SENT_IDS_KEEP


async def remember_sent(ctx: CommandContext, key: str) -> None:
    """Record ``key`` as sent (older and surplus keys are dropped)."""
    await ensure_account(ctx)  # the sync state needs an owner
    store: Any = ctx.store
    device_id, account = ctx.request.device_id, ctx.request.account
    now = _now(ctx)
    for _attempt in range(5):
        state = await store.get_sync_state(device_id, account, SENT_IDS_COLLECTION)
        ids = _load_ids(state.state if state is not None else None)
        ids = {k: t for k, t in ids.items() if now - t < SENT_IDS_KEEP}
        ids[key] = now
        if len(ids) > SENT_IDS_MAX:
            ids = dict(sorted(ids.items(), key=lambda item: item[1])[-SENT_IDS_MAX:])
        text = json.dumps({"ids": ids}, separators=(",", ":"))
        current = state.sync_key if state is not None else None
        try:
            await store.advance_sync_state(device_id, account, SENT_IDS_COLLECTION, current,
                                           (current or 0) + 1, text)
            return
        except SyncStateConflict:
            continue
    raise SyncStateConflict("could not record the sent ClientId")


class _InFlight:
    """The messages being sent right now in this process, so that a retry of a
    request still running waits for its outcome instead of sending again."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str, str], list[Deferred[bool]]] = {}

    def begin(self, key: tuple[str, str, str]) -> Deferred[bool] | None:
        """None: go ahead (call :meth:`end` later); else a Deferred firing with
        whether the running attempt sent the message."""
        if key in self._waiters:
            waiter: Deferred[bool] = Deferred()
            self._waiters[key].append(waiter)
            return waiter
        self._waiters[key] = []
        return None

    def end(self, key: tuple[str, str, str], sent: bool) -> None:
        """The attempt of ``key`` is over."""
        for waiter in self._waiters.pop(key, []):
            waiter.callback(sent)


IN_FLIGHT = _InFlight()


# -- the original message -----------------------------------------------------------------


async def _mailbox_of(ctx: CommandContext, folder_server_id: str) -> str | None:
    """The IMAP mailbox behind a folder server id; None for a non-mail folder;
    SendFailure(ItemNotFound) for an unknown one."""
    store: Any = ctx.store
    try:
        folder = await store.get_folder(ctx.request.account, folder_server_id)
    except NoSuchFolder:
        raise SendFailure(CommonStatus.ItemNotFound, f"no folder {folder_server_id}") from None
    backend_id: str = folder.backend_id
    if not backend_id.startswith(IMAP_PREFIX):
        return None
    return backend_id[len(IMAP_PREFIX):]


def _split_long_id(long_id: str) -> tuple[str, str] | None:
    """A LongId as (folder server id, item id): through
    ``serverids.split_long_id`` when the Search helpers define one, else the
    LongId is read as an item ServerId."""
    from easyncd.protocol import serverids

    splitter = getattr(serverids, "split_long_id", None)
    if splitter is not None:
        parts = splitter(long_id)
        return parts if parts is None else (str(parts[0]), str(parts[1]))
    return split_server_id(long_id)


async def locate_original(ctx: CommandContext, request: ComposeRequest
                          ) -> tuple[str, int] | None:
    """(mailbox, uid) of the Smart command's original; None when it is not a
    mail item (e.g. a calendar item being forwarded); SendFailure(ItemNotFound)."""
    if request.long_id:
        parts = _split_long_id(request.long_id)
    else:
        parts = split_server_id(request.item_id or "")
        if parts is None and request.folder_id and request.item_id:
            parts = (request.folder_id, request.item_id)
    if parts is None:
        raise SendFailure(CommonStatus.ItemNotFound, "unknown source item")
    folder_id, item = parts
    mailbox = await _mailbox_of(ctx, folder_id)
    if mailbox is None:
        return None
    if not item.isdigit():
        raise SendFailure(CommonStatus.ItemNotFound, "not a mail ServerId")
    return mailbox, int(item)


async def fetch_original(ctx: CommandContext, mailbox: str, uid: int) -> bytes:
    """The whole original message; SendFailure(ItemNotFound / retry later)."""
    mail: Any = ctx.services["mail"]
    try:
        fetched = await mail.fetch_messages(ctx.request.account, ctx.password or "", mailbox,
                                            [uid], ["BODY.PEEK[]"])
    except NoSuchMailbox:
        raise SendFailure(CommonStatus.ItemNotFound, f"no mailbox {mailbox}") from None
    except (MailBackendUnavailable, MailAuthFailed) as exc:
        raise SendFailure(CommonStatus.ServerErrorRetryLater, f"IMAP: {exc}") from None
    except MailError as exc:
        raise SendFailure(CommonStatus.ItemNotFound, f"IMAP: {exc}") from None
    for message in fetched:
        if message.uid == uid and "" in message.sections:
            return bytes(message.sections[""])
    raise SendFailure(CommonStatus.ItemNotFound, f"no message {uid} in {mailbox}")


# -- sending -------------------------------------------------------------------------------


def identity_of(ctx: CommandContext) -> Identity:
    """The sending account: its addresses (Settings' ``user_addresses``)."""
    addresses = user_addresses(ctx)
    primary = addresses[0] if addresses else ctx.request.account
    return Identity(primary=primary, addresses=frozenset(addresses))


_BCC_FIELD = re.compile(rb"^bcc[ \t]*:", re.IGNORECASE)


def with_bcc(device_mime: bytes, message: bytes) -> bytes:
    """The sent copy: ``message`` with the device's ``Bcc`` header fields put
    back (SMTP got them only in the envelope)."""
    end = re.search(rb"\r?\n\r?\n", device_mime)
    head = device_mime[:end.start()] if end else device_mime
    fields: list[bytes] = []
    collecting = False
    for line in re.split(rb"\r\n|\r|\n", head):
        if _BCC_FIELD.match(line):
            fields.append(line)
            collecting = True
        elif collecting and line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            collecting = False
    if not fields:
        return message
    return b"\r\n".join(fields) + b"\r\n" + message


async def deliver(ctx: CommandContext, outgoing: Outgoing) -> None:
    """Hand ``outgoing`` to SMTP; SendFailure unless the server accepted it."""
    smtp: Any = ctx.services.get("smtp")
    if smtp is None:
        raise SendFailure(CommonStatus.ServerError, "no SMTP server configured")
    try:
        await smtp.send(outgoing.sender, list(outgoing.recipients), outgoing.message,
                        username=ctx.request.account, password=ctx.password)
    except SMTPSendError as exc:
        raise SendFailure(status_of_send_error(exc), f"SMTP: {exc}") from None
    except ValueError as exc:
        # An envelope address SMTP cannot carry.
        raise SendFailure(CommonStatus.MessageRecipientUnresolved, str(exc)) from None


async def save_in_sent(ctx: CommandContext, message: bytes) -> str | None:
    """Append ``message`` to the Sent folder (created when missing), \\Seen.
    Returns the mailbox, None when there is no mail backend."""
    mail: Any = ctx.services.get("mail")
    if mail is None:
        return None
    user, password = ctx.request.account, ctx.password or ""
    sent = await mail.special_folder(user, password, FOLDER_SENT)
    if sent is None:
        try:
            folder = await mail.create_folder(user, password, None, DEFAULT_SENT_NAME)
            sent = folder.name
        except MailboxExists:
            sent = await mail.special_folder(user, password, FOLDER_SENT) or DEFAULT_SENT_NAME
    await mail.append(user, password, sent, message, flags=["\\Seen"])
    return str(sent)


def _notify(ctx: CommandContext, mailboxes: list[str]) -> None:
    push: Any = ctx.services.get("push")
    if push is not None and mailboxes:
        push.notify(ctx.request.account, [IMAP_PREFIX + name for name in mailboxes])


async def after_sent(ctx: CommandContext, request: ComposeRequest, outgoing: Outgoing,
                     original: tuple[str, int] | None) -> None:
    """The steps after SMTP accepted the message; each failure is only logged."""
    req = ctx.request
    key = request.client_id or request.fingerprint
    if key:
        try:
            await remember_sent(ctx, key)
        except Exception:
            ctx.log.failure("{command}: could not remember ClientId for {device_id}",
                            command=request.kind.value, device_id=req.device_id)
    changed: list[str] = []
    mail: Any = ctx.services.get("mail")
    if request.save_in_sent:
        try:
            sent = await save_in_sent(ctx, with_bcc(request.mime, outgoing.message))
            if sent:
                changed.append(sent)
        except MailError as exc:
            ctx.log.warn("{command}: sent, but no copy in Sent for {user}: {error}",
                         command=request.kind.value, user=req.account, error=str(exc))
        except Exception:
            ctx.log.failure("{command}: sent, but no copy in Sent for {user}",
                            command=request.kind.value, user=req.account)
    if original is not None and mail is not None and request.kind is not Kind.SEND:
        flag = ANSWERED if request.kind is Kind.REPLY else FORWARDED
        try:
            await mail.set_flags(req.account, ctx.password or "", original[0], [original[1]],
                                 add=[flag])
            changed.append(original[0])
        except MailError as exc:
            ctx.log.warn("{command}: sent, but could not flag the original of {user}: {error}",
                         command=request.kind.value, user=req.account, error=str(exc))
        except Exception:
            ctx.log.failure("{command}: sent, but could not flag the original of {user}",
                            command=request.kind.value, user=req.account)
    try:
        _notify(ctx, changed)
    except Exception:
        ctx.log.failure("{command}: push notification failed", command=request.kind.value)


async def carry_out(ctx: CommandContext, request: ComposeRequest) -> None:
    """Compose, send and file one message.  Raises SendFailure (not sent) or
    AlreadySent (a retry of a message sent before)."""
    key = request.client_id or request.fingerprint
    flight_key = (ctx.request.device_id, ctx.request.account, key or "")
    while True:
        if key and await already_sent(ctx, key):
            raise AlreadySent(key)
        waiter = IN_FLIGHT.begin(flight_key) if key else None
        if waiter is None:
            break
        if await waiter:
            raise AlreadySent(key or "")
    sent = False
    try:
        original: tuple[str, int] | None = None
        original_bytes: bytes | None = None
        if request.kind is not Kind.SEND:
            if ctx.services.get("mail") is None:
                raise SendFailure(CommonStatus.ServerError, "no mail backend configured")
            original = await locate_original(ctx, request)
            if original is not None:
                original_bytes = await fetch_original(ctx, *original)
            else:
                ctx.log.info("{command}: the source is no mail item; sending the device's "
                             "message as it is", command=request.kind.value)
        outgoing = compose(ctx, request, original_bytes)
        await deliver(ctx, outgoing)
        sent = True
        ctx.log.info("{command}: sent {message_id} for {user} from {device_id} "
                     "to {count} recipient(s)", command=request.kind.value,
                     message_id=outgoing.message_id, user=ctx.request.account,
                     device_id=ctx.request.device_id, count=len(outgoing.recipients))
        await after_sent(ctx, request, outgoing, original)
    finally:
        if key:
            IN_FLIGHT.end(flight_key, sent)


def compose(ctx: CommandContext, request: ComposeRequest, original: bytes | None) -> Outgoing:
    """The message to send; SendFailure(InvalidMIME / MessageHasNoRecipient)."""
    identity = identity_of(ctx)
    now = datetime.datetime.fromtimestamp(_now(ctx), datetime.timezone.utc)
    try:
        if original is None:
            return compose_new(request.mime, identity, now=now)
        if request.kind is Kind.REPLY:
            return compose_reply(request.mime, original, identity, now=now,
                                 replace_mime=request.replace_mime)
        return compose_forward(request.mime, original, identity, now=now,
                               replace_mime=request.replace_mime)
    except InvalidMime as exc:
        raise SendFailure(CommonStatus.InvalidMIME, str(exc)) from None
    except NoRecipients as exc:
        raise SendFailure(CommonStatus.MessageHasNoRecipient, str(exc)) from None


def _shielded(d: "Deferred[Any]") -> "Deferred[Any]":
    """A Deferred with ``d``'s result whose cancellation leaves ``d`` running."""
    outer: Deferred[Any] = Deferred(lambda _: None)

    def relay(result: Any) -> None:
        if not outer.called:
            outer.callback(result)

    d.addBoth(relay)
    return outer


async def send_stored_message(ctx: CommandContext, mailbox: str, uid: int, *,
                              save_copy: bool = True, delete_after: bool = True) -> None:
    """Send a message stored in ``mailbox`` (a 16.x draft the device sends with
    ``Email2:Send``): composed like SendMail, a copy in Sent, then the stored
    message is deleted.  Raises SendFailure when it was not sent."""
    raw = await fetch_original(ctx, mailbox, uid)
    request = ComposeRequest(Kind.SEND, raw, save_in_sent=save_copy)
    outgoing = compose(ctx, request, None)
    await deliver(ctx, outgoing)
    await after_sent(ctx, request, outgoing, None)
    if delete_after:
        mail: Any = ctx.services["mail"]
        try:
            await mail.delete(ctx.request.account, ctx.password or "", mailbox, [uid], False)
            _notify(ctx, [mailbox])
        except MailError as exc:
            ctx.log.warn("draft sent, but not deleted from {mailbox}: {error}",
                         mailbox=mailbox, error=str(exc))


# -- the commands ------------------------------------------------------------------------------


class ComposeCommand(Command):
    """The shared run of SendMail, SmartReply and SmartForward."""

    kind: ClassVar[Kind] = Kind.SEND
    #: Before this protocol version the body is raw MIME, not WBXML (the
    #: dispatcher then calls :meth:`run_raw`).
    raw_body_before: ClassVar[str | None] = "14.0"
    requires: ClassVar[tuple[str, ...]] = ("smtp",)

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """14.0+: the WBXML form."""
        try:
            request = parse_wbxml(self.kind, body)
        except SendFailure as exc:
            return self._failed(ctx, exc)
        return await self._send(ctx, request)

    async def run_raw(self, ctx: CommandContext, body: bytes) -> CommandResponse:
        """2.5 / 12.x: the query parameters and the MIME body."""
        try:
            request = parse_query(self.kind, ctx.request.parameters, body)
        except SendFailure as exc:
            return self._failed(ctx, exc)
        return await self._send(ctx, request)

    async def _send(self, ctx: CommandContext, request: ComposeRequest) -> CommandResponse:
        version = ctx.request.protocol_version
        try:
            await _shielded(Deferred.fromCoroutine(carry_out(ctx, request)))
        except SendFailure as exc:
            return self._failed(ctx, exc)
        except AlreadySent:
            ctx.log.info("{command}: {device_id} repeated a message already sent",
                         command=self.kind.value, device_id=ctx.request.device_id)
            if at_least(version, "14.0"):
                return failure_response(self.kind, version, CommonStatus.MessagePreviouslySent)
            return CommandResponse()
        return CommandResponse()

    def _failed(self, ctx: CommandContext, exc: SendFailure) -> CommandResponse:
        ctx.log.info("{command} from {device_id} of {user} not sent: {status} {reason}",
                     command=self.kind.value, device_id=ctx.request.device_id,
                     user=ctx.request.account, status=exc.status.name, reason=str(exc))
        return failure_response(self.kind, ctx.request.protocol_version, exc.status)


class SendMailCommand(ComposeCommand):
    """``Cmd=SendMail``."""

    name = "SendMail"
    kind = Kind.SEND


class SmartReplyCommand(ComposeCommand):
    """``Cmd=SmartReply``."""

    name = "SmartReply"
    kind = Kind.REPLY


class SmartForwardCommand(ComposeCommand):
    """``Cmd=SmartForward``."""

    name = "SmartForward"
    kind = Kind.FORWARD


def _now(ctx: CommandContext) -> float:
    clock: Any = ctx.clock
    return float(clock.seconds())


__all__ = [
    "ComposeCommand",
    "ComposeRequest",
    "Kind",
    "SendFailure",
    "SendMailCommand",
    "SmartForwardCommand",
    "SmartReplyCommand",
    "carry_out",
    "failure_response",
    "parse_query",
    "parse_wbxml",
    "send_stored_message",
    "status_of_send_error",
]
