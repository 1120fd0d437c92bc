"""One function builds the whole HTTP tree."""
from __future__ import annotations

from twisted.web.http import Request
from twisted.web.resource import Resource

from easyncd.http.activesync import ActiveSyncResource, Services
from easyncd.http.autodiscover import AutodiscoverDirectory


class RootResource(Resource):
    """``/``: children matched case-insensitively, as devices send them."""

    def __init__(self, children: dict[bytes, Resource]) -> None:
        super().__init__()
        self._by_name = {name.lower(): child for name, child in children.items()}

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        """The child whose name matches ``path`` in any case."""
        child = self._by_name.get(path.lower())
        if child is None:
            return _Plain(404, b"Not found\n")
        return child

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        """A one-line page saying what this is."""
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        return b"easyncd: Exchange ActiveSync at /Microsoft-Server-ActiveSync\n"


class _Plain(Resource):
    isLeaf = True

    def __init__(self, code: int, text: bytes) -> None:
        super().__init__()
        self._code = code
        self._text = text

    def render(self, request: Request) -> bytes:
        request.setResponseCode(self._code)
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        return self._text


def build_root(services: Services) -> Resource:
    """The resource tree served by every listener."""
    return RootResource({
        b"Microsoft-Server-ActiveSync": ActiveSyncResource(services),
        b"autodiscover": AutodiscoverDirectory(services),
    })
