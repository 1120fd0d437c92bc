"""vCard <-> :class:`~easyncd.backends.groupware.contact.Contact`.

Reads vCard 2.1 (bare TYPE parameters, QUOTED-PRINTABLE with soft line
breaks), 3.0 and the 3.0-with-extensions that Apple Contacts, Google
Contacts, Thunderbird, Nextcloud/DAVx5 and Outlook write; always writes
vCard 3.0 (``PHOTO;ENCODING=b``, dates as ``YYYY-MM-DD``).

Every property that maps to no EAS field is kept verbatim in
``Contact.extra`` and written back; a mapped property keeps its name, group
and parameters (``Contact.sources``), so a vCard read and written again loses
nothing EAS did not change.

The exact EAS dateTime of a birthday or anniversary rides in an
``X-EAS-TIME`` parameter, quoted as RFC 6350 / RFC 2426 require for a value
with ``:`` (``BDAY;X-EAS-TIME="2001-06-01T22:00:00.000Z":2001-06-02``).  The
unquoted form (``X-EAS-TIME=2001-06-01T22:00:00.000Z:2001-06-02``, whose
first ``:`` ends the parameters too early) is quoted before reading, so
such text keeps its dates too.

Only :class:`VCardError` leaves this module: every vobject error (parse,
behaviour, serialisation) is turned into one.
"""
from __future__ import annotations

import base64
import datetime
import io
import re
from typing import Any, Callable, Iterable

import vobject
import vobject.base
import vobject.vcard

from easyncd.backends.groupware.contact import Address, Contact, PropertySource

__all__ = ["parse_vcard", "parse_vcards", "write_vcard", "VCardError"]


class VCardError(ValueError):
    """The text is not a vCard this module can read."""


#: Property written for a field -> the names read for it (first: written).
_ALIASES: dict[str, tuple[str, ...]] = {
    "anniversary": ("X-ANNIVERSARY", "ANNIVERSARY", "X-EVOLUTION-ANNIVERSARY",
                    "X-MS-ANNIVERSARY", "X-KADDRESSBOOK-X-ANNIVERSARY"),
    "spouse": ("X-SPOUSE", "X-EVOLUTION-SPOUSE", "X-MS-SPOUSE",
               "X-KADDRESSBOOK-X-SPOUSENAME"),
    "manager_name": ("X-MANAGER", "X-EVOLUTION-MANAGER", "X-MS-MANAGER",
                     "X-KADDRESSBOOK-X-MANAGERSNAME"),
    "assistant_name": ("X-ASSISTANT", "X-EVOLUTION-ASSISTANT", "X-MS-ASSISTANT",
                       "X-KADDRESSBOOK-X-ASSISTANTSNAME"),
    "office_location": ("X-OFFICE-LOCATION", "X-MS-OFFICELOCATION",
                        "X-KADDRESSBOOK-X-OFFICE", "X-EVOLUTION-OFFICE"),
    "file_as": ("X-FILE-AS", "X-EVOLUTION-FILE-AS"),
    "yomi_first_name": ("X-PHONETIC-FIRST-NAME",),
    "yomi_last_name": ("X-PHONETIC-LAST-NAME",),
    "yomi_company_name": ("X-PHONETIC-ORG",),
    "customer_id": ("X-CUSTOMER-ID",),
    "government_id": ("X-GOVERNMENT-ID",),
    "account_name": ("X-ACCOUNT-NAME",),
    "nickname": ("NICKNAME",),
    "job_title": ("TITLE",),
    "web_page": ("URL",),
    "body": ("NOTE",),
}
_TEXT_FIELD_BY_NAME = {name: fld for fld, names in _ALIASES.items()
                       for name in names if fld != "anniversary"}
_ANNIVERSARY_NAMES = frozenset(_ALIASES["anniversary"])
_CHILD_NAMES = ("X-CHILD", "X-MS-CHILD", "X-EVOLUTION-CHILD")
_IM_NAMES = frozenset([
    "IMPP", "X-AIM", "X-JABBER", "X-ICQ", "X-MSN", "X-YAHOO", "X-SKYPE",
    "X-SKYPE-USERNAME", "X-GADUGADU", "X-QQ", "X-GOOGLE-TALK", "X-SIP", "X-IM",
    "X-MS-IMADDRESS",
])
_IM_FIELDS = ("im_address", "im_address2", "im_address3")
_EMAIL_FIELDS = ("email1_address", "email2_address", "email3_address")

