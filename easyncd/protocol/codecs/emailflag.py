"""The follow-up flag of an email (MS-ASEMAIL 2.2.2.34 Flag, 3.2.5.4.2).

IMAP keeps only ``\\Flagged``; the rest of an EAS flag (FlagType, start / due
dates, completion time, reminder, the Tasks-page Subject and OrdinalDate /
SubOrdinalDate) is kept by easyncd in its state store (``mail_flags``) as a
mapping of the Flag's child tags to their text, exactly as the device sent
them.  How the two combine:

* Status 2 (active): ``\\Flagged`` set, the data stored;
* Status 1 (complete): ``\\Flagged`` cleared (other mail programs show a
  completed flag as no flag), the data stored -- with the completion time
  and, when the device leaves them out, the dates it had before;
* Status 0 or an empty Flag: ``\\Flagged`` cleared, the data forgotten.

What the device is told (:func:`flag_element`): ``\\Flagged`` with stored
Status 2 data -> that data; ``\\Flagged`` without (set by another mail
program, or after a completion) -> Status 2 and FlagType "Flag for follow
up", as before; no ``\\Flagged`` with stored Status 1 data -> the completed
flag; anything else -> an empty Flag (a Status 2 record whose ``\\Flagged``
another program cleared is stale and ignored).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from easyncd.wbxml import Element

STATUS = "Email:Status"
FLAG_TYPE = "Email:FlagType"
COMPLETE_TIME = "Email:CompleteTime"
DATE_COMPLETED = "Tasks:DateCompleted"
DEFAULT_FLAG_TYPE = "Flag for follow up"

#: The Flag's children, in the order MS-ASEMAIL lists them (and we send them).
FLAG_TAGS: tuple[str, ...] = (
    "Tasks:Subject", STATUS, FLAG_TYPE, DATE_COMPLETED, COMPLETE_TIME,
    "Tasks:StartDate", "Tasks:DueDate", "Tasks:UtcStartDate", "Tasks:UtcDueDate",
    "Tasks:ReminderSet", "Tasks:ReminderTime", "Tasks:OrdinalDate", "Tasks:SubOrdinalDate",
)
#: Kept from the previous data when a completion leaves them out.
_DATES = ("Tasks:StartDate", "Tasks:DueDate", "Tasks:UtcStartDate", "Tasks:UtcDueDate",
          "Tasks:OrdinalDate", "Tasks:SubOrdinalDate", "Tasks:Subject", FLAG_TYPE)

STATUS_CLEARED, STATUS_COMPLETE, STATUS_ACTIVE = "0", "1", "2"


class InvalidFlag(ValueError):
    """A Flag whose Status is not 0, 1 or 2 (the item gets Status 6)."""


@dataclass(frozen=True)
class DeviceFlag:
    """A Flag sent by the device: its status ("0", "1", "2") and the data to
    keep (None: forget what is stored)."""

    status: str
    data: Mapping[str, str] | None

    @property
    def flagged(self) -> bool:
        """Whether ``\\Flagged`` is to be set."""
        return self.status == STATUS_ACTIVE


def _text(element: Element) -> str:
    value = element.text
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return (value or "").strip()


def parse_flag(flag: Element) -> DeviceFlag:
    """Read an ``Email:Flag`` element of a device's Change.  An empty Flag or
    one without Status clears the flag.  Raises InvalidFlag."""
    values: dict[str, str] = {}
    for child in flag.children:
        if child.tag in FLAG_TAGS and child.tag not in values:
            values[child.tag] = _text(child)
    status = values.get(STATUS, STATUS_CLEARED) or STATUS_CLEARED
    if status not in (STATUS_CLEARED, STATUS_COMPLETE, STATUS_ACTIVE):
        raise InvalidFlag(f"flag status {status!r}")
    if status == STATUS_CLEARED:
        return DeviceFlag(status, None)
    values[STATUS] = status
    return DeviceFlag(status, {tag: values[tag] for tag in FLAG_TAGS if tag in values})


def merge_completed(new: Mapping[str, str], previous: Mapping[str, str] | None) -> dict[str, str]:
    """A completion's data with the dates of the flag it completes kept where
    the device left them out."""
    merged = dict(new)
    if previous:
        for tag in _DATES:
            if tag not in merged and tag in previous:
                merged[tag] = previous[tag]
    return {tag: merged[tag] for tag in FLAG_TAGS if tag in merged}


def flag_element(flagged: bool, stored: Mapping[str, str] | None) -> Element:
    """The ``Email:Flag`` to send for a message with (or without) ``\\Flagged``
    and the data stored for it (None: none)."""
    flag = Element("Email:Flag")
    status = stored.get(STATUS) if stored else None
    if flagged:
        if stored and status == STATUS_ACTIVE:
            _fill(flag, stored, FLAG_TYPE not in stored)
        else:
            flag.add(STATUS, STATUS_ACTIVE)
            flag.add(FLAG_TYPE, DEFAULT_FLAG_TYPE)
    elif stored and status == STATUS_COMPLETE:
        _fill(flag, stored, False)
    return flag


def _fill(flag: Element, stored: Mapping[str, str], add_type: bool) -> None:
    for tag in FLAG_TAGS:
        if tag in stored:
            flag.add(tag, stored[tag])
            if tag == STATUS and add_type:
                flag.add(FLAG_TYPE, DEFAULT_FLAG_TYPE)


__all__ = ["DEFAULT_FLAG_TYPE", "DeviceFlag", "FLAG_TAGS", "InvalidFlag", "flag_element",
           "merge_completed", "parse_flag"]
