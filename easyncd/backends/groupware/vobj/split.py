"""Split ``.vcf`` / ``.ics`` files into single items, and join items into one file.

The split works on the text's component structure (BEGIN/END lines, folded
lines and vCard 2.1 quoted-printable soft breaks kept as they are), not on
vobject's parsed tree, so every item keeps its original properties byte for
byte; the caller checks each item with the format's parser afterwards.

- A ``.vcf`` gives one item per top-level VCARD.
- An ``.ics`` (one or more VCALENDARs) gives one VCALENDAR per UID and
  component kind: the master with its RECURRENCE-ID overrides, preceded by
  the VTIMEZONEs they refer to.  A component without UID is an item of its own.
- :func:`join_vcards` concatenates vCards; :func:`join_icalendar` writes one
  VCALENDAR with every component and each VTIMEZONE (by TZID) once.
"""
from __future__ import annotations

import quopri
import re
from dataclasses import dataclass, field
from typing import Iterable, Union

__all__ = [
    "SplitError", "SplitItem", "ITEM_COMPONENTS", "file_format", "split_file",
    "split_vcards", "split_icalendar", "with_uid", "join_vcards", "join_icalendar",
    "item_summary",
]

#: The components that are items of their own in an ``.ics`` / ``.vcf`` file.
ITEM_COMPONENTS = ("VCARD", "VEVENT", "VTODO", "VJOURNAL")

FORMAT_VCARD = "vcard"
FORMAT_ICALENDAR = "icalendar"

EXPORT_PRODID = "-//easyncd//easyncd export//EN"
#: Calendar properties copied into every split item (others, such as METHOD
#: or X-WR-CALNAME, describe the file, not the item).
_KEPT_CALENDAR_PROPERTIES = ("PRODID", "CALSCALE")
_CRLF = "\r\n"
_BEGIN = re.compile(r"^BEGIN:(?P<name>[A-Za-z0-9-]+)\s*$", re.IGNORECASE)
_END = re.compile(r"^END:(?P<name>[A-Za-z0-9-]+)\s*$", re.IGNORECASE)


class SplitError(ValueError):
    """The text is not a well-formed vCard / iCalendar file."""


@dataclass(frozen=True)
class SplitItem:
    """One item of a file: ``component`` is the kind of its main component
    (VCARD, VEVENT, VTODO, VJOURNAL), ``uid`` its UID (None when it has none),
    ``text`` a complete vCard or VCALENDAR with CRLF line ends."""

    component: str
    uid: str | None
    text: str


# -- the component tree -----------------------------------------------------------------


@dataclass
class _Line:
    """One logical line: ``raw`` keeps its physical lines (joined by CRLF)."""

    raw: str
    unfolded: str

    @property
    def head(self) -> str:
        """Name and parameters (before the first ':' outside quotes)."""
        return self.unfolded[:_value_start(self.unfolded)]

    @property
    def name(self) -> str:
        """The property name without group, upper case."""
        name = re.split(r"[;:]", self.unfolded, maxsplit=1)[0]
        return name.rsplit(".", 1)[-1].strip().upper()

    @property
    def value(self) -> str:
        index = _value_start(self.unfolded)
        return self.unfolded[index + 1:] if index < len(self.unfolded) else ""

    def params(self) -> dict[str, list[str]]:
        """The parameters, names upper case, quotes removed."""
        found: dict[str, list[str]] = {}
        for part in _split_outside_quotes(self.head, ";")[1:]:
            name, _, value = part.partition("=")
            values = [v.strip().strip('"') for v in _split_outside_quotes(value, ",")]
            found.setdefault(name.strip().upper(), []).extend(values)
        return found


@dataclass
class _Component:
    name: str
    begin: _Line
    children: list[Union[_Line, "_Component"]] = field(default_factory=list)
    end: _Line | None = None

    def properties(self, name: str) -> list[_Line]:
        return [c for c in self.children if isinstance(c, _Line) and c.name == name]

    def first(self, name: str) -> str | None:
        found = self.properties(name)
        return found[0].value.strip() if found else None

    def components(self) -> list["_Component"]:
        return [c for c in self.children if isinstance(c, _Component)]

    def all_lines(self) -> Iterable[_Line]:
        for child in self.children:
            if isinstance(child, _Component):
                yield from child.all_lines()
            else:
                yield child

    def render(self) -> list[str]:
        out = [self.begin.raw]
        for child in self.children:
            out.extend(child.render() if isinstance(child, _Component) else [child.raw])
        out.append(self.end.raw if self.end is not None else f"END:{self.name}")
        return out


