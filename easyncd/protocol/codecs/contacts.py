"""Contacts: AirSync ApplicationData (MS-ASCNTC) <-> stored vCard 3.0.

Every field of the Contacts (page 1) and Contacts2 (page 12) code pages is
carried, in code-page order; the body is ``AirSyncBase:Body`` from 12.0 and
``Contacts:Body`` before (:mod:`easyncd.protocol.codecs.body`).
``Contacts:Alias`` and ``Contacts:WeightedRank`` belong to Search answers
and are never sent here.

A Change replaces the item (MS-ASCMD Change): a field the device leaves out
is cleared, unless it is ghosted (MS-ASCMD 2.2.3.179 Supported: the device
sent a Supported list without that element) or the device cannot know it
(a body it got truncated or not at all, a picture too large to send).
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime
import email.utils
import re
import uuid
import zoneinfo
from dataclasses import dataclass

from easyncd.backends.groupware.contact import Address, Contact
from easyncd.backends.groupware.vobj.vcard import VCardError, parse_vcard, write_vcard
from easyncd.protocol.codecs.base import CodecContext, CodecError, DecodedItem
from easyncd.protocol.codecs.body import body_element, read_body
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

__all__ = ["ContactsCodec", "FIELD_TAGS", "MAX_PICTURE_BASE64", "LEGACY_BODY_TAGS"]

#: The largest Picture, base64 text (MS-ASCNTC 2.2.2.58: 48 KB).
MAX_PICTURE_BASE64 = 48 * 1024

#: The 2.5 body elements of this class.
LEGACY_BODY_TAGS = ("Contacts:Body", "Contacts:BodySize", "Contacts:BodyTruncated")

_STRING = "string"
_DATE = "date"
_LIST = "list"
_ADDRESS = "address"
_PICTURE = "picture"
_BODY = "body"
_EMAIL = "email"


@dataclass(frozen=True)
class _Field:
    tag: str
    kind: str
    attr: str
    #: For addresses: the Address attribute; for lists: the child tag.
    part: str = ""


def _address_fields(prefix: str, attr: str) -> list[_Field]:
    return [
        _Field(f"Contacts:{prefix}AddressCity", _ADDRESS, attr, "city"),
        _Field(f"Contacts:{prefix}AddressCountry", _ADDRESS, attr, "country"),
        _Field(f"Contacts:{prefix}AddressPostalCode", _ADDRESS, attr, "postal_code"),
        _Field(f"Contacts:{prefix}AddressState", _ADDRESS, attr, "state"),
        _Field(f"Contacts:{prefix}AddressStreet", _ADDRESS, attr, "street"),
    ]


#: The fields in the order of the code pages (the body in the Body slot).
FIELDS: tuple[_Field, ...] = tuple(
    [
        _Field("Contacts:Anniversary", _DATE, "anniversary"),
        _Field("Contacts:AssistantName", _STRING, "assistant_name"),
        _Field("Contacts:AssistantPhoneNumber", _STRING, "assistant_phone_number"),
        _Field("Contacts:Birthday", _DATE, "birthday"),
        _Field("AirSyncBase:Body", _BODY, "body"),
        _Field("Contacts:Business2PhoneNumber", _STRING, "business2_phone_number"),
    ]
    + _address_fields("Business", "business_address")
    + [
        _Field("Contacts:BusinessFaxNumber", _STRING, "business_fax_number"),
        _Field("Contacts:BusinessPhoneNumber", _STRING, "business_phone_number"),
        _Field("Contacts:CarPhoneNumber", _STRING, "car_phone_number"),
        _Field("Contacts:Categories", _LIST, "categories", "Contacts:Category"),
        _Field("Contacts:Children", _LIST, "children", "Contacts:Child"),
        _Field("Contacts:CompanyName", _STRING, "company_name"),
        _Field("Contacts:Department", _STRING, "department"),
        _Field("Contacts:Email1Address", _EMAIL, "email1_address"),
        _Field("Contacts:Email2Address", _EMAIL, "email2_address"),
        _Field("Contacts:Email3Address", _EMAIL, "email3_address"),
        _Field("Contacts:FileAs", _STRING, "file_as"),
        _Field("Contacts:FirstName", _STRING, "first_name"),
        _Field("Contacts:Home2PhoneNumber", _STRING, "home2_phone_number"),
    ]
    + _address_fields("Home", "home_address")
    + [
        _Field("Contacts:HomeFaxNumber", _STRING, "home_fax_number"),
        _Field("Contacts:HomePhoneNumber", _STRING, "home_phone_number"),
        _Field("Contacts:JobTitle", _STRING, "job_title"),
        _Field("Contacts:LastName", _STRING, "last_name"),
        _Field("Contacts:MiddleName", _STRING, "middle_name"),
        _Field("Contacts:MobilePhoneNumber", _STRING, "mobile_phone_number"),
        _Field("Contacts:OfficeLocation", _STRING, "office_location"),
    ]
    + _address_fields("Other", "other_address")
    + [
        _Field("Contacts:PagerNumber", _STRING, "pager_number"),
        _Field("Contacts:RadioPhoneNumber", _STRING, "radio_phone_number"),
        _Field("Contacts:Spouse", _STRING, "spouse"),
        _Field("Contacts:Suffix", _STRING, "suffix"),
        _Field("Contacts:Title", _STRING, "title"),
        _Field("Contacts:WebPage", _STRING, "web_page"),
        _Field("Contacts:YomiCompanyName", _STRING, "yomi_company_name"),
        _Field("Contacts:YomiFirstName", _STRING, "yomi_first_name"),
        _Field("Contacts:YomiLastName", _STRING, "yomi_last_name"),
        _Field("Contacts:Picture", _PICTURE, "picture"),
        _Field("Contacts2:CustomerId", _STRING, "customer_id"),
        _Field("Contacts2:GovernmentId", _STRING, "government_id"),
        _Field("Contacts2:IMAddress", _STRING, "im_address"),
        _Field("Contacts2:IMAddress2", _STRING, "im_address2"),
        _Field("Contacts2:IMAddress3", _STRING, "im_address3"),
        _Field("Contacts2:ManagerName", _STRING, "manager_name"),
        _Field("Contacts2:CompanyMainPhone", _STRING, "company_main_phone"),
        _Field("Contacts2:AccountName", _STRING, "account_name"),
        _Field("Contacts2:NickName", _STRING, "nickname"),
        _Field("Contacts2:MMS", _STRING, "mms"),
    ]
)

#: Each field, and whether it is sent as its attribute's text when set
#: (FileAs has its own rule).
_FIELDS_PLAIN: tuple[tuple[_Field, bool], ...] = tuple(
    (f, f.kind in (_STRING, _EMAIL) and f.attr != "file_as") for f in FIELDS)

#: Every element tag this codec reads or writes (besides the 2.5 body).
FIELD_TAGS: frozenset[str] = frozenset(f.tag for f in FIELDS)

#: The name parts a vCard FN is derived from.
_NAME_ATTRS = ("title", "first_name", "middle_name", "last_name", "suffix", "company_name")

_EAS_DATE = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2}):?(\d{2})(?::?(\d{2}))?(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$")


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _parse_eas_date(text: str, default_timezone: str) -> datetime.date:
    """The calendar date an EAS dateTime stands for: the local date when it
    is midnight in the user's zone (how devices send dates), otherwise the
    UTC date of the nearest midnight."""
    match = _EAS_DATE.match(text.strip())
    if match is None:
        raise CodecError(f"bad date {text!r}")
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0),
                                   int(minute or 0), int(second or 0),
                                   tzinfo=datetime.timezone.utc)
    except ValueError as error:
        raise CodecError(f"bad date {text!r}") from error
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        delta = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment -= sign * delta
    if hour is None:
        return moment.date()
    try:
        local = moment.astimezone(_zone(default_timezone))
    except (OverflowError, ValueError):
        local = moment
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return local.date()
    return (moment + datetime.timedelta(hours=12)).date()


def _format_eas_date(when: datetime.date, exact: str | None, default_timezone: str) -> str:
    """The EAS dateTime for a date: the one the device sent while it still
    means this date, otherwise midnight in the user's zone, as UTC."""
    if exact:
        try:
            if _parse_eas_date(exact, default_timezone) == when:
                return exact
        except CodecError:
            pass
    midnight = datetime.datetime(when.year, when.month, when.day, tzinfo=_zone(default_timezone))
    try:
        utc = midnight.astimezone(zoneinfo.ZoneInfo("UTC"))
    except (OverflowError, ValueError):
        utc = midnight.replace(tzinfo=zoneinfo.ZoneInfo("UTC"))
    return utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _clean_text(text: str) -> str:
    return text.replace("\r\n", "\n")


