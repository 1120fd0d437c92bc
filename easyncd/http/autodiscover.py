"""Autodiscover for mobile devices (MS-ASCMD 2.2.1.1) and the JSON form.

``POST /autodiscover/autodiscover.xml`` with the mobilesync request schema
answers with the URL of ``/Microsoft-Server-ActiveSync``; ``GET
/autodiscover/autodiscover.json?Email=..&Protocol=ActiveSync`` (used by
Outlook mobile) answers ``{"Protocol": "ActiveSync", "Url": ...}``.
"""
from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from twisted.web.http import Request
from twisted.web.resource import Resource

from easyncd.http.activesync import ActiveSyncResource, Services, _body_of, _Outcome

REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
RESPONSE_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
OUTER_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
MAX_BODY = 64 * 1024


def activesync_url(services: Services, request: Request) -> str:
    """The URL devices should use for EAS."""
    base = services.config.server.public_url.rstrip("/")
    if not base:
        host = (request.getHeader("Host") or "localhost").strip()
        scheme = "https" if request.isSecure() else "http"
        base = f"{scheme}://{host}"
    return base + "/Microsoft-Server-ActiveSync"


def _xml_response(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<Autodiscover xmlns="{OUTER_NS}">\n'
        f'  <Response xmlns="{RESPONSE_SCHEMA}">\n'
        "    <Culture>en:us</Culture>\n"
        f"{inner}"
        "  </Response>\n"
        "</Autodiscover>\n"
    ).encode("utf-8")


def _xml_error(code: str, message: str) -> bytes:
    return _xml_response(
        "    <Action>\n"
        "      <Error>\n"
        f"        <Status>1</Status>\n"
        f"        <Message>{escape(message)}</Message>\n"
        f"        <DebugData>{escape(code)}</DebugData>\n"
        "      </Error>\n"
        "    </Action>\n"
    )


def parse_request(body: bytes) -> tuple[str | None, str | None]:
    """(EMailAddress, AcceptableResponseSchema) of an autodiscover request.

    Raises ValueError for anything that is not a small, plain XML document.
    """
    if len(body) > MAX_BODY or b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ValueError("refused XML")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(str(exc)) from None
    email = schema = None
    for element in root.iter():
        local = element.tag.rpartition("}")[2]
        if local == "EMailAddress":
            email = (element.text or "").strip() or None
        elif local == "AcceptableResponseSchema":
            schema = (element.text or "").strip() or None
    return email, schema


class AutodiscoverXml(ActiveSyncResource):
    """``/autodiscover/autodiscover.xml`` (POST, authenticated)."""

    def render_POST(self, request: Request) -> object:  # noqa: N802
        """Answer an autodiscover request."""
        return self._serve(request, self._autodiscover)

    render_OPTIONS = ActiveSyncResource.render_GET

    async def _autodiscover(self, request: Request) -> _Outcome:
        account = await self._authenticate(request)
        if isinstance(account, _Outcome):
            return account
        try:
            email, schema = parse_request(_body_of(request, MAX_BODY + 1))
        except ValueError:
            return _Outcome(code=200, content_type="text/xml; charset=utf-8", user=account,
                            command="Autodiscover", body=_xml_error("600", "Invalid Request"))
        if schema != RESPONSE_SCHEMA:
            return _Outcome(code=200, content_type="text/xml; charset=utf-8", user=account,
                            command="Autodiscover", body=_xml_error("601", "Provider not available"))
        url = escape(activesync_url(self.services, request))
        address = escape(email or account)
        body = _xml_response(
            "    <User>\n"
            f"      <DisplayName>{escape(account)}</DisplayName>\n"
            f"      <EMailAddress>{address}</EMailAddress>\n"
            "    </User>\n"
            "    <Action>\n"
            "      <Settings>\n"
            "        <Server>\n"
            "          <Type>MobileSync</Type>\n"
            f"          <Url>{url}</Url>\n"
            f"          <Name>{url}</Name>\n"
            "        </Server>\n"
            "      </Settings>\n"
            "    </Action>\n"
        )
        return _Outcome(code=200, content_type="text/xml; charset=utf-8", body=body,
                        user=account, command="Autodiscover")


class AutodiscoverJson(ActiveSyncResource):
    """``/autodiscover/autodiscover.json`` (GET, no authentication needed)."""

    def render_GET(self, request: Request) -> object:  # noqa: N802
        """Answer with the EAS URL for ``Protocol=ActiveSync``."""
        return self._serve(request, self._json)

    render_POST = render_GET
    render_OPTIONS = ActiveSyncResource.render_GET

    async def _json(self, request: Request) -> _Outcome:
        args: dict[bytes, list[bytes]] = request.args or {}
        wanted = {key.decode("latin-1").lower(): values[0].decode("utf-8", "replace")
                  for key, values in args.items() if values}
        if wanted.get("protocol", "").lower() != "activesync":
            payload: dict[str, Any] = {"ErrorCode": "ProtocolNotSupported",
                                       "ErrorMessage": "Only ActiveSync is offered here"}
            return _Outcome(code=400, content_type="application/json",
                            body=json.dumps(payload).encode(), command="Autodiscover")
        payload = {"Protocol": "ActiveSync", "Url": activesync_url(self.services, request)}
        return _Outcome(code=200, content_type="application/json",
                        body=json.dumps(payload).encode(), command="Autodiscover")


class AutodiscoverDirectory(Resource):
    """``/autodiscover/``, matched case-insensitively."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._xml = AutodiscoverXml(services)
        self._json = AutodiscoverJson(services)

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        """Pick the XML or JSON endpoint."""
        name = path.lower()
        if name == b"autodiscover.xml":
            return self._xml
        if name == b"autodiscover.json":
            return self._json
        return _NotFound()


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        return b"Not found\n"


__all__ = ["AutodiscoverDirectory", "AutodiscoverJson", "AutodiscoverXml", "parse_request"]
