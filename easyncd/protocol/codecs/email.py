"""Email items (MS-ASEMAIL, MS-ASAIRS): an IMAP message -> AirSync ApplicationData.

The IMAP side fetches the header block, the BODYSTRUCTURE and only the
sections :func:`plan_sections` names (the body part chosen for the device's
BodyPreference, cut a little past the truncation size; the invitation's
text/calendar part; the whole message only for MIME bodies).  Nothing here
parses a whole message with the ``email`` package.

Body choice (12.0+): a Type 4 (MIME) preference is honoured when MIMESupport
is 2, or 1 and the message is S/MIME; an S/MIME message with MIMESupport 1 or
2 always goes out as whole MIME.  Otherwise the device's preferences are tried
in order (Type 3 RTF is answered as plain text); ``AllOrNone`` skips a
preference whose body would be cut.  MIME Data is the raw message: text when
it is valid UTF-8 (what nearly all 7-bit mail is), opaque bytes otherwise,
so a signature never breaks.  Plain and HTML bodies are decoded from any
charset to clean UTF-8 (see :mod:`.mime`).

Before 12.0 the body is Email:Body / BodySize / BodyTruncated cut by the
Truncation code, or, with MIMESupport, Email:MIMEData / MIMESize /
MIMETruncated cut by the MIMETruncation code.

Attachments are the leaves that are not the body (and not an invitation's
calendar part); ``message/rfc822`` parts are attachments (Method 5) and are
not descended into.  FileReference is ``<quoted folder id>:<uid>:<part id>``.
"""
from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from easyncd.backends.groupware.event import Event
from easyncd.backends.groupware.vobj.calendar import ICalendarError, parse_ics
from easyncd.backends.imap.bodystructure import BodyPart
from easyncd.protocol.codecs import recurrence as rec_codec
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError
from easyncd.protocol.codecs.body import legacy_truncation_limit
from easyncd.protocol.codecs.emailflag import flag_element
from easyncd.protocol.codecs.mime import (
    Headers,
    decode_header,
    decode_text,
    decode_transfer,
    format_address,
    html_to_text,
    parse_addresses,
    parse_headers,
    text_to_html,
)
from easyncd.protocol.codecs.timezone import blob_for_tzinfo
from easyncd.protocol.versions import at_least as _version_at_least
from easyncd.wbxml import Element

__all__ = [
    "AttachmentRef", "BodyChoice", "MIME_TRUNCATION", "MessageView", "attachment_list",
    "body_parts", "conversation_id", "conversation_index", "email_to_eas", "file_reference", "message_class", "parse_file_reference",
    "plan_sections",
]

_UTC = ZoneInfo("UTC")
#: Version comparisons are made many times per message: cached.
at_least = lru_cache(maxsize=128)(_version_at_least)
BODY_PLAIN, BODY_HTML, BODY_RTF, BODY_MIME = 1, 2, 3, 4
MAX_PREVIEW = 255
#: AirSync:MIMETruncation codes (MS-ASCMD 2.2.3.108) -> bytes (None: whole).
MIME_TRUNCATION: dict[int, int | None] = {
    0: 0, 1: 4096, 2: 5120, 3: 7168, 4: 10240, 5: 20480, 6: 51200, 7: 102400, 8: None,
}
#: How much of an encoded part is fetched per byte of output wanted.
_ENCODING_FACTOR = {"base64": 1.4, "quoted-printable": 3.0}
_FETCH_MARGIN = 1024
_PREVIEW_FETCH = 4096
_CALENDAR_LIMIT = 512 * 1024
_SYSTEM_KEYWORDS = frozenset(k.lower() for k in (
    "$Forwarded", "$MDNSent", "$Junk", "$NotJunk", "Junk", "NonJunk", "$Phishing",
    "$SubmitPending", "$Submitted", "$HasAttachment", "$HasNoAttachment", "$Important",
    "$IsTrusted", "$Label1", "$Label2", "$Label3", "$Label4", "$Label5", "Old",
))
_THUNDERBIRD_LABELS = {"$label1": "Important", "$label2": "Work", "$label3": "Personal",
                       "$label4": "To Do", "$label5": "Later"}
_SMIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_SIG_PROTOCOLS = ("application/pkcs7-signature", "application/x-pkcs7-signature")
_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|tr|rif|r)\s*(\[\d+\])?\s*:\s*)+", re.I)
_MSGID = re.compile(r"<[^<>\s]+>")
_METHOD = re.compile(rb"^METHOD:\s*([A-Za-z-]+)", re.M | re.I)
_PARTSTAT = re.compile(rb"PARTSTAT=([A-Za-z-]+)", re.I)
_GOID_CLASS = bytes.fromhex("040000008200E00074C5B7101A82E008")


