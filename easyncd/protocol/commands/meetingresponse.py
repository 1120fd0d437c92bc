"""MeetingResponse (MS-ASCMD 2.2.1.11): accept, tentatively accept or decline
an invitation.

Each ``Request`` names the invitation by ``CollectionId`` + ``RequestId`` (a
mail in a mail folder, or an item of a calendar folder; ``RequestId`` is the
Sync ServerId ``"<folder server id>:<item id>"``) or by ``Search:LongId``
(the LongId of a Search result, which is the same ServerId form), and may
name one occurrence of a recurring calendar item (``InstanceId``, 14.1+).

What the server does:

* The invitation is read: the mail's ``text/calendar`` part (BODYSTRUCTURE,
  then that part only) or the calendar item.  Anything else, a CANCEL, a
  meeting the user organizes, an InstanceId on a mail or on an occurrence
  that does not exist: Status 2.  InstanceId on a series that does not
  recur: 146; an unreadable InstanceId: 104 (MS-ASCMD 2.2.3.92.1).
* Accept / tentative: the event goes into the user's default calendar with
  the user's PARTSTAT (an item with the same UID there is updated, never
  doubled); the answer carries ``CalendarId`` (the item's ServerId).
  Decline: an item with that UID is removed (or, with InstanceId, that
  occurrence); no ``CalendarId``.
* The iTIP answer to the organizer (:mod:`easyncd.protocol.itip`): MS-ASCMD
  2.2.1.11 says that before 16.0 the *device* sends it (SendMail), and from
  16.0 the server sends it when the request has ``SendResponse`` (its
  ``airsyncbase:Body`` is the text; ``ProposedStartTime``/``EndTime`` make it
  a COUNTER).  We do exactly that, through ``ctx.services["smtp"]`` as the
  user.  A failed send is Status 3 (the calendar is already up to date; a
  retry updates the same item and sends again), never reported as sent.
* The invitation mail is moved to Deleted Items afterwards, as Exchange does
  (devices built for Exchange expect it to leave the Inbox; it stays
  recoverable in the Trash).  Without a Trash it stays where it is, marked
  read.  This is best effort: a failure is logged, the answer stands.

Status values (MS-ASCMD 2.2.3.177.9): 1 success, 2 invalid meeting request,
3 mailbox error (IMAP / calendar / SMTP trouble), 4 server error.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

from easyncd.backends.groupware.event import (
    STATUS_DECLINED,
    Attendee,
    DateOrTime,
    Event,
    Occurrence,
    Property,
)
from easyncd.backends.groupware.vobj.calendar import (
    ICalendarError,
    parse_ics,
    parse_itip,
    write_ics,
)
from easyncd.backends.imap.bodystructure import BodyPart, BodyStructureError, parse_bodystructure
from easyncd.backends.interfaces import (
    FOLDER_DELETED,
    KIND_CALENDAR,
    GroupwareError,
    InvalidItem,
    MailError,
    NoSuchCollection,
    NoSuchItem,
    NoSuchMailbox,
)
from easyncd.protocol import itip
from easyncd.protocol.codecs.email import body_parts
from easyncd.protocol.codecs.mime import decode_text, decode_transfer, parse_addresses, parse_headers
from easyncd.protocol.codecs.recurrence import parse_eas_datetime
from easyncd.protocol.collections import GROUPWARE_PREFIX, resolve_collection, groupware_backend_id
from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.settings import user_addresses
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.serverids import item_server_id, split_long_id, split_server_id
from easyncd.protocol.status import HTTP_BAD_REQUEST, CommonStatus
from easyncd.protocol.versions import at_least, status_in_body
from easyncd.store.interfaces import NoSuchFolder
from easyncd.wbxml import Element

NS = "MeetingResponse:"
MAIL_PREFIX = "imap:"
_UTC = ZoneInfo("UTC")
#: How many calendar items are read per get_items call when looking for a UID.
_UID_SCAN_BATCH = 200
_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")


class MeetingStatus(IntEnum):
    """MeetingResponse Status (MS-ASCMD 2.2.3.177.9)."""

    Success = 1
    InvalidRequest = 2
    MailboxError = 3
    ServerError = 4


class _Refused(Exception):
    """One Request ends with this Status."""

    def __init__(self, status: int, why: str = "") -> None:
        super().__init__(why)
        self.status = status


@dataclass
class _Request:
    user_response: int
    collection_id: str | None
    request_id: str | None
    long_id: str | None
    instance_id: str | None
    send_response: bool
    body_text: str | None
    proposed: tuple[datetime.datetime, datetime.datetime] | None


@dataclass
class _Invitation:
    """What the request points at, read."""

    event: Event
    recurrence_id: Property | None
    #: Mail: (mailbox, uid, delivered-to addresses); calendar item: None.
    mail: tuple[str, int, list[str]] | None = None
    #: Calendar item: (collection id, folder server id, item id).
    item: tuple[str, str, str] | None = None


@dataclass
class _Outcome:
    calendar_id: str | None = None


class MeetingResponseCommand(Command):
    """``Cmd=MeetingResponse``."""

    name = "MeetingResponse"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Answer every Request of the body, each with its own Result."""
        requests = body.findall(NS + "Request") if body is not None else []
        if body is None or body.tag != NS + "MeetingResponse" or not requests:
            if status_in_body(ctx.request.protocol_version):
                root = Element(NS + "MeetingResponse")
                code = str(int(CommonStatus.InvalidXML))
                root.add(NS + "Status", code)
                return CommandResponse(body=root, status=code)
            return CommandResponse(http_status=HTTP_BAD_REQUEST, status=str(HTTP_BAD_REQUEST))
        root = Element(NS + "MeetingResponse")
        statuses: list[int] = []
        for element in requests:
            status, outcome = await self._one(ctx, element)
            result = root.add(NS + "Result")
            request_id = element.findtext(NS + "RequestId")
            if request_id is not None:
                result.add(NS + "RequestId", request_id)
            result.add(NS + "Status", str(int(status)))
            if outcome is not None and outcome.calendar_id is not None:
                result.add(NS + "CalendarId", outcome.calendar_id)
            statuses.append(status)
        overall = next((s for s in statuses if s != MeetingStatus.Success), 1)
        return CommandResponse(body=root, status=str(int(overall)))

    async def _one(self, ctx: CommandContext, element: Element) -> tuple[int, _Outcome | None]:
        try:
            request = _parse(element, ctx.request.protocol_version)
            invitation = await self._read(ctx, request)
            outcome = await self._answer(ctx, request, invitation)
        except _Refused as refused:
            ctx.log.info("MeetingResponse for {user}: status {status} ({why})",
                         user=ctx.request.account, status=refused.status, why=str(refused))
            return refused.status, None
        except Exception:
            ctx.log.failure("MeetingResponse for {user} failed", user=ctx.request.account)
            return MeetingStatus.ServerError, None
        return MeetingStatus.Success, outcome

    # -- reading the invitation ---------------------------------------------------------

    async def _read(self, ctx: CommandContext, request: _Request) -> _Invitation:
        if request.long_id is not None:
            parts = split_long_id(request.long_id.strip())
            if parts is None:
                raise _Refused(MeetingStatus.InvalidRequest, "unknown LongId")
        else:
            parts = split_server_id(request.request_id or "")
            if parts is None or parts[0] != request.collection_id:
                raise _Refused(MeetingStatus.InvalidRequest, "RequestId not in CollectionId")
        folder_id, item_id = parts
        store: Any = ctx.store
        try:
            folder = await store.get_folder(ctx.request.account, folder_id)
        except NoSuchFolder:
            raise _Refused(MeetingStatus.InvalidRequest, "no such folder") from None
        if folder.backend_id.startswith(MAIL_PREFIX):
            if request.instance_id is not None:
                raise _Refused(MeetingStatus.InvalidRequest, "InstanceId on a mail")
            return await self._read_mail(ctx, folder.backend_id[len(MAIL_PREFIX):], item_id)
        if folder.backend_id.startswith(GROUPWARE_PREFIX):
            return await self._read_item(ctx, folder_id, item_id)
        raise _Refused(MeetingStatus.InvalidRequest, "not a mail or calendar folder")

    async def _read_mail(self, ctx: CommandContext, mailbox: str, item_id: str) -> _Invitation:
        mail: Any = ctx.services.get("mail")
        if mail is None:
            raise _Refused(MeetingStatus.InvalidRequest, "mail is not enabled")
        if not item_id.isdigit():
            raise _Refused(MeetingStatus.InvalidRequest, "not a mail ServerId")
        uid = int(item_id)
        user, password = ctx.request.account, ctx.password or ""
        try:
            fetched = await mail.fetch_messages(user, password, mailbox, [uid],
                                                ["BODYSTRUCTURE", "BODY.PEEK[HEADER]"])
            if not fetched or fetched[0].bodystructure is None:
                raise _Refused(MeetingStatus.InvalidRequest, "no such message")
            try:
                structure = parse_bodystructure(fetched[0].bodystructure)
            except BodyStructureError:
                raise _Refused(MeetingStatus.InvalidRequest, "unreadable message") from None
            part = _calendar_part(structure)
            if part is None:
                raise _Refused(MeetingStatus.InvalidRequest, "not a meeting request")
            raw = await mail.fetch_part(user, password, mailbox, uid, part.part_id)
        except NoSuchMailbox:
            raise _Refused(MeetingStatus.InvalidRequest, "no such mailbox") from None
        except MailError as exc:
            raise _Refused(MeetingStatus.MailboxError, f"IMAP: {exc}") from None
        text = decode_text(decode_transfer(raw, part.encoding), part.charset or "utf-8")
        try:
            method, event, recurrence_id = parse_itip(text)
        except (ICalendarError, ValueError):
            raise _Refused(MeetingStatus.InvalidRequest, "unreadable invitation") from None
        method = method or (part.params.get("method") or "").upper() or "REQUEST"
        if method != "REQUEST":
            raise _Refused(MeetingStatus.InvalidRequest, f"METHOD:{method} is no request")
        headers = parse_headers(fetched[0].sections.get("HEADER", b""))
        delivered = [address for name in ("delivered-to", "x-original-to", "envelope-to")
                     for value in headers.get_all(name)
                     for _, address in parse_addresses(value)]
        return _Invitation(event, recurrence_id, mail=(mailbox, uid, delivered))

    async def _read_item(self, ctx: CommandContext, folder_id: str, item_id: str) -> _Invitation:
        resolved = await resolve_collection(ctx, folder_id)
        if resolved is None or resolved.kind != KIND_CALENDAR:
            raise _Refused(MeetingStatus.InvalidRequest, "not a calendar folder")
        groupware: Any = _groupware(ctx)
        try:
            items = await groupware.get_items(ctx.request.account, resolved.collection_id,
                                              [item_id])
        except NoSuchCollection:
            raise _Refused(MeetingStatus.InvalidRequest, "no such calendar") from None
        except GroupwareError as exc:
            raise _Refused(MeetingStatus.MailboxError, f"calendar: {exc}") from None
        if not items:
            raise _Refused(MeetingStatus.InvalidRequest, "no such calendar item")
        try:
            event = parse_ics(items[0].data)
        except ICalendarError:
            raise _Refused(MeetingStatus.InvalidRequest, "unreadable calendar item") from None
        return _Invitation(event, None, item=(resolved.collection_id, folder_id, item_id))

    # -- answering --------------------------------------------------------------------

    async def _answer(self, ctx: CommandContext, request: _Request,
                      invitation: _Invitation) -> _Outcome:
        event = invitation.event
        account = ctx.request.account
        own = user_addresses(ctx)
        if itip.is_organizer(event, own):
            raise _Refused(MeetingStatus.InvalidRequest, "the user organizes this meeting")
        delivered = invitation.mail[2] if invitation.mail is not None else []
        me = itip.find_attendee(event, [*own, *delivered], account)
        if me is None:
            address = (own or delivered or [""])[0]
            if not address:
                raise _Refused(MeetingStatus.InvalidRequest, "the user is no attendee")
            me = Attendee(email=address)
        if not event.uid:
            raise _Refused(MeetingStatus.InvalidRequest, "the invitation has no UID")
        status = itip.RESPONSE_STATUS[request.user_response]
        now = datetime.datetime.fromtimestamp(ctx.clock.seconds(), _UTC).replace(microsecond=0)
        instance = self._instance(request, event)

        outcome = await self._file(ctx, invitation, event, me, status, instance, now)
        if request.send_response and at_least(ctx.request.protocol_version, "16.0"):
            await self._send(ctx, event, me, status, now, request, invitation, instance)
        if invitation.mail is not None:
            await self._tidy_mail(ctx, invitation.mail[0], invitation.mail[1])
        return outcome

    @staticmethod
    def _instance(request: _Request, event: Event) -> DateOrTime | None:
        if request.instance_id is None:
            return None
        try:
            naive, _ = parse_eas_datetime(request.instance_id)
        except ValueError:
            raise _Refused(CommonStatus.InvalidDateTime, "unreadable InstanceId") from None
        if not event.rrule:
            raise _Refused(CommonStatus.NoRecurrenceInCalendar, "InstanceId on a single event")
        original = itip.original_start_for(event, naive.replace(tzinfo=_UTC))
        if not itip.occurs_at(event, original):
            raise _Refused(MeetingStatus.InvalidRequest, "no such occurrence")
        return original

    async def _file(self, ctx: CommandContext, invitation: _Invitation, event: Event,
                    me: Attendee, status: int, instance: DateOrTime | None,
                    now: datetime.datetime) -> _Outcome:
        """Put the answer into the user's calendar; the CalendarId."""
        groupware: Any = _groupware(ctx)
        user = ctx.request.account
        folder_id: str | None
        if invitation.item is not None:
            collection_id, folder_id, item_id = invitation.item
        else:
            collection_id = await _default_calendar(groupware, user)
            folder_id = await _folder_of(ctx, collection_id)
            existing = await _find_uid(groupware, user, collection_id, event.uid or "")
            item_id = existing.item_id if existing is not None else ""
            if existing is not None:
                event = self._merge(existing.data, event, invitation.recurrence_id)
        declined = status == STATUS_DECLINED
        try:
            if instance is not None:
                itip.set_status_for_instance(event, me, status, instance, now)
            elif declined:
                if item_id:
                    await groupware.delete_item(user, collection_id, item_id)
                return _Outcome()
            else:
                itip.set_status(event, me, status, now)
            data = write_ics(event)
            if item_id:
                item = await groupware.update_item(user, collection_id, item_id, data)
            else:
                item = await groupware.add_item(user, collection_id, data)
        except NoSuchItem:
            raise _Refused(MeetingStatus.InvalidRequest, "the calendar item went away") from None
        except InvalidItem as exc:
            raise _Refused(MeetingStatus.InvalidRequest, f"cannot store: {exc}") from None
        except GroupwareError as exc:
            raise _Refused(MeetingStatus.MailboxError, f"calendar: {exc}") from None
        if declined or folder_id is None:
            # No CalendarId for a declined meeting (MS-ASCMD 2.2.3.18).
            return _Outcome()
        return _Outcome(calendar_id=item_server_id(folder_id, item.item_id))

    @staticmethod
    def _merge(stored: str, invitation: Event, recurrence_id: Property | None) -> Event:
        """The event to keep when the calendar has the UID already: the
        invitation (newer or equal) replaces it, except that an invitation to
        one occurrence becomes an exception of the stored series."""
        try:
            current = parse_ics(stored)
        except ICalendarError:
            return invitation
        if recurrence_id is None or not current.rrule or invitation.start is None:
            return invitation
        original = _recurrence_start(recurrence_id, current)
        if original is None:
            return invitation
        occurrence = current.exception_for(original)
        if occurrence is not None:
            current.exceptions.remove(occurrence)
        current.exceptions.append(Occurrence(
            original_start=original, start=invitation.start, end=invitation.end,
            summary=invitation.summary if invitation.summary != current.summary else None,
            location=invitation.location if invitation.location != current.location else None,
            attendees=list(invitation.attendees)))
        return current

    async def _send(self, ctx: CommandContext, event: Event, me: Attendee, status: int,
                    now: datetime.datetime, request: _Request, invitation: _Invitation,
                    instance: DateOrTime | None) -> None:
        smtp: Any = ctx.services.get("smtp")
        if smtp is None:
            raise _Refused(MeetingStatus.MailboxError, "no SMTP server configured")
        try:
            mail = itip.build_reply(event, me, status, now, text=request.body_text,
                                    recurrence_id=invitation.recurrence_id, instance=instance,
                                    proposed=request.proposed)
        except ValueError as exc:
            raise _Refused(MeetingStatus.InvalidRequest, str(exc)) from None
        try:
            await smtp.send(mail.sender, list(mail.recipients), mail.message,
                            username=ctx.request.account, password=ctx.password)
        except Exception as exc:  # SMTPSendError and connection trouble alike
            ctx.log.warn("MeetingResponse: the reply of {user} was not sent: {error}",
                         user=ctx.request.account, error=type(exc).__name__)
            raise _Refused(MeetingStatus.MailboxError, "the reply was not sent") from None
        ctx.log.info("MeetingResponse: {user} answered {uid} ({status})",
                     user=ctx.request.account, uid=event.uid, status=status)

    async def _tidy_mail(self, ctx: CommandContext, mailbox: str, uid: int) -> None:
        """Move the answered invitation to Deleted Items (or mark it read)."""
        mail: Any = ctx.services.get("mail")
        user, password = ctx.request.account, ctx.password or ""
        try:
            await mail.set_flags(user, password, mailbox, [uid], add=("\\Seen",))
            trash = await mail.special_folder(user, password, FOLDER_DELETED)
            if trash and trash != mailbox:
                await mail.move(user, password, mailbox, [uid], trash)
        except Exception:
            ctx.log.failure("MeetingResponse: tidying invitation {uid} of {user} failed",
                            uid=uid, user=user)


