"""Response headers spelled exactly as MS-ASHTTP spells them.

Twisted writes header names in its own case (``Ms-Asprotocolversions``); some
devices compare EAS headers by exact case, so :class:`EASHeaders` respells the
EAS ones when the response head is written.
"""
from __future__ import annotations

from typing import Iterator, Sequence

from twisted.web.http_headers import Headers

#: Header names as the EAS specifications spell them.
EAS_HEADER_NAMES = (
    "MS-ASProtocolVersions",
    "MS-ASProtocolCommands",
    "MS-ASProtocolVersion",
    "MS-Server-ActiveSync",
    "MS-ASProtocolSupports",
    "X-MS-PolicyKey",
    "X-MS-RP",
    "X-MS-ASThrottle",
    "X-MS-Location",
    "WWW-Authenticate",
)

_RESPELLED = {
    b"-".join(word.capitalize() for word in name.encode("ascii").split(b"-")): name.encode("ascii")
    for name in EAS_HEADER_NAMES
}


class EASHeaders(Headers):
    """:class:`Headers` whose EAS header names go out in the spec's spelling."""

    __slots__ = ()

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, Sequence[bytes]]]:  # noqa: N802 (Twisted hook)
        """All headers, EAS names respelled."""
        for name, values in super().getAllRawHeaders():
            yield _RESPELLED.get(name, name), values
