"""The message to send for SendMail, SmartReply and SmartForward (pure functions).

The device sends a complete MIME message (``ComposeMail:Mime`` in WBXML, or
the raw ``message/rfc822`` body of the 2.5 / 12.x query-string form).  This
module turns it into what goes to SMTP, as an :class:`Outgoing`:

* ``From`` is the account's: kept when it is one of ``Identity.addresses``,
  otherwise rewritten to the primary address (the device's display name is
  kept).  The envelope sender is that address.
* ``Date`` and ``Message-ID`` (domain from the sender's address) are added
  when missing; ``Bcc``, ``Return-Path`` and ``Sender`` are removed from the
  sent copy, while the Bcc addresses stay among the envelope recipients
  (``To`` + ``Cc`` + ``Bcc``, parsed with the ``email`` package, de-duplicated,
  groups understood).
* SmartReply adds ``In-Reply-To`` / ``References`` from the original and, unless
  ReplaceMime, appends the original's body below the device's text (as
  Exchange does: a "-----Original Message-----" block with From / Sent / To /
  Cc / Subject, then the original text; in the HTML part as HTML).
* SmartForward does the same with the original inline and, unless ReplaceMime,
  attaches the original's attachments (the message becomes multipart/mixed).

The device's bytes are kept as they are wherever nothing needs to change
(8-bit text, any charset, S/MIME bodies): headers are edited as raw lines and
the body is only rebuilt when the original has to be merged into it.  Output
lines end in CRLF.  Errors are :class:`InvalidMime` (the device's MIME has no
header block) and :class:`NoRecipients`.
"""
from __future__ import annotations

import datetime
import email.utils
import html
import re
import uuid
from dataclasses import dataclass, field
from email import policy as email_policy
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import decode_header, make_header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.parser import BytesParser
from io import BytesIO
from typing import Iterable, Sequence

from easyncd.protocol.codecs.body import html_to_text

__all__ = [
    "ComposeError",
    "Identity",
    "InvalidMime",
    "NoRecipients",
    "Outgoing",
    "compose_forward",
    "compose_new",
    "compose_reply",
    "envelope_recipients",
]


class ComposeError(ValueError):
    """The device's message cannot be sent as it is."""


class InvalidMime(ComposeError):
    """Not a MIME message (SendMail Status 107 InvalidMIME)."""


class NoRecipients(ComposeError):
    """No To, Cc or Bcc address (Status 119 MessageHasNoRecipient)."""


@dataclass(frozen=True)
class Identity:
    """The sending account: its primary address, every address it may use as From."""

    primary: str
    addresses: frozenset[str] = field(default_factory=frozenset)
    display_name: str = ""

    def owns(self, address: str) -> bool:
        """Whether ``address`` is one of the account's (case-insensitive)."""
        lowered = address.strip().lower()
        return lowered == self.primary.lower() or lowered in {a.lower() for a in self.addresses}


@dataclass(frozen=True)
class Outgoing:
    """What to hand to SMTP: envelope and the message bytes (CRLF, no Bcc)."""

    sender: str
    recipients: tuple[str, ...]
    message: bytes
    message_id: str


# -- raw header handling --------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_NEWLINES = re.compile(rb"\r\n|\r|\n")


def _crlf(data: bytes) -> bytes:
    return _NEWLINES.sub(b"\r\n", data)


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    """Header fields (each with its folded continuation lines, without the
    final CRLF) and the body; InvalidMime when there is no header field."""
    data = _crlf(raw).lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        head, body = data.rstrip(b"\r\n"), b""
    else:
        head, body = data[:end], data[end + 4:]
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif _FIELD_NAME.match(line):
            fields.append(line)
        elif line.startswith(b"From ") and not fields:
            continue  # an mbox separator line
        else:
            raise InvalidMime(f"not a header line: {line[:40]!r}")
    if not fields:
        raise InvalidMime("the message has no header")
    return fields, body