def _value_start(text: str) -> int:
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return index
    return len(text)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _logical_lines(text: str) -> list[_Line]:
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines: list[_Line] = []
    index = 0
    while index < len(physical):
        line = physical[index]
        index += 1
        if line[:1] in (" ", "\t") and lines:
            last = lines[-1]
            lines[-1] = _Line(last.raw + _CRLF + line, last.unfolded + line[1:])
            continue
        if not line.strip():
            continue
        raw, unfolded = line, line
        head = line[:_value_start(line)]
        if "QUOTED-PRINTABLE" in head.upper():
            # vCard 2.1 soft line breaks: a value ending in '=' goes on.
            while unfolded.endswith("=") and index < len(physical):
                following = physical[index]
                index += 1
                raw += _CRLF + following
                unfolded = unfolded[:-1] + following.lstrip(" \t")
        lines.append(_Line(raw, unfolded))
    return lines


def _parse(text: str) -> list[_Component]:
    """The top-level components of ``text``.  SplitError when BEGIN/END do not
    match or text lies outside every component."""
    if text.startswith("\ufeff"):
        text = text[1:]
    top: list[_Component] = []
    stack: list[_Component] = []
    for number, line in enumerate(_logical_lines(text), start=1):
        begin = _BEGIN.match(line.unfolded)
        end = _END.match(line.unfolded)
        if begin:
            component = _Component(begin.group("name").upper(), line)
            if stack:
                stack[-1].children.append(component)
            else:
                top.append(component)
            stack.append(component)
        elif end:
            name = end.group("name").upper()
            if not stack or stack[-1].name != name:
                expected = f"END:{stack[-1].name}" if stack else "BEGIN"
                raise SplitError(f"line {number}: END:{name} where {expected} was expected")
            stack.pop().end = line
        elif stack:
            stack[-1].children.append(line)
        else:
            raise SplitError(f"line {number}: text outside BEGIN/END: {line.unfolded[:40]!r}")
    if stack:
        raise SplitError(f"BEGIN:{stack[-1].name} is never closed (END:{stack[-1].name})")
    return top


def _text(lines: Iterable[str]) -> str:
    return _CRLF.join(lines) + _CRLF


# -- splitting --------------------------------------------------------------------------


def file_format(text: str) -> str | None:
    """``"vcard"``, ``"icalendar"``, or None for a text without components
    (blank).  SplitError for a text that is neither, or mixes both."""
    names = {c.name for c in _parse(text)}
    if not names:
        return None
    if names == {"VCARD"}:
        return FORMAT_VCARD
    if names == {"VCALENDAR"}:
        return FORMAT_ICALENDAR
    raise SplitError(
        "expected only VCARDs or only VCALENDARs, found " + ", ".join(sorted(names)))


def split_file(text: str) -> list[SplitItem]:
    """The items of a ``.vcf`` or ``.ics`` text (see the module docstring)."""
    fmt = file_format(text)
    if fmt == FORMAT_VCARD:
        return split_vcards(text)
    if fmt == FORMAT_ICALENDAR:
        return split_icalendar(text)
    return []


def split_vcards(text: str) -> list[SplitItem]:
    """One item per top-level VCARD.  SplitError for anything else."""
    items = []
    for component in _parse(text):
        if component.name != "VCARD":
            raise SplitError(f"a vCard file holds BEGIN:{component.name}")
        items.append(SplitItem("VCARD", component.first("UID") or None,
                               _text(component.render())))
    return items


def split_icalendar(text: str) -> list[SplitItem]:
    """One VCALENDAR per (component kind, UID), with the VTIMEZONEs it uses."""
    groups: dict[tuple[str, str], list[_Component]] = {}
    order: list[tuple[str, str]] = []
    headers: dict[tuple[str, str], list[str]] = {}
    zones_of: dict[tuple[str, str], dict[str, _Component]] = {}
    for calendar in _parse(text):
        if calendar.name != "VCALENDAR":
            raise SplitError(f"an iCalendar file holds BEGIN:{calendar.name}")
        header = [line.raw for name in _KEPT_CALENDAR_PROPERTIES
                  for line in calendar.properties(name)]
        zones: dict[str, _Component] = {}
        for child in calendar.components():
            if child.name == "VTIMEZONE":
                tzid = child.first("TZID")
                if tzid:
                    zones.setdefault(tzid, child)
        for index, child in enumerate(calendar.components()):
            if child.name == "VTIMEZONE":
                continue
            uid = child.first("UID")
            key = (child.name, uid) if uid else (child.name, f"\0{len(order)}:{index}")
            if key not in groups:
                groups[key] = []
                order.append(key)
                headers[key] = header
                zones_of[key] = zones
            groups[key].append(child)
    items = []
    for key in order:
        components = groups[key]
        # The master (no RECURRENCE-ID) first, overrides in file order.
        components.sort(key=lambda c: bool(c.properties("RECURRENCE-ID")))
        zones = zones_of[key]
        used: list[str] = []
        for component in components:
            for line in component.all_lines():
                for tzid in line.params().get("TZID", []):
                    if tzid in zones and tzid not in used:
                        used.append(tzid)
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0"]
        lines.extend(headers[key] or [f"PRODID:{EXPORT_PRODID}"])
        for tzid in used:
            lines.extend(zones[tzid].render())
        for component in components:
            lines.extend(component.render())
        lines.append("END:VCALENDAR")
        uid = None if key[1].startswith("\0") else key[1]
        items.append(SplitItem(key[0], uid, _text(lines)))
    return items


