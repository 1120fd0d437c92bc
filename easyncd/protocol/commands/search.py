"""Search (MS-ASCMD 2.2.1.16): the user's mailbox (12.0+), by free text,
folder and received date, with paging.

Stores:

* ``Mailbox`` (12.0 and later): the query is an ``And`` (or a lone ``Or``
  branch) of ``airsync:Class`` (``Email``; any other class has no mail, so no
  results), ``airsync:CollectionId`` (also as ``EqualTo``), ``FreeText``
  (every word must occur, IMAP ``TEXT``), ``GreaterThan`` / ``LessThan`` on
  ``email:DateReceived``.  Options: ``Range`` (default and most ``0-99``),
  ``DeepTraversal`` (sub-folders of the CollectionId), ``RebuildResults``
  (results are never cached, so every search is rebuilt),
  ``BodyPreference`` / ``BodyPartPreference`` / ``MIMESupport`` (rendering of
  ``Properties``; without a BodyPreference plain text cut at 5 KB),
  ``RightsManagementSupport`` (nothing here is protected: ignored).  A query
  without free text and without a date bound is refused (Status 2): it would
  list whole folders.  ``ConversationId`` and ``Or`` of several branches are
  answered "too complex" (8).  An unknown CollectionId gives 11 (FolderSync
  required).  Before 12.0 a mailbox search is invalid (2).
* ``GAL``: easyncd has no global address list: Status 1 and no results.
* ``DocumentLibrary``: no document libraries are offered: Status 5 (access
  denied).  Any other store name: 2.

Mail backend trouble is the Store's Status 3 (5 for refused credentials).
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from easyncd.backends.interfaces import MailAuthFailed, MailError, MailQuery
from easyncd.protocol.codecs.base import CodecContext, CodecError
from easyncd.protocol.codecs.email import MessageView, email_to_eas
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.mailsearch import (
    MailFolderIndex,
    PageOfHits,
    QueryError,
    RenderOptions,
    fetch_views,
    free_text_words,
    load_mail_folders,
    parse_eas_date,
    parse_range,
    render_options,
    result_id,
    search_page,
)
from easyncd.protocol.mailsync.fetch import placeholder
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

NS = "Search:"
AIRSYNC = "AirSync:"

#: The first version that searches the mailbox.
MAILBOX_FROM = "12.0"


class SearchStatus(IntEnum):
    """Status of the Search and Store elements (MS-ASCMD 2.2.3.177.13)."""

    Success = 1
    InvalidRequest = 2
    ServerError = 3
    BadLink = 4
    AccessDenied = 5
    NotFound = 6
    ConnectionFailed = 7
    TooComplex = 8
    TimedOut = 10
    FolderSyncRequired = 11
    EndOfRange = 12
    AccessBlocked = 13
    CredentialsRequired = 14


_STATUS_OF_REASON = {
    "invalid": SearchStatus.InvalidRequest,
    "range": SearchStatus.InvalidRequest,
    "complex": SearchStatus.TooComplex,
    "folder": SearchStatus.FolderSyncRequired,
}


@dataclass
class MailboxQuery:
    """A parsed Mailbox query."""

    words: list[str] = field(default_factory=list)
    collection_ids: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    since: datetime.datetime | None = None
    before: datetime.datetime | None = None

    @property
    def text(self) -> str | None:
        """The free text (None: none)."""
        return " ".join(self.words) or None


def _date_bound(element: Element) -> datetime.datetime:
    props = [c for c in element.children if c.tag != NS + "Value"]
    if len(props) != 1 or props[0].tag != "Email:DateReceived":
        raise QueryError("complex", f"{element.tag} on {[p.tag for p in props]}")
    return parse_eas_date(element.findtext(NS + "Value"))


def _walk(element: Element, query: MailboxQuery) -> None:
    for child in element.children:
        tag = child.tag
        if tag == NS + "And":
            _walk(child, query)
        elif tag == NS + "Or":
            if len(child.children) > 1:
                raise QueryError("complex", "Or of several conditions")
            _walk(child, query)
        elif tag == AIRSYNC + "Class":
            query.classes.append(_text(child).strip())
        elif tag == AIRSYNC + "CollectionId":
            query.collection_ids.append(_text(child).strip())
        elif tag == NS + "FreeText":
            words = free_text_words(_text(child))
            if words:
                query.words.append(words)
        elif tag == NS + "GreaterThan":
            bound = _date_bound(child) + datetime.timedelta(microseconds=1)
            query.since = bound if query.since is None else max(query.since, bound)
        elif tag == NS + "LessThan":
            bound = _date_bound(child)
            query.before = bound if query.before is None else min(query.before, bound)
        elif tag == NS + "EqualTo":
            props = [c for c in child.children if c.tag != NS + "Value"]
            value = (child.findtext(NS + "Value") or "").strip()
            if len(props) == 1 and props[0].tag == AIRSYNC + "CollectionId" and value:
                query.collection_ids.append(value)
            elif len(props) == 1 and props[0].tag == AIRSYNC + "Class" and value:
                query.classes.append(value)
            else:
                raise QueryError("complex", "EqualTo on something else than a folder")
        elif tag == NS + "ConversationId":
            raise QueryError("complex", "conversation search")
        else:
            raise QueryError("invalid", f"unexpected {tag} in a mailbox query")


def _text(element: Element) -> str:
    text = element.text
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    return text or ""


def parse_mailbox_query(query: Element | None) -> MailboxQuery:
    """The conditions of a Mailbox ``Query`` element; QueryError."""
    if query is None:
        raise QueryError("invalid", "no Query")
    parsed = MailboxQuery()
    _walk(query, parsed)
    if parsed.text is None and parsed.since is None and parsed.before is None:
        raise QueryError("invalid", "neither free text nor a date range")
    return parsed


@dataclass(frozen=True)
class StoreAnswer:
    """What goes into the response's Store element."""

    status: int
    results: list[Element] = field(default_factory=list)
    range_text: str | None = None
    total: int | None = None
    empty_result: bool = False

    def element(self) -> Element:
        """The ``Search:Store`` element."""
        store = Element(NS + "Store")
        store.add(NS + "Status", str(self.status))
        for result in self.results:
            store.append(result)
        if not self.results and self.empty_result:
            store.add(NS + "Result")
        if self.range_text is not None:
            store.add(NS + "Range", self.range_text)
        if self.total is not None:
            store.add(NS + "Total", str(self.total))
        return store