def _name(field_line: bytes) -> str:
    match = _FIELD_NAME.match(field_line)
    assert match is not None
    return match.group(1).decode("ascii").lower()


def _value(field_line: bytes) -> str:
    """The unfolded value, 8-bit bytes read as UTF-8 (else Latin-1)."""
    raw = field_line.split(b":", 1)[1]
    raw = re.sub(rb"\r\n([ \t])", rb"\1", raw).strip()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _values(fields: Sequence[bytes], name: str) -> list[str]:
    return [_value(f) for f in fields if _name(f) == name]


def _decoded(value: str) -> str:
    """RFC 2047 words decoded (best effort)."""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _encode_header_value(value: str) -> bytes:
    """``value`` as header bytes: ASCII as is, else UTF-8 (SMTPUTF8-era servers accept it)."""
    return value.encode("utf-8")


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of address header values."""
    pairs = email.utils.getaddresses([_decoded(v) for v in values])
    return [(name, address.strip()) for name, address in pairs if address.strip()]


def envelope_recipients(fields_or_message: bytes | Sequence[bytes]) -> tuple[str, ...]:
    """To + Cc + Bcc addresses (order kept, duplicates dropped case-insensitively)."""
    fields = _split(fields_or_message)[0] if isinstance(fields_or_message, bytes) \
        else fields_or_message
    seen: set[str] = set()
    result: list[str] = []
    for name in ("to", "cc", "bcc"):
        for _display, address in _addresses(_values(fields, name)):
            if "@" not in address or address.lower() in seen:
                continue
            seen.add(address.lower())
            result.append(address)
    return tuple(result)


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip().strip(">").strip()
    return domain or "localhost"


def _finish(fields: list[bytes], body: bytes, identity: Identity, now: datetime.datetime,
            message_id: str | None, extra: Sequence[tuple[str, str]] = ()) -> Outgoing:
    recipients = envelope_recipients(fields)
    if not recipients:
        raise NoRecipients("the message has no To, Cc or Bcc address")

    from_values = _values(fields, "from")
    from_pairs = _addresses(from_values)
    if from_pairs and identity.owns(from_pairs[0][1]):
        sender = from_pairs[0][1]
        from_line: bytes | None = None  # keep the device's From
    else:
        sender = identity.primary
        display = from_pairs[0][0] if from_pairs and from_pairs[0][0] else identity.display_name
        from_line = b"From: " + _encode_header_value(email.utils.formataddr((display, sender)))

    dropped = {"bcc", "return-path", "sender"}
    if from_line is not None:
        dropped.add("from")
    kept = [f for f in fields if _name(f) not in dropped]
    present = {_name(f) for f in kept}
    added: list[bytes] = []
    if from_line is not None:
        added.append(from_line)
    if "date" not in present:
        added.append(b"Date: " + email.utils.format_datetime(now).encode("ascii"))
    existing_ids = _values(kept, "message-id")
    if existing_ids and existing_ids[0].strip():
        final_id = existing_ids[0].strip()
    else:
        final_id = message_id or f"<{uuid.uuid4().hex}@{_domain(sender)}>"
        added.append(b"Message-ID: " + final_id.encode("ascii", "replace"))
    for name, value in extra:
        if name.lower() not in present and value:
            added.append(name.encode("ascii") + b": " + _encode_header_value(value))
    if "mime-version" not in present:
        added.append(b"MIME-Version: 1.0")
    head = b"\r\n".join(added + kept)
    message = head + b"\r\n\r\n" + body
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return Outgoing(sender, recipients, message, final_id)


# -- the original message ------------------------------------------------------------

def _parse(raw: bytes) -> Message:
    return BytesParser(policy=email_policy.compat32).parsebytes(raw)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "us-ascii"
    for candidate in (charset, "utf-8", "windows-1252"):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def _leaves(message: Message) -> list[Message]:
    """The leaf parts of ``message`` in order; an attached message/rfc822 is one leaf."""
    if message.get_content_maintype() == "multipart":
        payload = message.get_payload()
        if isinstance(payload, list):
            return [leaf for part in payload if isinstance(part, Message) for leaf in _leaves(part)]
        return []
    return [message]


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment" or part.get_content_type() == "message/rfc822":
        return True
    maintype = part.get_content_maintype()
    if maintype == "text" and part.get_content_subtype() in ("plain", "html") \
            and disposition != "attachment" and not part.get_filename():
        return False
    return True


def _bodies(message: Message) -> tuple[str | None, str | None]:
    """The first inline text/plain and text/html of ``message`` (decoded)."""
    plain: str | None = None
    markup: str | None = None
    for part in _leaves(message):
        if _is_attachment(part):
            continue
        if part.get_content_type() == "text/plain" and plain is None:
            plain = _part_text(part)
        elif part.get_content_type() == "text/html" and markup is None:
            markup = _part_text(part)
    return plain, markup


def _attachments(message: Message) -> list[Message]:
    """The original's attachments (and inline non-text parts), in order."""
    found: list[Message] = []
    for part in _leaves(message):
        if part.get_content_type() == "message/rfc822" or _is_attachment(part):
            found.append(part)
    return found


