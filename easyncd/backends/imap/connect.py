"""Opening a logged-in :class:`~easyncd.backends.imap.client.EASIMAPClient`.

:func:`connect_imap` connects (plain, ``STARTTLS`` or implicit TLS; the
certificate is verified by pyOpenSSL + service-identity through
``optionsForClientTLS`` against ``ca_file`` or the platform trust store),
logs in, learns the capabilities and ENABLEs CONDSTORE/QRESYNC when offered.

Failures: :class:`IMAPAuthError` when the server refuses the credentials
(``NO`` to LOGIN/AUTHENTICATE without a "try later" code),
:class:`IMAPConnectError` for everything else (refused connection, timeout,
TLS or certificate failure, no STARTTLS, ``NO [UNAVAILABLE]``...).

Dovecot master users: pass ``master_user="admin"`` and the master password
as ``password``; the login is ``AUTHENTICATE PLAIN`` with the user as
authorization identity and the master user as authentication identity (no
``auth_master_user_separator`` needed on the server; it needs a ``passdb``
with ``master = yes``).  Alternatively the caller may build the login name
itself (``"alice*admin"`` with ``auth_master_user_separator = *``) and call
without ``master_user``: that is a plain ``LOGIN``.

Passwords are never logged.
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, TimeoutError as DeferredTimeoutError
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, ConnectionClosed, ConnectionLost
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from easyncd.backends.tls import client_tls_options
from easyncd.backends.imap.client import EASIMAPClient, IMAPError

__all__ = ["IMAPConnectError", "IMAPAuthError", "connect_imap", "TLS_MODES"]

TLS_MODES = ("none", "starttls", "implicit")
#: Response codes (RFC 5530) of a refused login that mean "not now", not "wrong password".
_TEMPORARY_CODES = frozenset({"UNAVAILABLE", "SERVERBUG", "LIMIT", "INUSE", "CONTACTADMIN", "PRIVACYREQUIRED"})

log = Logger()


class IMAPConnectError(Exception):
    """The IMAP server could not be reached or used (network, TLS, protocol, "try later")."""


class IMAPAuthError(Exception):
    """The IMAP server refused the user name or password."""


class _ClientFactory(Factory):
    def __init__(self, make: Callable[[], EASIMAPClient]) -> None:
        self.make = make

    def buildProtocol(self, addr: Any) -> EASIMAPClient:
        client = self.make()
        client.factory = self
        return client


async def connect_imap(
    reactor: Any,
    host: str,
    port: int,
    tls: str,
    ca_file: str | None,
    username: str,
    password: str,
    *,
    timeout: float = 30,
    client_factory: Callable[[], EASIMAPClient] = EASIMAPClient,
    master_user: str | None = None,
    enable: tuple[str, ...] = ("CONDSTORE", "QRESYNC"),
) -> EASIMAPClient:
    """A connected, logged-in client with known capabilities and CONDSTORE/QRESYNC enabled if offered.

    ``tls`` is ``"none"``, ``"starttls"`` or ``"implicit"``.  ``timeout``
    bounds the whole setup (connect, TLS, login, ENABLE).
    """
    if tls not in TLS_MODES:
        raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
    options = client_tls_options(host, ca_file) if tls != "none" else None
    clients: list[EASIMAPClient] = []
    d: Deferred[EASIMAPClient] = Deferred.fromCoroutine(
        _setup(reactor, host, port, tls, options, username, password, timeout, client_factory,
               master_user, enable, clients)
    )
    d.addTimeout(timeout, reactor)

    def failed(failure: Failure) -> Failure:
        for client in clients:
            transport: Any = client.transport
            if transport is not None and not client.closed.called:
                try:
                    transport.abortConnection()
                except Exception:  # a TLS transport half torn down
                    log.failure("aborting the IMAP connection failed")
        if failure.check(IMAPAuthError, IMAPConnectError):
            return failure
        if failure.check(DeferredTimeoutError):
            error = IMAPConnectError(f"IMAP server {host}:{port}: no answer within {timeout}s")
        elif failure.check(ConnectError):
            error = IMAPConnectError(f"IMAP server {host}:{port}: cannot connect: {failure.getErrorMessage()}")
        elif failure.check(ConnectionClosed, ConnectionLost) or failure.check(Exception):
            reason = failure.getErrorMessage()
            if "certificate" in reason.lower() or "SSL" in reason or "tls" in reason.lower():
                reason = f"TLS failure (certificate not trusted or wrong host name?): {reason}"
            error = IMAPConnectError(f"IMAP server {host}:{port} ({tls}): {reason}")
        else:
            return failure
        log.warn("IMAP connection for {user} failed: {error}", user=username, error=str(error))
        return Failure(error)

    d.addErrback(failed)
    return await d


async def _setup(
    reactor: Any,
    host: str,
    port: int,
    tls: str,
    options: Any,
    username: str,
    password: str,
    timeout: float,
    client_factory: Callable[[], EASIMAPClient],
    master_user: str | None,
    enable: tuple[str, ...],
    clients: list[EASIMAPClient],
) -> EASIMAPClient:
    endpoint: Any = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if tls == "implicit":
        endpoint = wrapClientTLS(options, endpoint)
    client = await endpoint.connect(_ClientFactory(client_factory))
    assert isinstance(client, EASIMAPClient)
    clients.append(client)
    await client.greeted
    if not client.capabilities_set:
        await client.capability()
    if tls == "starttls":
        if not client.has_capability("STARTTLS"):
            raise IMAPConnectError(f"IMAP server {host}:{port} does not offer STARTTLS")
        await client.starttls(options)
    if client.state == "unauth":
        if client.has_capability("LOGINDISABLED") and master_user is None:
            raise IMAPConnectError(f"IMAP server {host}:{port} refuses LOGIN without TLS")
        try:
            if master_user is not None:
                await client.authenticate_plain(username, master_user, password)
            else:
                await client.login_plain(username, password)
        except IMAPError as exc:
            if exc.code in _TEMPORARY_CODES or exc.status != "NO":
                raise IMAPConnectError(f"IMAP server {host}:{port} cannot log in now: {exc}") from None
            raise IMAPAuthError(f"IMAP login refused for {username}: {exc.response}") from None
    wanted = [cap for cap in enable if client.has_capability(cap)]
    if wanted and client.has_capability("ENABLE"):
        await client.enable(*wanted)
    return client