# -- helpers -----------------------------------------------------------------------------


def _parse(element: Element, version: str) -> _Request:
    text = (element.findtext(NS + "UserResponse") or "").strip()
    if text not in ("1", "2", "3"):
        raise _Refused(MeetingStatus.InvalidRequest, "bad UserResponse")
    long_id = element.findtext("Search:LongId")
    collection_id = element.findtext(NS + "CollectionId")
    request_id = element.findtext(NS + "RequestId")
    if long_id is None and not (collection_id and request_id):
        raise _Refused(MeetingStatus.InvalidRequest, "no RequestId / LongId")
    instance_id = element.findtext(NS + "InstanceId")
    if instance_id is not None and not at_least(version, "14.1"):
        raise _Refused(MeetingStatus.InvalidRequest, "InstanceId before 14.1")
    send = element.find(NS + "SendResponse")
    body_text = None
    proposed = None
    if send is not None:
        body = send.find("AirSyncBase:Body")
        if body is not None:
            data = body.findtext("AirSyncBase:Data")
            kind = (body.findtext("AirSyncBase:Type") or "1").strip()
            if data:
                if kind == "2":
                    from easyncd.protocol.codecs.body import html_to_text

                    data = html_to_text(data)
                body_text = data
        start = send.findtext(NS + "ProposedStartTime")
        end = send.findtext(NS + "ProposedEndTime")
        if start and end:
            if text == "1":
                raise _Refused(MeetingStatus.InvalidRequest, "a new time with an accept")
            try:
                proposed = (_utc(start), _utc(end))
            except ValueError:
                raise _Refused(CommonStatus.InvalidDateTime, "bad proposed time") from None
    return _Request(int(text), collection_id, request_id, long_id, instance_id,
                    send is not None, body_text, proposed)


