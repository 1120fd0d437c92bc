"""HTTP Basic authentication of device requests.

EAS devices send ``Authorization: Basic ...`` on every request, so
:class:`Authenticator` keeps a short-lived cache of verified credentials:
entries are keyed by HMAC-SHA256 (with a random per-process key) of the
account and password, never the password itself, so a device's next
requests cost neither a password hash nor an IMAP login.  Failed attempts
are slowed down per (client address, account): the answer is delayed by
``[auth] failure_delay`` seconds, doubling with each further failure up to
``[auth] max_failure_delay``; a success forgets the failures.

:class:`Unauthorized` becomes a 401 with :data:`CHALLENGE`;
:class:`AuthUnavailable` (the password backend could not be asked) a 503.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import Any, Sequence

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator

REALM = "easyncd"
#: The WWW-Authenticate value sent with a 401.
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'.encode("ascii")
#: Most verified credentials remembered at once.
MAX_CACHE_ENTRIES = 10_000
#: Most (address, account) pairs whose failures are remembered at once.
MAX_FAILURE_ENTRIES = 10_000
#: Seconds after the last failure when a pair's failures are forgotten.
FAILURE_MEMORY = 900.0

log = Logger()


class Unauthorized(Exception):
    """No valid credentials: answer 401 with ``WWW-Authenticate: Basic realm=...``."""

    challenge = CHALLENGE


class AuthUnavailable(Exception):
    """The password backend could not give an answer: answer 503."""


def parse_basic(authorization: bytes | None) -> tuple[str, str]:
    """The (user, password) of a Basic ``Authorization`` header value.

    Raises :class:`Unauthorized` when it is missing, not Basic, not base64,
    has no colon or is not UTF-8.
    """
    if not authorization:
        raise Unauthorized("no Authorization header")
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        raise Unauthorized("not Basic authorization")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("bad base64 in Basic authorization") from None
    user, colon, password = decoded.partition(b":")
    if not colon:
        raise Unauthorized("no colon in Basic credentials")
    try:
        return user.decode("utf-8"), password.decode("utf-8")
    except UnicodeDecodeError:
        raise Unauthorized("Basic credentials are not UTF-8") from None


def map_username(sent: str, config: Any) -> str:
    """The account name for the user name a device sent (``[auth] username_map``).

    ``as_is`` keeps it; ``strip_domain`` turns ``DOMAIN\\user`` into ``user``;
    ``local_part`` also turns ``user@domain`` into ``user``; ``email`` turns
    ``DOMAIN\\user`` and ``user`` into ``user@<default_domain>``.  With
    ``lowercase`` the result is lower-cased.
    """
    auth = config.auth
    mode = auth.username_map
    name = sent.strip()
    if mode != "as_is":
        if "\\" in name:
            name = name.rsplit("\\", 1)[1]
        if mode == "local_part" and "@" in name:
            name = name.rsplit("@", 1)[0]
        elif mode == "email" and "@" not in name and name:
            name = f"{name}@{auth.default_domain}"
    if auth.lowercase:
        name = name.lower()
    return name


def build_checkers(config: Any, reactor: Any) -> list[Any]:
    """The :class:`IAuthenticator` providers named by ``[auth] checkers``, in order."""
    checkers: list[Any] = []
    for name in config.auth.checkers:
        if name == "users_file":
            from easyncd.backends.users_file import UsersFile, UsersFileChecker

            checkers.append(UsersFileChecker(UsersFile(config.users_file), reactor))
        elif name == "imap":
            from easyncd.backends.imap.login import ImapLoginChecker

            checkers.append(ImapLoginChecker.from_config(config, reactor))
        else:
            raise ValueError(f"unknown checker {name!r}")
    return checkers


class CredentialCache:
    """Verified credentials by keyed hash, each valid for ``ttl`` seconds; LRU-bounded."""

    def __init__(self, clock: Any, ttl: float, max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self._clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def key(self, account: str, password: str) -> bytes:
        """HMAC-SHA256 of (account, password) under the per-process key."""
        message = account.encode("utf-8") + b"\x00" + password.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __contains__(self, key: bytes) -> bool:
        expires = self._entries.get(key)
        if expires is None:
            return False
        if expires <= self._clock.seconds():
            del self._entries[key]
            return False
        self._entries.move_to_end(key)
        return True

    def add(self, key: bytes) -> None:
        """Remember ``key`` as verified for ``ttl`` seconds from now."""
        if self.ttl <= 0:
            return
        self._entries[key] = self._clock.seconds() + self.ttl
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: bytes) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[bytes]:
        """The stored keys (for tests and debugging)."""
        return list(self._entries)


class FailureThrottle:
    """Per (address, account) delays that double with each failure; bounded."""

    def __init__(
        self,
        clock: Any,
        initial: float,
        maximum: float,
        *,
        memory: float = FAILURE_MEMORY,
        max_entries: int = MAX_FAILURE_ENTRIES,
    ) -> None:
        self._clock = clock
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.memory = memory
        self.max_entries = max_entries
        # (address, account) -> (failures so far, time of the last one)
        self._entries: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def failed(self, address: str, account: str) -> float:
        """Record a failure; the seconds to wait before answering it."""
        now = self._clock.seconds()
        key = (address, account)
        count, last = self._entries.pop(key, (0, now))
        if now - last > self.memory:
            count = 0
        count += 1
        self._entries[key] = (count, now)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        if self.initial <= 0:
            return 0.0
        return float(min(self.initial * 2 ** min(count - 1, 32), self.maximum))

    def succeeded(self, address: str, account: str) -> None:
        """Forget the failures of (address, account)."""
        self._entries.pop((address, account), None)

    def __len__(self) -> int:
        return len(self._entries)


class Authenticator:
    """What the HTTP resource calls to authenticate a request.

    Passwords are checked through a twisted.cred :class:`Portal` whose one
    checker, :class:`CheckerChain`, asks the password backends
    (:class:`~easyncd.backends.interfaces.IAuthenticator` providers, built
    from ``[auth] checkers`` unless given) in order.  If none accepts and one
    could not answer, the result is :class:`AuthUnavailable`.
    """

    def __init__(self, config: Any, reactor: Any, *, checkers: Sequence[Any] | None = None) -> None:
        self._config = config
        self._clock = reactor
        self.checkers: list[Any] = (
            list(checkers) if checkers is not None else build_checkers(config, reactor)
        )
        for checker in self.checkers:
            if not IAuthenticator.providedBy(checker):
                raise TypeError(f"{checker!r} does not provide IAuthenticator")
        auth = config.auth
        self.cache = CredentialCache(reactor, auth.cache_ttl)
        self.throttle = FailureThrottle(reactor, auth.failure_delay, auth.max_failure_delay)
        self.portal = Portal(EASRealm(), [CheckerChain(self.checkers)])
        # Checks under way, by cache key: concurrent identical requests share one.
        self._pending: dict[bytes, list[Deferred[bool]]] = {}

    def authenticate(self, authorization: bytes | None, client_address: str) -> "Deferred[str]":
        """Fires with the account name, or fails with :class:`Unauthorized` / :class:`AuthUnavailable`."""
        try:
            sent, password = parse_basic(authorization)
        except Unauthorized as exc:
            return fail(exc)
        account = map_username(sent, self._config)
        if not account or not password:
            return self._refuse(client_address, account or sent, "empty user name or password")
        key = self.cache.key(account, password)
        if key in self.cache:
            self.throttle.succeeded(client_address, account)
            return succeed(account)
        d = self._check_shared(key, account, password)

        def checked(ok: bool) -> Any:
            if ok:
                self.cache.add(key)
                self.throttle.succeeded(client_address, account)
                log.debug("authenticated {user} from {address}", user=account, address=client_address)
                return account
            return self._refuse(client_address, account, "bad user name or password")

        def unavailable(failure: Failure) -> Failure:
            failure.trap(AuthBackendUnavailable)
            log.warn(
                "cannot authenticate {user} from {address}: {reason}",
                user=account, address=client_address, reason=str(failure.value),
            )
            return Failure(AuthUnavailable(str(failure.value)))

        return d.addCallbacks(checked, unavailable)

    def _refuse(self, address: str, account: str, reason: str) -> "Deferred[Any]":
        delay = self.throttle.failed(address, account)
        log.info(
            "authentication failed for {user} from {address}: {reason} (answer delayed {delay}s)",
            user=account, address=address, reason=reason, delay=delay,
        )

        def refuse() -> None:
            raise Unauthorized(reason)

        return deferLater(self._clock, delay, refuse)

    def _check_shared(self, key: bytes, account: str, password: str) -> "Deferred[bool]":
        waiters = self._pending.get(key)
        mine: Deferred[bool] = Deferred()
        if waiters is not None:
            waiters.append(mine)
            return mine
        self._pending[key] = waiters = [mine]

        def done(result: Any) -> None:
            del self._pending[key]
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)

        self._check(account, password).addBoth(done)
        return mine

    def _check(self, account: str, password: str) -> "Deferred[bool]":
        """Log in through the twisted.cred portal; fires True, False or fails
        with AuthBackendUnavailable."""
        credentials = UsernamePassword(account.encode("utf-8"), password.encode("utf-8"))
        d = self.portal.login(credentials, None, IEASAccount)

        def accepted(result: tuple[Any, Any, Any]) -> bool:
            return True

        def refused(failure: Failure) -> bool:
            failure.trap(UnauthorizedLogin)
            return False

        return d.addCallbacks(accepted, refused)


class IEASAccount(Interface):
    """The avatar of an authenticated EAS user."""

    name = Attribute("The account name (after the [auth] username_map).")


@implementer(IEASAccount)
class EASAccount:
    """An authenticated account."""

    def __init__(self, name: str) -> None:
        self.name = name


@implementer(IRealm)
class EASRealm:
    """Gives every authenticated avatar id an :class:`EASAccount`."""

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Any]:  # noqa: N802,N803
        """twisted.cred hook."""
        if IEASAccount not in interfaces:
            raise TypeError("easyncd only offers IEASAccount avatars")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        return IEASAccount, EASAccount(name), lambda: None


@implementer(ICredentialsChecker)
class CheckerChain:
    """One twisted.cred checker over the configured password backends
    (:class:`~easyncd.backends.interfaces.IAuthenticator` providers), tried in
    order: the first that accepts wins.  If none accepts and one could not
    answer, the login fails with AuthBackendUnavailable (an unknown answer is
    not a wrong password)."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, authenticators: Sequence[Any]) -> None:
        self.authenticators = list(authenticators)

    def requestAvatarId(self, credentials: Any) -> "Deferred[bytes | tuple[()]]":  # noqa: N802
        """twisted.cred hook: the account name (UTF-8), or UnauthorizedLogin."""
        try:
            account = credentials.username.decode("utf-8")
            password = credentials.password.decode("utf-8")
        except UnicodeDecodeError:
            return fail(UnauthorizedLogin("the credentials are not UTF-8"))

        async def run() -> bytes | tuple[()]:
            problem: AuthBackendUnavailable | None = None
            for checker in self.authenticators:
                try:
                    ok = await checker.authenticate(account, password)
                except AuthBackendUnavailable as exc:
                    problem = exc
                    continue
                except Exception as exc:  # a checker bug or unreadable users file
                    log.failure("password checker {checker} failed", checker=type(checker).__name__)
                    problem = AuthBackendUnavailable(f"{type(checker).__name__}: {type(exc).__name__}")
                    continue
                if ok:
                    return credentials.username  # type: ignore[no-any-return]
            if problem is not None:
                raise problem
            raise UnauthorizedLogin("bad user name or password")

        return Deferred.fromCoroutine(run())