# -- the input ------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageView:
    """What the IMAP side fetched for one message."""

    uid: int
    flags: frozenset[str]
    internaldate: datetime | None
    size: int | None
    #: BODY.PEEK[HEADER]: the whole header block.
    headers: bytes
    #: The parsed BODYSTRUCTURE (None: unknown, the body is section "TEXT").
    structure: BodyPart | None
    #: Fetched sections by part id ("1", "1.2", "TEXT", "" = the whole message).
    sections: Mapping[str, bytes] = field(default_factory=dict)
    #: The follow-up flag data easyncd keeps for the message (see
    #: :mod:`.emailflag`; None: none stored).
    follow_up: Mapping[str, str] | None = None

    @property
    def keywords(self) -> tuple[str, ...]:
        """The IMAP keywords that are the user's categories (system flags and
        well-known protocol keywords left out; Thunderbird labels named)."""
        result: list[str] = []
        for flag in sorted(self.flags):
            low = flag.lower()
            if flag.startswith("\\"):
                continue
            if low in _THUNDERBIRD_LABELS:
                name = _THUNDERBIRD_LABELS[low]
            elif low in _SYSTEM_KEYWORDS:
                continue
            else:
                name = flag
            if name not in result:
                result.append(name)
        return tuple(result)

    def has_flag(self, flag: str) -> bool:
        """Whether ``flag`` is set (case-insensitive, as IMAP compares them)."""
        low = flag.lower()
        return any(f.lower() == low for f in self.flags)


@dataclass(frozen=True)
class AttachmentRef:
    """One attachment as the device sees it."""

    file_reference: str
    part_id: str
    display_name: str
    #: Estimated decoded size in bytes.
    size: int
    #: 1 normal attachment, 5 embedded message.
    method: int
    content_type: str
    content_id: str | None = None
    content_location: str | None = None
    is_inline: bool = False


@dataclass(frozen=True)
class BodyChoice:
    """The parts of a message that make its body (see :func:`body_parts`)."""

    plain: BodyPart | None = None
    html: BodyPart | None = None
    calendar: BodyPart | None = None
    #: "signed", "encrypted" or None.
    smime: str | None = None

    @property
    def hidden(self) -> frozenset[str]:
        """Part ids that are body, not attachments."""
        return frozenset(p.part_id for p in (self.plain, self.html, self.calendar)
                         if p is not None)


# -- structure analysis ---------------------------------------------------------------

def _is_attachment(part: BodyPart) -> bool:
    return part.disposition == "attachment"


def _collect(part: BodyPart, found: dict[str, BodyPart], depth: int = 0) -> None:
    if depth > 20:
        return
    if part.is_multipart:
        if not part.children:
            return
        sub = part.subtype
        if sub == "alternative":
            for child in part.children:
                _collect(child, found, depth + 1)
        elif sub == "related":
            start = part.params.get("start")
            root = part.children[0]
            if start:
                for child in part.children:
                    if child.id and child.id.strip() == start.strip():
                        root = child
                        break
            _collect(root, found, depth + 1)
        else:
            # mixed, signed, report, digest, anything else: the first part is
            # the body; a later inline invitation still counts.
            _collect(part.children[0], found, depth + 1)
            for child in part.children[1:]:
                if child.content_type == "text/calendar" and not _is_attachment(child):
                    found.setdefault("calendar", child)
        return
    if _is_attachment(part) and part.type == "text" and part.filename:
        return
    ctype = part.content_type
    if ctype == "text/plain":
        found.setdefault("plain", part)
    elif ctype == "text/html":
        found.setdefault("html", part)
    elif ctype == "text/calendar":
        found.setdefault("calendar", part)
    elif part.type == "text" and "plain" not in found and "html" not in found:
        found["plain"] = part  # text/enriched, text/x-anything: shown as text


def body_parts(structure: BodyPart | None) -> BodyChoice:
    """The plain, HTML and invitation parts of a message, and its S/MIME kind."""
    if structure is None:
        return BodyChoice()
    smime = None
    ctype = structure.content_type
    if ctype in _SMIME_TYPES:
        smime = "encrypted"
    elif ctype == "multipart/signed" and \
            (structure.params.get("protocol") or "").lower() in _SIG_PROTOCOLS:
        smime = "signed"
    found: dict[str, BodyPart] = {}
    if smime != "encrypted":
        _collect(structure, found)
    return BodyChoice(plain=found.get("plain"), html=found.get("html"),
                      calendar=found.get("calendar"), smime=smime)


def file_reference(folder_server_id: str, uid: int, part_id: str) -> str:
    """The FileReference of one part (URL-safe)."""
    return f"{urllib.parse.quote(folder_server_id, safe='')}:{uid}:{part_id}"


def parse_file_reference(reference: str) -> tuple[str, int, str]:
    """(folder server id, uid, part id) of a FileReference; ValueError when
    it is not one of ours."""
    text = urllib.parse.unquote(reference) if "%3A" in reference.upper() and \
        reference.count(":") < 2 else reference
    folder, uid, part_id = text.rsplit(":", 2)
    if not uid.isdigit() or not re.fullmatch(r"\d+(\.\d+)*", part_id):
        raise ValueError(f"not a FileReference: {reference!r}")
    return urllib.parse.unquote(folder), int(uid), part_id


