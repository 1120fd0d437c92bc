"""The element tree that the codec reads and writes, and its one error type."""

from __future__ import annotations

import base64
from typing import Iterable, Iterator
from xml.sax.saxutils import escape, quoteattr


class WBXMLError(ValueError):
    """Malformed WBXML input, or a tree that cannot be encoded (unknown tag)."""


class Element:
    """One ActiveSync XML element.

    ``tag`` is ``"Namespace:Name"`` (namespace = MS-ASWBXML code page name).
    ``text`` is a ``str`` (written as an inline string), ``bytes`` (written as
    opaque data) or ``None`` (no content); ``children`` are the child elements
    in document order.
    """

    __slots__ = ("tag", "text", "children")

    tag: str
    text: str | bytes | None
    children: list[Element]

    def __init__(
        self,
        tag: str,
        text: str | bytes | None = None,
        children: Iterable[Element] | None = None,
    ) -> None:
        self.tag = tag
        self.text = text
        self.children = list(children) if children is not None else []

    @property
    def namespace(self) -> str:
        """The code page name, e.g. ``"AirSync"``."""
        return self.tag.partition(":")[0]

    @property
    def name(self) -> str:
        """The tag name without its namespace, e.g. ``"SyncKey"``."""
        return self.tag.partition(":")[2]

    def append(self, child: Element) -> Element:
        """Append ``child`` and return it."""
        self.children.append(child)
        return child

    def add(self, tag: str, text: str | bytes | None = None) -> Element:
        """Append a new child element and return it."""
        child = Element(tag, text)
        self.children.append(child)
        return child

    def _walk(self, path: str) -> Iterator[Element]:
        steps = path.split("/")
        level: list[Element] = [self]
        for step in steps[:-1]:
            level = [c for e in level for c in e.children if c.tag == step]
            if not level:
                return
        last = steps[-1]
        for element in level:
            for child in element.children:
                if child.tag == last:
                    yield child

    def find(self, path: str) -> Element | None:
        """The first element at ``path`` ("Ns:A/Ns:B", direct children)."""
        return next(self._walk(path), None)

    def findall(self, path: str) -> list[Element]:
        """Every element at ``path``, in document order."""
        return list(self._walk(path))

    def findtext(self, path: str, default: str | None = None) -> str | None:
        """The text of the first element at ``path``.

        Opaque (bytes) text is decoded as UTF-8 with replacement characters;
        an element without content gives ``""``; no element gives ``default``.
        """
        element = self.find(path)
        if element is None:
            return default
        text = element.text
        if text is None:
            return ""
        if isinstance(text, bytes):
            return text.decode("utf-8", errors="replace")
        return text

    def to_xml(self) -> str:
        """Indented XML for protocol traces.

        Every namespace in use is declared on the root with a lower-case
        prefix; opaque data is shown as base64 with ``opaque="base64"``.
        """
        namespaces: dict[str, None] = {}
        stack: list[Element] = [self]
        while stack:
            element = stack.pop()
            namespaces[element.namespace] = None
            stack.extend(element.children)
        declarations = "".join(
            f" xmlns:{ns.lower()}={quoteattr(ns)}" for ns in sorted(namespaces)
        )
        lines = ['<?xml version="1.0" encoding="utf-8"?>']
        # (element, depth, closing) triples; closing entries print end tags.
        work: list[tuple[Element, int, bool]] = [(self, 0, False)]
        while work:
            element, depth, closing = work.pop()
            indent = "  " * depth
            ns, _, name = element.tag.partition(":")
            qname = f"{ns.lower()}:{name}"
            if closing:
                lines.append(f"{indent}</{qname}>")
                continue
            attrs = declarations if element is self and depth == 0 else ""
            text = element.text
            if isinstance(text, bytes):
                attrs += ' opaque="base64"'
                body = base64.b64encode(text).decode("ascii")
            elif text is not None:
                body = escape(text)
            else:
                body = None
            if not element.children:
                if body is None:
                    lines.append(f"{indent}<{qname}{attrs}/>")
                else:
                    lines.append(f"{indent}<{qname}{attrs}>{body}</{qname}>")
                continue
            lines.append(f"{indent}<{qname}{attrs}>")
            if body is not None:
                lines.append(f"{indent}  {body}")
            work.append((element, depth, True))
            for child in reversed(element.children):
                work.append((child, depth + 1, False))
        return "\n".join(lines) + "\n"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        # Iterative, so deep trees cannot exhaust the recursion limit.
        pairs: list[tuple[Element, Element]] = [(self, other)]
        while pairs:
            a, b = pairs.pop()
            if (
                a.tag != b.tag
                or a.text != b.text
                or type(a.text) is not type(b.text)
                or len(a.children) != len(b.children)
            ):
                return False
            pairs.extend(zip(a.children, b.children))
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [repr(self.tag)]
        if self.text is not None:
            text = self.text
            if len(text) > 40:
                text = text[:40]
                parts.append(f"{text!r}...")
            else:
                parts.append(repr(text))
        if self.children:
            parts.append(f"<{len(self.children)} children>")
        return f"Element({', '.join(parts)})"