def _original_headers(message: Message) -> list[tuple[str, str]]:
    rows = [("From", message.get("From")), ("Sent", message.get("Date")),
            ("To", message.get("To")), ("Cc", message.get("Cc")),
            ("Subject", message.get("Subject"))]
    return [(label, _decoded(str(value)).strip()) for label, value in rows if value]


_BODY_CONTENT = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.IGNORECASE | re.DOTALL)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def _inner_html(markup: str) -> str:
    match = _BODY_CONTENT.search(markup)
    return match.group(1) if match else markup


def _quote_plain(original: Message, plain: str | None, markup: str | None) -> str:
    text = plain if plain is not None else html_to_text(markup or "")
    lines = ["", "", "-----Original Message-----"]
    lines += [f"{label}: {value}" for label, value in _original_headers(original)]
    return "\r\n".join(lines) + "\r\n\r\n" + text.replace("\r\n", "\n").replace("\n", "\r\n")


def _quote_html(original: Message, plain: str | None, markup: str | None) -> str:
    if markup is not None:
        inner = _inner_html(markup)
    else:
        inner = "<pre>" + html.escape(plain or "", quote=False) + "</pre>"
    rows = "".join(
        f"<b>{html.escape(label)}:</b> {html.escape(value)}<br>\r\n"
        for label, value in _original_headers(original)
    )
    return ("\r\n<hr>\r\n<div>" + rows + "</div>\r\n<br>\r\n"
            + "<div>" + inner + "</div>\r\n")


def _set_text(part: Message, text: str) -> None:
    charset = Charset("utf-8")
    charset.body_encoding = QP
    del part["Content-Transfer-Encoding"]
    part.set_payload(text, charset)


def _merge_original(device: Message, original: Message, *, attach: bool) -> Message:
    """The device's message with the original's body appended (and its attachments)."""
    plain, markup = _bodies(original)
    targets_plain: list[Message] = []
    targets_html: list[Message] = []
    for part in _leaves(device):
        if _is_attachment(part):
            continue
        if part.get_content_type() == "text/plain" and not targets_plain:
            targets_plain.append(part)
        elif part.get_content_type() == "text/html" and not targets_html:
            targets_html.append(part)
    for part in targets_plain:
        _set_text(part, _part_text(part).rstrip("\r\n") + _quote_plain(original, plain, markup))
    for part in targets_html:
        current = _part_text(part)
        quote = _quote_html(original, plain, markup)
        closing = list(_BODY_CLOSE.finditer(current))
        if closing:
            at = closing[-1].start()
            merged = current[:at] + quote + current[at:]
        else:
            merged = current + quote
        _set_text(part, merged)
    if not targets_plain and not targets_html and not device.is_multipart():
        # A device message without a text part (rare): add the original as text.
        body = MIMEMultipart("mixed")
        text_part = Message()
        _set_text(text_part, _quote_plain(original, plain, markup).lstrip("\r\n"))
        body.attach(text_part)
        body.attach(_content_part(device))
        device = _with_content(device, body)
    attachments = _attachments(original) if attach else []
    if attachments:
        if device.get_content_type() == "multipart/mixed":
            container = device
        else:
            container = MIMEMultipart("mixed")
            container.attach(_content_part(device))
            device = _with_content(device, container)
        for part in attachments:
            container.attach(part)
    return device


