"""What Search (Store ``Mailbox``) and Find share: the mail folders a query
covers, the query's parts, paging, and fetching the hits of one page.

The search itself runs on the IMAP server (``UID SEARCH TEXT ...`` per
mailbox, Dovecot's full-text index when one is configured) through
:meth:`IMailBackend.search`, which answers newest first with only the UID and
INTERNALDATE of each hit.  Only the page the device asked for is then
fetched: first FLAGS, INTERNALDATE, size, BODYSTRUCTURE and the header block,
then the body sections :func:`~easyncd.protocol.codecs.email.plan_sections`
names for the device's body preferences (the same plan as Sync).  No folder
is ever fetched whole.

Results are named ``"<folder server id>:<uid>"`` (the item ServerId; Search
calls it LongId), so ItemOperations can fetch them by either.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from easyncd.backends.imap.bodystructure import BodyPart, parse_bodystructure
from easyncd.backends.interfaces import MailQuery, NoSuchMailbox, SearchHit
from easyncd.protocol.codecs.base import BodyPreference, CodecContext
from easyncd.protocol.codecs.email import MessageView, plan_sections
from easyncd.protocol.codecs.recurrence import parse_eas_datetime
from easyncd.protocol.context import CommandContext
from easyncd.protocol.mailfolders import is_mail_folder, mailbox_of
from easyncd.protocol.serverids import long_id, split_long_id
from easyncd.store.interfaces import Folder
from easyncd.wbxml import Element

__all__ = [
    "DEFAULT_BODY", "MAX_RESULTS", "MailFolderIndex", "PageOfHits",
    "QueryError", "RenderOptions", "fetch_views", "free_text_words", "load_mail_folders",
    "parse_eas_date", "parse_range", "render_options", "result_id", "search_page",
    "split_result_id",
]

#: The most results one Search/Find answer carries (MS-ASCMD 2.2.3.143.3: Mailbox 0-99).
MAX_RESULTS = 100
#: The body sent when the device names no BodyPreference: plain text cut at 5 KB
#: (a search answers up to 100 messages; whole bodies would be wasted).
DEFAULT_BODY = BodyPreference(body_type=1, truncation_size=5120)

#: What the first FETCH of a page asks for: enough to plan the body sections.
_FIRST_ITEMS = ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "BODY.PEEK[HEADER]")

_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

AIRSYNC = "AirSync:"
BASE = "AirSyncBase:"


class QueryError(ValueError):
    """The query cannot be run.  ``reason``: ``"invalid"`` (malformed or
    unsupported value), ``"complex"`` (a construct easyncd does not search
    by), ``"folder"`` (an unknown CollectionId: the device's hierarchy is
    stale), ``"range"`` (a malformed Range)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# -- folders -----------------------------------------------------------------------------

@dataclass(frozen=True)
class MailFolderIndex:
    """The user's mail folders as the device knows them (the state store's
    folders whose backend_id is ``imap:<mailbox>``)."""

    folders: Mapping[str, Folder]

    def mailbox_of(self, server_id: str) -> str | None:
        """The IMAP mailbox behind a folder server id (None: not a mail folder)."""
        folder = self.folders.get(server_id)
        return mailbox_of(folder) if folder is not None else None

    def server_id_of(self, mailbox: str) -> str | None:
        """The folder server id of a mailbox."""
        for server_id, folder in self.folders.items():
            if mailbox_of(folder) == mailbox:
                return server_id
        return None

    def scope(self, collection_ids: Sequence[str], deep: bool) -> tuple[str, ...]:
        """The mailboxes a query covers: every mail folder when no
        CollectionId was given, else the named ones (and, with
        DeepTraversal, every folder below them)."""
        if not collection_ids:
            chosen = list(self.folders)
        else:
            chosen = []
            for cid in collection_ids:
                if cid not in self.folders:
                    raise QueryError("folder", f"unknown mail folder {cid!r}")
                chosen.append(cid)
            if deep:
                children: dict[str, list[str]] = {}
                for sid, folder in self.folders.items():
                    children.setdefault(folder.parent_id, []).append(sid)
                stack = list(chosen)
                while stack:
                    for child in children.get(stack.pop(), ()):
                        if child not in chosen:
                            chosen.append(child)
                            stack.append(child)
        return tuple(dict.fromkeys(mailbox_of(self.folders[sid]) or "" for sid in chosen))