def _decoded_size(part: BodyPart) -> int:
    if part.encoding == "base64":
        return max(0, part.size - (part.size // 78) * 2) * 3 // 4
    return part.size


def _attachment_name(part: BodyPart, index: int) -> str:
    name = part.filename
    if name:
        return decode_header(name).strip() or f"attachment{index}"
    if part.content_type in ("message/rfc822", "message/global"):
        subject = decode_header(part.envelope_subject or "").strip()
        return (subject or "message") + ".eml"
    if part.description:
        desc = decode_header(part.description).strip()
        if desc and len(desc) < 100:
            return desc
    ext = mimetypes.guess_extension(part.content_type) or ".bin"
    return f"attachment{index}{ext}"


def attachment_list(structure: BodyPart | None, folder_server_id: str, uid: int,
                    choice: BodyChoice | None = None) -> list[AttachmentRef]:
    """The attachments of a message, in MIME order (``choice``: the message's
    :func:`body_parts`, when the caller has them already)."""
    if structure is None:
        return []
    hidden = (choice or body_parts(structure)).hidden
    result: list[AttachmentRef] = []

    def visit(part: BodyPart, in_related: bool) -> None:
        if part.is_multipart:
            for child in part.children:
                visit(child, in_related or part.subtype == "related")
            return
        if part.part_id in hidden:
            return
        is_message = part.content_type in ("message/rfc822", "message/global")
        cid = part.id.strip().strip("<>") if part.id else None
        inline = part.disposition == "inline" or (in_related and part.disposition is None
                                                  and bool(cid))
        result.append(AttachmentRef(
            file_reference=file_reference(folder_server_id, uid, part.part_id),
            part_id=part.part_id,
            display_name=_attachment_name(part, len(result) + 1),
            size=_decoded_size(part),
            method=5 if is_message else 1,
            content_type=part.content_type,
            content_id=cid or None,
            content_location=part.location,
            is_inline=inline and part.type != "message",
        ))

    visit(structure, False)
    return result


def message_class(structure: BodyPart | None, calendar_method: str | None = None,
                  partstat: str | None = None, choice: BodyChoice | None = None) -> str:
    """IPM.Note, IPM.Note.SMIME[.MultipartSigned] or IPM.Schedule.Meeting.*."""
    choice = choice or body_parts(structure)
    if choice.smime == "encrypted":
        return "IPM.Note.SMIME"
    if choice.smime == "signed":
        return "IPM.Note.SMIME.MultipartSigned"
    method = (calendar_method or "").upper()
    if method == "REQUEST":
        return "IPM.Schedule.Meeting.Request"
    if method == "CANCEL":
        return "IPM.Schedule.Meeting.Canceled"
    if method == "REPLY":
        stat = (partstat or "").upper()
        if stat == "DECLINED":
            return "IPM.Schedule.Meeting.Resp.Neg"
        if stat == "TENTATIVE":
            return "IPM.Schedule.Meeting.Resp.Tent"
        return "IPM.Schedule.Meeting.Resp.Pos"
    return "IPM.Note"


# -- planning ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Want:
    """One body rendering the response may need."""

    kind: int                      # BODY_PLAIN / BODY_HTML / BODY_MIME
    limit: int | None              # output bytes (None: whole)
    preview: int | None = None
    all_or_none: bool = False


def _mime_allowed(choice: BodyChoice, mime_support: int) -> bool:
    return mime_support == 2 or (mime_support == 1 and choice.smime is not None)


def _wants(choice: BodyChoice, ctx: CodecContext, mime_support: int,
           mime_truncation: int | None) -> list[_Want]:
    """The renderings to try, in order (the first that fits is sent)."""
    version = ctx.protocol_version
    if not at_least(version, "12.0"):
        if _mime_allowed(choice, mime_support):
            limit = None if choice.smime else _mime_limit(mime_truncation)
            return [_Want(BODY_MIME, limit)]
        return [_Want(BODY_PLAIN, legacy_truncation_limit(ctx.truncation))]
    prefs = list(ctx.body_preferences) or [BodyPreference(BODY_PLAIN)]
    if choice.smime is not None and mime_support >= 1:
        return [_Want(BODY_MIME, None)]
    wants: list[_Want] = []
    if mime_support == 2:
        for pref in prefs:
            if pref.body_type == BODY_MIME:
                wants.append(_Want(BODY_MIME, pref.truncation_size, pref.preview,
                                   pref.all_or_none))
    for pref in prefs:
        if pref.body_type == BODY_MIME:
            continue
        kind = BODY_HTML if pref.body_type == BODY_HTML else BODY_PLAIN
        wants.append(_Want(kind, pref.truncation_size, pref.preview, pref.all_or_none))
    if not wants:
        wants.append(_Want(BODY_PLAIN, None))
    # Only up to the first rendering that is always sent.
    for i, want in enumerate(wants):
        if not want.all_or_none:
            return wants[: i + 1]
    return wants


def _mime_limit(code: int | None) -> int | None:
    if code is None:
        return None
    if code in MIME_TRUNCATION:
        return MIME_TRUNCATION[code]
    return max(code, 0)


def _source(choice: BodyChoice, kind: int) -> tuple[BodyPart | None, bool]:
    """The part a plain/HTML rendering reads, and whether it is converted."""
    if kind == BODY_HTML:
        return (choice.html, False) if choice.html else (choice.plain, True)
    return (choice.plain, False) if choice.plain else (choice.html, True)


def _fetch_limit(part: BodyPart, want: _Want, converted: bool) -> int | None:
    if want.limit is None:
        return None
    out = want.limit
    if converted and part.subtype == "html":
        out *= 4  # markup dropped on the way to text
    factor = _ENCODING_FACTOR.get(part.encoding or "", 1.0)
    need = int(out * factor) + _FETCH_MARGIN
    if want.preview:
        need = max(need, _PREVIEW_FETCH * (2 if part.subtype == "html" else 1))
    if want.limit == 0 and not want.preview:
        need = 0
    if part.size and need >= part.size:
        return None
    return need


def plan_sections(structure: BodyPart | None, ctx: CodecContext, *, mime_support: int = 0,
                  mime_truncation: int | None = None,
                  body_part_preferences: Sequence[BodyPreference] = ()
                  ) -> list[tuple[str, int | None]]:
    """The sections to FETCH for this response: (part id, most bytes or
    None for all).  Part id "" is the whole message (BODY.PEEK[]), "TEXT"
    the body of a message whose structure is unknown.  A limit of 0 means
    the part is needed for nothing (it is left out).  Never attachments."""
    plan: dict[str, int | None] = {}

    def need(part_id: str, limit: int | None) -> None:
        if limit == 0:
            return
        if part_id in plan:
            old = plan[part_id]
            plan[part_id] = None if old is None or limit is None else max(old, limit)
        else:
            plan[part_id] = limit

    choice = body_parts(structure)
    for want in _wants(choice, ctx, mime_support, mime_truncation):
        if want.kind == BODY_MIME:
            need("", want.limit)
            continue
        if structure is None:
            need("TEXT", None if want.limit is None else
                 int(want.limit * 3) + _FETCH_MARGIN)
            continue
        part, converted = _source(choice, want.kind)
        if part is not None:
            need(part.part_id, _fetch_limit(part, want, converted))
    if at_least(ctx.protocol_version, "14.1") and choice.html is not None:
        for pref in body_part_preferences:
            if pref.body_type == BODY_HTML:
                need(choice.html.part_id, _fetch_limit(
                    choice.html, _Want(BODY_HTML, pref.truncation_size, pref.preview), False))
    if choice.calendar is not None:
        need(choice.calendar.part_id,
             None if choice.calendar.size <= _CALENDAR_LIMIT else _CALENDAR_LIMIT)
    return list(plan.items())


# -- rendering helpers ---------------------------------------------------------------

def _cut_utf8(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", errors="ignore").encode("utf-8")


def _preview(text: str, length: int) -> str:
    return " ".join(text.split())[: min(length, MAX_PREVIEW)]


@dataclass
class _Text:
    """A decoded body part: its text, whether only the start was fetched,
    and the estimated size of the whole (UTF-8 bytes)."""

    text: str
    partial: bool
    estimated: int


def _read_part(view: MessageView, part: BodyPart | None, headers: Headers,
               cache: dict[str, _Text]) -> _Text | None:
    key = part.part_id if part is not None else "TEXT"
    if key in cache:
        return cache[key]
    data = view.sections.get(key)
    if data is None:
        return None
    if part is None:
        ctype = headers.get("content-type") or ""
        match = re.search(r'charset\s*=\s*"?([^";\s]+)', ctype, re.I)
        charset = match.group(1) if match else None
        encoding = (headers.get("content-transfer-encoding") or "").strip().lower()
        total = view.size or len(data)
        partial = len(data) < total - len(view.headers)
    else:
        charset = part.charset
        encoding = part.encoding or ""
        total = part.size
        partial = bool(part.size) and len(data) < part.size
    text = decode_text(decode_transfer(data, encoding, partial=partial), charset)
    size = len(text.encode("utf-8"))
    estimated = size if not partial or not data else int(size * total / len(data))
    result = _Text(text, partial, estimated)
    cache[key] = result
    return result


def _rendered(choice: BodyChoice, kind: int, view: MessageView, headers: Headers,
              cache: dict[str, _Text]) -> tuple[str, bool, int, Callable[[], str]] | None:
    """(content, partial, estimated size, a function giving the plain text
    for a preview: only previews pay for an HTML-to-text conversion)."""
    if view.structure is None:
        body = _read_part(view, None, headers, cache)
        if body is None:
            return None
        content = text_to_html(body.text) if kind == BODY_HTML else body.text
        return content, body.partial, body.estimated, _const(body.text)
    part, converted = _source(choice, kind)
    if part is None:
        return None
    body = _read_part(view, part, headers, cache)
    if body is None:
        return None
    if not converted:
        if part.subtype != "html":
            return body.text, body.partial, body.estimated, _const(body.text)
        html_text = body.text
        return body.text, body.partial, body.estimated, lambda: html_to_text(html_text)
    if kind == BODY_HTML:
        html = text_to_html(body.text)
        size = len(html.encode("utf-8"))
        return html, body.partial, max(size, body.estimated), _const(body.text)
    text = html_to_text(body.text)
    size = len(text.encode("utf-8"))
    ratio = size / max(1, len(body.text.encode("utf-8")))
    return (text, body.partial, int(body.estimated * ratio) if body.partial else size,
            _const(text))


def _const(text: str) -> Callable[[], str]:
    return lambda: text


def _mime_data(view: MessageView, limit: int | None) -> tuple[str | bytes, bool, int] | None:
    data = view.sections.get("")
    if data is None:
        return None
    total = max(view.size or 0, len(data))
    cut = data if limit is None else data[:limit]
    truncated = len(cut) < total
    try:
        return cut.decode("utf-8"), truncated, total
    except UnicodeDecodeError:
        trimmed = _cut_utf8(cut, len(cut))
        if truncated:
            try:
                trimmed.decode("utf-8")
                return trimmed.decode("utf-8"), truncated, total
            except UnicodeDecodeError:
                pass
        return cut, truncated, total


def _airsyncbase_body(view: MessageView, choice: BodyChoice, headers: Headers,
                      wants: list[_Want], version: str, cache: dict[str, _Text]) -> Element | None:
    with_preview = at_least(version, "14.0")
    fallback: Element | None = None
    for want in wants:
        body = Element("AirSyncBase:Body")
        if want.kind == BODY_MIME:
            mime = _mime_data(view, want.limit)
            if mime is None:
                continue
            data, truncated, total = mime
            body.add("AirSyncBase:Type", str(BODY_MIME))
            body.add("AirSyncBase:EstimatedDataSize", str(total))
            if truncated:
                body.add("AirSyncBase:Truncated", "1")
                if want.all_or_none:
                    fallback = fallback or body
                    continue
            body.add("AirSyncBase:Data", data)
            return body
        rendered = _rendered(choice, want.kind, view, headers, cache)
        if rendered is None:
            continue
        content, partial, estimated, plain = rendered
        full = content.encode("utf-8")
        estimated = max(estimated, len(full))
        cut = partial or (want.limit is not None and len(full) > want.limit)
        body.add("AirSyncBase:Type", str(want.kind))
        body.add("AirSyncBase:EstimatedDataSize", str(estimated))
        if cut:
            body.add("AirSyncBase:Truncated", "1")
            if want.all_or_none:
                fallback = fallback or body
                continue
            if want.limit != 0:
                data = full if want.limit is None else _cut_utf8(full, want.limit)
                body.add("AirSyncBase:Data", data.decode("utf-8"))
        else:
            body.add("AirSyncBase:Data", content)
        if with_preview and want.preview:
            body.add("AirSyncBase:Preview", _preview(plain(), want.preview))
        return body
    return fallback


def _body_part(view: MessageView, choice: BodyChoice, headers: Headers,
               prefs: Sequence[BodyPreference], cache: dict[str, _Text]) -> Element | None:
    for pref in prefs:
        if pref.body_type != BODY_HTML or choice.html is None:
            continue
        body = _read_part(view, choice.html, headers, cache)
        if body is None:
            return None
        full = body.text.encode("utf-8")
        limit = pref.truncation_size
        cut = body.partial or (limit is not None and len(full) > limit)
        part = Element("AirSyncBase:BodyPart")
        part.add("AirSyncBase:Status", "1")
        part.add("AirSyncBase:Type", str(BODY_HTML))
        part.add("AirSyncBase:EstimatedDataSize", str(max(body.estimated, len(full))))
        if cut:
            part.add("AirSyncBase:Truncated", "1")
        if not (cut and pref.all_or_none) and limit != 0:
            data = full if limit is None else _cut_utf8(full, limit)
            part.add("AirSyncBase:Data", data.decode("utf-8"))
        if pref.preview:
            part.add("AirSyncBase:Preview", _preview(html_to_text(body.text), pref.preview))
        return part
    return None


def _legacy_body(view: MessageView, choice: BodyChoice, headers: Headers,
                 want: _Want, app: Element, cache: dict[str, _Text]) -> None:
    if want.kind == BODY_MIME:
        mime = _mime_data(view, want.limit)
        if mime is None:
            return
        data, truncated, total = mime
        if truncated:
            app.add("Email:MIMETruncated", "1")
        app.add("Email:MIMESize", str(total))
        app.add("Email:MIMEData", data)
        return
    rendered = _rendered(choice, BODY_PLAIN, view, headers, cache)
    if rendered is None:
        return
    text, partial, estimated, _plain = rendered
    limit = want.limit
    if partial or (limit is not None and len(text) > limit):
        if limit is None or limit > 0:
            app.add("Email:Body", text if limit is None else text[:limit])
        app.add("Email:BodySize", str(max(estimated, len(text))))
        app.add("Email:BodyTruncated", "1")
        return
    app.add("Email:Body", text)
    app.add("Email:BodyTruncated", "0")


# -- header fields -------------------------------------------------------------------

def _importance(headers: Headers) -> int:
    value = (headers.get("importance") or headers.get("x-msmail-priority") or "").lower()
    if value:
        if value.startswith("high") or value.startswith("urgent"):
            return 2
        if value.startswith("low") or value.startswith("non-urgent"):
            return 0
        return 1
    priority = (headers.get("x-priority") or "").strip()
    if priority[:1] in ("1", "2"):
        return 2
    if priority[:1] in ("4", "5"):
        return 0
    value = (headers.get("priority") or "").lower()
    if value.startswith("urgent"):
        return 2
    if value.startswith("non-urgent"):
        return 0
    return 1


def _addresses(headers: Headers, name: str) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    for value in headers.get_all(name):
        result.extend(parse_addresses(value))
    return result


def _address_field(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(format_address(name, addr) for name, addr in pairs)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _received(view: MessageView, headers: Headers, ctx: CodecContext) -> datetime:
    if view.internaldate is not None:
        return _utc(view.internaldate)
    raw = headers.get("date")
    if raw:
        try:
            return _utc(parsedate_to_datetime(raw))
        except (TypeError, ValueError, IndexError):
            pass
    return datetime.fromtimestamp(ctx.now, timezone.utc)


def conversation_id(headers: Headers, subject: str) -> bytes:
    """ConversationId: 16 bytes (MD5) of the thread's root Message-ID (the
    first of References, else In-Reply-To, else the message's own), or of
    the subject without Re:/Fwd: prefixes when there is no id."""
    root: str | None = None
    refs = _MSGID.findall(headers.get("references") or "")
    if refs:
        root = refs[0]
    else:
        reply = _MSGID.findall(headers.get("in-reply-to") or "")
        if reply:
            root = reply[0]
        else:
            own = _MSGID.findall(headers.get("message-id") or "")
            root = own[0] if own else None
    key = root.lower() if root else "subject:" + _PREFIX.sub("", subject).strip().lower()
    return hashlib.md5(key.encode("utf-8"), usedforsecurity=False).digest()


def conversation_index(when: datetime) -> bytes:
    """Five bytes: the top 40 bits of the date as a Windows FILETIME."""
    epoch = datetime(1601, 1, 1, tzinfo=timezone.utc)
    ticks = int((when - epoch).total_seconds() * 10_000_000)
    return ((ticks >> 24) & 0xFFFFFFFFFF).to_bytes(5, "big")


# -- meeting requests ----------------------------------------------------------------

def _global_obj_id(uid: str) -> str:
    """The MS-ASEMAIL GlobalObjId (base64) of an iCalendar UID."""
    compact = uid.strip()
    if re.fullmatch(r"[0-9A-Fa-f]+", compact) and len(compact) % 2 == 0 and \
            compact.upper().startswith(_GOID_CLASS.hex().upper()):
        raw = bytes.fromhex(compact)
    else:
        data = b"vCal-Uid" + (1).to_bytes(4, "little") + compact.encode("utf-8") + b"\x00"
        raw = (_GOID_CLASS + bytes(4) + bytes(8) + bytes(8)
               + len(data).to_bytes(4, "little") + data)
    return base64.b64encode(raw).decode("ascii")


def _instant(value: date | datetime, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return _utc(value if value.tzinfo is not None else value.replace(tzinfo=tz))
    return datetime(value.year, value.month, value.day, tzinfo=tz).astimezone(_UTC)


def _meeting_request(event: Event, method: str, ctx: CodecContext) -> Element:
    version = ctx.protocol_version
    start = event.start
    if isinstance(start, datetime) and start.tzinfo is not None:
        tz: tzinfo = start.tzinfo
    else:
        try:
            tz = ZoneInfo(ctx.default_timezone)
        except Exception:  # noqa: BLE001 - a bad zone name falls back to UTC
            tz = _UTC
    now = datetime.fromtimestamp(ctx.now, timezone.utc)
    start_utc = _instant(start, tz) if start is not None else now
    end_utc = _instant(event.end, tz) if event.end is not None else start_utc
    element = Element("Email:MeetingRequest")
    element.add("Email:AllDayEvent", "1" if event.all_day else "0")
    element.add("Email:StartTime", rec_codec.format_long(start_utc))
    element.add("Email:DtStamp", rec_codec.format_long(_utc(event.dtstamp) if event.dtstamp
                                                         else now))
    element.add("Email:EndTime", rec_codec.format_long(end_utc))
    element.add("Email:InstanceType", "1" if event.rrule else "0")
    if event.location:
        if at_least(version, "16.0"):
            element.add("AirSyncBase:Location").add("AirSyncBase:DisplayName", event.location)
        else:
            element.add("Email:Location", event.location)
    if event.organizer is not None:
        element.add("Email:Organizer",
                    format_address(event.organizer.name or "", event.organizer.email))
    if event.reminder is not None:
        element.add("Email:Reminder", str(event.reminder * 60))
    element.add("Email:ResponseRequested", "1" if event.response_requested else "0")
    if event.rrule and start is not None:
        pattern, _exact = rec_codec.from_rrule(event.rrule, start, tz)
        if pattern is not None:
            element.append(_recurrences(pattern, version, tz))
    element.add("Email:Sensitivity", str(event.sensitivity or 0))
    element.add("Email:BusyStatus", str(event.busy_status if event.busy_status is not None
                                        else 2))
    element.add("Email:TimeZone", blob_for_tzinfo(tz, start_utc.year))
    if event.uid:
        element.add("Email:GlobalObjId", _global_obj_id(event.uid))
    if at_least(version, "14.0"):
        element.add("Email:DisallowNewTimeProposal",
                    "1" if event.disallow_new_time_proposal else "0")
    if at_least(version, "14.1"):
        element.add("Email2:MeetingMessageType", "1" if method == "REQUEST" else "0")
    return element


def _recurrences(rec: rec_codec.Recurrence, version: str, tz: tzinfo) -> Element:
    outer = Element("Email:Recurrences")
    element = outer.add("Email:Recurrence")
    element.add("Email:Type", str(rec.type))
    element.add("Email:Interval", str(rec.interval))
    if rec.until is not None:
        element.add("Email:Until", rec_codec.format_compact(_instant(rec.until, tz)))
    if rec.occurrences is not None:
        element.add("Email:Occurrences", str(rec.occurrences))
    if rec.week_of_month is not None:
        element.add("Email:WeekOfMonth", str(rec.week_of_month))
    if rec.day_of_month is not None:
        element.add("Email:DayOfMonth", str(rec.day_of_month))
    if rec.day_of_week is not None:
        element.add("Email:DayOfWeek", str(rec.day_of_week))
    if rec.month_of_year is not None:
        element.add("Email:MonthOfYear", str(rec.month_of_year))
    if at_least(version, "14.0"):
        element.add("Email2:CalendarType", str(rec.calendar_type or 0))
        element.add("Email2:IsLeapMonth", "1" if rec.is_leap_month else "0")
    if at_least(version, "14.1") and rec.first_day_of_week is not None:
        element.add("Email2:FirstDayOfWeek", str(rec.first_day_of_week))
    return outer


def _calendar(view: MessageView, choice: BodyChoice
              ) -> tuple[str | None, str | None, Event | None]:
    """(METHOD, the first PARTSTAT, the event) of the invitation part."""
    part = choice.calendar
    if part is None:
        return None, None, None
    method = part.params.get("method")
    raw = view.sections.get(part.part_id)
    if raw is None:
        return (method.upper() if method else None), None, None
    data = decode_transfer(raw, part.encoding)
    if not method:
        match = _METHOD.search(data)
        method = match.group(1).decode("ascii") if match else None
    stat = _PARTSTAT.search(data)
    partstat = stat.group(1).decode("ascii") if stat else None
    event = None
    if method and method.upper() in ("REQUEST", "CANCEL"):
        event = _invitation_event(decode_text(data, part.charset or "utf-8"))
    return (method.upper() if method else None), partstat, event


@lru_cache(maxsize=256)
def _invitation_event(text: str) -> Event | None:
    """The event of an invitation's calendar text, None when it cannot be read.

    Parsing costs a few milliseconds (vobject); the same invitation is
    rendered again for each device of the user, each retry and each resync,
    so the last few hundred are kept.  Callers only read the event."""
    try:
        return parse_ics(text)
    except (ICalendarError, ValueError):
        return None


# -- the item ----------------------------------------------------------------------------

def email_to_eas(view: MessageView, ctx: CodecContext, *, folder_server_id: str,
                 mime_support: int = 0, mime_truncation: int | None = None,
                 body_part_preferences: Sequence[BodyPreference] = ()) -> Element:
    """The ``AirSync:ApplicationData`` of one message for ``ctx.protocol_version``.

    ``mime_support`` is the collection's MIMESupport (0 never, 1 S/MIME only,
    2 always); ``mime_truncation`` the 2.5 MIMETruncation code (0-8, None:
    whole); ``body_part_preferences`` the 14.1+ BodyPartPreference list.
    Raises CodecError when the message cannot be rendered."""
    try:
        return _email_to_eas(view, ctx, folder_server_id, mime_support, mime_truncation,
                             body_part_preferences)
    except CodecError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop a Sync
        raise CodecError(f"message {view.uid} cannot be rendered: {exc!r}") from exc


def _email_to_eas(view: MessageView, ctx: CodecContext, folder_server_id: str,
                  mime_support: int, mime_truncation: int | None,
                  body_part_preferences: Sequence[BodyPreference]) -> Element:
    if not view.headers.strip() and view.structure is None and not view.sections:
        raise CodecError(f"message {view.uid}: nothing fetched")
    version = ctx.protocol_version
    v12 = at_least(version, "12.0")
    v14 = at_least(version, "14.0")
    headers = parse_headers(view.headers)
    choice = body_parts(view.structure)
    method, partstat, event = _calendar(view, choice)
    cls = message_class(view.structure, method, partstat, choice)
    flags = frozenset(f.lower() for f in view.flags)
    cache: dict[str, _Text] = {}

    app = Element("AirSync:ApplicationData")
    to = _addresses(headers, "to")
    cc = _addresses(headers, "cc")
    sender = _addresses(headers, "from")
    if to:
        app.add("Email:To", _address_field(to))
    if cc:
        app.add("Email:Cc", _address_field(cc))
    if sender:
        app.add("Email:From", _address_field(sender[:1]))
    subject = headers.text("subject") or ""
    app.add("Email:Subject", subject)
    reply_to = _addresses(headers, "reply-to")
    if reply_to:
        app.add("Email:ReplyTo", "; ".join(addr for _n, addr in reply_to))
    received = _received(view, headers, ctx)
    app.add("Email:DateReceived", rec_codec.format_long(received))
    app.add("Email:DisplayTo", "; ".join(name or addr for name, addr in to))
    topic = headers.text("thread-topic") or _PREFIX.sub("", subject).strip()
    app.add("Email:ThreadTopic", topic)
    app.add("Email:Importance", str(_importance(headers)))
    app.add("Email:Read", "1" if ("\\seen" in flags) else "0")

    attachments = attachment_list(view.structure, folder_server_id, view.uid, choice)
    wants = _wants(choice, ctx, mime_support, mime_truncation)
    if not v12:
        if attachments:
            atts = app.add("Email:Attachments")
            for att in attachments:
                item = atts.add("Email:Attachment")
                item.add("Email:AttMethod", str(att.method))
                item.add("Email:AttSize", str(att.size))
                item.add("Email:DisplayName", att.display_name)
                item.add("Email:AttName", att.file_reference)
                if att.content_id:
                    item.add("Email:Att0Id", att.content_id)
        _legacy_body(view, choice, headers, wants[0], app, cache)
    else:
        body = _airsyncbase_body(view, choice, headers, wants, version, cache)
        if body is not None:
            app.append(body)
        if at_least(version, "14.1") and body_part_preferences:
            part = _body_part(view, choice, headers, body_part_preferences, cache)
            if part is not None:
                app.append(part)
        if attachments:
            atts = app.add("AirSyncBase:Attachments")
            for att in attachments:
                item = atts.add("AirSyncBase:Attachment")
                item.add("AirSyncBase:DisplayName", att.display_name)
                item.add("AirSyncBase:FileReference", att.file_reference)
                item.add("AirSyncBase:Method", str(att.method))
                item.add("AirSyncBase:EstimatedDataSize", str(att.size))
                if att.content_id:
                    item.add("AirSyncBase:ContentId", att.content_id)
                if att.content_location:
                    item.add("AirSyncBase:ContentLocation", att.content_location)
                if att.is_inline:
                    item.add("AirSyncBase:IsInline", "1")
    app.add("Email:MessageClass", cls)
    if event is not None and method in ("REQUEST", "CANCEL"):
        app.append(_meeting_request(event, method, ctx))
    app.add("Email:InternetCPID", "65001")
    if v12:
        app.append(flag_element("\\flagged" in flags, view.follow_up))
        app.add("Email:ContentClass", "urn:content-classes:calendarmessage"
                if cls.startswith("IPM.Schedule.Meeting") else "urn:content-classes:message")
        app.add("AirSyncBase:NativeBodyType", "2" if choice.html is not None else "1")
    if v14:
        app.add("Email2:ConversationId", conversation_id(headers, subject))
        app.add("Email2:ConversationIndex", conversation_index(received))
        categories = app.add("Email:Categories")
        for keyword in view.keywords:
            categories.add("Email:Category", keyword)
        if ("$forwarded" in flags):
            app.add("Email2:LastVerbExecuted", "3")
        elif ("\\answered" in flags):
            app.add("Email2:LastVerbExecuted", "1")
        if ctx.user_address and (to or cc):
            me = ctx.user_address.lower()
            listed = any(addr.lower() == me for _n, addr in to + cc)
            from_me = any(addr.lower() == me for _n, addr in sender)
            if not listed and not from_me:
                app.add("Email2:ReceivedAsBcc", "1")
        real_sender = _addresses(headers, "sender")
        if real_sender and sender and real_sender[0][1].lower() != sender[0][1].lower():
            app.add("Email2:Sender", _address_field(real_sender[:1]))
    if at_least(version, "16.0"):
        draft = ("\\draft" in flags)
        if draft:
            bcc = _addresses(headers, "bcc")
            if bcc:
                app.add("Email2:Bcc", _address_field(bcc))
        app.add("Email2:IsDraft", "1" if draft else "0")
    return app
