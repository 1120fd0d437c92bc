"""Parse an EAS request line and headers into an :class:`EASRequest`.

Two query forms exist (MS-ASHTTP 2.2.1.1.1):

* plain: ``Cmd=Sync&User=alice&DeviceId=abc&DeviceType=iPhone`` plus command
  parameters (``ItemId``, ``CollectionId``, ``SaveInSent`` ...); the protocol
  version and policy key come from the ``MS-ASProtocolVersion`` and
  ``X-MS-PolicyKey`` headers;
* base64: one base64 string holding a byte structure with the protocol
  version, a command code, the locale, the device id, the policy key, the
  device type and tagged command parameters.

Nothing here imports twisted.web: the HTTP layer passes the raw query bytes
and a header mapping.
"""
from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qsl, unquote_to_bytes

from easyncd.protocol.context import EASRequest
from easyncd.protocol.versions import COMMAND_CODES, VERSIONS


class RequestError(ValueError):
    """The request cannot be understood: answer with ``http_status``."""

    def __init__(self, reason: str, http_status: int = 400) -> None:
        self.reason = reason
        self.http_status = http_status
        super().__init__(reason)


@dataclass(frozen=True)
class ParsedQuery:
    """What the query string says.  ``protocol_version``, ``policy_key`` and
    ``locale`` are only set by the base64 form (the plain form has them in
    headers)."""

    command: str
    device_id: str
    device_type: str
    user: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    form: str = "plain"
    protocol_version: str | None = None
    policy_key: int | None = None
    locale: int | None = None
    accept_multipart: bool = False


#: Command parameter tags of the base64 form (MS-ASHTTP 2.2.1.1.1.1.3).
PARAMETER_TAGS: dict[int, str] = {
    0: "AttachmentName",
    1: "CollectionId",
    3: "ItemId",
    4: "LongId",
    6: "Occurrence",
    7: "Options",
    8: "User",
}

#: Bits of the base64 ``Options`` parameter.
OPTION_SAVE_IN_SENT = 0x01
OPTION_ACCEPT_MULTIPART = 0x02

#: Plain-form parameter names, by lower-case name, in their canonical spelling.
_PLAIN_PARAMETERS = {
    name.lower(): name
    for name in (
        "Cmd", "User", "DeviceId", "DeviceType", "AttachmentName", "CollectionId",
        "CollectionName", "ItemId", "LongId", "ParentId", "Occurrence", "SaveInSent",
        "AcceptMultiPart", "PolicyKey",
    )
}

_COMMAND_RE = re.compile(r"^[A-Za-z]{1,32}$")
_MAX_DEVICE_ID = 128
_MAX_DEVICE_TYPE = 64


def _check_device_id(value: str) -> str:
    if not value or len(value) > _MAX_DEVICE_ID or not value.isprintable() or not value.isascii() \
            or any(ch.isspace() or ch in "/\\" for ch in value):
        raise RequestError("missing or invalid DeviceId")
    return value


def _check_device_type(value: str) -> str:
    if not value or len(value) > _MAX_DEVICE_TYPE or not value.isprintable():
        raise RequestError("missing or invalid DeviceType")
    return value


def _check_command(value: str) -> str:
    if not _COMMAND_RE.match(value):
        raise RequestError("missing or invalid Cmd")
    return value


def _looks_plain(query: bytes) -> bool:
    lowered = query.lower()
    return lowered.startswith(b"cmd=") or b"&cmd=" in lowered


def parse_query(query: bytes) -> ParsedQuery:
    """Parse the query string (the bytes after ``?``) in either form.

    Raises :class:`RequestError` (HTTP 400) when a required parameter is
    missing or malformed.
    """
    if not query:
        raise RequestError("empty query string")
    if _looks_plain(query):
        return _parse_plain(query)
    return _parse_base64(query)


