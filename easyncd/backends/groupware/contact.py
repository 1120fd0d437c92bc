"""The contact domain model: every MS-ASCNTC field (Contacts and Contacts2
code pages) plus what a vCard holds beyond them.

Nothing here knows vCard or WBXML syntax: :mod:`easyncd.backends.groupware.vobj.vcard`
turns a vCard into a :class:`Contact` and back, and
:mod:`easyncd.protocol.codecs.contacts` turns a :class:`Contact` into
``AirSync:ApplicationData`` and back.  ``extra`` keeps the vCard properties EAS
has no field for, verbatim, and ``sources`` remembers how each mapped field was
spelled in the vCard (property name, group, parameters), so that a contact
read from a vCard and written back keeps everything.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field, fields

__all__ = ["Address", "Contact", "PropertySource", "SIMPLE_FIELDS", "ADDRESS_FIELDS"]


@dataclass
class Address:
    """A postal address.  ``po_box`` and ``extended`` are vCard ADR parts
    EAS has no element for; they are kept, not sent."""

    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    po_box: str = ""
    extended: str = ""

    def is_empty(self) -> bool:
        """Whether no part is set."""
        return not any(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class PropertySource:
    """How a field was written in the vCard it was read from: property name,
    group (``item1``) and parameters (name -> values, in order)."""

    name: str
    group: str | None = None
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass
class Contact:
    """A contact with every field EAS knows (empty string: not set)."""

    # Names (Contacts page).
    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    title: str = ""
    suffix: str = ""
    file_as: str = ""
    yomi_first_name: str = ""
    yomi_last_name: str = ""
    yomi_company_name: str = ""
    # Work.
    company_name: str = ""
    department: str = ""
    job_title: str = ""
    office_location: str = ""
    assistant_name: str = ""
    # Dates (calendar dates; ``*_eas`` is the exact EAS dateTime last
    # received for that date, sent back unchanged while the date matches).
    birthday: datetime.date | None = None
    birthday_eas: str | None = None
    anniversary: datetime.date | None = None
    anniversary_eas: str | None = None
    # Family.
    spouse: str = ""
    children: list[str] = field(default_factory=list)
    # Email and web.
    email1_address: str = ""
    email2_address: str = ""
    email3_address: str = ""
    web_page: str = ""
    # Phones.
    assistant_phone_number: str = ""
    business_phone_number: str = ""
    business2_phone_number: str = ""
    business_fax_number: str = ""
    car_phone_number: str = ""
    home_phone_number: str = ""
    home2_phone_number: str = ""
    home_fax_number: str = ""
    mobile_phone_number: str = ""
    pager_number: str = ""
    radio_phone_number: str = ""
    # Addresses.
    business_address: Address = field(default_factory=Address)
    home_address: Address = field(default_factory=Address)
    other_address: Address = field(default_factory=Address)
    # Other Contacts page fields.
    categories: list[str] = field(default_factory=list)
    picture: bytes | None = None
    body: str = ""
    # Contacts2 page.
    customer_id: str = ""
    government_id: str = ""
    im_address: str = ""
    im_address2: str = ""
    im_address3: str = ""
    manager_name: str = ""
    company_main_phone: str = ""
    account_name: str = ""
    nickname: str = ""
    mms: str = ""
    # vCard only.
    display_name: str = ""
    uid: str | None = None
    #: vCard properties EAS has no field for, as unfolded content lines.
    extra: list[str] = field(default_factory=list)
    #: Field name -> how the vCard spelled it (kept on the round trip).
    sources: dict[str, PropertySource] = field(default_factory=dict, compare=False)

    def composed_name(self) -> str:
        """A display name from the name parts (or company, e-mail)."""
        parts = [self.title, self.first_name, self.middle_name, self.last_name, self.suffix]
        name = " ".join(p for p in parts if p)
        return (name or self.file_as or self.company_name or self.nickname
                or self.email1_address or self.mobile_phone_number)


#: The plain string fields (each maps to one EAS element).
SIMPLE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Contact)
    if f.type in ("str", str) and f.name not in ("display_name",)
)

#: The address fields.
ADDRESS_FIELDS: tuple[str, ...] = ("business_address", "home_address", "other_address")