#: The parameter carrying the exact EAS dateTime of a date property.
EAS_TIME_PARAM = "X-EAS-TIME"

#: TEL types -> the field(s) they fill, first free wins (strict pass).
_PHONE_RULES: tuple[tuple[Callable[[frozenset[str]], bool], tuple[str, ...]], ...] = (
    (lambda t: "FAX" in t and "HOME" in t, ("home_fax_number",)),
    (lambda t: "FAX" in t and "HOME" not in t, ("business_fax_number", "home_fax_number")),
    (lambda t: "X-ASSISTANT" in t or "ASSISTANT" in t, ("assistant_phone_number",)),
    (lambda t: "X-COMPANY" in t or "MAIN" in t, ("company_main_phone",)),
    (lambda t: "X-MMS" in t, ("mms",)),
    (lambda t: "X-RADIO" in t, ("radio_phone_number",)),
    (lambda t: "PAGER" in t, ("pager_number",)),
    (lambda t: "CAR" in t, ("car_phone_number",)),
    (lambda t: bool(t & {"CELL", "IPHONE", "MOBILE"}), ("mobile_phone_number",)),
    (lambda t: "WORK" in t, ("business_phone_number", "business2_phone_number")),
    (lambda t: "HOME" in t, ("home_phone_number", "home2_phone_number")),
)
#: Untyped (VOICE, OTHER, none) numbers fill what is left, in this order.
_PHONE_FALLBACK = ("home_phone_number", "business_phone_number", "home2_phone_number",
                   "business2_phone_number", "mobile_phone_number")

#: field -> TYPE values written for a number that came from EAS.
_PHONE_TYPES: dict[str, tuple[str, ...]] = {
    "business_phone_number": ("WORK", "VOICE"),
    "business2_phone_number": ("WORK", "VOICE"),
    "home_phone_number": ("HOME", "VOICE"),
    "home2_phone_number": ("HOME", "VOICE"),
    "mobile_phone_number": ("CELL", "VOICE"),
    "car_phone_number": ("CAR",),
    "pager_number": ("PAGER",),
    "radio_phone_number": ("X-RADIO",),
    "business_fax_number": ("WORK", "FAX"),
    "home_fax_number": ("HOME", "FAX"),
    "assistant_phone_number": ("X-ASSISTANT",),
    "company_main_phone": ("X-COMPANY",),
    "mms": ("X-MMS",),
}
_ADDRESS_TYPES = {"business_address": "WORK", "home_address": "HOME", "other_address": "OTHER"}

_ENCODINGS = frozenset(["QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"])
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})")


# ---------------------------------------------------------------- reading


