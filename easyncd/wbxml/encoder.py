"""Element tree -> WBXML bytes, as MS-ASWBXML uses it."""

from __future__ import annotations

from typing import Final

from .codepages import TOKEN_BY_TAG
from .element import Element, WBXMLError

#: Version 1.3, public id 1 (unknown), charset UTF-8 (106), empty string table.
HEADER: Final = b"\x03\x01\x6a\x00"

_END: Final = b"\x01"
_STR_I: Final = b"\x03"
_TERMINATOR: Final = b"\x00"

#: tag -> (page, token byte without content, token byte with content)
_TAG_BYTES: Final[dict[str, tuple[int, bytes, bytes]]] = {
    tag: (page, bytes((token,)), bytes((token | 0x40,)))
    for tag, (page, token) in TOKEN_BY_TAG.items()
}
_SWITCH: Final[tuple[bytes, ...]] = tuple(bytes((0, page)) for page in range(256))


def _mb_u_int32(value: int) -> bytes:
    """Encode ``value`` as a WBXML multi-byte integer."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def encode(root: Element) -> bytes:
    """Encode ``root`` and its descendants as a WBXML document.

    ``str`` text becomes an inline string, ``bytes`` text opaque data.
    Raises ``WBXMLError`` for a tag missing from the code pages and for text
    that an inline string cannot carry (NUL characters, lone surrogates).
    """
    chunks: list[bytes] = [HEADER]
    append = chunks.append
    tag_bytes = _TAG_BYTES
    page = 0
    # None in the work stack stands for "close the element opened before".
    work: list[Element | None] = [root]
    pop = work.pop
    while work:
        element = pop()
        if element is None:
            append(_END)
            continue
        try:
            element_page, empty, with_content = tag_bytes[element.tag]
        except (KeyError, TypeError):
            raise WBXMLError(f"unknown tag {element.tag!r}") from None
        if element_page != page:
            append(_SWITCH[element_page])
            page = element_page
        text = element.text
        children = element.children
        if text is None and not children:
            append(empty)
            continue
        append(with_content)
        if text is not None:
            if type(text) is str:
                try:
                    raw = text.encode("utf-8")
                except UnicodeEncodeError as error:
                    raise WBXMLError(f"{element.tag}: {error}") from None
                if b"\x00" in raw:
                    raise WBXMLError(f"{element.tag}: NUL in an inline string")
                append(_STR_I)
                append(raw)
                append(_TERMINATOR)
            elif isinstance(text, (bytes, bytearray, memoryview)):
                raw = bytes(text)
                append(b"\xc3" + _mb_u_int32(len(raw)))
                append(raw)
            else:
                raise WBXMLError(
                    f"{element.tag}: text must be str, bytes or None, "
                    f"not {type(text).__name__}"
                )
        if children:
            work.append(None)
            work.extend(reversed(children))
        else:
            append(_END)
    return b"".join(chunks)