_CONTENT_HEADERS = ("content-type", "content-transfer-encoding", "content-disposition",
                    "content-id", "content-description", "content-language", "content-location")


def _content_part(message: Message) -> Message:
    """A body part holding ``message``'s content (its Content-* headers and payload)."""
    part = Message()
    for name, value in message.items():
        if name.lower() in _CONTENT_HEADERS:
            part[name] = value
    part.set_payload(message.get_payload())
    if message.get_content_type().startswith("multipart/"):
        part.set_boundary(message.get_boundary() or uuid.uuid4().hex)
    return part


def _with_content(message: Message, content: Message) -> Message:
    """``message``'s non-content headers on top of ``content``."""
    for name, value in message.items():
        if name.lower() not in _CONTENT_HEADERS and name.lower() != "mime-version":
            content[name] = value
    return content


def _serialize_body(message: Message) -> tuple[list[bytes], bytes]:
    """``message`` as bytes (no header refolding), split into fields and body."""
    out = BytesIO()
    policy = email_policy.compat32.clone(linesep="\r\n", max_line_length=0)
    BytesGenerator(out, mangle_from_=False, policy=policy).flatten(message)
    return _split(out.getvalue())


def _compose(mime: bytes, original: bytes | None, identity: Identity, *,
             now: datetime.datetime, replace_mime: bool, attach: bool,
             message_id: str | None, reply: bool) -> Outgoing:
    fields, body = _split(mime)
    extra: list[tuple[str, str]] = []
    original_message = _parse(original) if original is not None else None
    if reply and original_message is not None:
        original_id = (original_message.get("Message-ID") or "").strip()
        if original_id:
            references = " ".join(
                (original_message.get("References") or original_message.get("In-Reply-To") or "")
                .split()
            )
            extra.append(("In-Reply-To", original_id))
            extra.append(("References", (references + " " + original_id).strip()))
    if original_message is not None and not replace_mime:
        device = _parse(_crlf(mime))
        merged = _merge_original(device, original_message, attach=attach)
        new_fields, body = _serialize_body(merged)
        content = [f for f in new_fields if _name(f) in _CONTENT_HEADERS]
        fields = [f for f in fields if _name(f) not in _CONTENT_HEADERS] + content
    return _finish(fields, body, identity, now, message_id, extra)


def compose_new(mime: bytes, identity: Identity, *, now: datetime.datetime,
                message_id: str | None = None) -> Outgoing:
    """SendMail: the device's message, with From / Date / Message-ID / Bcc handled."""
    return _compose(mime, None, identity, now=now, replace_mime=True, attach=False,
                    message_id=message_id, reply=False)


def compose_reply(mime: bytes, original: bytes, identity: Identity, *, now: datetime.datetime,
                  replace_mime: bool = False, message_id: str | None = None) -> Outgoing:
    """SmartReply: threading headers from ``original`` and, unless
    ``replace_mime``, its body appended below the device's text."""
    return _compose(mime, original, identity, now=now, replace_mime=replace_mime,
                    attach=False, message_id=message_id, reply=True)


def compose_forward(mime: bytes, original: bytes, identity: Identity, *, now: datetime.datetime,
                    replace_mime: bool = False, message_id: str | None = None) -> Outgoing:
    """SmartForward: unless ``replace_mime``, the original's body inline below
    the device's text and its attachments attached."""
    return _compose(mime, original, identity, now=now, replace_mime=replace_mime,
                    attach=True, message_id=message_id, reply=False)
