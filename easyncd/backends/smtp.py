"""Outgoing mail: one SMTP transaction per message, through Twisted's ESMTP client.

:class:`SMTPSender` connects to the configured server (plain, ``STARTTLS``
required, or implicit TLS; the certificate is verified with
``optionsForClientTLS`` against ``[smtp] ca_file`` or the platform trust
store), authenticates when configured (``AUTH PLAIN`` or ``LOGIN`` with the
user's own EAS credentials, or ``PLAIN`` as a Dovecot master user on the
user's behalf), then sends ``MAIL FROM`` / ``RCPT TO`` / ``DATA``.

The message counts as sent only when the server answers the end of ``DATA``
with 250.  Every other outcome is a failure of the returned Deferred with one
of:

* :class:`SMTPRejected` -- the server refused the sender, a recipient, or the
  message (``permanent`` for 5xx, temporary for 4xx).  If *any* recipient is
  refused, nothing is sent (``RSET``, no ``DATA``): the device is told, rather
  than some recipients silently missing the mail.
* :class:`SMTPAuthFailed` -- ``AUTH`` was answered 535 (wrong credentials).
* :class:`SMTPUnavailable` -- no connection, TLS failure (including a server
  that does not offer ``STARTTLS`` when it is required), a timeout, a dropped
  connection, a 421, or a temporary ``AUTH`` failure.

Passwords never reach a log.
"""
from __future__ import annotations

import base64
import re
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.mail.smtp import ESMTPClient, SMTPClientError, SMTPTimeoutError
from twisted.python.failure import Failure

from easyncd.backends.tls import client_tls_options

TLS_MODES = ("none", "starttls", "implicit")
AUTH_MODES = ("none", "user", "master")
#: Seconds allowed for the TCP connection.
CONNECT_TIMEOUT = 10.0
#: Seconds allowed between two server replies.
REPLY_TIMEOUT = 60.0
#: Seconds allowed for the whole transaction (large messages need time).
SEND_TIMEOUT = 300.0

_ADDRESS_FORBIDDEN = re.compile(r"[\x00-\x20<>\x7f]")


class SMTPSendError(Exception):
    """Base of the errors of :meth:`SMTPSender.send`: the message was NOT sent."""


class SMTPRejected(SMTPSendError):
    """The server refused the sender, a recipient or the message.

    ``permanent`` is true for a 5xx reply (retrying will not help), false for
    4xx.  ``recipients`` lists the refused recipients (empty when the sender
    or the message was refused).
    """

    def __init__(self, permanent: bool, code: int, text: str,
                 recipients: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code} {text}" + (f" ({', '.join(recipients)})" if recipients else ""))
        self.permanent = permanent
        self.code = code
        self.text = text
        self.recipients = recipients


class SMTPUnavailable(SMTPSendError):
    """The server could not be reached or used: connection, TLS, timeout, 421."""


class SMTPAuthFailed(SMTPSendError):
    """The server refused the credentials (535)."""


def _text(resp: Any) -> str:
    if isinstance(resp, bytes):
        return resp.decode("utf-8", "replace")
    return "" if resp is None else str(resp)


def _check_address(address: str) -> bytes:
    """``address`` as the bytes inside ``<...>``; ValueError for what SMTP cannot carry."""
    if _ADDRESS_FORBIDDEN.search(address):
        raise ValueError(f"not a valid SMTP address: {address!r}")
    return address.encode("utf-8")


def dot_stuff(message: bytes) -> bytes:
    """The ``DATA`` payload: CRLF line ends, leading dots doubled, ending in CRLF.

    Does not include the terminating ``.`` line.
    """
    lines = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


