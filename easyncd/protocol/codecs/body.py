"""Item bodies: AirSyncBase:Body (12.0+) and the old class-specific Body (2.5).

Shared by every codec.  Outgoing, :func:`body_element` honours the
collection's BodyPreference list (MS-ASAIRS 2.2.2.12): plain text (Type 1)
and HTML (Type 2) are offered; RTF (3) and MIME (4) are not, a preference for
them is answered with plain text.  ``TruncationSize`` cuts the UTF-8 data at
a character boundary; ``EstimatedDataSize`` is always the size of the whole
body; ``Truncated`` is sent (as 1) only when the data was cut; with
``AllOrNone`` a body that would be cut is not sent for that preference and
the next preference is tried (MS-ASAIRS 2.2.2.3.2); when none fits, the body
goes out without ``Data`` and with ``Truncated`` 1.  ``Preview`` (14.0+) is
the first characters of the plain text.

Before 12.0 the body is the class's own ``Body`` element, cut by the
collection's ``Truncation`` code (MS-ASCMD 2.2.3.185), with ``BodySize`` (the
whole size, when cut) and ``BodyTruncated``.

Incoming, :func:`read_body` reads either form and gives plain text.
"""
from __future__ import annotations

import html as _html
import re
from typing import Sequence

from easyncd.protocol.codecs.base import BodyPreference, CodecContext
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

__all__ = [
    "BODY_HTML",
    "BODY_MIME",
    "BODY_PLAIN",
    "BODY_RTF",
    "LEGACY_TRUNCATION",
    "LegacyTags",
    "body_element",
    "html_to_text",
    "legacy_truncation_limit",
    "read_body",
    "text_to_html",
]

BODY_PLAIN = 1
BODY_HTML = 2
BODY_RTF = 3
BODY_MIME = 4

#: The first version with AirSyncBase:Body; before it, the class's Body.
AIRSYNCBASE_FROM = "12.0"
#: The first version with AirSyncBase:Preview.
PREVIEW_FROM = "14.0"
#: The longest Preview the protocol allows (MS-ASAIRS 2.2.2.38).
MAX_PREVIEW = 255

#: AirSync:Truncation codes (MS-ASCMD 2.2.3.185) -> the most characters sent
#: (None: the whole body).
LEGACY_TRUNCATION: dict[int, int | None] = {
    0: 0, 1: 512, 2: 1024, 3: 2048, 4: 5120, 5: 10240, 6: 20480,
    7: 51200, 8: 102400, 9: None,
}

#: The class's old body tags: (Body, BodySize or None, BodyTruncated or None),
#: e.g. ``("Contacts:Body", "Contacts:BodySize", "Contacts:BodyTruncated")``.
LegacyTags = tuple[str, str | None, str | None]


def legacy_truncation_limit(truncation: int | None) -> int | None:
    """The most characters of a 2.5 body for ``CodecContext.truncation``.

    ``truncation`` is the AirSync:Truncation code 0-9; a larger number is
    taken as a character count; None means the whole body."""
    if truncation is None:
        return None
    if truncation in LEGACY_TRUNCATION:
        return LEGACY_TRUNCATION[truncation]
    return max(truncation, 0)


def text_to_html(text: str) -> str:
    """A minimal HTML document showing ``text`` (for a Type 2 preference on a
    plain-text body)."""
    escaped = _html.escape(text, quote=False).replace("\r\n", "\n")
    return "<html><body>" + escaped.replace("\n", "<br>\n") + "</body></html>"


