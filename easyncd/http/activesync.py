"""``/Microsoft-Server-ActiveSync``: OPTIONS and POST (MS-ASHTTP).

This resource does the HTTP part only: body size limit, content type,
authentication, the query (plain or base64), then hands an
:class:`~easyncd.protocol.context.EASRequest` to the protocol dispatcher and
writes its answer.  It logs one access-log event per request and, for traced
devices, the decoded exchange.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from easyncd.config import Config
from easyncd.http.auth import Authenticator, AuthUnavailable, Unauthorized, parse_basic
from easyncd.http.headers import EASHeaders
from easyncd.http.trace import ProtocolTracer
from easyncd.protocol.commands import implemented_commands
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.dispatch import dispatch
from easyncd.protocol.request import RequestError, build_request, parse_query
from easyncd.protocol.versions import protocol_commands_header, protocol_versions_header
from easyncd.store.interfaces import IStateStore
from easyncd.wbxml import encode

WBXML_TYPE = "application/vnd.ms-sync.wbxml"
#: Content types a device may POST: WBXML, and MIME for 2.5's SendMail & co.
ACCEPTED_TYPES = frozenset({WBXML_TYPE, "application/vnd.ms-sync", "message/rfc822"})
#: The MS-Server-ActiveSync header: the Exchange build whose behaviour we follow.
SERVER_VERSION = "16.1"

#: Reason phrases Twisted does not know.
_REASONS = {449: b"Retry With", 451: b"Redirect", 499: b"Client Closed Request"}

access_log = Logger(namespace="easyncd.access")
log = Logger()


@dataclass
class Services:
    """What the HTTP tree needs from the running daemon."""

    config: Config
    store: IStateStore
    authenticator: Authenticator
    clock: IReactorTime
    tracer: ProtocolTracer
    #: Services of later issues (mail, groupware, push), passed to commands.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Outcome:
    """What is written back, and what the access log says about it."""

    code: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    command: str = "-"
    user: str = "-"
    device_id: str = "-"
    version: str = "-"
    traced: bool = False
    #: A streamed body (see CommandResponse.stream) and its length.
    stream: Callable[[Callable[[bytes], Any]], Any] | None = None
    stream_length: int | None = None


class ActiveSyncResource(Resource):
    """The EAS endpoint.  Every request is authenticated with HTTP Basic."""

    isLeaf = True

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    # -- twisted.web hooks -------------------------------------------------------

    def render_OPTIONS(self, request: Request) -> object:  # noqa: N802
        """Advertise versions and commands (after authentication)."""
        return self._serve(request, self._options)

    def render_POST(self, request: Request) -> object:  # noqa: N802
        """Run one EAS command."""
        return self._serve(request, self._post)

    def render_GET(self, request: Request) -> object:  # noqa: N802
        """GET is not part of EAS: say what is allowed."""
        return self._serve(request, self._not_allowed)

    render_HEAD = render_GET

    # -- the common frame --------------------------------------------------------

    def _serve(self, request: Request, handler: Any) -> object:
        started = time.monotonic()
        original = request.responseHeaders
        request.responseHeaders = EASHeaders()
        for name, values in original.getAllRawHeaders():
            request.responseHeaders.setRawHeaders(name, values)
        work: Deferred[_Outcome] = Deferred.fromCoroutine(handler(request))
        finished = {"gone": False}

        def client_gone(_: object) -> None:
            finished["gone"] = True
            work.cancel()

        request.notifyFinish().addErrback(client_gone)

        def on_error(failure: Failure) -> _Outcome:
            if failure.check(CancelledError):
                return _Outcome(code=499)
            log.failure("request failed: {uri}", failure, uri=_path_only(request))
            return _Outcome(code=500)

        def write(outcome: _Outcome) -> None:
            duration = time.monotonic() - started
            self._log_access(request, outcome, duration)
            if finished["gone"]:
                return
            request.setResponseCode(outcome.code, _REASONS.get(outcome.code))
            for name, value in outcome.headers.items():
                request.setHeader(name, value)
            if outcome.content_type:
                request.setHeader("Content-Type", outcome.content_type)
            if outcome.stream is not None and request.method != b"HEAD":
                if outcome.stream_length is not None:
                    request.setHeader("Content-Length", str(outcome.stream_length))
                _write_stream(request, outcome.stream)
                return
            request.setHeader("Content-Length", str(len(outcome.body)))
            if outcome.code == 413:
                request.setHeader("Connection", "close")
            if outcome.body and request.method != b"HEAD":
                request.write(outcome.body)
            request.finish()

        work.addErrback(on_error).addCallback(write)
        work.addErrback(lambda f: log.failure("writing the response failed", f))
        return NOT_DONE_YET

    def _log_access(self, request: Request, outcome: _Outcome, duration: float) -> None:
        if not self.services.config.log.access_log:
            return
        access_log.info(
            "{client} {method} {command} user={user} device={device_id} "
            "version={version} http={code} status={status} {duration_ms:.1f}ms",
            client=self._client_address(request),
            method=request.method.decode("ascii", "replace"),
            command=outcome.command,
            user=outcome.user,
            device_id=outcome.device_id,
            version=outcome.version,
            code=outcome.code,
            status=outcome.status or "-",
            duration_ms=duration * 1000,
        )

    def _client_address(self, request: Request) -> str:
        address = request.getClientAddress()
        host = getattr(address, "host", "-")
        if host in self.services.config.server.trusted_proxies:
            forwarded = request.getHeader("X-Forwarded-For")
            if forwarded:
                return forwarded.split(",")[-1].strip()
        return str(host)

    async def _authenticate(self, request: Request) -> str | _Outcome:
        try:
            return await self.services.authenticator.authenticate(
                request.requestHeaders.getRawHeaders(b"Authorization", [None])[0],
                self._client_address(request),
            )
        except Unauthorized as exc:
            return _Outcome(
                code=401,
                headers={"WWW-Authenticate": exc.challenge.decode("ascii")},
                content_type="text/plain; charset=utf-8",
                body=b"Authentication required\n",
            )
        except AuthUnavailable:
            return _Outcome(
                code=503,
                headers={"Retry-After": "30"},
                content_type="text/plain; charset=utf-8",
                body=b"Authentication service unavailable\n",
            )

    # -- handlers -------------------------------------------------------------------

    async def _not_allowed(self, request: Request) -> _Outcome:
        account = await self._authenticate(request)
        if isinstance(account, _Outcome):
            return account
        return _Outcome(code=405, headers={"Allow": "OPTIONS, POST"}, user=account)

    async def _options(self, request: Request) -> _Outcome:
        account = await self._authenticate(request)
        if isinstance(account, _Outcome):
            return account
        highest = self.services.config.server.highest_version
        return _Outcome(
            code=200,
            command="OPTIONS",
            user=account,
            headers={
                "Allow": "OPTIONS, POST",
                "Public": "OPTIONS, POST",
                "Cache-Control": "private",
                "MS-Server-ActiveSync": SERVER_VERSION,
                "MS-ASProtocolVersions": protocol_versions_header(highest),
                "MS-ASProtocolCommands": protocol_commands_header(
                    implemented_commands(self.services.extra)),
            },
        )

    async def _post(self, request: Request) -> _Outcome:
        query = request.uri.partition(b"?")[2]
        try:
            parsed = parse_query(query)
        except RequestError as exc:
            return _plain(exc.http_status, exc.reason)
        outcome_base = {"command": parsed.command or "-", "user": parsed.user or "-",
                        "device_id": parsed.device_id or "-"}
        if getattr(request, "body_too_large", False):
            return _plain(413, "Request body too large", **outcome_base)
        account = await self._authenticate(request)
        if isinstance(account, _Outcome):
            account.command, account.device_id = outcome_base["command"], outcome_base["device_id"]
            account.user = outcome_base["user"]
            return account
        outcome_base["user"] = account
        # The credentials were just verified; mail backends log in with them.
        _, password = parse_basic(request.requestHeaders.getRawHeaders(b"Authorization", [None])[0])
        body = _body_of(request)
        content_type = (request.getHeader("Content-Type") or "").split(";")[0].strip().lower()
        if body and content_type and content_type not in ACCEPTED_TYPES:
            return _plain(415, f"Unsupported content type {content_type}", **outcome_base)
        headers = {
            name.decode("latin-1").lower(): values[0].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        try:
            eas_request = build_request(parsed, headers, account)
        except RequestError as exc:
            return _plain(exc.http_status, exc.reason, **outcome_base)
        store = self.services.store
        device = await store.get_device(eas_request.device_id)
        device_account = None
        if device is not None:
            for candidate in device.accounts:
                if candidate.user == account:
                    device_account = candidate
        ctx = CommandContext(
            request=eas_request,
            account=device_account,
            store=store,
            config=self.services.config,
            clock=self.services.clock,
            log=Logger(namespace=f"easyncd.command.{eas_request.command}"),
            services=self.services.extra,
            account_loaded=True,
            password=password,
        )
        started = time.monotonic()
        response: CommandResponse = await dispatch(ctx, body)
        outcome = self._render(response)
        outcome.command = eas_request.command
        outcome.user = account
        outcome.device_id = eas_request.device_id
        outcome.version = eas_request.protocol_version
        tracer = self.services.tracer
        if tracer.wanted(eas_request.device_id, account, bool(device and device.trace)):
            tracer.write(
                device_id=eas_request.device_id,
                account=account,
                request_line=f"POST {_path_only(request)} ({eas_request.query_form} query) "
                             f"Cmd={eas_request.command} version={eas_request.protocol_version}",
                request_headers=[(k.decode("latin-1"), v.decode("latin-1"))
                                 for k, vs in request.requestHeaders.getAllRawHeaders()
                                 for v in vs],
                request_body=body,
                request_type=content_type or None,
                code=outcome.code,
                response_headers=outcome.headers,
                response_body=outcome.body,
                response_type=outcome.content_type,
                duration=time.monotonic() - started,
            )
        return outcome

    def _render(self, response: CommandResponse) -> _Outcome:
        headers = {"MS-Server-ActiveSync": SERVER_VERSION, "Cache-Control": "private"}
        headers.update(response.headers)
        if response.stream is not None:
            content_type = headers.pop("Content-Type", "application/octet-stream")
            return _Outcome(code=response.http_status, content_type=content_type,
                            headers=headers, status=response.status,
                            stream=response.stream, stream_length=response.stream_length)
        if response.raw_body is not None:
            content_type = headers.pop("Content-Type", "application/octet-stream")
            return _Outcome(code=response.http_status, body=response.raw_body,
                            content_type=content_type, headers=headers, status=response.status)
        if response.body is not None:
            return _Outcome(code=response.http_status, body=encode(response.body),
                            content_type=WBXML_TYPE, headers=headers, status=response.status)
        return _Outcome(code=response.http_status, headers=headers, status=response.status)


@implementer(IPushProducer)
class _StreamProducer:
    """Backpressure for a streamed body: ``write`` waits while the transport's
    buffer is full, and fails once the client has gone."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiting: list[Deferred[None]] = []

    def pauseProducing(self) -> None:  # noqa: N802 - IPushProducer
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802 - IPushProducer
        self.paused = False
        waiting, self._waiting = self._waiting, []
        for deferred in waiting:
            deferred.callback(None)

    def stopProducing(self) -> None:  # noqa: N802 - IPushProducer
        self.stopped = True
        waiting, self._waiting = self._waiting, []
        for deferred in waiting:
            deferred.errback(ConnectionDone("the client went away"))

    def wait(self) -> Deferred[None] | None:
        """A Deferred that fires when writing may go on (None: at once)."""
        if not self.paused:
            return None
        deferred: Deferred[None] = Deferred()
        self._waiting.append(deferred)
        return deferred