def _parse_plain(query: bytes) -> ParsedQuery:
    try:
        pairs = parse_qsl(query.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise RequestError("query string is not UTF-8") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        canonical = _PLAIN_PARAMETERS.get(name.lower(), name)
        values.setdefault(canonical, value)
    command = _check_command(values.pop("Cmd", ""))
    device_id = _check_device_id(values.pop("DeviceId", ""))
    device_type = _check_device_type(values.pop("DeviceType", ""))
    user = values.pop("User", "") or None
    accept_multipart = values.get("AcceptMultiPart", "").upper() == "T"
    return ParsedQuery(
        command=command,
        device_id=device_id,
        device_type=device_type,
        user=user,
        parameters=values,
        form="plain",
        accept_multipart=accept_multipart,
    )


def _decode_base64(query: bytes) -> bytes:
    text = unquote_to_bytes(query).strip()
    text += b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text)
        except (binascii.Error, ValueError):
            raise RequestError("query is neither plain nor valid base64") from None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.data):
            raise RequestError(f"base64 query truncated in {what}")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def counted(self, what: str) -> bytes:
        return self.take(self.byte(what), what)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def _device_id_text(raw: bytes) -> str:
    """Device ids are strings or (16-byte) GUIDs; binary ones become hex."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return raw.hex().upper()
    if text.isprintable():
        return text
    return raw.hex().upper()


def _parse_base64(query: bytes) -> ParsedQuery:
    reader = _Reader(_decode_base64(query))
    version_byte = reader.byte("protocol version")
    version = f"{version_byte // 10}.{version_byte % 10}"
    if version not in VERSIONS:
        raise RequestError(f"unsupported protocol version {version_byte} in base64 query")
    code = reader.byte("command code")
    command = COMMAND_CODES.get(code)
    if command is None:
        raise RequestError(f"unknown command code {code}")
    (locale,) = struct.unpack("<H", reader.take(2, "locale"))
    device_id = _check_device_id(_device_id_text(reader.counted("device id")))
    key_bytes = reader.counted("policy key")
    policy_key: int | None
    if len(key_bytes) == 0:
        policy_key = None
    elif len(key_bytes) == 4:
        (policy_key,) = struct.unpack("<I", key_bytes)
        policy_key = policy_key or None
    else:
        raise RequestError("policy key must be 0 or 4 bytes long")
    try:
        device_type = reader.counted("device type").decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("missing or invalid DeviceType") from None
    device_type = _check_device_type(device_type)
    parameters: dict[str, str] = {}
    user: str | None = None
    accept_multipart = False
    while not reader.done:
        tag = reader.byte("parameter tag")
        value = reader.counted("parameter value")
        name = PARAMETER_TAGS.get(tag)
        if name is None:
            raise RequestError(f"unknown command parameter tag {tag}")
        if name == "Options":
            flags = value[0] if value else 0
            parameters["SaveInSent"] = "T" if flags & OPTION_SAVE_IN_SENT else "F"
            if flags & OPTION_ACCEPT_MULTIPART:
                accept_multipart = True
                parameters["AcceptMultiPart"] = "T"
            continue
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(f"command parameter {name} is not UTF-8") from None
        if name == "User":
            user = text or None
        else:
            parameters[name] = text
    return ParsedQuery(
        command=command,
        device_id=device_id,
        device_type=device_type,
        user=user,
        parameters=parameters,
        form="base64",
        protocol_version=version,
        policy_key=policy_key,
        locale=locale,
        accept_multipart=accept_multipart,
    )


def parse_policy_key(text: str | None) -> int | None:
    """An ``X-MS-PolicyKey`` value: a 32-bit unsigned decimal; empty or 0 is none."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return None
    if not stripped.isdigit():
        raise RequestError("invalid X-MS-PolicyKey")
    key = int(stripped)
    if key > 0xFFFFFFFF:
        raise RequestError("invalid X-MS-PolicyKey")
    return key or None


def build_request(parsed: ParsedQuery, headers: Mapping[str, str], account: str) -> EASRequest:
    """Combine the parsed query, the headers (looked up case-insensitively)
    and the authenticated ``account`` into an :class:`EASRequest`.

    The protocol version is only checked to be a known one here; whether it
    is offered is :func:`easyncd.protocol.versions.negotiate`'s business.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if parsed.form == "base64":
        version = parsed.protocol_version
        policy_key = parsed.policy_key
    else:
        version = (lowered.get("ms-asprotocolversion") or "").strip() or None
        policy_key = parse_policy_key(lowered.get("x-ms-policykey"))
    if version is None:
        raise RequestError("missing MS-ASProtocolVersion")
    if version not in VERSIONS:
        raise RequestError(f"unsupported protocol version {version!r}")
    accept_multipart = parsed.accept_multipart or (
        lowered.get("ms-asacceptmultipart", "").strip().upper() == "T"
    )
    return EASRequest(
        command=parsed.command,
        user=parsed.user or account,
        account=account,
        device_id=parsed.device_id,
        device_type=parsed.device_type,
        protocol_version=version,
        policy_key=policy_key,
        user_agent=lowered.get("user-agent"),
        accept_multipart=accept_multipart,
        query_form=parsed.form,
        parameters=dict(parsed.parameters),
    )
