"""The local users file: one ``name:hash`` line per account.

Hashes are salted scrypt (stdlib :func:`hashlib.scrypt`) in a modular-crypt
style string::

    $scrypt$ln=15,r=8,p=1$<base64 salt>$<base64 hash>

Lines starting with ``#`` and blank lines are comments and are kept when the
file is rewritten.  Writes go to a temporary file in the same directory
(mode 0600) that then replaces the old one, so a reader never sees half a
file.  :class:`UsersFileChecker` exposes the file to ``twisted.cred`` and to
:class:`~easyncd.backends.interfaces.IAuthenticator`, hashing in a thread.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from easyncd.backends.interfaces import AuthBackendUnavailable, IAuthenticator

#: scrypt cost parameters for new hashes: N = 2**15, r = 8, p = 1 (32 MiB, ~0.1 s).
DEFAULT_LOG_N = 15
DEFAULT_R = 8
DEFAULT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_PREFIX = "$scrypt$"


class UsersFileError(Exception):
    """A users file operation failed (bad name, bad password, unreadable file)."""


class UserExists(UsersFileError):
    """The user is already in the file."""


class NoSuchUser(UsersFileError):
    """The user is not in the file."""


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True)
class ScryptHash:
    """A parsed ``$scrypt$...`` hash string."""

    log_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> "ScryptHash":
        """Parse a hash string; :class:`ValueError` if it is not one."""
        if not text.startswith(_PREFIX):
            raise ValueError("not a $scrypt$ hash")
        fields = text[len(_PREFIX):].split("$")
        if len(fields) != 3:
            raise ValueError("expected parameters, salt and hash")
        params: dict[str, int] = {}
        for item in fields[0].split(","):
            key, sep, value = item.partition("=")
            if not sep or key not in ("ln", "r", "p") or not value.isdigit():
                raise ValueError(f"bad parameter {item!r}")
            params[key] = int(value)
        if set(params) != {"ln", "r", "p"}:
            raise ValueError("expected ln, r and p")
        if not 1 <= params["ln"] <= 24 or not 1 <= params["r"] <= 64 or not 1 <= params["p"] <= 16:
            raise ValueError("scrypt parameters out of range")
        try:
            salt, digest = _b64decode(fields[1]), _b64decode(fields[2])
        except ValueError:
            raise ValueError("bad base64 in salt or hash") from None
        if not salt or not digest:
            raise ValueError("empty salt or hash")
        return cls(params["ln"], params["r"], params["p"], salt, digest)

    def format(self) -> str:
        """The hash as a string."""
        return (
            f"{_PREFIX}ln={self.log_n},r={self.r},p={self.p}"
            f"${_b64encode(self.salt)}${_b64encode(self.digest)}"
        )

    def compute(self, password: str) -> bytes:
        """scrypt of ``password`` with this hash's salt and parameters."""
        return _scrypt(password, self.salt, self.log_n, self.r, self.p, len(self.digest))

    def matches(self, password: str) -> bool:
        """Whether ``password`` hashes to this digest (constant-time compare)."""
        return hmac.compare_digest(self.compute(password), self.digest)


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int, length: int) -> bytes:
    n = 1 << log_n
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def hash_password(password: str, *, log_n: int = DEFAULT_LOG_N) -> str:
    """A new salted ``$scrypt$`` hash of ``password``."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, log_n, DEFAULT_R, DEFAULT_P, _HASH_BYTES)
    return ScryptHash(log_n, DEFAULT_R, DEFAULT_P, salt, digest).format()


def check_name(name: str) -> None:
    """Raise :class:`UsersFileError` unless ``name`` can be a users file entry."""
    if not name:
        raise UsersFileError("the user name is empty")
    if ":" in name:
        raise UsersFileError(f"the user name {name!r} contains ':'")
    if any(ch.isspace() for ch in name) or not name.isprintable():
        raise UsersFileError(f"the user name {name!r} contains white space or control characters")
    if name.startswith("#"):
        raise UsersFileError(f"the user name {name!r} starts with '#'")


def _check_password(password: str) -> None:
    if not password:
        raise UsersFileError("the password is empty")


class UsersFile:
    """A users file at ``path``; safe to use from several threads.

    ``log_n`` sets the scrypt cost of hashes written from now on (the tests
    use a cheap one); existing hashes keep their own parameters.
    """

    def __init__(self, path: str, *, log_n: int = DEFAULT_LOG_N) -> None:
        self.path = path
        self._log_n = log_n
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, str] = {}
        # A hash to spend the same time on for unknown users (made when first needed).
        self._dummy: ScryptHash | None = None

    # reading -----------------------------------------------------------------

    def _read_lines(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read().splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersFileError(f"{self.path}: cannot read: {exc}") from None

    @staticmethod
    def _parse(lines: list[str]) -> dict[str, str]:
        entries: dict[str, str] = {}
        for line in lines:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            name, sep, hashed = text.partition(":")
            if sep and name:
                entries[name] = hashed
        return entries

    def _current(self) -> dict[str, str]:
        """The entries, re-read when the file's mtime, size or inode changed."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            raise UsersFileError(f"{self.path}: cannot read: {exc}") from None
        with self._lock:
            if stamp is None:
                self._stamp, self._entries = None, {}
            elif stamp != self._stamp:
                self._entries = self._parse(self._read_lines())
                self._stamp = stamp
            return self._entries

    def users(self) -> list[str]:
        """The user names, sorted; a missing file has none."""
        return sorted(self._current())

    def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is ``name``'s password.  CPU-heavy: call it in a thread."""
        hashed = self._current().get(name)
        parsed: ScryptHash | None = None
        if hashed is not None:
            try:
                parsed = ScryptHash.parse(hashed)
            except ValueError:
                parsed = None
        if parsed is None:
            # Spend the same time whether or not the user exists.
            if self._dummy is None:
                self._dummy = ScryptHash.parse(hash_password(secrets.token_hex(8), log_n=self._log_n))
            self._dummy.matches(password)
            return False
        return parsed.matches(password)

    # writing -----------------------------------------------------------------

    def add(self, name: str, password: str) -> None:
        """Add ``name``; :class:`UserExists` if present."""
        check_name(name)
        _check_password(password)
        hashed = hash_password(password, log_n=self._log_n)
        with self._lock:
            lines = self._read_lines()
            if name in self._parse(lines):
                raise UserExists(f"user {name!r} already exists")
            lines.append(f"{name}:{hashed}")
            self._write(lines)

    def set_password(self, name: str, password: str) -> None:
        """Replace ``name``'s password; :class:`NoSuchUser` if absent."""
        _check_password(password)
        hashed = hash_password(password, log_n=self._log_n)
        self._replace(name, f"{name}:{hashed}")

    def remove(self, name: str) -> None:
        """Remove ``name``; :class:`NoSuchUser` if absent."""
        self._replace(name, None)

    def _replace(self, name: str, new_line: str | None) -> None:
        with self._lock:
            lines = self._read_lines()
            out: list[str] = []
            found = False
            for line in lines:
                text = line.strip()
                if text and not text.startswith("#") and text.partition(":")[0] == name:
                    found = True
                    if new_line is not None:
                        out.append(new_line)
                        new_line = None
                    continue
                out.append(line)
            if not found:
                raise NoSuchUser(f"no user {name!r}")
            self._write(out)

    def _write(self, lines: list[str]) -> None:
        """Write ``lines`` atomically, mode 0600.  The caller holds the lock."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, temp = tempfile.mkstemp(prefix=".users-", dir=directory)
        except OSError as exc:
            raise UsersFileError(f"{self.path}: cannot write: {exc}") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise UsersFileError(f"{self.path}: cannot write: {exc}") from None
        self._stamp = None  # re-read on next use


@implementer(IAuthenticator)
class UsersFileChecker:
    """Checks passwords against a :class:`UsersFile`, hashing in the reactor's thread pool."""

    log = Logger()

    def __init__(self, users: UsersFile, reactor: Any) -> None:
        self.users = users
        self._reactor = reactor

    def authenticate(self, username: str, password: str) -> "Deferred[bool]":
        """Fires with whether the password is right.

        Fails with :class:`AuthBackendUnavailable` when the file cannot be read.
        """
        d: Deferred[bool] = deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), self.users.verify, username, password
        )

        def unreadable(failure: Failure) -> Failure:
            failure.trap(UsersFileError)
            self.log.error("users file: {problem}", problem=str(failure.value))
            return Failure(AuthBackendUnavailable(str(failure.value)))

        return d.addErrback(unreadable)