def _write_stream(request: Request, stream: Callable[[Callable[[bytes], Any]], Any]) -> None:
    """Run a streamed body into ``request``, never holding more than the
    producer's chunk plus the transport buffer; a failure after the headers
    aborts the connection (the client sees a short body)."""
    producer = _StreamProducer()
    request.registerProducer(producer, True)
    request.notifyFinish().addErrback(lambda _: producer.stopProducing())

    def write(data: bytes) -> Deferred[None] | None:
        if producer.stopped:
            raise ConnectionDone("the client went away")
        if data:
            request.write(data)
        return producer.wait()

    def done(_: object) -> None:
        request.unregisterProducer()
        if not producer.stopped:
            request.finish()

    def failed(failure: Failure) -> None:
        request.unregisterProducer()
        if producer.stopped:
            return
        log.failure("streaming the response failed: {uri}", failure, uri=_path_only(request))
        transport = getattr(request.channel, "transport", None)
        if transport is not None and hasattr(transport, "abortConnection"):
            transport.abortConnection()
        elif transport is not None:
            transport.loseConnection()

    maybeDeferred(stream, write).addCallbacks(done, failed)


def _plain(code: int, reason: str, **fields: Any) -> _Outcome:
    return _Outcome(code=code, body=(reason + "\n").encode("utf-8"),
                    content_type="text/plain; charset=utf-8", **fields)


def _body_of(request: Request, limit: int = -1) -> bytes:
    """The buffered request body."""
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    return bytes(content.read(limit))


def _path_only(request: Request) -> str:
    """The request path without the query (which may carry a policy key)."""
    return request.path.decode("latin-1", "replace")


