"""WBXML bytes -> Element tree, as MS-ASWBXML uses it.

Accepts tags (with or without content), SWITCH_PAGE, inline strings, opaque
data, character entities and string-table references.  Refuses attributes,
LITERAL tags, processing instructions and extension tokens, which ActiveSync
never sends.  Any malformed input raises ``WBXMLError`` and nothing else.
"""

from __future__ import annotations

from typing import Final

from .codepages import TAGS_BY_TOKEN
from .element import Element, WBXMLError

#: Deepest element nesting accepted (EAS documents stay well under 20).
MAX_DEPTH: Final = 64

_SWITCH_PAGE: Final = 0x00
_END: Final = 0x01
_ENTITY: Final = 0x02
_STR_I: Final = 0x03
_STR_T: Final = 0x83
_OPAQUE: Final = 0xC3
_CHARSET_UTF8: Final = 106
_PAGE_COUNT: Final = len(TAGS_BY_TOKEN)


def _read_mb_u_int32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a WBXML multi-byte integer at ``pos``; return (value, next pos)."""
    value = 0
    for count in range(5):
        if pos >= end:
            raise WBXMLError("truncated multi-byte integer")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value > 0xFFFFFFFF:
                raise WBXMLError("multi-byte integer overflows 32 bits")
            return value, pos
    raise WBXMLError("multi-byte integer longer than 5 bytes")


def _add_text(element: Element, text: str | bytes) -> None:
    old = element.text
    if old is None:
        element.text = text
    elif type(old) is type(text):
        element.text = old + text  # type: ignore[operator]
    else:
        raise WBXMLError(f"{element.tag} mixes opaque data and strings")


def _decode_str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WBXMLError(f"inline string is not UTF-8: {error}") from None


def decode(data: bytes) -> Element:
    """Decode one WBXML document into its root element.

    Raises ``WBXMLError`` for anything malformed: a bad header, unknown code
    pages or tokens, truncation, nesting deeper than ``MAX_DEPTH``, trailing
    bytes after the root element.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WBXMLError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    end = len(data)
    if end < 4:
        raise WBXMLError("document shorter than a WBXML header")
    if data[0] not in (0x01, 0x02, 0x03):
        raise WBXMLError(f"unsupported WBXML version 0x{data[0]:02x}")
    public_id, pos = _read_mb_u_int32(data, 1, end)
    if public_id == 0:  # public id given as a string-table index
        _, pos = _read_mb_u_int32(data, pos, end)
    charset, pos = _read_mb_u_int32(data, pos, end)
    if charset not in (0, _CHARSET_UTF8):
        raise WBXMLError(f"unsupported charset MIBenum {charset}")
    table_length, pos = _read_mb_u_int32(data, pos, end)
    if table_length > end - pos:
        raise WBXMLError("string table runs past the end of the document")
    string_table = data[pos : pos + table_length]
    pos += table_length

    names = TAGS_BY_TOKEN[0]
    stack: list[Element] = []
    push = stack.append
    root: Element | None = None
    find = data.find
    while pos < end:
        byte = data[pos]
        pos += 1
        token = byte & 0x3F
        if token >= 0x05:
            if byte & 0x80:
                raise WBXMLError("attributes are not used by ActiveSync")
            tag = names[token]
            if tag is None:
                raise WBXMLError(f"unknown tag token 0x{token:02x} at {pos - 1}")
            element = Element(tag)
            if stack:
                stack[-1].children.append(element)
            elif root is None:
                root = element
            else:
                raise WBXMLError("more than one root element")
            if byte & 0x40:
                if len(stack) >= MAX_DEPTH:
                    raise WBXMLError(f"elements nested deeper than {MAX_DEPTH}")
                push(element)
            elif not stack:
                break
        elif byte == _END:
            if not stack:
                raise WBXMLError("END without an open element")
            stack.pop()
            if not stack:
                break
        elif byte == _STR_I:
            if not stack:
                raise WBXMLError("string outside the root element")
            stop = find(b"\x00", pos)
            if stop < 0:
                raise WBXMLError("unterminated inline string")
            _add_text(stack[-1], _decode_str(data[pos:stop]))
            pos = stop + 1
        elif byte == _OPAQUE:
            if not stack:
                raise WBXMLError("opaque data outside the root element")
            length, pos = _read_mb_u_int32(data, pos, end)
            if length > end - pos:
                raise WBXMLError("opaque data runs past the end of the document")
            _add_text(stack[-1], data[pos : pos + length])
            pos += length
        elif byte == _SWITCH_PAGE:
            if pos >= end:
                raise WBXMLError("truncated SWITCH_PAGE")
            page = data[pos]
            pos += 1
            if page >= _PAGE_COUNT:
                raise WBXMLError(f"unknown code page {page}")
            names = TAGS_BY_TOKEN[page]
        elif byte == _ENTITY:
            if not stack:
                raise WBXMLError("entity outside the root element")
            code, pos = _read_mb_u_int32(data, pos, end)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise WBXMLError(f"invalid character entity {code}")
            _add_text(stack[-1], chr(code))
        elif byte == _STR_T:
            if not stack:
                raise WBXMLError("string outside the root element")
            offset, pos = _read_mb_u_int32(data, pos, end)
            stop = string_table.find(b"\x00", offset)
            if offset >= len(string_table) or stop < 0:
                raise WBXMLError("string-table reference out of range")
            _add_text(stack[-1], _decode_str(string_table[offset:stop]))
        else:
            raise WBXMLError(f"unsupported WBXML token 0x{byte:02x} at {pos - 1}")
    if root is None:
        raise WBXMLError("document has no root element")
    if stack:
        raise WBXMLError("document ends inside an element")
    if pos != end:
        raise WBXMLError(f"{end - pos} trailing bytes after the root element")
    return root
