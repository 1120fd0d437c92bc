"""IMAP wire helpers: the response tokenizer, UID sets, modified UTF-7, dates, quoting.

Pure functions, no Twisted.  The tokenizer turns one server response (its text
lines and the literals between them) into nested Python lists:

* atoms (numbers, flags, ``NIL`` excepted) become ``str``;
* quoted strings and literals become ``bytes``;
* ``NIL`` becomes ``None``;
* parenthesised lists become ``list``.

An atom may carry a bracketed section (``BODY[HEADER.FIELDS (FROM TO)]<0>``),
which stays one ``str`` token.
"""
from __future__ import annotations

import base64
import datetime
import re
from typing import Any, Iterable, Sequence

__all__ = [
    "IMAPParseError", "tokenize", "parse_uid_set", "format_uid_set", "encode_mutf7",
    "decode_mutf7", "quote", "astring", "parse_internaldate", "format_internaldate",
    "split_status",
]


class IMAPParseError(ValueError):
    """A server response we cannot read."""


_TOKENS = re.compile(
    rb'[ \t]*(?:(\()|(\))|(")([^"\\]*(?:\\.[^"\\]*)*)"'
    rb'|((?:[^\s()"\[\]{]+|\[[^\]]*\])(?:[^\s()"\[\]{]+|\[[^\]]*\])*)|(\S))', re.S
).findall
_UNQUOTE = re.compile(rb"\\(.)", re.S)
_LITERAL_TAIL = re.compile(rb"\{(\d+)\+?\}$")


def literal_size(line: bytes) -> int | None:
    """The size ``n`` if ``line`` ends with a literal announcement ``{n}``, else ``None``."""
    if not line.endswith(b"}"):
        return None
    match = _LITERAL_TAIL.search(line)
    return int(match.group(1)) if match else None


def tokenize(texts: Sequence[bytes], literals: Sequence[bytes] = ()) -> list[Any]:
    """Parse a response made of ``texts[0] literals[0] texts[1] ...``.

    Each text but the last ends with its ``{n}`` announcement, which is
    replaced by the literal's octets.
    """
    stack: list[list[Any]] = [[]]
    top = stack[0]
    unquote = _UNQUOTE.sub
    for index, text in enumerate(texts):
        literal = literals[index] if index < len(literals) else None
        if literal is not None:
            text = text[: text.rindex(b"{")]
        # One findall per line (tuples, no match objects): a token is one of
        # the groups; anything else ends up in the last group and is an error.
        for opening, closing, quote, quoted, atom, bad in _TOKENS(text):
            if atom:
                if len(atom) == 3 and atom.upper() == b"NIL":
                    top.append(None)
                else:
                    top.append(atom.decode("latin-1"))
            elif quote:
                top.append(unquote(rb"\1", quoted) if b"\\" in quoted else quoted)
            elif opening:
                new: list[Any] = []
                top.append(new)
                stack.append(new)
                top = new
            elif closing:
                if len(stack) == 1:
                    raise IMAPParseError("unbalanced ')'")
                stack.pop()
                top = stack[-1]
            else:
                position = text.find(bad)
                raise IMAPParseError(f"cannot parse {text[position:position + 60]!r}")
        if literal is not None:
            top.append(literal)
    if len(stack) != 1:
        raise IMAPParseError("unbalanced '('")
    return stack[0]


def split_status(rest: bytes) -> tuple[str, list[Any], str]:
    """``b"[COPYUID 1 2 3] Done"`` -> ``("COPYUID", ["1", "2", "3"], "Done")``.

    Without a response code the first two are ``("", [])``.
    """
    rest = rest.lstrip(b" ")
    if rest.startswith(b"["):
        close = rest.find(b"]")
        if close != -1:
            try:
                tokens = tokenize([rest[1:close]])
            except IMAPParseError:
                tokens = []
            text = rest[close + 1:].strip().decode("utf-8", "replace")
            if tokens and isinstance(tokens[0], str):
                return tokens[0].upper(), tokens[1:], text
            return "", [], text
    return "", [], rest.strip().decode("utf-8", "replace")


def parse_uid_set(text: str | bytes) -> frozenset[int]:
    """``"1:3,7"`` -> ``{1, 2, 3, 7}`` (ranges in either order)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    result: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            low_text, high_text = part.split(":", 1)
            low, high = int(low_text), int(high_text)
            if low > high:
                low, high = high, low
            result.update(range(low, high + 1))
        else:
            result.add(int(part))
    return frozenset(result)


def uid_list(text: str | bytes) -> list[int]:
    """A UID set in the order given, ranges expanded (``COPYUID`` pairs by position)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    result: list[int] = []
    for part in text.split(","):
        if ":" in part:
            low_text, high_text = part.split(":", 1)
            low, high = int(low_text), int(high_text)
            step = 1 if high >= low else -1
            result.extend(range(low, high + step, step))
        elif part:
            result.append(int(part))
    return result


def format_uid_set(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"`` (sorted, ranges compressed)."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set cannot be sent")
    pieces: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        pieces.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    pieces.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(pieces)


def encode_mutf7(name: str) -> bytes:
    """A mailbox name in modified UTF-7 (RFC 3501 section 5.1.3)."""
    out = bytearray()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.extend(b"&" + base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.extend(b"&-" if char == "&" else char.encode("ascii"))
        else:
            pending.append(char)
    flush()
    return bytes(out)


def decode_mutf7(raw: bytes) -> str:
    """Decode a modified UTF-7 mailbox name; invalid shifts are kept as they are."""
    out: list[str] = []
    pos = 0
    while pos < len(raw):
        amp = raw.find(b"&", pos)
        if amp == -1:
            out.append(raw[pos:].decode("utf-8", "replace"))
            break
        out.append(raw[pos:amp].decode("utf-8", "replace"))
        dash = raw.find(b"-", amp + 1)
        if dash == -1:
            out.append(raw[amp:].decode("utf-8", "replace"))
            break
        chunk = raw[amp + 1:dash]
        if not chunk:
            out.append("&")
        else:
            try:
                data = chunk.replace(b",", b"/")
                data += b"=" * (-len(data) % 4)
                out.append(base64.b64decode(data, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                out.append(raw[amp:dash + 1].decode("utf-8", "replace"))
        pos = dash + 1
    return "".join(out)


def quote(value: bytes) -> bytes:
    """An IMAP quoted string (the caller makes sure ``value`` has no CR/LF/NUL)."""
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def astring(value: bytes) -> tuple[bytes, bytes | None]:
    """``(quoted, None)`` for 7-bit printable text, ``(b"", literal)`` otherwise."""
    if all(0x20 <= byte < 0x7F for byte in value):
        return quote(value), None
    return b"", value


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(
    r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*$"
)


def parse_internaldate(value: str | bytes) -> datetime.datetime | None:
    """``"17-Jul-1996 02:44:25 -0700"`` -> an aware datetime (``None`` if unreadable)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    match = _DATE.match(value)
    if not match:
        return None
    day, month_name, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    try:
        month = [m.lower() for m in _MONTHS].index(month_name.lower()) + 1
        offset = datetime.timedelta(hours=int(zone_h), minutes=int(zone_m))
        zone = datetime.timezone(-offset if sign == "-" else offset)
        return datetime.datetime(
            int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        return None


def format_internaldate(when: datetime.datetime) -> bytes:
    """An aware (or UTC-assumed naive) datetime as a quoted IMAP ``date-time``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    offset = when.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    text = (
        f"{when.day:2d}-{_MONTHS[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
    return b'"' + text.encode("ascii") + b'"'
