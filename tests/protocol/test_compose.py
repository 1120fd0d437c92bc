"""Tests for easyncd.protocol.compose: the message sent for SendMail / SmartReply / SmartForward."""
from __future__ import annotations

import datetime
import email
from email import policy
from email.message import EmailMessage

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.compose import (
    Identity,
    InvalidMime,
    NoRecipients,
    compose_forward,
    compose_new,
    compose_reply,
    envelope_recipients,
)

NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
ALICE = Identity("alice@example.test", frozenset({"a.smith@example.test"}), "Alice Smith")


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def headers(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


DEVICE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>, carol@example.test\r\n"
    b"Cc: \"Dave, D.\" <dave@example.test>, BOB@example.test\r\n"
    b"Bcc: eve@example.test,\r\n frank@example.test\r\n"
    b"Subject: Hello\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
)

ORIGINAL = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: =?iso-8859-1?q?Caf=E9?=\r\n"
    b"Date: Mon, 06 May 2024 06:00:00 +0000\r\n"
    b"Message-ID: <orig-1@example.test>\r\n"
    b"References: <root@example.test> <mid@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
    b"\r\n"
    b"--YY\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Un caf=E9 ?\r\n"
    b"--YY\r\n"
    b"Content-Type: text/html; charset=iso-8859-1\r\n"
    b"\r\n"
    b"<html><head><title>t</title></head><body><p>Un caf\xe9 ?</p></body></html>\r\n"
    b"--YY--\r\n"
    b"--XX\r\n"
    b"Content-Type: application/pdf; name=\"menu.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"menu.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--XX--\r\n"
)


class NewMessageTests(SynchronousTestCase):
    def test_envelope_and_bcc(self) -> None:
        out = compose_new(DEVICE, ALICE, now=NOW, message_id="<fixed@example.test>")
        self.assertEqual(out.sender, "alice@example.test")
        self.assertEqual(out.recipients, (
            "bob@example.test", "carol@example.test", "dave@example.test",
            "eve@example.test", "frank@example.test",
        ))
        head = headers(out.message)
        self.assertNotIn(b"Bcc", head)
        self.assertNotIn(b"eve@", out.message)
        self.assertNotIn(b"frank@", out.message)

    def test_date_and_message_id_added(self) -> None:
        out = compose_new(DEVICE, ALICE, now=NOW, message_id="<fixed@example.test>")
        parsed = parse(out.message)
        self.assertEqual(parsed["Date"], "Mon, 06 May 2024 07:08:09 +0000")
        self.assertEqual(parsed["Message-ID"], "<fixed@example.test>")
        self.assertEqual(out.message_id, "<fixed@example.test>")

    def test_generated_message_id_uses_sender_domain(self) -> None:
        out = compose_new(DEVICE, ALICE, now=NOW)
        self.assertRegex(out.message_id, r"^<[0-9a-f]{32}@example\.test>$")
        self.assertIn(b"Message-ID: " + out.message_id.encode(), out.message)

    def test_existing_date_and_id_kept(self) -> None:
        mime = b"Date: Sun, 05 May 2024 01:02:03 +0200\r\nMessage-ID: <dev@phone>\r\n" + DEVICE
        out = compose_new(mime, ALICE, now=NOW)
        self.assertEqual(out.message_id, "<dev@phone>")
        self.assertEqual(out.message.count(b"Date:"), 1)
        self.assertEqual(out.message.count(b"Message-ID:"), 1)
        self.assertIn(b"Date: Sun, 05 May 2024 01:02:03 +0200", out.message)

    def test_body_bytes_untouched_and_crlf(self) -> None:
        out = compose_new(DEVICE.replace(b"\r\n", b"\n"), ALICE, now=NOW)
        self.assertTrue(out.message.endswith(b"\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"))
        self.assertNotIn(b"\n", out.message.replace(b"\r\n", b""))

    def test_foreign_from_rewritten(self) -> None:
        mime = DEVICE.replace(b"From: Alice <alice@example.test>", b"From: Boss <ceo@elsewhere.test>")
        out = compose_new(mime, ALICE, now=NOW)
        self.assertEqual(out.sender, "alice@example.test")
        self.assertEqual(parse(out.message)["From"], "Boss <alice@example.test>")
        self.assertNotIn(b"ceo@elsewhere", out.message)

    def test_alias_from_kept(self) -> None:
        mime = DEVICE.replace(b"From: Alice <alice@example.test>",
                              b"From: Alice <A.Smith@example.test>")
        out = compose_new(mime, ALICE, now=NOW)
        self.assertEqual(out.sender, "A.Smith@example.test")
        self.assertIn(b"From: Alice <A.Smith@example.test>", out.message)

    def test_missing_from_added(self) -> None:
        mime = b"To: bob@example.test\r\nSubject: x\r\n\r\nhi\r\n"
        out = compose_new(mime, ALICE, now=NOW)
        self.assertEqual(parse(out.message)["From"], "Alice Smith <alice@example.test>")
        self.assertIn(b"MIME-Version: 1.0", out.message)

    def test_sender_and_return_path_dropped(self) -> None:
        mime = b"Return-Path: <x@y>\r\nSender: x@y\r\n" + DEVICE
        out = compose_new(mime, ALICE, now=NOW)
        self.assertNotIn(b"x@y", out.message)

    def test_no_recipients(self) -> None:
        mime = b"From: alice@example.test\r\nTo: undisclosed-recipients:;\r\nSubject: x\r\n\r\nhi\r\n"
        self.assertRaises(NoRecipients, compose_new, mime, ALICE, now=NOW)

    def test_not_mime(self) -> None:
        self.assertRaises(InvalidMime, compose_new, b"just some text\r\nmore\r\n", ALICE, now=NOW)
        self.assertRaises(InvalidMime, compose_new, b"", ALICE, now=NOW)

    def test_encoded_and_8bit_names(self) -> None:
        mime = (b"From: alice@example.test\r\n"
                b"To: =?utf-8?q?J=C3=BCrgen?= <juergen@example.test>\r\n"
                b"Cc: J\xc3\xbcrgen Zwei <j2@example.test>, group: g1@example.test, "
                b"g2@example.test;\r\n\r\nx\r\n")
        self.assertEqual(envelope_recipients(mime),
                         ("juergen@example.test", "j2@example.test", "g1@example.test",
                          "g2@example.test"))

    def test_smime_body_untouched(self) -> None:
        body = (b"--sig\r\nContent-Type: text/plain\r\n\r\nsigned text  \r\n"
                b"--sig\r\nContent-Type: application/pkcs7-signature\r\n\r\nMIAGCSqG\r\n--sig--\r\n")
        mime = (b"From: alice@example.test\r\nTo: bob@example.test\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
                b"boundary=sig\r\n\r\n" + body)
        out = compose_new(mime, ALICE, now=NOW)
        self.assertTrue(out.message.endswith(b"\r\n\r\n" + body))