def with_uid(item: SplitItem, uid: str) -> SplitItem:
    """The item with ``UID:uid`` added to its main components that lack one."""
    if "\r" in uid or "\n" in uid or not uid:
        raise ValueError("a UID is one non-empty line")
    top = _parse(item.text)
    targets = top if item.component == "VCARD" else [
        c for cal in top for c in cal.components() if c.name == item.component]
    for component in targets:
        if not component.first("UID"):
            component.children.append(_Line(f"UID:{uid}", f"UID:{uid}"))
    lines = [line for component in top for line in component.render()]
    return SplitItem(item.component, uid, _text(lines))


# -- joining ----------------------------------------------------------------------------


def join_vcards(texts: Iterable[str]) -> str:
    """One ``.vcf`` text: the vCards one after the other (CRLF line ends)."""
    out: list[str] = []
    for text in texts:
        for component in _parse(text):
            out.extend(component.render())
    return _text(out) if out else ""


def join_icalendar(texts: Iterable[str]) -> str:
    """One VCALENDAR holding every component of the given iCalendar texts,
    each VTIMEZONE (by TZID) once, before the other components."""
    zones: dict[str, list[str]] = {}
    components: list[str] = []
    for text in texts:
        for calendar in _parse(text):
            for child in calendar.components():
                if child.name == "VTIMEZONE":
                    tzid = child.first("TZID") or ""
                    zones.setdefault(tzid, child.render())
                else:
                    components.extend(child.render())
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{EXPORT_PRODID}"]
    for rendered in zones.values():
        lines.extend(rendered)
    lines.extend(components)
    lines.append("END:VCALENDAR")
    return _text(lines)


# -- describing -------------------------------------------------------------------------


def _decoded(line: _Line) -> str:
    params = line.params()
    value = line.value
    encoding = [e.upper() for e in params.get("ENCODING", [])]
    if "QUOTED-PRINTABLE" in encoding:
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        try:
            value = quopri.decodestring(value.encode("latin-1", "replace")).decode(
                charset, "replace")
        except LookupError:
            value = quopri.decodestring(value.encode("latin-1", "replace")).decode(
                "utf-8", "replace")
    value = re.sub(r"\\[nN]", " ", value)
    value = re.sub(r"\\(.)", r"\1", value)
    return " ".join(value.split())


def _start_text(line: _Line) -> str:
    value = line.value.strip()
    match = re.match(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})\d{2}(Z?))?$", value)
    if not match:
        return value
    year, month, day, hour, minute, utc = match.groups()
    text = f"{year}-{month}-{day}"
    if hour is not None:
        text += f" {hour}:{minute}"
        tzid = line.params().get("TZID")
        text += " UTC" if utc else (f" {tzid[0]}" if tzid else "")
    return text


def item_summary(text: str) -> str:
    """A one-line description of an item: a contact's FN (or N), an event's
    SUMMARY and start, a task's or note's SUMMARY.  Empty when there is none."""
    try:
        top = _parse(text)
    except SplitError:
        return ""
    for component in top:
        if component.name == "VCARD":
            for name in ("FN", "N", "ORG", "EMAIL"):
                lines = component.properties(name)
                if lines:
                    value = _decoded(lines[0])
                    if name == "N":
                        value = " ".join(p.strip() for p in reversed(value.split(";"))
                                         if p.strip())
                    if value:
                        return value
            return ""
        masters = [c for c in component.components()
                   if c.name in ITEM_COMPONENTS and not c.properties("RECURRENCE-ID")]
        if not masters:
            masters = [c for c in component.components() if c.name in ITEM_COMPONENTS]
        if not masters:
            continue
        master = masters[0]
        summary = master.properties("SUMMARY")
        described = _decoded(summary[0]) if summary else ""
        start = master.properties("DTSTART")
        if master.name == "VEVENT" and start:
            when = _start_text(start[0])
            return f"{described} ({when})" if described else when
        return described
    return ""
