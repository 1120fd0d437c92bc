"""The HTTP site: a request class that refuses oversized bodies."""
from __future__ import annotations

from typing import Any

from twisted.web import server
from twisted.web.resource import Resource


class LimitedRequest(server.Request):
    """A request that stops buffering its body past the site's size limit.

    The bytes beyond the limit are read and dropped, never kept; the resource
    then answers 413 (see :attr:`body_too_large`).
    """

    body_too_large = False
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 (Twisted hook)
        """Buffer a body chunk unless the limit has been passed."""
        limit = getattr(getattr(self.channel, "site", None), "max_request_size", None)
        self._received += len(data)
        if limit is not None and self._received > limit:
            if not self.body_too_large:
                self.body_too_large = True
                if self.content is not None:
                    self.content.seek(0)
                    self.content.truncate()
            return
        super().handleContentChunk(data)


class EASSite(server.Site):
    """The site serving the resource tree; its access log is our own."""

    requestFactory = LimitedRequest
    noisy = False

    def __init__(self, root: Resource, max_request_size: int, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.max_request_size = max_request_size

    def log(self, request: Any) -> None:
        """No combined-format line: ``easyncd.http.activesync`` logs each request."""