class SearchCommand(Command):
    """``Cmd=Search``."""

    name = "Search"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        answer = await self._answer(ctx, body)
        root = Element(NS + "Search")
        root.add(NS + "Status", str(SearchStatus.Success.value))
        root.add(NS + "Response").append(answer.element())
        return CommandResponse(body=root, status=str(answer.status))

    async def _answer(self, ctx: CommandContext, body: Element | None) -> StoreAnswer:
        store = body.find(NS + "Store") if body is not None and body.tag == NS + "Search" else None
        if store is None:
            return StoreAnswer(SearchStatus.InvalidRequest)
        name = (store.findtext(NS + "Name") or "").strip()
        if name.lower() == "mailbox":
            if not at_least(ctx.request.protocol_version, MAILBOX_FROM):
                return StoreAnswer(SearchStatus.InvalidRequest)
            try:
                return await search_mailbox(ctx, store)
            except QueryError as exc:
                ctx.log.info("Search from {device_id} refused: {reason}",
                             device_id=ctx.request.device_id, reason=str(exc))
                return StoreAnswer(_STATUS_OF_REASON[exc.reason])
        if name.upper() == "GAL":
            return StoreAnswer(SearchStatus.Success, total=0)
        if name.lower() == "documentlibrary":
            return StoreAnswer(SearchStatus.AccessDenied)
        return StoreAnswer(SearchStatus.InvalidRequest)


def codec_context(ctx: CommandContext, options: RenderOptions) -> CodecContext:
    """The CodecContext for rendering search hits."""
    user = ctx.request.account
    clock: Any = ctx.clock
    return CodecContext(
        protocol_version=ctx.request.protocol_version,
        body_preferences=options.body_preferences,
        now=float(clock.seconds()),
        user_address=user if "@" in user else None,
    )


