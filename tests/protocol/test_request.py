"""Tests for easyncd.protocol.request and easyncd.protocol.versions."""
from __future__ import annotations

import base64
import struct

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.request import RequestError, build_request, parse_query
from easyncd.protocol.versions import (
    UnsupportedVersion,
    command_in_version,
    negotiate,
    protocol_commands_header,
    protocol_versions_header,
)


def b64_query(version: int, code: int, device_id: bytes, device_type: bytes,
              key: int | None = None, params: list[tuple[int, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    """Build a base64 query value as MS-ASHTTP 2.2.1.1.1.1 lays it out."""
    raw = bytes([version, code]) + struct.pack("<H", 0x0409)
    raw += bytes([len(device_id)]) + device_id
    raw += b"\x00" if key is None else b"\x04" + struct.pack("<I", key)
    raw += bytes([len(device_type)]) + device_type
    for tag, value in params:
        raw += bytes([tag, len(value)]) + value
    return base64.b64encode(raw)


class PlainQueryTests(SynchronousTestCase):
    """The plain text query form (MS-ASHTTP 2.2.1.1.1.2)."""

    def test_plain(self) -> None:
        parsed = parse_query(
            b"Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone")
        self.assertEqual(parsed.command, "Sync")
        self.assertEqual(parsed.user, "rmjones")
        self.assertEqual(parsed.device_id, "v140Device")
        self.assertEqual(parsed.device_type, "SmartPhone")
        self.assertEqual(parsed.form, "plain")
        self.assertIsNone(parsed.protocol_version)

    def test_parameters_and_escapes(self) -> None:
        parsed = parse_query(
            b"Cmd=SmartReply&User=DOMAIN%5Calice&DeviceId=abc&DeviceType=iPhone"
            b"&ItemId=5%3A12&CollectionId=5&SaveInSent=T&PolicyKey=42")
        self.assertEqual(parsed.user, "DOMAIN\\alice")
        self.assertEqual(parsed.parameters,
                         {"ItemId": "5:12", "CollectionId": "5", "SaveInSent": "T",
                          "PolicyKey": "42"})

    def test_case_insensitive_names(self) -> None:
        parsed = parse_query(b"cmd=Ping&user=a&deviceid=d1&devicetype=t")
        self.assertEqual((parsed.command, parsed.device_id, parsed.device_type),
                         ("Ping", "d1", "t"))

    def test_user_optional(self) -> None:
        self.assertIsNone(parse_query(b"Cmd=Ping&DeviceId=d1&DeviceType=t").user)

    def test_missing_required(self) -> None:
        for query in (b"Cmd=Sync&User=a&DeviceType=t",
                      b"Cmd=Sync&User=a&DeviceId=d",
                      b"Cmd=&User=a&DeviceId=d&DeviceType=t",
                      b"Cmd=Sy nc&User=a&DeviceId=d&DeviceType=t",
                      b"Cmd=Sync&User=a&DeviceId=a/b&DeviceType=t",
                      b""):
            exc = self.assertRaises(RequestError, parse_query, query)
            self.assertEqual(exc.http_status, 400)


class Base64QueryTests(SynchronousTestCase):
    """The base64 query form (MS-ASHTTP 2.2.1.1.1.1)."""

    def test_spec_example(self) -> None:
        """The example URI of MS-ASHTTP 2.2.1.1.1.1."""
        parsed = parse_query(b"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")
        self.assertEqual(parsed.form, "base64")
        self.assertEqual(parsed.protocol_version, "14.0")
        self.assertEqual(parsed.command, "Sync")
        self.assertEqual(parsed.locale, 0x0409)
        self.assertEqual(parsed.device_id, "v140Device")
        self.assertIsNone(parsed.policy_key)
        self.assertEqual(parsed.device_type, "SmartPhone")
        self.assertIsNone(parsed.user)

    def test_key_parameters_url_escaped(self) -> None:
        query = b64_query(161, 2, b"dev1", b"Android", key=3735928559, params=[
            (1, b"5"), (3, b"5:7"), (7, b"\x03"), (8, b"alice@example.com")])
        escaped = query.replace(b"=", b"%3D").replace(b"+", b"%2B").replace(b"/", b"%2F")
        parsed = parse_query(escaped)
        self.assertEqual(parsed.command, "SmartForward")
        self.assertEqual(parsed.protocol_version, "16.1")
        self.assertEqual(parsed.policy_key, 3735928559)
        self.assertEqual(parsed.user, "alice@example.com")
        self.assertTrue(parsed.accept_multipart)
        self.assertEqual(parsed.parameters["SaveInSent"], "T")
        self.assertEqual(parsed.parameters["CollectionId"], "5")
        self.assertEqual(parsed.parameters["ItemId"], "5:7")

    def test_binary_device_id(self) -> None:
        guid = bytes(range(16))
        parsed = parse_query(b64_query(141, 18, guid, b"WP"))
        self.assertEqual(parsed.device_id, guid.hex().upper())
        self.assertEqual(parsed.command, "Ping")

    def test_errors(self) -> None:
        for query in (
            b"!!!notbase64!!!",
            base64.b64encode(b"\x8c\x00\x09"),  # truncated
            b64_query(99, 0, b"d", b"t"),  # unknown version
            b64_query(140, 99, b"d", b"t"),  # unknown command code
            b64_query(140, 0, b"d", b"t", params=[(2, b"x")]),  # unknown tag
            b64_query(140, 0, b"", b"t"),  # empty device id
        ):
            exc = self.assertRaises(RequestError, parse_query, query)
            self.assertEqual(exc.http_status, 400)


class BuildRequestTests(SynchronousTestCase):
    """build_request combines query and headers."""

    def test_plain_headers(self) -> None:
        parsed = parse_query(b"Cmd=FolderSync&User=Alice&DeviceId=d1&DeviceType=t")
        req = build_request(parsed, {
            "ms-asprotocolversion": "14.1", "X-MS-POLICYKEY": "1234",
            "User-Agent": "Phone/1", "MS-ASAcceptMultiPart": "T"}, "alice")
        self.assertEqual(req.protocol_version, "14.1")
        self.assertEqual(req.policy_key, 1234)
        self.assertEqual(req.user, "Alice")
        self.assertEqual(req.account, "alice")
        self.assertEqual(req.user_agent, "Phone/1")
        self.assertTrue(req.accept_multipart)
        self.assertEqual(req.query_form, "plain")

    def test_policy_key_zero_is_none(self) -> None:
        parsed = parse_query(b"Cmd=Provision&DeviceId=d1&DeviceType=t")
        req = build_request(parsed, {"MS-ASProtocolVersion": "12.1", "X-MS-PolicyKey": "0"}, "bob")
        self.assertIsNone(req.policy_key)
        self.assertEqual(req.user, "bob")

    def test_base64_ignores_headers(self) -> None:
        parsed = parse_query(b64_query(121, 9, b"d1", b"t", key=77))
        req = build_request(parsed, {"MS-ASProtocolVersion": "16.1", "X-MS-PolicyKey": "5"}, "a")
        self.assertEqual(req.protocol_version, "12.1")
        self.assertEqual(req.policy_key, 77)
        self.assertEqual(req.query_form, "base64")

    def test_bad_headers(self) -> None:
        parsed = parse_query(b"Cmd=Sync&DeviceId=d1&DeviceType=t")
        for headers in ({}, {"MS-ASProtocolVersion": "13.0"},
                        {"MS-ASProtocolVersion": "14.0", "X-MS-PolicyKey": "abc"},
                        {"MS-ASProtocolVersion": "14.0", "X-MS-PolicyKey": "99999999999"}):
            exc = self.assertRaises(RequestError, build_request, parsed, headers, "a")
            self.assertEqual(exc.http_status, 400)


class VersionTests(SynchronousTestCase):
    """Version negotiation and the command table."""

    def test_negotiate(self) -> None:
        self.assertEqual(negotiate("14.1", "16.1"), "14.1")
        self.assertEqual(negotiate("2.5", "12.1"), "2.5")
        for requested in (None, "16.1", "13.0", ""):
            exc = self.assertRaises(UnsupportedVersion, negotiate, requested, "14.1")
            self.assertEqual(exc.http_status, 400)
            self.assertEqual(exc.headers["MS-ASProtocolVersions"], "2.5,12.0,12.1,14.0,14.1")

    def test_headers(self) -> None:
        self.assertEqual(protocol_versions_header("16.1"), "2.5,12.0,12.1,14.0,14.1,16.0,16.1")
        self.assertEqual(protocol_versions_header("12.1"), "2.5,12.0,12.1")
        self.assertEqual(protocol_commands_header(["Settings", "Provision", "FolderSync", "Bogus"]),
                         "FolderSync,Settings,Provision")

    def test_command_table(self) -> None:
        self.assertTrue(command_in_version("Find", "16.1"))
        self.assertFalse(command_in_version("Find", "16.0"))
        self.assertTrue(command_in_version("GetAttachment", "12.1"))
        self.assertFalse(command_in_version("GetAttachment", "14.0"))
        self.assertFalse(command_in_version("Settings", "2.5"))
        self.assertTrue(command_in_version("Settings", "12.0"))
        self.assertTrue(command_in_version("ItemOperations", "12.0"))
        self.assertFalse(command_in_version("Bogus", "16.1"))
