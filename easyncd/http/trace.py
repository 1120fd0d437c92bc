"""Per-device protocol traces: each request and response, decoded to XML.

An admin switches a trace on per device or per user (``[log] trace_devices``,
``[log] trace_users``, or ``easyncd-admin device trace ID on``).  Each traced
device gets its own file ``<trace_dir>/<device id>.log``.  Authorization
headers and password elements never reach the file.
"""
from __future__ import annotations

import os
import re
import time
from typing import Iterable, Mapping

from twisted.logger import Logger

from easyncd.wbxml import Element, WBXMLError, decode

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_SECRET_ELEMENTS = frozenset({"Password", "DevicePassword"})

log = Logger()


def redact_element(root: Element) -> Element:
    """A copy of ``root`` whose password elements hold ``***``."""
    children = [redact_element(child) for child in root.children]
    text = root.text
    if root.name in _SECRET_ELEMENTS and text is not None:
        text = "***"
    return Element(root.tag, text, children)


def body_as_xml(body: bytes, content_type: str | None) -> str:
    """A readable form of a request or response body for the trace."""
    if not body:
        return "(no body)"
    if content_type and "wbxml" not in content_type.lower():
        return f"({len(body)} bytes of {content_type})"
    try:
        return redact_element(decode(body)).to_xml()
    except WBXMLError as exc:
        return f"(undecodable WBXML, {len(body)} bytes: {exc}) {body[:64].hex()}"


def safe_headers(headers: Iterable[tuple[str, str]]) -> list[str]:
    """Header lines with secrets removed."""
    lines = []
    for name, value in headers:
        if name.lower() in _SECRET_HEADERS:
            value = "(removed)"
        lines.append(f"{name}: {value}")
    return lines


class ProtocolTracer:
    """Writes protocol traces for the devices and users it is told to trace."""

    def __init__(self, trace_dir: str, devices: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        self.trace_dir = trace_dir
        self.devices = frozenset(devices)
        self.users = frozenset(user.lower() for user in users)

    def wanted(self, device_id: str, account: str, device_flag: bool) -> bool:
        """Whether this request is traced (config lists or the device's flag)."""
        return device_flag or device_id in self.devices or account.lower() in self.users

    def path_for(self, device_id: str) -> str:
        """The trace file of a device."""
        return os.path.join(self.trace_dir, _SAFE_NAME.sub("_", device_id) + ".log")

    def write(
        self,
        *,
        device_id: str,
        account: str,
        request_line: str,
        request_headers: Iterable[tuple[str, str]],
        request_body: bytes,
        request_type: str | None,
        code: int,
        response_headers: Mapping[str, str],
        response_body: bytes,
        response_type: str | None,
        duration: float,
    ) -> None:
        """Append one exchange to the device's trace file."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        parts = [
            f"===== {stamp} {account} {request_line}",
            *safe_headers(request_headers),
            "",
            body_as_xml(request_body, request_type),
            f"----- HTTP {code} ({duration * 1000:.1f} ms)",
            *safe_headers(response_headers.items()),
            "",
            body_as_xml(response_body, response_type),
            "",
        ]
        try:
            os.makedirs(self.trace_dir, mode=0o700, exist_ok=True)
            fd = os.open(self.path_for(device_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write("\n".join(parts) + "\n")
        except OSError as exc:
            log.warn("cannot write protocol trace for {device_id}: {error}",
                     device_id=device_id, error=str(exc))