class ReplyTests(SynchronousTestCase):
    REPLY = (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: RE: Caf\xc3\xa9\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
             b"\r\nOui, \xc3\xa0 midi.\r\n")

    def test_threading_headers(self) -> None:
        out = compose_reply(self.REPLY, ORIGINAL, ALICE, now=NOW, replace_mime=True)
        parsed = parse(out.message)
        self.assertEqual(parsed["In-Reply-To"], "<orig-1@example.test>")
        self.assertEqual(parsed["References"],
                         "<root@example.test> <mid@example.test> <orig-1@example.test>")

    def test_device_threading_headers_kept(self) -> None:
        mime = b"In-Reply-To: <other@x>\r\n" + self.REPLY
        out = compose_reply(mime, ORIGINAL, ALICE, now=NOW, replace_mime=True)
        self.assertEqual(out.message.count(b"In-Reply-To:"), 1)
        self.assertIn(b"In-Reply-To: <other@x>", out.message)

    def test_replace_mime_keeps_body(self) -> None:
        out = compose_reply(self.REPLY, ORIGINAL, ALICE, now=NOW, replace_mime=True)
        self.assertTrue(out.message.endswith(b"\r\n\r\nOui, \xc3\xa0 midi.\r\n"))
        self.assertNotIn(b"Original Message", out.message)

    def test_original_appended(self) -> None:
        out = compose_reply(self.REPLY, ORIGINAL, ALICE, now=NOW)
        parsed = parse(out.message)
        self.assertEqual(parsed.get_content_type(), "text/plain")
        text = parsed.get_content().replace("\r\n", "\n")
        self.assertTrue(text.startswith("Oui, à midi.\n\n-----Original Message-----\n"), text)
        self.assertIn("-----Original Message-----", text)
        self.assertIn("From: Bob <bob@example.test>", text)
        self.assertIn("Subject: Café", text)
        self.assertIn("Sent: Mon, 06 May 2024 06:00:00 +0000", text)
        self.assertTrue(text.rstrip().endswith("Un café ?"))
        self.assertEqual(parsed["Subject"], "RE: Café")
        self.assertNotIn("menu.pdf", out.message.decode("utf-8", "replace"))

    def test_html_part_gets_html_original(self) -> None:
        mime = (b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: RE\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
                b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nyes\r\n"
                b"--b\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
                b"<html><body><p>yes</p></body></html>\r\n--b--\r\n")
        out = compose_reply(mime, ORIGINAL, ALICE, now=NOW)
        parsed = parse(out.message)
        plain = parsed.get_body(("plain",))
        markup = parsed.get_body(("html",))
        assert plain is not None and markup is not None
        self.assertIn("Un café ?", plain.get_content())
        html_text = markup.get_content()
        self.assertIn("<p>yes</p>", html_text)
        self.assertIn("<p>Un café ?</p>", html_text)
        self.assertNotIn("<title>", html_text)
        self.assertLess(html_text.index("<p>yes</p>"), html_text.index("Un café"))
        self.assertTrue(html_text.rstrip().endswith("</body></html>"))

    def test_plain_original_into_html_reply_escaped(self) -> None:
        original = (b"From: bob@example.test\r\nSubject: s\r\nMessage-ID: <p@x>\r\n\r\n"
                    b"a < b & c\r\n")
        mime = (b"From: alice@example.test\r\nTo: bob@example.test\r\n"
                b"Content-Type: text/html; charset=utf-8\r\n\r\n<div>ok</div>\r\n")
        out = compose_reply(mime, original, ALICE, now=NOW)
        self.assertIn("a &lt; b &amp; c", parse(out.message).get_content())

    def test_broken_original_charset(self) -> None:
        original = (b"From: bob@example.test\r\nSubject: s\r\n"
                    b"Content-Type: text/plain; charset=x-unknown\r\n\r\nna\xefve\r\n")
        out = compose_reply(self.REPLY, original, ALICE, now=NOW)
        self.assertIn("naïve", parse(out.message).get_content())