def _utc(text: str) -> datetime.datetime:
    naive, _ = parse_eas_datetime(text)
    return naive.replace(tzinfo=_UTC)


def _calendar_part(structure: BodyPart) -> BodyPart | None:
    found = body_parts(structure).calendar
    if found is not None:
        return found
    for part in structure.walk():
        if part.content_type in _CALENDAR_TYPES:
            return part
    return None


def _groupware(ctx: CommandContext) -> Any:
    groupware = ctx.services.get("groupware")
    if groupware is None:
        raise _Refused(MeetingStatus.ServerError, "no groupware backend")
    return groupware


async def _default_calendar(groupware: Any, user: str) -> str:
    collections = await groupware.list_collections(user, KIND_CALENDAR)
    for collection in collections:
        if collection.is_default:
            return str(collection.collection_id)
    if collections:
        return str(collections[0].collection_id)
    raise _Refused(MeetingStatus.MailboxError, "the user has no calendar")


async def _folder_of(ctx: CommandContext, collection_id: str) -> str | None:
    """The folder server id the device knows the collection by (None: it
    has not seen that folder yet)."""
    store: Any = ctx.store
    wanted = groupware_backend_id(collection_id)
    for folder in await store.list_folders(ctx.request.account):
        if folder.backend_id == wanted:
            return str(folder.server_id)
    return None