_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)
_DROP = re.compile(r"<\s*(script|style|head)\b.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """The text of an HTML body: line breaks for block ends, tags dropped,
    entities decoded."""
    text = _DROP.sub("", markup)
    text = text.replace("\r\n", "\n").replace("\n", " ")
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub("", text)
    text = _html.unescape(text)
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def _cut_utf8(data: bytes, limit: int) -> bytes:
    """``data`` cut to at most ``limit`` bytes without splitting a character."""
    if len(data) <= limit:
        return data
    cut = data[:limit]
    # Drop a partial multi-byte sequence at the end.
    return cut.decode("utf-8", errors="ignore").encode("utf-8")


def _preview(text: str, length: int) -> str:
    flat = " ".join(text.split())
    return flat[: min(length, MAX_PREVIEW)]


def _airsyncbase_body(text: str, html: str | None,
                      preferences: Sequence[BodyPreference],
                      with_preview: bool) -> Element:
    fallback: Element | None = None
    for pref in preferences:
        if pref.body_type == BODY_HTML:
            body_type = BODY_HTML
            content = html if html is not None else text_to_html(text)
        else:
            # Plain text; RTF and MIME are not offered and get plain text.
            body_type = BODY_PLAIN
            content = text if html is None or text else html_to_text(html)
        full = content.encode("utf-8")
        limit = pref.truncation_size
        cut = limit is not None and len(full) > limit
        body = Element("AirSyncBase:Body")
        body.add("AirSyncBase:Type", str(body_type))
        body.add("AirSyncBase:EstimatedDataSize", str(len(full)))
        if cut and pref.all_or_none:
            body.add("AirSyncBase:Truncated", "1")
            if fallback is None:
                fallback = body
            continue
        if cut:
            assert limit is not None
            body.add("AirSyncBase:Truncated", "1")
            body.add("AirSyncBase:Data", _cut_utf8(full, limit).decode("utf-8"))
        else:
            body.add("AirSyncBase:Data", content)
        if with_preview and pref.preview:
            plain = text or html_to_text(html or "")
            body.add("AirSyncBase:Preview", _preview(plain, pref.preview))
        return body
    assert fallback is not None
    return fallback


def body_element(text: str, ctx: CodecContext, *, html: str | None = None,
                 legacy_tags: LegacyTags | None = None) -> list[Element]:
    """The body elements of an item whose body is ``text`` (plain) and,
    optionally, ``html``.

    12.0+: ``[AirSyncBase:Body]`` per ``ctx.body_preferences`` (none given:
    plain text, whole).  Before 12.0: the class's old elements named by
    ``legacy_tags`` (none: no body, e.g. a class without one), cut by
    ``ctx.truncation``.  An empty body gives ``[]``."""
    if not text and not html:
        return []
    if at_least(ctx.protocol_version, AIRSYNCBASE_FROM):
        preferences = ctx.body_preferences or (BodyPreference(BODY_PLAIN),)
        with_preview = at_least(ctx.protocol_version, PREVIEW_FROM)
        return [_airsyncbase_body(text, html, preferences, with_preview)]
    if legacy_tags is None:
        return []
    body_tag, size_tag, truncated_tag = legacy_tags
    plain = text if text else html_to_text(html or "")
    limit = legacy_truncation_limit(ctx.truncation)
    elements: list[Element] = []
    if limit is not None and len(plain) > limit:
        if limit > 0:
            elements.append(Element(body_tag, plain[:limit]))
        if size_tag is not None:
            elements.append(Element(size_tag, str(len(plain))))
        if truncated_tag is not None:
            elements.append(Element(truncated_tag, "1"))
        return elements
    elements.append(Element(body_tag, plain))
    if truncated_tag is not None:
        elements.append(Element(truncated_tag, "0"))
    return elements


def read_body(application_data: Element, page_legacy_body_tag: str | None) -> str | None:
    """The plain text of the body the device sent, or None when it sent none.

    Reads ``AirSyncBase:Body`` (Type 2 is turned into text; an RTF or MIME
    body, which cannot be read here, counts as not sent) or, failing that,
    the old class body ``page_legacy_body_tag`` (e.g. ``"Contacts:Body"``).
    A body element without data is an empty body ("")."""
    body = application_data.find("AirSyncBase:Body")
    if body is not None:
        data = body.findtext("AirSyncBase:Data")
        if data is None:
            return ""
        body_type = (body.findtext("AirSyncBase:Type") or "1").strip()
        if body_type == str(BODY_HTML):
            return html_to_text(data)
        if body_type in (str(BODY_RTF), str(BODY_MIME)):
            return None
        return data.replace("\r\n", "\n")
    if page_legacy_body_tag is None:
        return None
    legacy = application_data.findtext(page_legacy_body_tag)
    if legacy is None:
        return None
    return legacy.replace("\r\n", "\n")