class ForwardTests(SynchronousTestCase):
    FORWARD = (b"From: alice@example.test\r\nTo: carol@example.test\r\nSubject: FW: Caf\xc3\xa9\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee below.\r\n")

    def test_inline_with_attachments(self) -> None:
        out = compose_forward(self.FORWARD, ORIGINAL, ALICE, now=NOW)
        self.assertEqual(out.recipients, ("carol@example.test",))
        parsed = parse(out.message)
        self.assertEqual(parsed.get_content_type(), "multipart/mixed")
        body = parsed.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        self.assertTrue(text.startswith("See below."))
        self.assertIn("Un café ?", text)
        attachments = list(parsed.iter_attachments())
        self.assertEqual([a.get_filename() for a in attachments], ["menu.pdf"])
        self.assertEqual(attachments[0].get_content(), b"%PDF-1.4\n")
        self.assertNotIn("In-Reply-To", parsed)
        self.assertEqual(parsed["Subject"], "FW: Café")

    def test_device_attachment_kept(self) -> None:
        mime = (b"From: alice@example.test\r\nTo: carol@example.test\r\nSubject: FW\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
                b"--m\r\nContent-Type: text/plain\r\n\r\nmine too\r\n"
                b"--m\r\nContent-Type: text/plain; name=notes.txt\r\n"
                b"Content-Disposition: attachment; filename=notes.txt\r\n\r\nnotes\r\n--m--\r\n")
        out = compose_forward(mime, ORIGINAL, ALICE, now=NOW)
        parsed = parse(out.message)
        names = [a.get_filename() for a in parsed.iter_attachments()]
        self.assertEqual(names, ["notes.txt", "menu.pdf"])
        body = parsed.get_body(("plain",))
        assert body is not None
        self.assertIn("Un café ?", body.get_content())

    def test_replace_mime(self) -> None:
        out = compose_forward(self.FORWARD, ORIGINAL, ALICE, now=NOW, replace_mime=True)
        self.assertTrue(out.message.endswith(b"\r\n\r\nSee below.\r\n"))
        self.assertNotIn(b"menu.pdf", out.message)

    def test_forwarded_message_rfc822_kept(self) -> None:
        original = (b"From: bob@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
                    b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
                    b"--o\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                    b"--o\r\nContent-Type: message/rfc822\r\n\r\n"
                    b"From: x@y\r\nSubject: inner\r\n\r\ninner body\r\n--o--\r\n")
        out = compose_forward(self.FORWARD, original, ALICE, now=NOW)
        parsed = parse(out.message)
        kinds = [part.get_content_type() for part in parsed.iter_attachments()]
        self.assertEqual(kinds, ["message/rfc822"])
        self.assertIn(b"inner body", out.message)

    def test_bcc_still_stripped(self) -> None:
        mime = b"Bcc: secret@example.test\r\n" + self.FORWARD
        out = compose_forward(mime, ORIGINAL, ALICE, now=NOW)
        self.assertIn("secret@example.test", out.recipients)
        self.assertNotIn(b"secret@", out.message)


class IdentityTests(SynchronousTestCase):
    def test_owns(self) -> None:
        self.assertTrue(ALICE.owns("ALICE@example.test"))
        self.assertTrue(ALICE.owns(" a.smith@EXAMPLE.test"))
        self.assertFalse(ALICE.owns("bob@example.test"))


