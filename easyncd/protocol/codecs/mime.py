"""MIME helpers for the email codec: any bytes -> valid UTF-8 text.

- :func:`decode_text` turns a part's bytes in any declared charset (or none,
  or a wrong one) into ``str`` that encodes as UTF-8 and holds no characters
  WBXML or XML cannot carry (NUL and the other C0 controls but tab, CR, LF).
  Charset names go through WHATWG-style aliases (``iso-8859-1`` and
  ``us-ascii`` are read as windows-1252, ``shift_jis`` as cp932, ``gb2312`` as
  gb18030, ``ks_c_5601-1987`` as cp949 ...); unknown or missing charsets try
  UTF-8 and fall back to windows-1252, so no input is ever rejected.
- :func:`decode_transfer` undoes base64 / quoted-printable leniently (bad
  characters skipped, missing padding added, a truncated tail dropped).
- :func:`parse_headers` splits a header block (bytes) without the ``email``
  package; :func:`decode_header` decodes RFC 2047 words (also malformed ones:
  no spaces around, inside quotes, a wrong charset) and raw 8-bit headers.
- :func:`parse_addresses` / :func:`format_address` read and write address lists.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import re
from functools import lru_cache

from easyncd.protocol.codecs.body import html_to_text, text_to_html

__all__ = [
    "Headers", "clean_text", "decode_header", "decode_text", "decode_transfer",
    "format_address", "html_to_text", "lookup_charset", "parse_addresses",
    "parse_headers", "text_to_html",
]

#: Declared charset -> the codec really used (labels servers and mailers get wrong).
_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "windows-874": "cp874", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "ms_kanji": "cp932", "windows-31j": "cp932", "gb2312": "gb18030",
    "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030", "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949", "euc-kr": "cp949", "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac-roman", "macintosh": "mac-roman", "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7", "x-unknown": "", "unknown": "", "unknown-8bit": "",
    "x-user-defined": "", "default": "", "charset": "", "none": "", "binary": "",
    "8bit": "", "7bit": "",
}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Either of the two above: one scan for the common, clean text.
_UNCLEAN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


@lru_cache(maxsize=256)
def lookup_charset(name: str | None) -> str | None:
    """The Python codec for a declared charset, or None when it is unknown
    (or missing) and the text must be guessed."""
    if not name:
        return None
    label = name.strip().strip("\"'").lower()
    label = label.split("*", 1)[0]  # RFC 2231 language suffix
    label = _ALIASES.get(label, label)
    if not label:
        return None
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if info.name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    if not getattr(info, "_is_text_encoding", True):
        return None  # base64_codec, zlib_codec ...
    return info.name


def clean_text(text: str) -> str:
    """``text`` without the characters XML/WBXML cannot carry (and without
    a leading byte order mark)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.isascii() and text.isprintable() or not _UNCLEAN.search(text):
        return text
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


_HIGH_BYTES = bytes(range(0x80, 0x100))


def _mostly_utf8(data: bytes) -> bool:
    """Whether bytes that are not valid UTF-8 still are UTF-8 with a few
    broken bytes (the 8-bit bytes in valid UTF-8 sequences are at least as
    many as the stray ones).

    Counted with C loops only: ``surrogateescape`` decodes every stray byte
    to a lone surrogate, which ``encode(..., "ignore")`` then drops, so what
    is left beyond the ASCII bytes is the bytes of valid sequences."""
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    ascii_count = len(data) - high
    in_sequences = len(data.decode("utf-8", "surrogateescape").encode("utf-8", "ignore")) \
        - ascii_count
    if not in_sequences:
        return False
    return in_sequences >= high - in_sequences


def decode_text(data: bytes, charset: str | None) -> str:
    """``data`` as clean text: the declared charset if Python knows it (bad
    bytes replaced), else UTF-8 if it is valid UTF-8, else windows-1252."""
    codec = lookup_charset(charset)
    if codec is None or codec in ("cp1252", "utf-8"):
        # Undeclared, unknown, or commonly mislabelled: valid UTF-8 wins.
        try:
            return clean_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            if codec == "utf-8" or _mostly_utf8(data):
                return clean_text(data.decode("utf-8", errors="replace"))
            codec = "cp1252"
    try:
        return clean_text(data.decode(codec, errors="replace"))
    except Exception:  # noqa: BLE001 - some codecs raise other errors on bad input
        return clean_text(data.decode("cp1252", errors="replace"))


_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_QP_TAIL = re.compile(rb"=[0-9A-Fa-f]?$")


