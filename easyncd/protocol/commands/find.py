"""Find (MS-ASCMD 2.2.1.2, protocol 16.1 only): search the user's mail.

``ExecuteSearch/MailBoxSearchCriterion``: ``Query`` with ``FreeText`` (KQL;
easyncd takes its words, every one must occur; ``OR`` / ``NOT`` are refused
with Status 2), ``airsync:Class`` (``Email``; another class finds nothing)
and ``airsync:CollectionId`` (none: every mail folder); ``Options`` with
``Range`` (must start at 0, Status 4 otherwise; at most 100 results) and
``DeepTraversal`` (sub-folders of the CollectionId).  Each result carries
Class, ServerId (the item's Sync ServerId ``<folder>:<uid>``), CollectionId
and Properties: Subject, DateReceived, DisplayTo, DisplayCc, DisplayBcc
(drafts), Importance, Read, IsDraft, Preview (the first 255 characters of the
text), HasAttachments, From.

``GALSearchCriterion``: easyncd has no global address list: Status 1, no
results.  An unknown CollectionId gives the Find Status 3 (FolderSync
required).  Find before 16.1 is refused by the dispatcher (Status 138).
"""
from __future__ import annotations

from enum import IntEnum
from typing import Sequence

from easyncd.protocol.codecs.base import BodyPreference
from easyncd.protocol.codecs.mime import parse_addresses
from easyncd.protocol.commands.base import Command
from easyncd.protocol.commands.search import SearchStatus, render_page, run_mail_query
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailsearch import (
    MAX_RESULTS,
    QueryError,
    RenderOptions,
    free_text_words,
    load_mail_folders,
    parse_range,
)
from easyncd.wbxml import Element

NS = "Find:"
AIRSYNC = "AirSync:"
EMAIL = "Email:"

#: Rendering for Find: no body, a 255-character preview of the text.
FIND_RENDERING = RenderOptions(
    body_preferences=(BodyPreference(1, truncation_size=0, preview=255),))


class FindStatus(IntEnum):
    """Find Status (MS-ASCMD 2.2.3.177.2)."""

    Success = 1
    InvalidRequest = 2
    FolderSyncRequired = 3
    StartWithRangeZero = 4


#: Find has no codes of its own for a failing mail server or refused
#: credentials: the common ServerError (110) and AccessDenied (130) are used.
_SERVER_ERROR = 110
_ACCESS_DENIED = 130


def _text(element: Element | None) -> str:
    if element is None:
        return ""
    text = element.text
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    return text or ""


def _response(store: str, status: int, results: Sequence[Element] = (),
              range_text: str | None = None, total: int | None = None) -> Element:
    response = Element(NS + "Response")
    response.add("ItemOperations:Store", store)
    response.add(NS + "Status", str(status))
    for result in results:
        response.append(result)
    if range_text is not None:
        response.add(NS + "Range", range_text)
    if total is not None:
        response.add(NS + "Total", str(total))
    return response


def _answer(status: int, response: Element | None = None) -> CommandResponse:
    root = Element(NS + "Find")
    root.add(NS + "Status", str(status))
    if response is not None:
        root.append(response)
    return CommandResponse(body=root, status=str(status))


def _display(addresses: str | None) -> str:
    """A DisplayTo-style list (names, or addresses without one) of an
    Email:To/Cc value."""
    return "; ".join(name or addr for name, addr in parse_addresses(addresses))


