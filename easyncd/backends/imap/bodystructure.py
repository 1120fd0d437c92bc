"""IMAP BODYSTRUCTURE (RFC 3501 7.4.2) -> a tree of :class:`BodyPart`.

The input is the parsed nested list an IMAP client gives for the
``BODYSTRUCTURE`` item: lists whose atoms are ``bytes``, ``str``, ``int`` or
``None`` (NIL); numbers may also arrive as digit strings (Twisted's parser).
Servers send odd structures (missing extension data, NIL where a string
belongs, a list where an atom belongs, lower-case or quoted numbers,
``message/rfc822`` without an envelope); the parser keeps what it can read
and never raises on a well-nested list.  :class:`BodyStructureError` is
raised only for input that is not a list at all.

Part ids follow IMAP section numbering: the root of a multipart message has
the id ``""`` (its body is section ``TEXT``), its children ``"1"``, ``"2"``,
``"2.1"`` ...; a single-part message's root is ``"1"``.  The body of a
``message/rfc822`` part ``"3"`` is its single child: a multipart body keeps
the id ``"3"`` for itself and numbers its children ``"3.1"``, ``"3.2"``; a
single-part body is ``"3.1"``.
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

__all__ = ["BodyPart", "BodyStructureError", "parse_bodystructure"]


class BodyStructureError(ValueError):
    """The BODYSTRUCTURE cannot be read at all."""


@dataclass(frozen=True)
class BodyPart:
    """One node of a message's MIME tree (types and parameter names in lower case)."""

    part_id: str
    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    description: str | None = None
    encoding: str | None = None
    size: int = 0
    lines: int | None = None
    md5: str | None = None
    #: Content-Disposition type in lower case ("inline", "attachment") or None.
    disposition: str | None = None
    disposition_params: dict[str, str] = field(default_factory=dict)
    language: tuple[str, ...] = ()
    location: str | None = None
    children: tuple[BodyPart, ...] = ()
    #: message/rfc822 only: the envelope's subject (raw, RFC 2047 encoded).
    envelope_subject: str | None = None

    @property
    def content_type(self) -> str:
        """``type/subtype``."""
        return f"{self.type}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        """Whether this is a multipart container."""
        return self.type == "multipart"

    @property
    def charset(self) -> str | None:
        """The charset parameter, if any."""
        return self.params.get("charset")

    @property
    def filename(self) -> str | None:
        """The file name from Content-Disposition (RFC 2231 decoded) or the
        Content-Type ``name`` parameter; raw RFC 2047 words are left for the
        caller to decode."""
        for params, key in ((self.disposition_params, "filename"), (self.params, "name")):
            value = _param_2231(params, key)
            if value:
                return value
        return None

    def walk(self) -> Iterator[BodyPart]:
        """This part and all parts below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, part_id: str) -> BodyPart | None:
        """The part with this id (a multipart root's id is ``""``)."""
        for part in self.walk():
            if part.part_id == part_id:
                return part
        return None


_CONTINUATION = re.compile(r"^(?P<name>[^*]+)\*(?P<index>\d+)(?P<enc>\*?)$")


def _param_2231(params: dict[str, str], key: str) -> str | None:
    """A parameter, with RFC 2231 extended (``key*``) and continued
    (``key*0*``, ``key*1``) forms joined and decoded."""
    if key + "*" in params:
        raw = params[key + "*"]
        charset, _, rest = raw.partition("'")
        if _:
            _lang, _, text = rest.partition("'")
            return _decode(urllib.parse.unquote_to_bytes(text), charset)
        return raw
    pieces: list[tuple[int, str, bool]] = []
    for name, value in params.items():
        match = _CONTINUATION.match(name)
        if match and match.group("name") == key:
            pieces.append((int(match.group("index")), value, bool(match.group("enc"))))
    if pieces:
        pieces.sort()
        charset = ""
        data = b""
        for index, value, encoded in pieces:
            if index == 0 and encoded and value.count("'") >= 2:
                charset, _lang, value = value.split("'", 2)
            data += urllib.parse.unquote_to_bytes(value) if encoded else value.encode("utf-8")
        return _decode(data, charset)
    return params.get(key)


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")