def decode_transfer(data: bytes, encoding: str | None, *, partial: bool = False) -> bytes:
    """Undo a Content-Transfer-Encoding.  ``partial``: ``data`` is the start
    of the part only, so a cut final group is dropped rather than guessed."""
    enc = (encoding or "").strip().lower()
    if enc == "base64":
        clean = _B64_JUNK.sub(b"", data.split(b"=", 1)[0])
        usable = len(clean) - len(clean) % 4
        tail = clean[usable:]
        body = clean[:usable]
        if tail and not partial and len(tail) > 1:
            body += tail + b"=" * (4 - len(tail))
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            return b""
    if enc in ("quoted-printable", "quoted_printable", "qp"):
        if partial:
            data = _QP_TAIL.sub(b"", data)
        try:
            return binascii.a2b_qp(data)
        except (binascii.Error, ValueError):
            return data
    return data


# -- headers --------------------------------------------------------------------------

class Headers:
    """A parsed header block: field names in lower case -> raw values
    (unfolded, as text; 8-bit bytes read as UTF-8 or windows-1252)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str) -> str | None:
        """The first value of a field, raw (None when absent)."""
        values = self._fields.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value of a field, raw."""
        return list(self._fields.get(name.lower(), ()))

    def text(self, name: str) -> str | None:
        """The first value, RFC 2047 decoded and cleaned."""
        value = self.get(name)
        return None if value is None else decode_header(value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields


def _header_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


_FOLD = re.compile(rb"\r?\n[ \t]+")


def parse_headers(block: bytes) -> Headers:
    """The fields of a header block (stops at the first empty line; lines
    without a colon are skipped, continuation lines joined)."""
    fields: dict[str, list[str]] = {}
    end = block.find(b"\r\n\r\n")
    if end < 0:
        end = block.find(b"\n\n")
    if end >= 0:
        block = block[:end]
    block = _FOLD.sub(b" ", block)
    try:
        lines: list[str] = block.decode("ascii").split("\n")
    except UnicodeDecodeError:
        lines = [_header_text(line) for line in block.split(b"\n")]
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        if not name or " " in name or "\t" in name:
            continue
        fields.setdefault(name.lower(), []).append(value.strip())
    return Headers(fields)


_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")


def _decode_word(charset: str, kind: str, payload: str) -> bytes:
    if kind in "bB":
        clean = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        clean += "=" * (-len(clean) % 4)
        try:
            return base64.b64decode(clean)
        except (binascii.Error, ValueError):
            return b""
    return binascii.a2b_qp(payload.replace("_", " ").encode("ascii", errors="replace"),
                           header=False)


def decode_header(value: str) -> str:
    """An RFC 2047 header value as clean text.  Adjacent encoded words in one
    charset are joined before decoding (multi-byte characters split across
    words survive)."""
    if "=?" not in value:
        return clean_text(value)
    value = _BETWEEN_WORDS.sub(r"\1\2", value)
    out: list[str] = []
    pending_charset: str | None = None
    pending = b""
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            out.append(decode_text(pending, pending_charset))
        pending, pending_charset = b"", None

    for match in _WORD.finditer(value):
        if match.start() > pos:
            flush()
            out.append(value[pos:match.start()])
        charset = match.group(1).split("*", 1)[0].lower()
        data = _decode_word(charset, match.group(2), match.group(3))
        if pending_charset is not None and pending_charset != charset:
            flush()
        pending_charset = charset
        pending += data
        pos = match.end()
    flush()
    out.append(value[pos:])
    return clean_text("".join(out))


_ADDRESS_SPLIT = re.compile(r'"(?:[^"\\]|\\.)*"|<[^<>]*>|\([^()]*\)|[^,"<(]+|[,"<(]')
_ANGLE = re.compile(r"^(?P<name>.*?)<(?P<addr>[^<>]*)>", re.S)
_COMMENT = re.compile(r"\(([^()]*)\)")
_GROUP = re.compile(r'^\s*[^@<>"]*?:(?!//)')


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name


def _split_list(value: str) -> list[str]:
    """Split an address list on the commas outside quotes, brackets and comments."""
    items: list[str] = []
    current: list[str] = []
    for token in _ADDRESS_SPLIT.findall(value):
        if token == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(token)
    items.append("".join(current))
    return items


def parse_addresses(value: str | None) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address-list header (raw value);
    names decoded; groups flattened; entries without an address dropped."""
    if not value:
        return []
    result = []
    for item in _split_list(value):
        item = item.strip()
        group = _GROUP.match(item)
        if group:
            item = item[group.end():].strip()
        item = item.rstrip(";").strip()
        if not item:
            continue
        match = _ANGLE.match(item)
        if match:
            name = _unquote(_COMMENT.sub("", match.group("name")))
            address = match.group("addr").strip()
        else:
            comment = _COMMENT.search(item)
            name = _unquote(comment.group(1)) if comment else ""
            address = _COMMENT.sub("", item).strip().strip('"')
        address = clean_text(address.replace(" ", ""))
        if not address or "@" not in address and not name:
            continue
        result.append((decode_header(name).strip(), address))
    return result


def format_address(name: str, address: str) -> str:
    """``"Name" <address>`` (or the bare address) for an EAS address field."""
    if not name or name == address:
        return address
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <{address}>'