def _email_address(text: str) -> str:
    text = text.strip()
    if "<" in text and ">" in text:
        _, address = email.utils.parseaddr(text)
        if address:
            return address
    return text


class ContactsCodec:
    """The ``ItemCodec`` for the Contacts class."""

    eas_class = "Contacts"

    # ------------------------------------------------------------ server -> device

    def to_eas(self, data: str, ctx: CodecContext) -> Element:
        """``AirSync:ApplicationData`` for a stored vCard."""
        contact = self._parse(data)
        return self.contact_to_eas(contact, ctx)

    def contact_to_eas(self, contact: Contact, ctx: CodecContext) -> Element:
        """``AirSync:ApplicationData`` for a contact."""
        app = Element("AirSync:ApplicationData")
        for fld, plain in _FIELDS_PLAIN:
            if plain:  # the common case, inline
                value = getattr(contact, fld.attr)
                if value:
                    app.add(fld.tag, value)
            else:
                self._emit(app, fld, contact, ctx)
        return app

    def _emit(self, app: Element, fld: _Field, contact: Contact, ctx: CodecContext) -> None:
        if fld.kind == _BODY:
            app.children.extend(self._body(contact.body, ctx))
            return
        if fld.kind == _ADDRESS:
            value = getattr(getattr(contact, fld.attr), fld.part)
            if value:
                app.add(fld.tag, value)
        elif fld.kind == _DATE:
            when = getattr(contact, fld.attr)
            if when is not None:
                exact = getattr(contact, fld.attr + "_eas")
                app.add(fld.tag, _format_eas_date(when, exact, ctx.default_timezone))
        elif fld.kind == _LIST:
            values = getattr(contact, fld.attr)
            if values:
                container = app.add(fld.tag)
                for value in values:
                    container.add(fld.part, value)
        elif fld.kind == _PICTURE:
            picture = self._picture_text(contact.picture)
            if picture:
                app.add(fld.tag, picture)
        elif fld.attr == "file_as":
            file_as = contact.file_as or contact.display_name or contact.composed_name()
            if file_as:
                app.add(fld.tag, file_as)
        else:
            value = getattr(contact, fld.attr)
            if value:
                app.add(fld.tag, value)

    @staticmethod
    def _picture_text(picture: bytes | None) -> str | None:
        if not picture:
            return None
        text = base64.b64encode(picture).decode("ascii")
        if len(text) > MAX_PICTURE_BASE64:
            return None  # too large for EAS: not sent (and kept on Change)
        return text

    @staticmethod
    def _body(text: str, ctx: CodecContext) -> list[Element]:
        return body_element(text, ctx, legacy_tags=LEGACY_BODY_TAGS)

    # ------------------------------------------------------------ device -> server

    def from_eas(self, application_data: Element, existing: str | None,
                 ctx: CodecContext) -> DecodedItem:
        """The vCard to store for an Add (``existing`` None) or a Change."""
        base = self._parse(existing) if existing is not None else None
        contact = self.contact_from_eas(application_data, base, ctx)
        uid = contact.uid or str(uuid.uuid4())
        contact.uid = uid
        try:
            text = write_vcard(contact, uid)
        except VCardError as error:
            raise CodecError(str(error)) from error
        return DecodedItem(data=text, uid=uid)

    def contact_from_eas(self, app: Element, base: Contact | None,
                         ctx: CodecContext) -> Contact:
        """``base`` (None: a new contact) changed as ``app`` says."""
        contact = copy.deepcopy(base) if base is not None else Contact()
        for fld in FIELDS:
            self._absorb(app, fld, contact, base, ctx)
        if base is not None:
            for address_attr in ("business_address", "home_address", "other_address"):
                address: Address = getattr(contact, address_attr)
                if not any((address.street, address.city, address.state,
                            address.postal_code, address.country)):
                    setattr(contact, address_attr, Address())
            if any(getattr(contact, a) != getattr(base, a) for a in _NAME_ATTRS):
                contact.display_name = ""
        return contact

    def _ghosted(self, tag: str, ctx: CodecContext) -> bool:
        return ctx.supported is not None and tag not in ctx.supported

    def _absorb(self, app: Element, fld: _Field, contact: Contact,
                base: Contact | None, ctx: CodecContext) -> None:
        if fld.kind == _BODY:
            self._absorb_body(app, contact, base, ctx)
            return
        element = app.find(fld.tag)
        if element is None:
            if base is None or self._ghosted(fld.tag, ctx):
                return
            if fld.kind == _PICTURE and base.picture and self._picture_text(base.picture) is None:
                return  # never sent to the device: it cannot have removed it
            self._clear(fld, contact)
            return
        text = _clean_text(app.findtext(fld.tag) or "")
        if fld.kind == _ADDRESS:
            setattr(getattr(contact, fld.attr), fld.part, text)
        elif fld.kind == _DATE:
            if text.strip():
                when = _parse_eas_date(text, ctx.default_timezone)
                setattr(contact, fld.attr, when)
                # Remember the exact value only when we would not send it anyway.
                exact = text.strip()
                if exact == _format_eas_date(when, None, ctx.default_timezone):
                    setattr(contact, fld.attr + "_eas", None)
                else:
                    setattr(contact, fld.attr + "_eas", exact)
            else:
                self._clear(fld, contact)
        elif fld.kind == _LIST:
            values = [_clean_text(c.text.decode("utf-8", "replace") if isinstance(c.text, bytes)
                                  else (c.text or ""))
                      for c in element.children if c.tag == fld.part]
            setattr(contact, fld.attr, [v for v in values if v])
        elif fld.kind == _PICTURE:
            setattr(contact, fld.attr, self._read_picture(text))
        elif fld.kind == _EMAIL:
            setattr(contact, fld.attr, _email_address(text))
        else:
            setattr(contact, fld.attr, text)

    @staticmethod
    def _read_picture(text: str) -> bytes | None:
        compact = "".join(text.split())
        if not compact:
            return None
        if len(compact) > MAX_PICTURE_BASE64:
            raise CodecError("Picture larger than 48 KB")
        try:
            return base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError) as error:
            raise CodecError("Picture is not base64") from error

    @staticmethod
    def _clear(fld: _Field, contact: Contact) -> None:
        if fld.kind == _ADDRESS:
            setattr(getattr(contact, fld.attr), fld.part, "")
        elif fld.kind == _DATE:
            setattr(contact, fld.attr, None)
            setattr(contact, fld.attr + "_eas", None)
        elif fld.kind == _LIST:
            setattr(contact, fld.attr, [])
        elif fld.kind == _PICTURE:
            contact.picture = None
        else:
            setattr(contact, fld.attr, "")

    def _absorb_body(self, app: Element, contact: Contact, base: Contact | None,
                     ctx: CodecContext) -> None:
        legacy = not at_least(ctx.protocol_version, "12.0")
        body = read_body(app, LEGACY_BODY_TAGS[0])
        if body is not None:
            contact.body = body
            return
        if base is None or not base.body:
            return
        tag = LEGACY_BODY_TAGS[0] if legacy else "AirSyncBase:Body"
        if self._ghosted(tag, ctx):
            return
        if app.find("AirSyncBase:Body") is not None:
            return  # an RTF/MIME body we cannot read: keep ours
        if not self._sent_whole(base.body, ctx):
            return  # the device only saw part of it (or none): keep it
        contact.body = ""

    def _sent_whole(self, text: str, ctx: CodecContext) -> bool:
        for element in self._body(text, ctx):
            if element.tag == "AirSyncBase:Body":
                return (element.find("AirSyncBase:Truncated") is None
                        and element.find("AirSyncBase:Data") is not None)
            if element.tag == LEGACY_BODY_TAGS[2]:
                return element.text == "0"
        return False

    # ------------------------------------------------------------ misc

    def in_filter(self, data: str, filter_type: int, now: float) -> bool:
        """Contacts have no filter: always True."""
        return True

    @staticmethod
    def _parse(data: str) -> Contact:
        try:
            return parse_vcard(data)
        except VCardError as error:
            raise CodecError(str(error)) from error