async def _find_uid(groupware: Any, user: str, collection_id: str, uid: str) -> Any:
    """The item of the collection with that UID, or None."""
    if not uid:
        return None
    _, ids = await groupware.list_items(user, collection_id)
    for start in range(0, len(ids), _UID_SCAN_BATCH):
        for item in await groupware.get_items(user, collection_id,
                                              ids[start:start + _UID_SCAN_BATCH]):
            if item.uid == uid:
                return item
    return None


def _recurrence_start(prop: Property, series: Event) -> DateOrTime | None:
    """A raw RECURRENCE-ID as the series' own form of that start."""
    value = prop.value.strip()
    try:
        if (prop.params.get("VALUE") or [""])[0].upper() == "DATE" or len(value) == 8:
            return datetime.datetime.strptime(value[:8], "%Y%m%d").date()
        naive = datetime.datetime.strptime(value.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    if value.upper().endswith("Z"):
        return itip.original_start_for(series, naive.replace(tzinfo=_UTC))
    tzid = (prop.params.get("TZID") or [""])[0]
    if tzid and isinstance(series.start, datetime.datetime) and series.start.tzinfo is not None:
        try:
            return naive.replace(tzinfo=ZoneInfo(tzid)).astimezone(series.start.tzinfo)
        except (KeyError, ValueError):
            return naive.replace(tzinfo=series.start.tzinfo)
    return naive


__all__ = ["MeetingResponseCommand", "MeetingStatus"]