class _SendProtocol(ESMTPClient):
    """Sends one message; reports the outcome through ``self.result``.

    Reuses :class:`ESMTPClient` for the greeting, ``EHLO`` and ``STARTTLS``;
    authentication, the envelope, ``DATA`` and every error are handled here.
    """

    def __init__(self, *, identity: bytes, context: Any, require_tls: bool,
                 credentials: tuple[bytes, bytes, bytes] | None,
                 sender: bytes, recipients: list[bytes], data: bytes,
                 eight_bit: bool, timeout: float) -> None:
        super().__init__(b"", context, identity)
        self.heloFallback = not require_tls and credentials is None
        self.requireTransportSecurity = require_tls
        self.requireAuthentication = credentials is not None
        self.timeout = timeout  # type: ignore[assignment]
        self._credentials = credentials
        self._sender = sender
        self._recipients = recipients
        self._data = data
        self._eight_bit = eight_bit
        self._extensions: dict[bytes, bytes | None] = {}
        self._refused: list[tuple[str, int, str]] = []
        self._pending: list[bytes] = []
        self._current: bytes | None = None
        self.result: Deferred[None] = Deferred()

    # -- outcome ------------------------------------------------------------------

    def _finish(self, error: SMTPSendError | None) -> None:
        if self.result.called:
            return
        if error is None:
            self.result.callback(None)
        else:
            self.result.errback(Failure(error))

    def _quit(self, error: SMTPSendError | None) -> None:
        """Report ``error`` (or success), then say QUIT and close."""
        self._finish(error)
        self._disconnectFromServer()

    def sendError(self, exc: Any) -> None:
        """Twisted hook: a protocol-level failure (timeout, TLS, EHLO, bad reply)."""
        if isinstance(exc, SMTPSendError):
            self._quit(exc)
            return
        if isinstance(exc, SMTPTimeoutError):
            error = SMTPUnavailable("the SMTP server did not answer in time")
        elif isinstance(exc, SMTPClientError):
            error = SMTPUnavailable(f"SMTP: {exc.code} {_text(exc.resp)}")
        else:
            error = SMTPUnavailable(f"SMTP: {exc}")
        self._finish(error)
        if self.transport is not None:
            if isinstance(exc, SMTPClientError) and not exc.isFatal:
                self._disconnectFromServer()
            else:
                self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        """Twisted hook: a connection lost before the final 250 means not sent."""
        super().connectionLost(reason)
        self._finish(SMTPUnavailable(
            f"connection to the SMTP server lost: {reason.getErrorMessage()}"
        ))

    def smtpConnectionFailed(self, code: int, resp: bytes) -> None:
        """Twisted hook: the greeting was not 220."""
        self.sendError(SMTPUnavailable(f"SMTP greeting: {code} {_text(resp)}"))

    # -- EHLO, TLS, AUTH --------------------------------------------------------------

    def esmtpState_serverConfig(self, code: int, resp: bytes) -> None:
        """Twisted hook: remember the extensions of the (latest) EHLO reply."""
        self._extensions = {}
        for line in resp.splitlines():
            parts = line.split(None, 1)
            if parts:
                self._extensions[parts[0].upper()] = parts[1] if len(parts) > 1 else None
        super().esmtpState_serverConfig(code, resp)

    def authenticate(self, code: int, resp: bytes, items: Any) -> None:
        """Twisted hook: AUTH PLAIN (preferred) or LOGIN, or go straight to MAIL."""
        if self._credentials is None:
            self.smtpState_from(code, resp)
            return
        mechanisms = (self._extensions.get(b"AUTH") or b"").upper().split()
        authzid, authcid, password = self._credentials
        if b"PLAIN" in mechanisms:
            token = base64.b64encode(authzid + b"\0" + authcid + b"\0" + password)
            self._expect([235], self._authenticated, self._auth_failed)
            self.sendLine(b"AUTH PLAIN " + token)
        elif b"LOGIN" in mechanisms and not authzid:
            self._expect([334], self._login_user, self._auth_failed)
            self.sendLine(b"AUTH LOGIN")
        else:
            self.sendError(SMTPUnavailable(
                "the SMTP server offers no usable AUTH mechanism (PLAIN"
                + (")" if authzid else " or LOGIN)")
                + (" over this connection" if not self._tlsMode else "")
            ))

    def _expect(self, codes: list[int], ok: Callable[[int, bytes], Any],
                fail: Callable[[int, bytes], Any]) -> None:
        self._expected = codes
        self._okresponse = ok
        self._failresponse = fail

    def _login_user(self, code: int, resp: bytes) -> None:
        assert self._credentials is not None
        self._expect([334], self._login_password, self._auth_failed)
        self.sendLine(base64.b64encode(self._credentials[1]))

    def _login_password(self, code: int, resp: bytes) -> None:
        assert self._credentials is not None
        self._expect([235], self._authenticated, self._auth_failed)
        self.sendLine(base64.b64encode(self._credentials[2]))

    def _auth_failed(self, code: int, resp: bytes) -> None:
        if code == 535 or (500 <= code < 600 and code not in (500, 502, 504, 530, 538)):
            self._quit(SMTPAuthFailed(f"SMTP AUTH refused: {code} {_text(resp)}"))
        else:
            self._quit(SMTPUnavailable(f"SMTP AUTH failed: {code} {_text(resp)}"))

    def _authenticated(self, code: int, resp: bytes) -> None:
        self.smtpState_from(code, resp)

    # -- the transaction -----------------------------------------------------------

    def smtpState_from(self, code: int, resp: bytes) -> None:
        """Twisted hook: send MAIL FROM with BODY=8BITMIME / SMTPUTF8 as needed."""
        line = b"MAIL FROM:<" + self._sender + b">"
        if self._eight_bit and b"8BITMIME" in self._extensions:
            line += b" BODY=8BITMIME"
        needs_utf8 = any(byte >= 0x80 for byte in self._sender) or any(
            byte >= 0x80 for address in self._recipients for byte in address
        )
        if needs_utf8:
            if b"SMTPUTF8" not in self._extensions:
                self._quit(SMTPRejected(True, 553, "the SMTP server cannot take non-ASCII addresses"))
                return
            line += b" SMTPUTF8"
        self._expect([250], self._rcpt_next, self._sender_refused)
        self._pending = list(self._recipients)
        self._current = None
        self.sendLine(line)

    def _sender_refused(self, code: int, resp: bytes) -> None:
        self._refusal(code, resp)

    def _refusal(self, code: int, resp: bytes, recipients: tuple[str, ...] = ()) -> None:
        if code == 421:
            self._finish(SMTPUnavailable(f"SMTP server closing: {_text(resp)}"))
            if self.transport is not None:
                self.transport.loseConnection()
            return
        self._quit(SMTPRejected(code >= 500, code, _text(resp), recipients))

    def _rcpt_next(self, code: int, resp: bytes) -> None:
        if self._current is not None:
            if not 200 <= code < 300:
                if code == 421:
                    self._refusal(code, resp)
                    return
                self._refused.append((self._current.decode("utf-8", "replace"), code, _text(resp)))
        if self._pending:
            self._current = self._pending.pop(0)
            self._expect(list(range(0, 1000)), self._rcpt_next, self._rcpt_next)
            self.sendLine(b"RCPT TO:<" + self._current + b">")
            return
        if self._refused:
            # Refuse the whole message rather than send it to only some.
            permanent = any(c >= 500 for _, c, _ in self._refused)
            worst = max(self._refused, key=lambda item: (item[1] >= 500, item[1]))
            self._quit(SMTPRejected(
                permanent, worst[1], worst[2], tuple(address for address, _, _ in self._refused)
            ))
            return
        self._expect([354], self._send_data, self._refusal)
        self.sendLine(b"DATA")

    def _send_data(self, code: int, resp: bytes) -> None:
        assert self.transport is not None
        self._expect([250], self._sent, self._refusal)
        self.resetTimeout()
        self.transport.write(self._data + b".\r\n")

    def _sent(self, code: int, resp: bytes) -> None:
        self._quit(None)

    def smtpState_disconnect(self, code: int, resp: bytes) -> None:
        """Twisted hook: after QUIT, close."""
        if self.transport is not None:
            self.transport.loseConnection()


