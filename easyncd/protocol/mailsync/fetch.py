"""The messages of one Sync page, fetched in two round trips and rendered.

1. ``UID FETCH <page> (FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE
   BODY.PEEK[HEADER])`` for the whole page;
2. :func:`~easyncd.protocol.codecs.email.plan_sections` per message, the
   messages grouped by the list of sections they need, and one ``UID FETCH``
   per group of just those sections (cut where the plan says; a group's cut
   is the largest of its members').

A message whose rendering fails still reaches the device, as a short stand-in
(:func:`placeholder`) -- never stalling the folder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping, Sequence

from twisted.logger import Logger

from easyncd.backends.imap.bodystructure import BodyPart, parse_bodystructure
from easyncd.backends.interfaces import MailError
from easyncd.protocol.codecs import recurrence as rec_codec
from easyncd.protocol.codecs.base import CodecContext, CodecError
from easyncd.protocol.codecs.email import MessageView, email_to_eas, plan_sections
from easyncd.protocol.sync.request import SyncOptions
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

log = Logger()

HEAD_ITEMS = ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "BODY.PEEK[HEADER]")
DELETED = "\\deleted"
_PARTIAL = re.compile(r"<\d+>$")

#: The body of the stand-in for a message that cannot be rendered.
PLACEHOLDER_TEXT = ("This message could not be converted for this device. "
                    "Open it in another mail program.")


@dataclass
class Page:
    """What fetching a page found: rendered messages, the UIDs that no longer
    exist, the ones now ``\\Deleted``, and the flags seen (for the snapshot)."""

    rendered: dict[int, Element] = field(default_factory=dict)
    missing: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)


#: Loads the follow-up flag data easyncd keeps for some UIDs (see
#: :mod:`easyncd.protocol.codecs.emailflag`).
FollowUpLoader = Callable[[Sequence[int]], Awaitable[Mapping[int, Mapping[str, str]]]]


def _item(section: str, limit: int | None) -> str:
    if limit is None:
        return f"BODY.PEEK[{section}]"
    return f"BODY.PEEK[{section}]<0.{limit}>"


def _sections(raw: dict[str, bytes]) -> dict[str, bytes]:
    """Fetched sections keyed by part id (``"1.2<0>"`` -> ``"1.2"``)."""
    return {_PARTIAL.sub("", key): value for key, value in raw.items()}


def _structure(message: Any) -> BodyPart | None:
    if not message.bodystructure:
        return None
    try:
        return parse_bodystructure(message.bodystructure)
    except Exception:  # noqa: BLE001 - a broken structure is read as unknown
        return None


class PageFetcher:
    """Fetches and renders pages of one folder for one request."""

    def __init__(self, backend: Any, user: str, password: str | None, mailbox: str,
                 folder_server_id: str, cctx: CodecContext, options: SyncOptions,
                 follow_ups: FollowUpLoader | None = None) -> None:
        self.backend = backend
        self.follow_ups = follow_ups
        self.user = user
        self.password = password
        self.mailbox = mailbox
        self.folder_server_id = folder_server_id
        self.cctx = cctx
        self.options = options

    def _plan(self, structure: BodyPart | None) -> list[tuple[str, int | None]]:
        options = self.options
        return plan_sections(structure, self.cctx, mime_support=options.mime_support,
                             mime_truncation=options.mime_truncation,
                             body_part_preferences=options.body_part_preferences)

    async def fetch(self, uids: Sequence[int]) -> Page:
        """Fetch and render ``uids`` (MailError propagates: folder-level)."""
        page = Page()
        if not uids:
            return page
        heads = await self.backend.fetch_messages(self.user, self.password, self.mailbox,
                                                  list(uids), list(HEAD_ITEMS))
        views: dict[int, MessageView] = {}
        stored: Mapping[int, Mapping[str, str]] = {}
        if self.follow_ups is not None and heads:
            stored = await self.follow_ups([m.uid for m in heads])
        groups: dict[tuple[str, ...], tuple[list[int], dict[str, int | None]]] = {}
        for message in heads:
            uid = message.uid
            flags = frozenset(message.flags or ())
            page.flags[uid] = flags
            if any(f.lower() == DELETED for f in flags):
                page.deleted.add(uid)
                continue
            structure = _structure(message)
            views[uid] = MessageView(
                uid=uid, flags=flags, internaldate=message.internaldate, size=message.size,
                headers=message.sections.get("HEADER", b""), structure=structure,
                follow_up=stored.get(uid))
            try:
                plan = self._plan(structure)
            except Exception as exc:  # noqa: BLE001
                log.warn("Sync: cannot plan message {uid} of {mailbox}: {error}",
                         uid=uid, mailbox=self.mailbox, error=repr(exc))
                plan = []
            if not plan:
                continue
            key = tuple(section for section, _ in plan)
            members, limits = groups.setdefault(key, ([], {}))
            members.append(uid)
            for section, limit in plan:
                if section in limits:
                    old = limits[section]
                    limits[section] = None if old is None or limit is None else max(old, limit)
                else:
                    limits[section] = limit
        page.missing = set(uids) - set(page.flags)
        bodies: dict[int, dict[str, bytes]] = {}
        for key, (members, limits) in groups.items():
            items = [_item(section, limits[section]) for section in key]
            try:
                found = await self.backend.fetch_messages(self.user, self.password,
                                                          self.mailbox, members, items)
            except MailError as exc:
                log.warn("Sync: fetching bodies of {count} messages of {mailbox} failed: "
                         "{error}", count=len(members), mailbox=self.mailbox, error=str(exc))
                continue
            for message in found:
                bodies[message.uid] = _sections(message.sections)
        for uid in uids:
            view = views.get(uid)
            if view is None:
                continue
            if uid in bodies:
                view = MessageView(uid=view.uid, flags=view.flags,
                                   internaldate=view.internaldate, size=view.size,
                                   headers=view.headers, structure=view.structure,
                                   sections=bodies[uid], follow_up=view.follow_up)
            element, ok = self.render(view)
            page.rendered[uid] = element
            if not ok:
                page.failed.add(uid)
        return page

    def render(self, view: MessageView) -> tuple[Element, bool]:
        """ApplicationData of one message and True, or its stand-in and False
        when it cannot be rendered."""
        options = self.options
        try:
            return email_to_eas(view, self.cctx, folder_server_id=self.folder_server_id,
                                mime_support=options.mime_support,
                                mime_truncation=options.mime_truncation,
                                body_part_preferences=options.body_part_preferences), True
        except CodecError as exc:
            log.warn("Sync: message {uid} of {mailbox} cannot be rendered: {error}",
                     uid=view.uid, mailbox=self.mailbox, error=str(exc))
            return placeholder(view, self.cctx), False


def placeholder(view: MessageView, cctx: CodecContext) -> Element:
    """A minimal ApplicationData for a message that cannot be rendered: its
    date, read state and an explanation as the body."""
    version = cctx.protocol_version
    app = Element("AirSync:ApplicationData")
    subject = "(message cannot be shown)"
    app.add("Email:Subject", subject)
    when = view.internaldate or datetime.fromtimestamp(cctx.now or 0, timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    app.add("Email:DateReceived", rec_codec.format_long(when.astimezone(timezone.utc)))
    app.add("Email:Importance", "1")
    app.add("Email:Read", "1" if view.has_flag("\\Seen") else "0")
    if at_least(version, "12.0"):
        body = app.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "1")
        body.add("AirSyncBase:EstimatedDataSize", str(len(PLACEHOLDER_TEXT)))
        body.add("AirSyncBase:Data", PLACEHOLDER_TEXT)
    else:
        app.add("Email:Body", PLACEHOLDER_TEXT)
        app.add("Email:BodyTruncated", "0")
    app.add("Email:MessageClass", "IPM.Note")
    app.add("Email:InternetCPID", "65001")
    return app


__all__ = ["HEAD_ITEMS", "Page", "PageFetcher", "placeholder"]
