"""Password checking by IMAP LOGIN: the device password is the mail password.

:class:`ImapLoginChecker` connects to the configured IMAP server (plain,
``STARTTLS`` or implicit TLS; the certificate is verified against
``[auth] imap_ca_file`` or the platform trust store), sends ``LOGIN`` and
then ``LOGOUT``.  ``OK`` means the password is right; ``NO`` means it is wrong.
Anything else (refused connection, TLS failure, timeout, ``NO [UNAVAILABLE]``)
is an :class:`~easyncd.backends.interfaces.AuthBackendUnavailable`, which the
HTTP layer answers with 503 rather than 401.  Passwords are never logged.
"""
from __future__ import annotations

from typing import Any

from twisted.internet import ssl
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.mail.imap4 import Command, IMAP4Client, IMAP4Exception
from twisted.python.failure import Failure
from zope.interface import implementer

from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator

TLS_MODES = ("none", "starttls", "implicit")
#: Seconds allowed for the TCP connection.
CONNECT_TIMEOUT = 10.0
#: Seconds allowed for the whole exchange (connect, TLS, LOGIN, LOGOUT).
EXCHANGE_TIMEOUT = 30.0
#: Response codes (RFC 5530) of a NO that means "cannot answer now", not "wrong password".
_UNAVAILABLE_CODES = (b"[UNAVAILABLE]", b"[SERVERBUG]", b"[LIMIT]", b"[INUSE]")


def quote_or_literal(value: bytes) -> tuple[bytes, bytes | None]:
    """IMAP ``astring`` encoding of ``value``.

    Printable ASCII becomes a quoted string ``(b'"..."', None)``; anything
    else a synchronizing literal ``(b"{n}", value)`` whose octets are sent
    after the server's continuation.
    """
    if all(0x20 <= byte < 0x7F for byte in value):
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"', None
    return b"{%d}" % len(value), value


class LoginClient(IMAP4Client):
    """An IMAP4 client that reports its greeting and its end as Deferreds."""

    def __init__(self) -> None:
        super().__init__()
        self.greeted: Deferred[None] = Deferred()
        self.closed: Deferred[None] = Deferred()

    def serverGreeting(self, caps: Any) -> None:
        """Twisted hook: the server said hello."""
        if not self.greeted.called:
            self.greeted.callback(None)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        """Twisted hook: fail whatever still waits, then report the end."""
        super().connectionLost(reason)
        if not self.greeted.called:
            self.greeted.errback(reason)
        if not self.closed.called:
            self.closed.callback(None)

    def login_command(self, username: bytes, password: bytes) -> "Deferred[Any]":
        """Send ``LOGIN`` (never STARTTLS behind our back, unlike :meth:`login`).

        Non-ASCII names or passwords go as literals.
        """
        first: bytes | None = None
        pending: list[tuple[bytes, bytes]] = []  # (literal, text after it)
        text = b""
        for index, value in enumerate((username, password)):
            token, literal = quote_or_literal(value)
            text += (b" " if index else b"") + token
            if literal is not None:
                if first is None:
                    first = text
                else:
                    pending[-1] = (pending[-1][0], text)
                pending.append((literal, b""))
                text = b""
        if first is None:
            first = text
        elif text:
            pending[-1] = (pending[-1][0], text)

        def continuation(_rest: bytes) -> None:
            if pending:
                literal, following = pending.pop(0)
                transport: Any = self.transport
                transport.write(literal + following + b"\r\n")

        return self.sendCommand(Command(b"LOGIN", first, (), continuation))


class _Factory(Factory):
    protocol = LoginClient


def read_trust_root(ca_file: str | None) -> Any:
    """The trust root for ``optionsForClientTLS``: the CA in ``ca_file`` (PEM), or the platform's."""
    if not ca_file:
        return ssl.platformTrust()
    with open(ca_file, "rb") as handle:
        pem = handle.read()
    return ssl.Certificate.loadPEM(pem)