async def run_mail_query(ctx: CommandContext, mailboxes: tuple[str, ...], text: str | None,
                         since: datetime.datetime | None, before: datetime.datetime | None,
                         start: int, end: int) -> PageOfHits | int:
    """Run a search on the mail backend: the page, or a SearchStatus when the
    backend failed (shared with Find, which maps it to its own status)."""
    mail = ctx.services.get("mail")
    if mail is None or not mailboxes:
        return PageOfHits((), start, 0)
    if ctx.password is None:
        return SearchStatus.AccessDenied
    query = MailQuery(text=text, since=since, before=before, mailboxes=mailboxes)
    try:
        return await search_page(mail, ctx.request.account, ctx.password, query, start, end)
    except MailAuthFailed:
        return SearchStatus.AccessDenied
    except MailError as exc:
        ctx.log.warn("Mail search of {user} failed: {error}", user=ctx.request.account,
                     error=str(exc))
        return SearchStatus.ServerError


async def render_page(ctx: CommandContext, folders: MailFolderIndex, page: PageOfHits,
                      options: RenderOptions) -> list[tuple[str, str, Element]] | int:
    """(folder server id, result id, ApplicationData) per hit of the page, in
    order (a message that cannot be rendered gets Sync's stand-in); a
    SearchStatus when the backend failed."""
    mail: Any = ctx.services["mail"]
    password = ctx.password or ""
    codec_ctx = codec_context(ctx, options)
    by_mailbox: dict[str, list[int]] = {}
    for hit in page.hits:
        by_mailbox.setdefault(hit.mailbox, []).append(hit.uid)
    views: dict[tuple[str, int], MessageView] = {}
    try:
        for mailbox, uids in by_mailbox.items():
            fetched = await fetch_views(mail, ctx.request.account, password, mailbox, uids,
                                        codec_ctx, options)
            views.update(((mailbox, uid), found) for uid, found in fetched.items())
    except MailAuthFailed:
        return SearchStatus.AccessDenied
    except MailError as exc:
        ctx.log.warn("Fetching search hits of {user} failed: {error}",
                     user=ctx.request.account, error=str(exc))
        return SearchStatus.ServerError
    rendered: list[tuple[str, str, Element]] = []
    for hit in page.hits:
        folder_id = folders.server_id_of(hit.mailbox)
        view = views.get((hit.mailbox, hit.uid))
        if folder_id is None or view is None:
            continue  # expunged between SEARCH and FETCH
        try:
            data = email_to_eas(
                view, codec_ctx, folder_server_id=folder_id, mime_support=options.mime_support,
                body_part_preferences=options.body_part_preferences)
        except CodecError as exc:
            ctx.log.warn("Search hit {uid} in {mailbox} cannot be rendered: {error}",
                         uid=hit.uid, mailbox=hit.mailbox, error=str(exc))
            data = placeholder(view, codec_ctx)
        rendered.append((folder_id, result_id(folder_id, hit.uid), data))
    return rendered


async def search_mailbox(ctx: CommandContext, store: Element) -> StoreAnswer:
    """Search the user's mail for a ``Store`` whose Name is Mailbox."""
    query = parse_mailbox_query(store.find(NS + "Query"))
    options = store.find(NS + "Options")
    start, end = parse_range(options.findtext(NS + "Range") if options is not None else None)
    deep = options is not None and options.find(NS + "DeepTraversal") is not None
    rendering = render_options(options)
    folders = await load_mail_folders(ctx)
    mailboxes = folders.scope(query.collection_ids, deep)
    if any(cls and cls != "Email" for cls in query.classes):
        mailboxes = ()
    page = await run_mail_query(ctx, mailboxes, query.text, query.since, query.before,
                                start, end)
    if isinstance(page, int):
        return StoreAnswer(page)
    if not page.hits:
        return StoreAnswer(SearchStatus.Success, total=page.total, empty_result=True)
    rendered = await render_page(ctx, folders, page, rendering)
    if isinstance(rendered, int):
        return StoreAnswer(rendered)
    results = []
    for folder_id, long_id, data in rendered:
        result = Element(NS + "Result")
        result.add(AIRSYNC + "Class", "Email")
        result.add(NS + "LongId", long_id)
        result.add(AIRSYNC + "CollectionId", folder_id)
        result.add(NS + "Properties").children.extend(data.children)
        results.append(result)
    range_text = f"{start}-{start + len(results) - 1}" if results else None
    return StoreAnswer(SearchStatus.Success, results, range_text, page.total,
                       empty_result=True)


__all__ = ["MailboxQuery", "SearchCommand", "SearchStatus", "codec_context",
           "parse_mailbox_query", "render_page", "run_mail_query", "search_mailbox"]
