"""The only package that imports vobject: vCard and iCalendar text <-> the
groupware domain models.

One module per format (``vcard``, ``calendar``, ``todo``, ``journal``), plus
``split`` (multi-item ``.vcf`` / ``.ics`` files <-> single items, for imports
and exports); this file only re-exports their public functions.
"""
from __future__ import annotations

from easyncd.backends.groupware.vobj.vcard import (
    VCardError,
    parse_vcard,
    parse_vcards,
    write_vcard,
)

from easyncd.backends.groupware.vobj.calendar import ICalendarError, parse_ics, write_ics
from easyncd.backends.groupware.vobj.journal import parse_vjournal, write_vjournal
from easyncd.backends.groupware.vobj.split import (
    SplitError,
    SplitItem,
    item_summary,
    join_icalendar,
    join_vcards,
    split_file,
    split_icalendar,
    split_vcards,
    with_uid,
)
from easyncd.backends.groupware.vobj.todo import VObjectError, parse_vtodo, write_vtodo

__all__ = [
    "ICalendarError", "VCardError", "VObjectError", "parse_ics", "parse_vcard", "parse_vcards", "parse_vjournal", "parse_vtodo",
    "write_ics", "write_vcard", "write_vjournal", "write_vtodo",
    "SplitError", "SplitItem", "item_summary", "join_icalendar", "join_vcards", "split_file",
    "split_icalendar", "split_vcards", "with_uid",
]