@implementer(IAuthenticator)
class ImapLoginChecker:
    """Checks passwords by logging in to an IMAP server."""

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        tls: str = "starttls",
        ca_file: str | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        timeout: float = EXCHANGE_TIMEOUT,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"imap_tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        self._reactor = reactor
        self.host = host
        self.port = port
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._tls_options: Any = (
            ssl.optionsForClientTLS(host, trustRoot=read_trust_root(ca_file))
            if tls != "none" else None
        )

    @classmethod
    def from_config(cls, config: Any, reactor: Any) -> "ImapLoginChecker":
        """Build from ``[auth] imap_host, imap_port, imap_tls, imap_ca_file``."""
        auth = config.auth
        return cls(reactor, auth.imap_host, auth.imap_port, auth.imap_tls, auth.imap_ca_file or None)

    def _endpoint(self) -> Any:
        """The client endpoint (an ``IStreamClientEndpoint``)."""
        endpoint: Any = HostnameEndpoint(
            self._reactor, self.host, self.port, timeout=self.connect_timeout
        )
        if self.tls == "implicit":
            endpoint = wrapClientTLS(self._tls_options, endpoint)
        return endpoint

    def authenticate(self, username: str, password: str) -> "Deferred[bool]":
        """Fires with whether LOGIN succeeded; :class:`AuthBackendUnavailable` if no answer."""
        if "\x00" in username or "\x00" in password or "\r" in password or "\n" in password:
            # No IMAP string can carry these: such a password is wrong.
            return succeed(False)
        sessions: list[LoginClient] = []
        d: Deferred[bool] = Deferred.fromCoroutine(
            self._exchange(username.encode("utf-8"), password.encode("utf-8"), sessions)
        )
        d.addTimeout(self.timeout, self._reactor)
        d.addErrback(self._unavailable, username)

        def settle(result: Any) -> Any:
            # Drop the connection and let it close before answering, so
            # nothing lingers.
            if not sessions or sessions[0].closed.called:
                return result
            session = sessions[0]
            if session.transport is not None:
                session.transport.abortConnection()  # type: ignore[attr-defined]
            return session.closed.addCallback(lambda _: result)

        d.addBoth(settle)
        return d

    async def _exchange(self, username: bytes, password: bytes, sessions: list[LoginClient]) -> bool:
        client = await self._endpoint().connect(_Factory())
        assert isinstance(client, LoginClient)
        sessions.append(client)
        await client.greeted
        capabilities = await client.getCapabilities()
        if self.tls == "starttls":
            if b"STARTTLS" not in capabilities:
                raise AuthBackendUnavailable("the IMAP server does not offer STARTTLS")
            await client.startTLS(self._tls_options)
        elif self.tls == "none" and b"LOGINDISABLED" in capabilities:
            raise AuthBackendUnavailable("the IMAP server refuses LOGIN without TLS (set imap_tls)")
        try:
            await client.login_command(username, password)
        except IMAP4Exception as exc:
            text = exc.args[0] if exc.args else b""
            if isinstance(text, str):
                text = text.encode("utf-8", "replace")
            if any(code in text.upper() for code in _UNAVAILABLE_CODES):
                raise AuthBackendUnavailable(
                    "the IMAP server cannot check passwords now: "
                    + text.decode("utf-8", "replace")
                ) from None
            return False
        try:
            await client.logout()
        except Exception:
            pass  # the answer is known; a failed LOGOUT changes nothing
        # The server said BYE: the connection is dropped (no need to wait for
        # a TLS close_notify) by settle() in authenticate().
        return True

    def _unavailable(self, failure: Failure, username: str) -> Failure:
        if failure.check(AuthBackendUnavailable):
            reason = str(failure.value)
        else:
            reason = f"{getattr(failure.type, '__name__', 'error')}: {failure.getErrorMessage()}"
        self.log.warn(
            "IMAP password check for {user} at {host}:{port} ({tls}) failed: {reason}",
            user=username, host=self.host, port=self.port, tls=self.tls, reason=reason,
        )
        return Failure(AuthBackendUnavailable(f"IMAP server {self.host}:{self.port}: {reason}"))