def find_properties(data: Element) -> Element:
    """Find's Properties of one message from its rendered ApplicationData."""
    props = Element(NS + "Properties")
    for child in data.children:
        if child.tag in (EMAIL + "Subject", EMAIL + "DateReceived", EMAIL + "DisplayTo"):
            props.append(child)
    props.add(NS + "DisplayCc", _display(data.findtext(EMAIL + "Cc")))
    is_draft = data.findtext("Email2:IsDraft") == "1"
    bcc = data.findtext("Email2:Bcc")
    if is_draft and bcc:
        props.add(NS + "DisplayBcc", _display(bcc))
    for tag in (EMAIL + "Importance", EMAIL + "Read"):
        value = data.findtext(tag)
        if value is not None:
            props.add(tag, value)
    props.add("Email2:IsDraft", "1" if is_draft else "0")
    preview = data.findtext("AirSyncBase:Body/AirSyncBase:Preview")
    if preview:
        props.add(NS + "Preview", preview)
    props.add(NS + "HasAttachments", "1" if data.find("AirSyncBase:Attachments") is not None
              else "0")
    sender = data.findtext(EMAIL + "From")
    if sender:
        props.add(EMAIL + "From", sender)
    return props


class FindCommand(Command):
    """``Cmd=Find``."""

    name = "Find"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        execute = body.find(NS + "ExecuteSearch") if body is not None and body.tag == NS + "Find" \
            else None
        if execute is None or not _text(body.find(NS + "SearchId") if body else None).strip():
            return _answer(FindStatus.InvalidRequest)
        gal = execute.find(NS + "GalSearchCriterion")  # MS-ASWBXML spelling
        mailbox = execute.find(NS + "MailBoxSearchCriterion")
        if gal is not None and mailbox is None:
            return _answer(FindStatus.Success, _response("GAL", FindStatus.Success, total=0))
        if mailbox is None:
            return _answer(FindStatus.InvalidRequest)
        try:
            return await self._mailbox(ctx, mailbox)
        except QueryError as exc:
            ctx.log.info("Find from {device_id} refused: {reason}",
                         device_id=ctx.request.device_id, reason=str(exc))
            if exc.reason == "folder":
                return _answer(FindStatus.FolderSyncRequired)
            if exc.reason == "range":
                return _answer(FindStatus.Success,
                               _response("Mailbox", FindStatus.StartWithRangeZero))
            return _answer(FindStatus.InvalidRequest)

    async def _mailbox(self, ctx: CommandContext, criterion: Element) -> CommandResponse:
        query = criterion.find(NS + "Query")
        if query is None:
            raise QueryError("invalid", "no Query")
        text = free_text_words(_text(query.find(NS + "FreeText")))
        if text is None:
            raise QueryError("invalid", "no FreeText")
        classes = [_text(c).strip() for c in query.findall(AIRSYNC + "Class")]
        collection_ids = [_text(c).strip() for c in query.findall(AIRSYNC + "CollectionId")]
        options = criterion.find(NS + "Options")
        range_text = options.findtext(NS + "Range") if options is not None else None
        start, end = parse_range(range_text, must_start_at_zero=True)
        end = min(end, MAX_RESULTS - 1)
        deep = options is not None and options.find(NS + "DeepTraversal") is not None
        folders = await load_mail_folders(ctx)
        mailboxes = folders.scope(collection_ids, deep)
        if any(cls and cls != "Email" for cls in classes):
            mailboxes = ()
        page = await run_mail_query(ctx, mailboxes, text, None, None, start, end)
        if isinstance(page, int):
            return _failed(page)
        if not page.hits:
            return _answer(FindStatus.Success, _response("Mailbox", FindStatus.Success, total=0))
        rendered = await render_page(ctx, folders, page, FIND_RENDERING)
        if isinstance(rendered, int):
            return _failed(rendered)
        results = []
        for folder_id, server_id, data in rendered:
            result = Element(NS + "Result")
            result.add(AIRSYNC + "Class", "Email")
            result.add(AIRSYNC + "ServerId", server_id)
            result.add(AIRSYNC + "CollectionId", folder_id)
            result.append(find_properties(data))
            results.append(result)
        range_out = f"{start}-{start + len(results) - 1}" if results else None
        return _answer(FindStatus.Success, _response(
            "Mailbox", FindStatus.Success, results, range_out, page.total))


def _failed(status: int) -> CommandResponse:
    return _answer(_ACCESS_DENIED if status == SearchStatus.AccessDenied else _SERVER_ERROR)


__all__ = ["FIND_RENDERING", "FindCommand", "FindStatus", "find_properties"]