def _split_name_part(line: str) -> int:
    """The index of the ':' that ends the property name and parameters."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return index
    return -1


def _split_head(head: str) -> list[str]:
    """``head`` (name and parameters) split at the ``;`` outside quotes."""
    if '"' not in head:
        return head.split(";")
    parts = [""]
    quoted = False
    for char in head:
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("")
            continue
        parts[-1] += char
    return parts


def _fix_params(head: str) -> str:
    """vCard 2.1 bare parameters (``TEL;WORK;VOICE``) as ``TYPE=`` ones."""
    parts = _split_head(head)
    out = [parts[0]]
    for part in parts[1:]:
        if not part:
            continue
        if "=" in part:
            out.append(part)
        elif part.upper() in _ENCODINGS:
            out.append("ENCODING=" + part)
        else:
            out.append("TYPE=" + part)
    return ";".join(out)


def _normalize(text: str) -> str:
    """Text vobject reads: unfolded QUOTED-PRINTABLE soft breaks, bare
    parameters named, CRLF line ends."""
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines: list[str] = []
    index = 0
    while index < len(physical):
        line = physical[index]
        index += 1
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]
            continue
        colon = _split_name_part(line)
        if colon <= 0:
            lines.append(line)
            continue
        head = _fix_params(line[:colon])
        value = line[colon + 1:]
        if "QUOTED-PRINTABLE" in head.upper():
            while value.endswith("=") and index < len(physical):
                value = value[:-1] + physical[index].lstrip(" \t")
                index += 1
        lines.append(head + ":" + value)
    return "\r\n".join(line for line in lines if line.strip()) + "\r\n"


def _source(line: Any) -> PropertySource:
    params = tuple(
        (name.upper(), tuple(str(v) for v in values))
        for name, values in line.params.items()
        if name.upper() not in ("CHARSET", "ENCODING", EAS_TIME_PARAM)
    )
    return PropertySource(line.name.upper(), line.group, params)


def _types(line: Any) -> frozenset[str]:
    values: list[str] = []
    for name, vals in line.params.items():
        if name.upper() == "TYPE":
            for val in vals:
                values.extend(v.strip().upper() for v in str(val).split(","))
    return frozenset(values)


def _raw(line: Any) -> str:
    """The line as vCard text (unfolded), for ``Contact.extra``."""
    try:
        buf = io.StringIO()
        line.serialize(buf, validate=False)
        return buf.getvalue().replace("\r\n ", "").replace("\r\n\t", "").rstrip("\r\n")
    except Exception:  # vobject cannot write some values it read (ORG:,0)
        return _raw_by_hand(line)


def _escape(value: Any) -> str:
    return (str(value).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _raw_by_hand(line: Any) -> str:
    """``line`` written without its vobject behaviour: structured values as
    ``;``-separated fields of ``,``-separated parts (as vobject split them)."""
    value = line.value
    if isinstance(value, bytes):
        text = base64.b64encode(value).decode("ascii")
    elif isinstance(value, list):
        text = ";".join(",".join(_escape(v) for v in part) if isinstance(part, list)
                        else _escape(part) for part in value)
    else:
        text = _escape(value)
    head = (line.group + "." if line.group else "") + line.name.upper()
    for key, values in line.params.items():
        head += ";" + key.upper() + "=" + ",".join(_param_text(str(v)) for v in values)
    return head + ":" + text


def _param_text(value: str) -> str:
    """A parameter value as RFC 6350 / RFC 2426 want it: in double quotes
    when it has ``:`` ``;`` or ``,`` (a ``"`` cannot be written: dropped)."""
    value = value.replace('"', "")
    if any(char in value for char in ":;,"):
        return '"' + value + '"'
    return value


def _units(value: Any) -> list[str]:
    """The ORG units: a part vobject split at an unescaped comma is joined
    again (the comma was meant literally)."""
    parts = value if isinstance(value, list) else [value]
    return [",".join(str(v) for v in part) if isinstance(part, list) else str(part)
            for part in parts]


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    # Apple escapes ':' (in URLs), which vCard 3.0 does not define.
    return str(value).replace("\r\n", "\n").replace("\\:", ":")


def _date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    match = _DATE.match(str(value).strip())
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _param(line: Any, name: str) -> str | None:
    for key, values in line.params.items():
        if key.upper() == name and values:
            return str(values[0])
    return None


class _Reader:
    """Fills a Contact from a vobject vCard component."""

    def __init__(self) -> None:
        self.contact = Contact()
        self.phones: list[Any] = []
        self.addresses: list[Any] = []

    def keep(self, line: Any) -> None:
        self.contact.extra.append(_raw(line))

    def set_once(self, fld: str, value: Any, line: Any) -> None:
        contact = self.contact
        if getattr(contact, fld) or fld in contact.sources:
            self.keep(line)
            return
        setattr(contact, fld, value)
        contact.sources[fld] = _source(line)

    def first_free(self, flds: Iterable[str], value: Any, line: Any) -> bool:
        for fld in flds:
            if not getattr(self.contact, fld) and fld not in self.contact.sources:
                setattr(self.contact, fld, value)
                self.contact.sources[fld] = _source(line)
                return True
        return False

    def read(self, card: Any) -> Contact:
        for line in card.getChildren():
            self.line(line)
        self.place_phones()
        self.place_addresses()
        return self.contact

    def line(self, line: Any) -> None:
        contact = self.contact
        name = line.name.upper()
        value = line.value
        if name in ("VERSION", "BEGIN", "END"):
            return
        if name == "UID" and contact.uid is None:
            contact.uid = _text(value)
        elif name == "FN":
            self.set_once("display_name", _text(value), line)
        elif name == "N" and "n" not in contact.sources:
            self.name(value)
            contact.sources["n"] = _source(line)
        elif name == "ORG" and "org" not in contact.sources:
            units = _units(value)
            contact.company_name = units[0] if units else ""
            contact.department = ", ".join(u for u in units[1:] if u)
            contact.sources["org"] = _source(line)
        elif name == "BDAY":
            self.date("birthday", line)
        elif name in _ANNIVERSARY_NAMES:
            self.date("anniversary", line)
        elif name in _CHILD_NAMES:
            if "children" in contact.sources and contact.sources["children"].name != name:
                self.keep(line)
                return
            contact.children.append(_text(value))
            contact.sources.setdefault("children", _source(line))
        elif name == "CATEGORIES":
            values = value if isinstance(value, list) else str(value).split(",")
            contact.categories.extend(str(v).strip() for v in values if str(v).strip())
            contact.sources.setdefault("categories", _source(line))
        elif name == "EMAIL":
            if not self.first_free(_EMAIL_FIELDS, _text(value).strip(), line):
                self.keep(line)
        elif name in _IM_NAMES:
            if not self.first_free(_IM_FIELDS, _text(value).strip(), line):
                self.keep(line)
        elif name == "TEL":
            self.phones.append(line)
        elif name == "ADR":
            self.addresses.append(line)
        elif name == "PHOTO" and isinstance(value, bytes) and contact.picture is None:
            contact.picture = value
            contact.sources["picture"] = _source(line)
        elif name in _TEXT_FIELD_BY_NAME:
            self.set_once(_TEXT_FIELD_BY_NAME[name], _text(value), line)
        else:
            self.keep(line)

    def name(self, value: Any) -> None:
        contact = self.contact
        if isinstance(value, vobject.vcard.Name):
            contact.last_name = _text(value.family)
            contact.first_name = _text(value.given)
            contact.middle_name = _text(value.additional)
            contact.title = _text(value.prefix)
            contact.suffix = _text(value.suffix)
        else:
            parts = (str(value).split(";") + [""] * 5)[:5]
            (contact.last_name, contact.first_name, contact.middle_name,
             contact.title, contact.suffix) = parts

    def date(self, fld: str, line: Any) -> None:
        contact = self.contact
        when = _date(line.value)
        if when is None or getattr(contact, fld) is not None:
            self.keep(line)
            return
        setattr(contact, fld, when)
        setattr(contact, fld + "_eas", _param(line, EAS_TIME_PARAM))
        contact.sources[fld] = _source(line)

    def place_phones(self) -> None:
        untyped: list[Any] = []
        overflow: list[Any] = []
        for line in self.phones:
            value = _text(line.value).strip()
            types = _types(line)
            for rule, flds in _PHONE_RULES:
                if rule(types):
                    if not self.first_free(flds, value, line):
                        overflow.append(line)
                    break
            else:
                untyped.append(line)
        for line in untyped + overflow:
            if line in overflow or not self.first_free(_PHONE_FALLBACK, _text(line.value).strip(), line):
                self.keep(line)

    def place_addresses(self) -> None:
        spare: list[Any] = []
        for line in self.addresses:
            types = _types(line)
            if "WORK" in types:
                fld = "business_address"
            elif "HOME" in types:
                fld = "home_address"
            else:
                fld = "other_address"
            if fld in self.contact.sources:
                spare.append(line)
                continue
            self.address(fld, line)
        for line in spare:
            if "other_address" in self.contact.sources:
                self.keep(line)
            else:
                self.address("other_address", line)

    def address(self, fld: str, line: Any) -> None:
        value = line.value
        if isinstance(value, vobject.vcard.Address):
            address = Address(
                street=_text(value.street), city=_text(value.city),
                state=_text(value.region), postal_code=_text(value.code),
                country=_text(value.country), po_box=_text(value.box),
                extended=_text(value.extended))
        else:
            parts = (str(value).split(";") + [""] * 7)[:7]
            address = Address(street=parts[2], city=parts[3], state=parts[4],
                              postal_code=parts[5], country=parts[6],
                              po_box=parts[0], extended=parts[1])
        setattr(self.contact, fld, address)
        self.contact.sources[fld] = _source(line)


def _read_cards(text: str) -> list[Any]:
    try:
        return list(vobject.readComponents(_normalize(text)))
    except Exception as error:  # vobject raises many kinds of errors
        raise VCardError(f"unreadable vCard: {error}") from error


# ---------------------------------------------------------------- fast path
#
# vobject costs ~0.7 ms per contact, most of the initial Sync of an address
# book.  The common vCard 3.0 subset (one card, mapped properties, plain
# parameters, the usual backslash escapes) is read here into the same line
# shape the _Reader takes, giving the same Contact vobject would; anything
# else (other versions, encodings, unmapped or repeated properties that are
# kept verbatim, odd escapes or commas) goes through vobject.  The tests
# compare both readers on fixtures and generated cards.


class _NotSimple(Exception):
    """The fast reader declines: read the card with vobject."""


_FAST_NAME = re.compile(r"^(?:([A-Za-z0-9-]+)\.)?([A-Za-z0-9-]+)$")
_FAST_PARAM = re.compile(r'^([A-Za-z0-9-]+)=((?:"[^"]*"|[^",;:]*)(?:,(?:"[^"]*"|[^",;:]*))*)$')
_FAST_VALUE = re.compile(r'"([^"]*)"|([^",]*)')


def _param_values(text: str) -> list[str]:
    """The comma-separated (maybe quoted) values of a checked parameter."""
    values: list[str] = []
    position = 0
    while True:
        match = _FAST_VALUE.match(text, position)
        assert match is not None  # the pattern also matches the empty string
        values.append(match.group(1) if match.group(1) is not None else match.group(2))
        position = match.end() + 1  # past the comma
        if position > len(text):
            return values


#: Properties read without a vobject behaviour that splits fields.
_FAST_TEXT = frozenset(["UID", "FN", "EMAIL", "TEL", "BDAY", *_TEXT_FIELD_BY_NAME,
                        *_ANNIVERSARY_NAMES, *_CHILD_NAMES, *_IM_NAMES])
_FAST_STRUCTURED = frozenset(["N", "ADR", "ORG", "CATEGORIES"])
_FAST_SKIPPED = frozenset(["CHARSET", "ENCODING"])
_NAME_ORDER = ("family", "given", "additional", "prefix", "suffix")
_ADDRESS_ORDER = ("box", "extended", "street", "city", "region", "code", "country")


class _FastLine:
    """The parts of a vobject ContentLine the _Reader uses."""

    __slots__ = ("name", "group", "params", "value")

    def __init__(self, name: str, group: str | None, params: dict[str, list[str]],
                 value: Any) -> None:
        self.name = name
        self.group = group
        self.params = params
        self.value = value


class _FastReader(_Reader):
    """A _Reader that declines instead of keeping a line verbatim."""

    def keep(self, line: Any) -> None:
        raise _NotSimple(line.name)


def _fast_unescape(value: str, separator: str | None) -> list[str]:
    """``value`` split at unescaped ``separator`` with the escapes
    backslash-backslash, -comma, -semicolon, -n and -N undone; _NotSimple for
    other escapes or an unescaped comma where vobject would split a list."""
    if "\\" not in value:
        if "," in value:
            raise _NotSimple("comma")
        return value.split(separator) if separator else [value]
    if "\x00" in value or "\x01" in value or "\x02" in value:
        raise _NotSimple("control character")
    # Escape pairs, left to right, as placeholders (str.replace does not overlap).
    marked = (value.replace("\\\\", "\x00").replace("\\;", "\x01").replace("\\,", "\x02")
              .replace("\\n", "\n").replace("\\N", "\n"))
    if "\\" in marked or "," in marked:
        raise _NotSimple("escape")
    parts = marked.split(separator) if separator else [marked]
    return [part.replace("\x00", "\\").replace("\x01", ";").replace("\x02", ",")
            for part in parts]


def _fast_line(raw: str) -> _FastLine:
    colon = raw.find(":")
    if '"' in raw[:colon]:
        colon = _split_name_part(raw)
    if colon <= 0:
        raise _NotSimple("no colon")
    head, value = _split_head(raw[:colon]), raw[colon + 1:]
    match = _FAST_NAME.match(head[0])
    if match is None:
        raise _NotSimple("name")
    group, name = match.group(1), match.group(2).upper()
    params: dict[str, list[str]] = {}
    for part in head[1:]:
        found = _FAST_PARAM.match(part)
        if found is None:
            raise _NotSimple("parameter")
        key = found.group(1).upper()
        if key in params or key in _FAST_SKIPPED or key == "QUOTED-PRINTABLE":
            raise _NotSimple("parameter")
        values = _param_values(found.group(2))
        if any(not v for v in values):
            raise _NotSimple("empty parameter")
        params[key] = values
    native: Any
    if name in _FAST_TEXT or name == "VERSION":
        native = _fast_unescape(value, None)[0]
    elif name == "N":
        native = vobject.vcard.Name(**dict(zip(_NAME_ORDER, _fast_unescape(value, ";"))))
    elif name == "ADR":
        native = vobject.vcard.Address(**dict(zip(_ADDRESS_ORDER, _fast_unescape(value, ";"))))
    elif name == "ORG":
        native = _fast_unescape(value, ";")
    elif name == "CATEGORIES":
        if "\\" in value:
            raise _NotSimple("escape")
        native = value.split(",")
    else:
        raise _NotSimple(name)
    return _FastLine(name, group, params, native)


def _fast_parse(text: str) -> Contact | None:
    """The contact of a simple single vCard 3.0, or None (use vobject)."""
    if "\\:" in text or "=\r\n" in text or "=\n" in text:
        return None
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    logical: list[str] = []
    for text_line in physical:
        if text_line[:1] in (" ", "\t") and logical:
            logical[-1] += text_line[1:]
        elif text_line.strip():
            logical.append(text_line)
    if (len(logical) < 3 or logical[0].upper() != "BEGIN:VCARD"
            or logical[-1].upper() != "END:VCARD"):
        return None
    try:
        lines = [_fast_line(raw) for raw in logical[1:-1]]
        by_name: dict[str, list[_FastLine]] = {}
        for line in lines:
            by_name.setdefault(line.name, []).append(line)
        version = by_name.get("VERSION")
        if version is None or len(version) != 1 or version[0].value != "3.0":
            return None
        reader = _FastReader()
        for group in by_name.values():  # vobject yields children grouped by name
            for line in group:
                reader.line(line)
        reader.place_phones()
        reader.place_addresses()
        return reader.contact
    except _NotSimple:
        return None


#: An unquoted X-EAS-TIME dateTime at the end of a property's parameters
#: (``BDAY;X-EAS-TIME=2001-06-01T22:00:00.000Z:2001-06-02``): its ``:`` ends
#: the parameters too early.  We always quote it; this reads such text if
#: another program (or a hand edit) wrote it without quotes.
_LEGACY_EAS_TIME = re.compile(
    r'^([^:"\r\n]*;' + EAS_TIME_PARAM + r'=)'
    r'(\d{4}-?\d{2}-?\d{2}T\d{2}:?\d{2}(?::?\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)'
    r'(?=[;:])',
    re.IGNORECASE | re.MULTILINE)
_LEGACY_HINT = re.compile(";" + EAS_TIME_PARAM + r"=\d", re.IGNORECASE)


def _repair(text: str) -> str:
    """``text`` with unquoted X-EAS-TIME values quoted (see _LEGACY_EAS_TIME)."""
    if _LEGACY_HINT.search(text) is None:
        return text
    unfolded = re.sub(r"\r?\n[ \t]", "", text.replace("\r\n", "\n"))
    return _LEGACY_EAS_TIME.sub(r'\1"\2"', unfolded)


def parse_vcard(text: str) -> Contact:
    """The contact in ``text`` (the first vCard in it).  Raises VCardError
    (never another exception) for text it cannot read."""
    if not isinstance(text, str):
        raise VCardError("a vCard must be text")
    text = _repair(text)
    simple = _fast_parse(text)
    if simple is not None:
        return simple
    cards = [c for c in _read_cards(text) if c.name.upper() == "VCARD"]
    if not cards:
        raise VCardError("no VCARD in the text")
    return _read(cards[0])


def parse_vcards(text: str) -> list[Contact]:
    """Every contact in ``text`` (a ``.vcf`` export with many vCards).
    Raises VCardError."""
    if not isinstance(text, str):
        raise VCardError("a vCard must be text")
    return [_read(card) for card in _read_cards(_repair(text))
            if card.name.upper() == "VCARD"]


def _read(card: Any) -> Contact:
    try:
        return _Reader().read(card)
    except VCardError:
        raise
    except Exception as error:  # vobject raises many kinds of errors
        raise VCardError(f"unreadable vCard: {error}") from error


# ---------------------------------------------------------------- writing


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return "JPEG"


class _Writer:
    def __init__(self, contact: Contact) -> None:
        self.contact = contact
        self.card = vobject.vCard()

    def add(self, fld: str, default_name: str, value: Any,
            params: dict[str, list[str]] | None = None) -> Any:
        source = self.contact.sources.get(fld)
        name = source.name if source is not None else default_name
        line = self.card.add(name.lower())
        line.value = value
        if source is not None:
            line.group = source.group
            line.params = {k: list(v) for k, v in source.params}
        elif params:
            line.params = {k: list(v) for k, v in params.items()}
        return line

    def write(self, uid: str) -> str:
        contact = self.contact
        card = self.card
        card.add("uid").value = uid
        self.add("display_name", "FN", contact.display_name or contact.composed_name())
        self.add("n", "N", vobject.vcard.Name(
            family=contact.last_name, given=contact.first_name,
            additional=contact.middle_name, prefix=contact.title, suffix=contact.suffix))
        if contact.company_name or contact.department:
            units = [contact.company_name] + ([contact.department] if contact.department else [])
            self.add("org", "ORG", units)
        for fld, names in _ALIASES.items():
            if fld == "anniversary":
                continue
            value = getattr(contact, fld)
            if fld == "file_as" and value == (contact.display_name or contact.composed_name()):
                continue
            if value:
                self.add(fld, names[0], value)
        self.date("birthday", "BDAY")
        self.date("anniversary", _ALIASES["anniversary"][0])
        for child in contact.children:
            self.add("children", _CHILD_NAMES[0], child)
        if contact.categories:
            self.add("categories", "CATEGORIES", list(contact.categories))
        for fld in _EMAIL_FIELDS:
            if getattr(contact, fld):
                self.add(fld, "EMAIL", getattr(contact, fld), {"TYPE": ["INTERNET"]})
        for fld in _IM_FIELDS:
            if getattr(contact, fld):
                self.add(fld, "IMPP", getattr(contact, fld))
        for fld, types in _PHONE_TYPES.items():
            if getattr(contact, fld):
                self.add(fld, "TEL", getattr(contact, fld), {"TYPE": list(types)})
        for fld, kind in _ADDRESS_TYPES.items():
            address: Address = getattr(contact, fld)
            if not address.is_empty():
                self.add(fld, "ADR", vobject.vcard.Address(
                    street=address.street, city=address.city, region=address.state,
                    code=address.postal_code, country=address.country,
                    box=address.po_box, extended=address.extended),
                    {"TYPE": [kind]})
        if contact.picture:
            line = self.add("picture", "PHOTO", contact.picture)
            line.params["ENCODING"] = ["b"]
            if not any(k.upper() == "TYPE" for k in line.params):
                line.params["TYPE"] = [_image_type(contact.picture)]
        for raw in contact.extra:
            try:
                card.add(vobject.base.textLineToContentLine(raw))
            except Exception:  # a line vobject cannot read back: keep it as a note
                card.add("x-easyncd-unreadable").value = raw
        try:
            return str(card.serialize())
        except Exception as error:
            raise VCardError(f"cannot write vCard: {error}") from error

    def date(self, fld: str, name: str) -> None:
        when: datetime.date | None = getattr(self.contact, fld)
        if when is None:
            return
        line = self.add(fld, name, when.isoformat())
        exact = getattr(self.contact, fld + "_eas")
        if exact:
            line.params[EAS_TIME_PARAM] = [exact]


def write_vcard(contact: Contact, uid: str) -> str:
    """``contact`` as a vCard 3.0 with ``UID:uid`` (CRLF line ends).
    Parameter values with ``:`` ``;`` or ``,`` are quoted.  Raises VCardError."""
    try:
        return _Writer(contact).write(uid)
    except VCardError:
        raise
    except Exception as error:  # vobject raises many kinds of errors
        raise VCardError(f"cannot write vCard: {error}") from error