async def load_mail_folders(ctx: CommandContext) -> MailFolderIndex:
    """The user's mail folders from the state store."""
    store: Any = ctx.store
    folders: Iterable[Folder] = await store.list_folders(ctx.request.account)
    return MailFolderIndex({f.server_id: f for f in folders if is_mail_folder(f)})


def result_id(folder_server_id: str, uid: int) -> str:
    """The id of a search result (Search LongId, Find ServerId):
    ``"<folder server id>:<uid>"``, the same as the item's Sync ServerId."""
    return long_id(folder_server_id, str(uid))


def split_result_id(value: str) -> tuple[str, int] | None:
    """The inverse of :func:`result_id`; None when it is not one."""
    parts = split_long_id(value)
    if parts is None or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


# -- query parts -------------------------------------------------------------------------

def parse_range(text: str | None, *, must_start_at_zero: bool = False) -> tuple[int, int]:
    """A Range ``"m-n"`` -> (first, last) index, at most :data:`MAX_RESULTS`
    items (a longer range is cut); None gives ``0-99``.  QueryError
    ``"range"`` when malformed (or not from 0 when ``must_start_at_zero``)."""
    if text is None or not text.strip():
        return 0, MAX_RESULTS - 1
    first, sep, last = text.strip().partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise QueryError("range", f"bad Range {text!r}")
    start, end = int(first), int(last)
    if end < start:
        raise QueryError("range", f"bad Range {text!r}")
    if must_start_at_zero and start != 0:
        raise QueryError("range", f"Range {text!r} does not start at 0")
    return start, min(end, start + MAX_RESULTS - 1)


def free_text_words(text: str | None) -> str | None:
    """The words of a FreeText value (quotes, KQL ``AND`` and a leading
    ``property:`` dropped), joined by spaces; None when nothing is left.
    Every word must occur (IMAP ``TEXT`` per word, case-insensitive)."""
    if not text:
        return None
    words = []
    for raw in text.replace('"', " ").split():
        if raw == "AND":
            continue
        if raw in ("OR", "NOT"):
            raise QueryError("complex", f"{raw} in a free-text query")
        name, sep, value = raw.partition(":")
        if sep and name.isalpha() and value:
            raw = value
        words.append(raw)
    return " ".join(words) or None


def parse_eas_date(text: str | None) -> datetime.datetime:
    """An EAS date-time value (``2023-11-14T08:00:00.000Z``) as an aware UTC
    datetime; QueryError ``"invalid"`` when it is not one."""
    try:
        value, _utc = parse_eas_datetime(text or "")
    except ValueError as exc:
        raise QueryError("invalid", str(exc)) from None
    return value.replace(tzinfo=datetime.timezone.utc)


# -- rendering options -------------------------------------------------------------------

@dataclass(frozen=True)
class RenderOptions:
    """How the hits are rendered: the body preferences (never empty),
    BodyPartPreference (14.1+) and MIMESupport."""

    body_preferences: tuple[BodyPreference, ...] = (DEFAULT_BODY,)
    body_part_preferences: tuple[BodyPreference, ...] = ()
    mime_support: int = 0


def _int(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())


def _preferences(options: Element, tag: str) -> tuple[BodyPreference, ...]:
    found = []
    for element in options.findall(BASE + tag):
        body_type = _int(element.findtext(BASE + "Type"))
        if body_type is None:
            raise QueryError("invalid", f"{tag} without a valid Type")
        found.append(BodyPreference(
            body_type=body_type,
            truncation_size=_int(element.findtext(BASE + "TruncationSize")),
            all_or_none=element.findtext(BASE + "AllOrNone") == "1",
            preview=_int(element.findtext(BASE + "Preview")),
        ))
    return tuple(found)


