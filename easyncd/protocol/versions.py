"""Protocol versions, which command exists in which version, and the OPTIONS headers.

Everything here is a table (MS-ASCMD 2.2.1, MS-ASHTTP 2.2.1.1.1.1.2 and
2.2.4.1.2); the functions only read them.
"""
from __future__ import annotations

from typing import Iterable

from easyncd.config import PROTOCOL_VERSIONS

#: Supported versions, oldest first.
VERSIONS: tuple[str, ...] = PROTOCOL_VERSIONS

#: The first version whose errors are reported as common Status codes inside
#: the command's WBXML answer instead of HTTP codes (MS-ASCMD 2.2.2).
STATUS_IN_BODY_FROM = "14.0"


def version_key(version: str) -> tuple[int, int]:
    """A sortable key: ``"12.1"`` -> ``(12, 1)``."""
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def at_least(version: str, minimum: str) -> bool:
    """Whether ``version`` is ``minimum`` or newer."""
    return version_key(version) >= version_key(minimum)


def status_in_body(version: str) -> bool:
    """Whether errors go into the body as common Status codes (14.0+)."""
    return at_least(version, STATUS_IN_BODY_FROM)


#: command -> (first version, last version or None), MS-ASCMD 2.2.1.
COMMAND_VERSIONS: dict[str, tuple[str, str | None]] = {
    "Sync": ("2.5", None),
    "SendMail": ("2.5", None),
    "SmartForward": ("2.5", None),
    "SmartReply": ("2.5", None),
    "GetAttachment": ("2.5", "12.1"),
    "FolderSync": ("2.5", None),
    "FolderCreate": ("2.5", None),
    "FolderDelete": ("2.5", None),
    "FolderUpdate": ("2.5", None),
    "MoveItems": ("2.5", None),
    "GetItemEstimate": ("2.5", None),
    "MeetingResponse": ("2.5", None),
    "Search": ("2.5", None),
    "Settings": ("12.0", None),
    "Ping": ("2.5", None),
    "ItemOperations": ("12.0", None),
    "Provision": ("2.5", None),
    "ResolveRecipients": ("2.5", None),
    "ValidateCert": ("2.5", None),
    "Find": ("16.1", None),
}

#: Command codes of the base64 query form (MS-ASHTTP 2.2.1.1.1.1.2).
COMMAND_CODES: dict[int, str] = {
    0: "Sync",
    1: "SendMail",
    2: "SmartForward",
    3: "SmartReply",
    4: "GetAttachment",
    9: "FolderSync",
    10: "FolderCreate",
    11: "FolderDelete",
    12: "FolderUpdate",
    13: "MoveItems",
    14: "GetItemEstimate",
    15: "MeetingResponse",
    16: "Search",
    17: "Settings",
    18: "Ping",
    19: "ItemOperations",
    20: "Provision",
    21: "ResolveRecipients",
    22: "ValidateCert",
    23: "Find",
}

#: command -> (top element, its Status child): where a common status goes
#: from 14.0.  Commands without a WBXML answer (GetAttachment) are absent.
TOP_ELEMENTS: dict[str, tuple[str, str]] = {
    "Sync": ("AirSync:Sync", "AirSync:Status"),
    "SendMail": ("ComposeMail:SendMail", "ComposeMail:Status"),
    "SmartForward": ("ComposeMail:SmartForward", "ComposeMail:Status"),
    "SmartReply": ("ComposeMail:SmartReply", "ComposeMail:Status"),
    "FolderSync": ("FolderHierarchy:FolderSync", "FolderHierarchy:Status"),
    "FolderCreate": ("FolderHierarchy:FolderCreate", "FolderHierarchy:Status"),
    "FolderDelete": ("FolderHierarchy:FolderDelete", "FolderHierarchy:Status"),
    "FolderUpdate": ("FolderHierarchy:FolderUpdate", "FolderHierarchy:Status"),
    "MoveItems": ("Move:MoveItems", "Move:Status"),
    "GetItemEstimate": ("GetItemEstimate:GetItemEstimate", "GetItemEstimate:Status"),
    "MeetingResponse": ("MeetingResponse:MeetingResponse", "MeetingResponse:Status"),
    "Search": ("Search:Search", "Search:Status"),
    "Settings": ("Settings:Settings", "Settings:Status"),
    "Ping": ("Ping:Ping", "Ping:Status"),
    "ItemOperations": ("ItemOperations:ItemOperations", "ItemOperations:Status"),
    "Provision": ("Provision:Provision", "Provision:Status"),
    "ResolveRecipients": ("ResolveRecipients:ResolveRecipients", "ResolveRecipients:Status"),
    "ValidateCert": ("ValidateCert:ValidateCert", "ValidateCert:Status"),
    "Find": ("Find:Find", "Find:Status"),
}


class UnsupportedVersion(ValueError):
    """The device asked for a protocol version easyncd does not offer.

    Answered with HTTP 400 and the ``MS-ASProtocolVersions`` header, so the
    device can pick again (MS-ASHTTP 2.2.1.1.2.6, 2.2.2.1.1).
    """

    http_status = 400

    def __init__(self, requested: str | None, highest: str) -> None:
        self.requested = requested
        self.highest = highest
        super().__init__(
            "missing MS-ASProtocolVersion" if requested is None
            else f"unsupported protocol version {requested!r}"
        )

    @property
    def headers(self) -> dict[str, str]:
        """Headers for the 400 answer."""
        return {"MS-ASProtocolVersions": protocol_versions_header(self.highest)}


def offered_versions(highest: str) -> tuple[str, ...]:
    """The versions offered when the configured maximum is ``highest``."""
    return tuple(v for v in VERSIONS if version_key(v) <= version_key(highest))


def negotiate(requested: str | None, highest: str) -> str:
    """The version to speak: the one requested, if it is offered.

    EAS has no real negotiation: the device picks from the OPTIONS list and
    must then use that version.  A missing or unoffered version raises
    :class:`UnsupportedVersion`.
    """
    if requested is None:
        raise UnsupportedVersion(None, highest)
    version = requested.strip()
    if version not in offered_versions(highest):
        raise UnsupportedVersion(requested, highest)
    return version


def command_in_version(command: str, version: str) -> bool:
    """Whether ``command`` exists in protocol ``version`` (MS-ASCMD 2.2.1)."""
    span = COMMAND_VERSIONS.get(command)
    if span is None:
        return False
    first, last = span
    if not at_least(version, first):
        return False
    return last is None or at_least(last, version)


def protocol_versions_header(highest: str) -> str:
    """The ``MS-ASProtocolVersions`` value of an OPTIONS answer."""
    return ",".join(offered_versions(highest))


def protocol_commands_header(implemented: Iterable[str]) -> str:
    """The ``MS-ASProtocolCommands`` value: the implemented commands, in table order."""
    wanted = set(implemented)
    return ",".join(name for name in COMMAND_VERSIONS if name in wanted)