class SMTPSender:
    """Sends messages through one configured SMTP server."""

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        tls: str = "starttls",
        ca_file: str | None = None,
        auth: str = "user",
        *,
        master_user: str = "",
        master_password: str = "",
        helo_name: str = "localhost",
        connect_timeout: float = CONNECT_TIMEOUT,
        reply_timeout: float = REPLY_TIMEOUT,
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"smtp tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        if auth not in AUTH_MODES:
            raise ValueError(f"smtp auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        if auth == "master" and not (master_user and master_password):
            raise ValueError("smtp auth = master needs master_user and master_password")
        self._reactor = reactor
        self.host = host
        self.port = port
        self.tls = tls
        self.auth = auth
        self._master = (master_user.encode("utf-8"), master_password.encode("utf-8"))
        self.helo_name = helo_name
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.timeout = timeout
        self._tls_options: Any = (
            client_tls_options(host, ca_file)
            if tls != "none" else None
        )

    @classmethod
    def from_config(cls, config: Any, reactor: Any) -> "SMTPSender":
        """Build from the ``[smtp]`` section."""
        smtp = config.smtp
        return cls(
            reactor, smtp.host, smtp.port, smtp.tls, smtp.ca_file or None, smtp.auth,
            master_user=getattr(smtp, "master_user", ""),
            master_password=getattr(smtp, "master_password", ""),
            helo_name=getattr(smtp, "helo_name", "") or "localhost",
            timeout=getattr(smtp, "timeout", SEND_TIMEOUT),
        )

    def _endpoint(self) -> Any:
        endpoint: Any = HostnameEndpoint(
            self._reactor, self.host, self.port, timeout=self.connect_timeout
        )
        if self.tls == "implicit":
            endpoint = wrapClientTLS(self._tls_options, endpoint)
        return endpoint

    def _credentials(self, username: str | None,
                     password: str | None) -> tuple[bytes, bytes, bytes] | None:
        if self.auth == "none":
            return None
        if not username:
            raise ValueError("SMTP authentication is configured: a user name is needed")
        user = username.encode("utf-8")
        if self.auth == "master":
            return user, self._master[0], self._master[1]
        if password is None:
            raise ValueError("SMTP authentication is configured: a password is needed")
        return b"", user, password.encode("utf-8")

    def send(self, sender: str, recipients: list[str], message: bytes, *,
             username: str | None = None, password: str | None = None) -> "Deferred[None]":
        """Send ``message`` from ``sender`` (envelope) to ``recipients``.

        Fires with ``None`` once the server accepted the message (250 after
        ``DATA``); fails with :class:`SMTPRejected`, :class:`SMTPAuthFailed` or
        :class:`SMTPUnavailable` otherwise (the message was then not sent).
        ``username`` / ``password`` are the EAS user's (``auth = user``) or
        just the user name (``auth = master``).  Raises ``ValueError`` at
        once for an envelope that SMTP cannot carry.
        """
        if not recipients:
            raise ValueError("no recipients")
        envelope_sender = _check_address(sender) if sender else b""
        envelope_recipients = [_check_address(address) for address in recipients]
        credentials = self._credentials(username, password)
        data = dot_stuff(message)
        protocols: list[_SendProtocol] = []

        def build() -> _SendProtocol:
            protocol = _SendProtocol(
                identity=self.helo_name.encode("idna"),
                context=self._tls_options if self.tls == "starttls" else None,
                require_tls=self.tls == "starttls",
                credentials=credentials,
                sender=envelope_sender, recipients=envelope_recipients, data=data,
                eight_bit=any(byte >= 0x80 for byte in data),
                timeout=self.reply_timeout,
            )
            protocols.append(protocol)
            return protocol

        async def exchange() -> None:
            await self._endpoint().connect(Factory.forProtocol(build))  # type: ignore[arg-type]
            await protocols[0].result

        d: Deferred[None] = Deferred.fromCoroutine(exchange())
        d.addTimeout(self.timeout, self._reactor)
        d.addErrback(self._failed, sender, len(recipients), protocols)
        d.addCallback(self._sent, sender, len(recipients), len(message))
        return d

    def _sent(self, result: None, sender: str, count: int, size: int) -> None:
        self.log.info(
            "SMTP accepted a message from {sender} to {count} recipient(s), {size} bytes",
            sender=sender, count=count, size=size,
        )

    def _failed(self, failure: Failure, sender: str, count: int,
                protocols: list[_SendProtocol]) -> Failure:
        for protocol in protocols:
            if protocol.transport is not None and protocol.connected:
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
        if failure.check(SMTPSendError):
            error = failure.value
        else:
            error = SMTPUnavailable(
                f"SMTP server {self.host}:{self.port}: "
                f"{getattr(failure.type, '__name__', 'error')}: {failure.getErrorMessage()}"
            )
        self.log.warn(
            "SMTP send from {sender} to {count} recipient(s) via {host}:{port} ({tls}) "
            "failed: {error}",
            sender=sender, count=count, host=self.host, port=self.port, tls=self.tls,
            error=f"{type(error).__name__}: {error}",
        )
        return Failure(error)