def render_options(options: Element | None) -> RenderOptions:
    """The rendering options of a Search ``Options`` element
    (AirSyncBase BodyPreference / BodyPartPreference, AirSync MIMESupport)."""
    if options is None:
        return RenderOptions()
    bodies = _preferences(options, "BodyPreference") or (DEFAULT_BODY,)
    mime = _int(options.findtext(AIRSYNC + "MIMESupport")) or 0
    if mime not in (0, 1, 2):
        raise QueryError("invalid", f"MIMESupport {mime}")
    return RenderOptions(bodies, _preferences(options, "BodyPartPreference"), mime)


# -- running --------------------------------------------------------------------------

@dataclass(frozen=True)
class PageOfHits:
    """One page of a search: its hits (newest first), the index of the first,
    and how many matched in all."""

    hits: tuple[SearchHit, ...]
    start: int
    total: int

    @property
    def range_text(self) -> str | None:
        """The Range of the answer (``"m-n"``), None when the page is empty."""
        if not self.hits:
            return None
        return f"{self.start}-{self.start + len(self.hits) - 1}"


async def search_page(mail: Any, user: str, password: str, query: MailQuery,
                      start: int, end: int) -> PageOfHits:
    """Run ``query`` on the IMAP server, one mailbox at a time (a mailbox
    that vanished is skipped), and keep the hits ``start..end`` of the
    merged list, newest first.  ``query.mailboxes`` must be given."""
    hits: list[SearchHit] = []
    for mailbox in query.mailboxes or ():
        try:
            hits.extend(await mail.search(user, password, replace(query, mailboxes=(mailbox,))))
        except NoSuchMailbox:
            continue  # gone on the server; the next FolderSync drops it
    hits.sort(key=lambda h: (h.internaldate or _EPOCH, h.mailbox, h.uid), reverse=True)
    return PageOfHits(tuple(hits[start:end + 1]), start, len(hits))


def _item(section: str, limit: int | None) -> tuple[str, str]:
    """(FETCH item, key of the answer in FetchedMessage.sections)."""
    if limit is None:
        return f"BODY.PEEK[{section}]", section
    return f"BODY.PEEK[{section}]<0.{limit}>", f"{section}<0>"


async def fetch_views(mail: Any, user: str, password: str, mailbox: str,
                      uids: Sequence[int], ctx: CodecContext,
                      options: RenderOptions) -> dict[int, MessageView]:
    """The messages ``uids`` of ``mailbox`` with what rendering them for
    ``options`` needs: one FETCH for flags, structure and headers, then one
    per distinct section plan.  UIDs that no longer exist are left out."""
    first = await mail.fetch_messages(user, password, mailbox, list(uids), list(_FIRST_ITEMS))
    heads: dict[int, tuple[Any, BodyPart | None]] = {}
    plans: dict[tuple[tuple[str, int | None], ...], list[int]] = {}
    for message in first:
        structure: BodyPart | None = None
        if message.bodystructure is not None:
            try:
                structure = parse_bodystructure(message.bodystructure)
            except ValueError:
                structure = None
        heads[message.uid] = (message, structure)
        wanted = plan_sections(structure, ctx, mime_support=options.mime_support,
                               body_part_preferences=options.body_part_preferences)
        plans.setdefault(tuple(wanted), []).append(message.uid)
    sections: dict[int, dict[str, bytes]] = {uid: {} for uid in heads}
    for plan, members in plans.items():
        if not plan:
            continue
        items = [_item(section, limit) for section, limit in plan]
        fetched = await mail.fetch_messages(user, password, mailbox, members,
                                            [item for item, _key in items])
        for message in fetched:
            if message.uid not in sections:
                continue
            for (section, _limit), (_item_text, key) in zip(plan, items):
                if key in message.sections:
                    sections[message.uid][section] = message.sections[key]
                elif section in message.sections:
                    sections[message.uid][section] = message.sections[section]
    views: dict[int, MessageView] = {}
    for uid, (message, structure) in heads.items():
        views[uid] = MessageView(
            uid=uid,
            flags=frozenset(message.flags or ()),
            internaldate=message.internaldate,
            size=message.size,
            headers=message.sections.get("HEADER", b""),
            structure=structure,
            sections=sections[uid],
        )
    return views
