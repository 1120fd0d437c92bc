"""Password checking by IMAP LOGIN: the device password is the mail password.

:class:`ImapLoginChecker` logs in to the configured IMAP server through
:func:`~easyncd.backends.imap.connect.connect_imap` (plain, ``STARTTLS`` or
implicit TLS; the certificate is verified against ``[auth] imap_ca_file`` or
the platform trust store) and logs out again.  A successful login means the
password is right; a plain ``NO`` means it is wrong.  Anything else (refused
connection, TLS failure, timeout, ``NO [UNAVAILABLE]``) is an
:class:`~easyncd.backends.interfaces.AuthBackendUnavailable`, which the HTTP
layer answers with 503 rather than 401.  Passwords are never logged.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from easyncd.backends.imap.connect import IMAPAuthError, IMAPConnectError, connect_imap
from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator

TLS_MODES = ("none", "starttls", "implicit")
#: Seconds allowed for connecting, TLS and LOGIN together.
EXCHANGE_TIMEOUT = 30.0


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
        timeout: float = EXCHANGE_TIMEOUT,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"imap_tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        self._reactor = reactor
        self.host = host
        self.port = port
        self.tls = tls
        self.ca_file = ca_file
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: Any, reactor: Any) -> "ImapLoginChecker":
        """Build from ``[auth] imap_host, imap_port, imap_tls, imap_ca_file``."""
        auth = config.auth
        return cls(reactor, auth.imap_host, auth.imap_port, auth.imap_tls, auth.imap_ca_file or None)

    def authenticate(self, username: str, password: str) -> "Deferred[bool]":
        """Fires with whether LOGIN succeeded; :class:`AuthBackendUnavailable` if no answer."""
        if "\x00" in username or "\x00" in password or "\r" in password or "\n" in password:
            # No IMAP string can carry these: such a password is wrong.
            return succeed(False)
        d: Deferred[bool] = Deferred.fromCoroutine(self._check(username, password))
        return d.addErrback(self._unavailable, username)

    async def _check(self, username: str, password: str) -> bool:
        try:
            client = await connect_imap(
                self._reactor, self.host, self.port, self.tls, self.ca_file, username, password,
                timeout=self.timeout, enable=(),
            )
        except IMAPAuthError:
            return False
        await client.logout_quietly()
        return True

    def _unavailable(self, failure: Failure, username: str) -> Failure:
        if failure.check(IMAPConnectError, AuthBackendUnavailable):
            reason = str(failure.value)
        else:
            reason = f"{getattr(failure.type, '__name__', 'error')}: {failure.getErrorMessage()}"
        self.log.warn(
            "IMAP password check for {user} at {host}:{port} ({tls}) failed: {reason}",
            user=username, host=self.host, port=self.port, tls=self.tls, reason=reason,
        )
        return Failure(AuthBackendUnavailable(f"IMAP server {self.host}:{self.port}: {reason}"))