def _text(value: Any) -> str | None:
    """An atom as text (None for NIL and for anything that is not an atom)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _text(value)
    if text is not None and text.strip().isdigit():
        return int(text.strip())
    return None


def _params(value: Any) -> dict[str, str]:
    """A ``("NAME" "value" ...)`` list as a dict with lower-case names."""
    if not isinstance(value, (list, tuple)):
        return {}
    result: dict[str, str] = {}
    items = list(value)
    for i in range(0, len(items) - 1, 2):
        name = _text(items[i])
        if name is None:
            continue
        val = _text(items[i + 1])
        result[name.lower()] = val if val is not None else ""
    return result


def _disposition(value: Any) -> tuple[str | None, dict[str, str]]:
    if isinstance(value, (list, tuple)) and value:
        kind = _text(value[0])
        params = _params(value[1]) if len(value) > 1 else {}
        return (kind.lower() if kind else None), params
    kind = _text(value)
    return (kind.lower() if kind else None), {}


def _language(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(t for t in (_text(v) for v in value) if t)
    text = _text(value)
    return (text,) if text else ()


def _child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}.{index}" if parent_id else str(index)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _parse(node: Sequence[Any], part_id: str, depth: int) -> BodyPart:
    if depth > 64:
        raise BodyStructureError("BODYSTRUCTURE nested too deeply")
    if node and _is_list(node[0]):
        return _parse_multipart(node, part_id, depth)
    return _parse_single(node, part_id, depth)


def _parse_multipart(node: Sequence[Any], part_id: str, depth: int) -> BodyPart:
    children: list[BodyPart] = []
    index = 0
    while index < len(node) and _is_list(node[index]):
        child = node[index]
        children.append(_parse(child, _child_id(part_id, len(children) + 1), depth + 1))
        index += 1
    rest = list(node[index:])
    subtype = (_text(rest[0]) if rest else None) or "mixed"
    params = _params(rest[1]) if len(rest) > 1 else {}
    disposition, disposition_params = _disposition(rest[2]) if len(rest) > 2 else (None, {})
    language = _language(rest[3]) if len(rest) > 3 else ()
    location = _text(rest[4]) if len(rest) > 4 else None
    return BodyPart(part_id=part_id, type="multipart", subtype=subtype.lower(), params=params,
                    disposition=disposition, disposition_params=disposition_params,
                    language=language, location=location, children=tuple(children))


def _parse_single(node: Sequence[Any], part_id: str, depth: int) -> BodyPart:
    fields = list(node) + [None] * max(0, 7 - len(node))
    ctype = (_text(fields[0]) or "text").lower()
    subtype = (_text(fields[1]) or "plain").lower()
    if "/" in ctype and not _text(fields[1]):
        ctype, _, subtype = ctype.partition("/")
    params = _params(fields[2])
    kwargs: dict[str, Any] = {
        "id": _text(fields[3]),
        "description": _text(fields[4]),
        "encoding": (_text(fields[5]) or "7bit").lower(),
        "size": _number(fields[6]) or 0,
    }
    rest = list(node[7:])
    children: tuple[BodyPart, ...] = ()
    envelope_subject = None
    if ctype == "message" and subtype in ("rfc822", "global") and len(rest) >= 2 \
            and _is_list(rest[1]) and rest[1]:
        envelope = rest[0]
        if _is_list(envelope) and len(envelope) > 1:
            envelope_subject = _text(envelope[1])
        inner = rest[1]
        inner_id = part_id if inner and _is_list(inner[0]) else _child_id(part_id, 1)
        try:
            children = (_parse(inner, inner_id, depth + 1),)
        except (BodyStructureError, IndexError):
            children = ()
        kwargs["lines"] = _number(rest[2]) if len(rest) > 2 else None
        rest = rest[3:]
    elif ctype == "text":
        kwargs["lines"] = _number(rest[0]) if rest else None
        rest = rest[1:]
    disposition: str | None = None
    disposition_params: dict[str, str] = {}
    if rest:
        kwargs["md5"] = _text(rest[0])
    if len(rest) > 1:
        disposition, disposition_params = _disposition(rest[1])
    if len(rest) > 2:
        kwargs["language"] = _language(rest[2])
    if len(rest) > 3:
        kwargs["location"] = _text(rest[3])
    return BodyPart(part_id=part_id, type=ctype, subtype=subtype, params=params,
                    disposition=disposition, disposition_params=disposition_params,
                    children=children, envelope_subject=envelope_subject, **kwargs)


def parse_bodystructure(value: Sequence[Any]) -> BodyPart:
    """The tree of a BODYSTRUCTURE given as nested lists."""
    if not _is_list(value) or not value:
        raise BodyStructureError(f"not a BODYSTRUCTURE: {value!r:.80}")
    root_id = "" if _is_list(value[0]) else "1"
    try:
        return _parse(value, root_id, 0)
    except RecursionError:
        raise BodyStructureError("BODYSTRUCTURE nested too deeply") from None
