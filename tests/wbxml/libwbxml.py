"""Helpers for the cross-checks against libwbxml's command-line tools.

libwbxml (Debian's libwbxml2-utils 0.11.8) names some ActiveSync tags after
older MS-ASWBXML revisions, writes namespaces as ``"AirSync:"`` and lacks a
few newer tokens.  These helpers translate its XML to our element trees by
code page and token, never by trusting its names to equal ours.
"""

from __future__ import annotations

import base64
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from easyncd.wbxml import Element
from easyncd.wbxml.codepages import CODE_PAGES, PAGE_BY_NAMESPACE, TOKEN_BY_TAG

WBXML2XML = "wbxml2xml"
XML2WBXML = "xml2wbxml"

DOCTYPE = (
    '<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" '
    '"http://www.microsoft.com/">'
)

#: libwbxml namespace -> code page, where its spelling differs from ours.
_NAMESPACE_ALIASES = {"Gal": "GAL"}

#: (our namespace, libwbxml name) -> our name, for every name that differs.
LIBWBXML_NAMES: dict[tuple[str, str], str] = {
    ("Contacts", "AssistantTelephoneNumber"): "AssistantPhoneNumber",
    **{
        ("Contacts", f"{kind}{part}"): f"{kind}Address{part}"
        for kind in ("Business", "Home", "Other")
        for part in ("City", "Country", "PostalCode", "State", "Street")
    },
    ("Email", "AttOId"): "Att0Id",
    ("Email", "Reply-To"): "ReplyTo",
    ("Email", "DTStamp"): "DtStamp",
    ("Email", "FlagStatus"): "Status",
    **{
        (ns, f"Recurrence_{part}"): part
        for ns in ("Email", "Calendar", "Tasks")
        for part in (
            "Type", "Until", "Occurrences", "Interval", "DayOfWeek",
            "DayOfMonth", "WeekOfMonth", "MonthOfYear", "Start", "Regenerate",
            "DeadOccur",
        )
    },
    ("AirNotify", "LifeTime"): "Lifetime",
    ("Calendar", "TimeZone"): "Timezone",
    ("Calendar", "Attendee_Email"): "Email",
    ("Calendar", "Attendee_Name"): "Name",
    ("Calendar", "Compressed_RTF"): "CompressedRTF",
    ("Calendar", "DTStamp"): "DtStamp",
    ("Calendar", "Exception_Deleted"): "Deleted",
    ("Calendar", "Exception_StartTime"): "ExceptionStartTime",
    ("Calendar", "Organizer_Email"): "OrganizerEmail",
    ("Calendar", "Organizer_Name"): "OrganizerName",
    ("Calendar", "Attendee_Status"): "AttendeeStatus",
    ("Calendar", "Attendee_Type"): "AttendeeType",
    ("Tasks", "UTCDueDate"): "UtcDueDate",
    ("Tasks", "UTCStartDate"): "UtcStartDate",
    ("Provision", "DeviceEncryptionEnabled"): "RequireStorageCardEncryption",
    ("Settings", "SmtpAddress"): "SMTPAddress",
    ("Settings", "ihsManagementInformation"): "RightsManagementInformation",
    ("ComposeMail", "MIME"): "Mime",
    ("RightsManagement", "RMOwner"): "Owner",
}

#: Tags libwbxml writes as opaque data and shows as base64 in its XML.
LIBWBXML_BINARY = frozenset({
    "ResolveRecipients:Data", "Search:ConversationId", "GAL:Data",
    "AirSyncBase:Content", "ItemOperations:ConversationId", "ComposeMail:Mime",
    "Email2:ConversationId", "Email2:ConversationIndex",
})

#: Tokens of MS-ASWBXML 16.1 that libwbxml 0.11.8 does not know.
LIBWBXML_MISSING = frozenset(
    {"MeetingResponse:ProposedStartTime", "MeetingResponse:ProposedEndTime",
     "Provision:AccountOnlyRemoteWipe"}
    | {f"Find:{name}" for name in CODE_PAGES[25].tags.values()}
)


def page_and_token(lib_tag: str) -> tuple[int, int] | None:
    """``"{AirSync:}Sync"`` (ElementTree form) -> (page, token), or None."""
    namespace, _, name = lib_tag[1:].partition("}")
    namespace = namespace.rstrip(":")
    namespace = _NAMESPACE_ALIASES.get(namespace, namespace)
    if namespace not in PAGE_BY_NAMESPACE:
        return None
    name = LIBWBXML_NAMES.get((namespace, name), name)
    return TOKEN_BY_TAG.get(f"{namespace}:{name}")


def lib_xml_to_tree(xml_text: bytes) -> Element:
    """Parse libwbxml's ActiveSync XML into our Element tree (by page+token)."""
    tags = {
        (page.number, token): f"{page.namespace}:{name}"
        for page in CODE_PAGES
        for token, name in page.tags.items()
    }

    def convert(node: ET.Element) -> Element:
        key = page_and_token(node.tag)
        if key is None:
            raise AssertionError(f"libwbxml wrote an unknown tag {node.tag}")
        element = Element(tags[key])
        if len(node):
            element.children = [convert(child) for child in node]
        elif node.text is not None:
            element.text = node.text
            if element.tag in LIBWBXML_BINARY:
                element.text = base64.b64decode(node.text)
        return element

    return convert(ET.fromstring(xml_text))


def wbxml2xml(data: bytes, workdir: Path) -> bytes:
    """Run ``wbxml2xml -l ACTIVESYNC`` on ``data``; return its XML output."""
    source = workdir / "in.wbxml"
    target = workdir / "out.xml"
    source.write_bytes(data)
    subprocess.run(
        [WBXML2XML, "-m", "0", "-l", "ACTIVESYNC", "-o", str(target), str(source)],
        check=True, capture_output=True, timeout=60,
    )
    return target.read_bytes()


def xml2wbxml(xml_text: str, workdir: Path, anonymous: bool = True) -> bytes:
    """Run ``xml2wbxml [-a] -n`` on an ActiveSync XML document."""
    source = workdir / "in.xml"
    target = workdir / "out.wbxml"
    source.write_text(xml_text, encoding="utf-8")
    flags = ["-a", "-n"] if anonymous else ["-n"]
    subprocess.run(
        [XML2WBXML, *flags, "-o", str(target), str(source)],
        check=True, capture_output=True, timeout=60,
    )
    return target.read_bytes()
