"""Tests for easyncd.protocol.codecs.email against messages recorded from Dovecot.

Each fixture ``tests/fixtures/mail/<name>.eml`` was appended to a real
Dovecot; ``<name>.imap.json`` holds what Dovecot answered: the BODYSTRUCTURE
text and ``BODY.PEEK[<section>]`` for every section.  The tests fetch the
way the IMAP side will: only the sections :func:`plan_sections` names, cut to
its limits (IMAP partial fetch ``<0.N>``).
"""
from __future__ import annotations

import base64
import json
import os
import re
from datetime import datetime, timezone
from typing import Sequence

from twisted.mail.imap4 import parseNestedParens
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.bodystructure import BodyPart, parse_bodystructure
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError
from easyncd.protocol.codecs.email import (
    MessageView,
    attachment_list,
    conversation_index,
    email_to_eas,
    file_reference,
    parse_file_reference,
    plan_sections,
)
from easyncd.wbxml import Element, decode, encode

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")
NAMES = sorted(n[:-10] for n in os.listdir(FIXTURES) if n.endswith(".imap.json"))
VERSIONS = ("2.5", "12.1", "14.1", "16.1")
WHEN = datetime(2023, 11, 20, 8, 30, 15, tzinfo=timezone.utc)
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Recorded:
    """One message as Dovecot stored it."""

    def __init__(self, name: str) -> None:
        with open(os.path.join(FIXTURES, name + ".imap.json"), encoding="ascii") as handle:
            raw = json.load(handle)
        self.name = name
        self.structure: BodyPart = parse_bodystructure(
            parseNestedParens(raw["bodystructure"].encode("latin-1"))[0])
        self.sections = {k: v.encode("latin-1") for k, v in raw["sections"].items()}
        self.size = int(raw["size"])

    def fetch(self, plan: Sequence[tuple[str, int | None]]) -> dict[str, bytes]:
        """The sections as ``BODY.PEEK[id]<0.limit>`` gives them."""
        return {pid: self.sections[pid] if limit is None else self.sections[pid][:limit]
                for pid, limit in plan}

    def view(self, ctx: CodecContext, *, flags: Sequence[str] = ("\\Seen",),
             mime_support: int = 0, mime_truncation: int | None = None,
             body_part_preferences: Sequence[BodyPreference] = ()) -> MessageView:
        plan = plan_sections(self.structure, ctx, mime_support=mime_support,
                             mime_truncation=mime_truncation,
                             body_part_preferences=body_part_preferences)
        return MessageView(uid=42, flags=frozenset(flags), internaldate=WHEN, size=self.size,
                           headers=self.sections["HEADER"], structure=self.structure,
                           sections=self.fetch(plan))


def render(name: str, ctx: CodecContext, *, flags: Sequence[str] = ("\\Seen",),
           mime_support: int = 0, mime_truncation: int | None = None,
           body_part_preferences: Sequence[BodyPreference] = ()) -> Element:
    """ApplicationData of a fixture, checked to survive WBXML."""
    view = Recorded(name).view(ctx, flags=flags, mime_support=mime_support,
                               mime_truncation=mime_truncation,
                               body_part_preferences=body_part_preferences)
    app = email_to_eas(view, ctx, folder_server_id="INBOX", mime_support=mime_support,
                       mime_truncation=mime_truncation,
                       body_part_preferences=body_part_preferences)
    assert decode(encode(app)) == app
    return app


def ctx(version: str, *prefs: BodyPreference, truncation: int | None = None) -> CodecContext:
    return CodecContext(version, tuple(prefs), truncation=truncation,
                        user_address="alice@example.com", now=WHEN.timestamp())


def texts(element: Element) -> list[str]:
    """Every string in the tree."""
    out = [element.text] if isinstance(element.text, str) else []
    for child in element.children:
        out.extend(texts(child))
    return out


def all_tags(element: Element) -> list[str]:
    """Every tag in the tree."""
    out = [element.tag]
    for child in element.children:
        out.extend(all_tags(child))
    return out


class EveryFixtureTests(TestCase):
    """Every fixture at every version."""

    def test_all_render_as_valid_utf8(self) -> None:
        for name in NAMES:
            for version in VERSIONS:
                for prefs in ((BodyPreference(1, 200),), (BodyPreference(2, 5120, preview=255),),
                              (BodyPreference(4, 10000),)):
                    app = render(name, ctx(version, *prefs, truncation=4), mime_support=1)
                    for text in texts(app):
                        text.encode("utf-8")
                        self.assertIsNone(_BAD_XML.search(text), (name, version, text))
                    self.assertEqual(app.findtext("Email:DateReceived"),
                                     "2023-11-20T08:30:15.000Z")
                    self.assertEqual(app.findtext("Email:InternetCPID"), "65001")
                    self.assertIsNotNone(app.find("Email:MessageClass"))

    def test_version_gates(self) -> None:
        for name in NAMES:
            old = render(name, ctx("2.5"))
            tags = {c.tag for c in old.children}
            self.assertFalse({t for t in tags if t.startswith(("AirSyncBase:", "Email2:"))},
                             name)
            self.assertNotIn("Email:Flag", tags)
            self.assertNotIn("Email:Categories", tags)
            mid = {c.tag for c in render(name, ctx("12.1")).children}
            self.assertIn("Email:Flag", mid)
            self.assertIn("Email:ContentClass", mid)
            self.assertIn("AirSyncBase:NativeBodyType", mid)
            self.assertNotIn("Email2:ConversationId", mid)
            new = render(name, ctx("14.1"))
            conv = new.find("Email2:ConversationId")
            assert conv is not None and isinstance(conv.text, bytes)
            self.assertEqual(len(conv.text), 16)
            index = new.find("Email2:ConversationIndex")
            assert index is not None and isinstance(index.text, bytes)
            self.assertEqual(len(index.text), 5)
            self.assertNotIn("Email2:IsDraft", {c.tag for c in new.children})
            self.assertEqual(render(name, ctx("16.1")).findtext("Email2:IsDraft"), "0")


class HeaderFieldTests(TestCase):
    """Addresses, subject, importance, thread fields."""

    def test_plain_fields(self) -> None:
        app = render("plain", ctx("14.1"))
        self.assertEqual(app.findtext("Email:To"),
                         '"Alice Example" <alice@example.com>, carol@example.net')
        self.assertEqual(app.findtext("Email:Cc"), '"Dave, the Reviewer" <dave@example.net>')
        self.assertEqual(app.findtext("Email:From"), '"Bob Sender" <bob@example.org>')
        self.assertEqual(app.findtext("Email:ReplyTo"), "bob.replies@example.org")
        self.assertEqual(app.findtext("Email:Subject"), "Quarterly numbers")
        self.assertEqual(app.findtext("Email:DisplayTo"), "Alice Example; carol@example.net")
        self.assertEqual(app.findtext("Email:ThreadTopic"), "Quarterly numbers")
        self.assertEqual(app.findtext("Email:Importance"), "2")
        self.assertEqual(app.findtext("Email:Read"), "1")
        self.assertEqual(app.findtext("Email:MessageClass"), "IPM.Note")
        self.assertEqual(app.findtext("Email:ContentClass"), "urn:content-classes:message")
        self.assertIsNone(app.find("Email2:ReceivedAsBcc"))

    def test_encoded_words_and_thread_topic(self) -> None:
        app = render("alternative", ctx("14.1"))
        self.assertEqual(app.findtext("Email:From"), '"Jürgen Müller" <juergen@example.de>')
        self.assertEqual(app.findtext("Email:Subject"), "Re: Grüße aus Köln")
        self.assertEqual(app.findtext("Email:ThreadTopic"), "Grüße aus Köln")
        self.assertEqual(app.findtext("Email:Importance"), "2")

    def test_low_importance(self) -> None:
        self.assertEqual(render("html_only", ctx("12.1")).findtext("Email:Importance"), "0")

    def test_charsets_in_headers(self) -> None:
        self.assertEqual(render("koi8r", ctx("14.1")).findtext("Email:Subject"),
                         "Встреча перенесена")
        self.assertEqual(render("koi8r", ctx("14.1")).findtext("Email:From"),
                         '"Иван" <ivan@example.ru>')
        self.assertEqual(render("shift_jis", ctx("14.1")).findtext("Email:Subject"), "会議資料")
        latin = render("latin1", ctx("14.1"))
        self.assertEqual(latin.findtext("Email:Subject"), "Übersicht für März")
        self.assertEqual(latin.findtext("Email:DisplayTo"), "Frau Müller")
        self.assertEqual(latin.findtext("Email2:ReceivedAsBcc"), "1")
        self.assertEqual(render("eightbit_nocharset", ctx("14.1")).findtext("Email:Subject"),
                         "Résumé attached")
        self.assertEqual(render("broken_charset", ctx("14.1")).findtext("Email:Subject"),
                         "Café menu not base64!!")

    def test_missing_headers(self) -> None:
        app = render("missing_headers", ctx("16.1"))
        self.assertIsNone(app.find("Email:From"))
        self.assertIsNone(app.find("Email:To"))
        self.assertEqual(app.findtext("Email:Subject"), "")
        self.assertEqual(app.findtext("Email:Importance"), "1")

    def test_date_received_falls_back_to_date_header(self) -> None:
        rec = Recorded("plain")
        view = MessageView(1, frozenset(), None, None, rec.sections["HEADER"], rec.structure,
                           {"1": rec.sections["1"]})
        app = email_to_eas(view, ctx("14.1"), folder_server_id="INBOX")
        self.assertEqual(app.findtext("Email:DateReceived"), "2023-11-14T08:12:33.000Z")
        self.assertEqual(app.findtext("Email:Read"), "0")

    def test_conversation_id_follows_the_thread_root(self) -> None:
        root_headers = b"Message-ID: <root-thread@example.org>\r\nSubject: Hello\r\n\r\n"
        rec = Recorded("alternative")
        root = MessageView(1, frozenset(), WHEN, 10, root_headers, None, {"TEXT": b"hi"})
        reply = rec.view(ctx("14.1"))
        a = email_to_eas(root, ctx("14.1"), folder_server_id="INBOX")
        b = email_to_eas(reply, ctx("14.1"), folder_server_id="INBOX")
        self.assertEqual(a.findtext("Email2:ConversationId"),
                         b.findtext("Email2:ConversationId"))
        other = render("plain", ctx("14.1"))
        self.assertNotEqual(other.findtext("Email2:ConversationId"),
                            b.findtext("Email2:ConversationId"))
        self.assertLess(conversation_index(WHEN), conversation_index(WHEN.replace(year=2024)))


class FlagTests(TestCase):
    """IMAP flags and keywords."""

    def test_flagged_answered_keywords(self) -> None:
        app = render("plain", ctx("14.1"), flags=("\\Flagged", "\\Answered", "Work",
                                                 "$label4", "$MDNSent", "$Junk"))
        flag = app.find("Email:Flag")
        assert flag is not None
        self.assertEqual(flag.findtext("Email:Status"), "2")
        self.assertEqual(flag.findtext("Email:FlagType"), "Flag for follow up")
        self.assertEqual(app.findtext("Email:Read"), "0")
        self.assertEqual([c.text for c in app.find("Email:Categories").children],  # type: ignore[union-attr]
                         ["To Do", "Work"])
        self.assertEqual(app.findtext("Email2:LastVerbExecuted"), "1")

    def test_unflagged_sends_empty_flag(self) -> None:
        flag = render("plain", ctx("12.1")).find("Email:Flag")
        assert flag is not None
        self.assertEqual(flag.children, [])

    def test_forwarded_and_draft(self) -> None:
        app = render("plain", ctx("16.1"), flags=("$Forwarded", "\\Draft"))
        self.assertEqual(app.findtext("Email2:LastVerbExecuted"), "3")
        self.assertEqual(app.findtext("Email2:IsDraft"), "1")


class BodyTests(TestCase):
    """BodyPreference types, truncation, AllOrNone, Preview, BodyPart."""

    def _body(self, app: Element) -> dict[str, str | bytes | None]:
        body = app.find("AirSyncBase:Body")
        assert body is not None
        return {c.tag.split(":")[1]: c.text for c in body.children}

    def test_html_truncated_from_a_partial_fetch(self) -> None:
        rec = Recorded("alternative")
        context = ctx("14.1", BodyPreference(2, 5120, preview=100))
        plan = plan_sections(rec.structure, context)
        [(pid, limit)] = plan
        self.assertEqual(pid, "2")
        assert limit is not None
        self.assertLess(limit, rec.structure.find("2").size)  # type: ignore[union-attr]
        body = self._body(render("alternative", context))
        self.assertEqual(body["Type"], "2")
        self.assertEqual(body["Truncated"], "1")
        data = body["Data"]
        assert isinstance(data, str)
        self.assertLessEqual(len(data.encode("utf-8")), 5120)
        self.assertGreater(len(data.encode("utf-8")), 5000)
        self.assertTrue(data.startswith("<html><head>"))
        full = base64.b64decode(rec.sections["2"]).decode("utf-8")
        estimated = int(str(body["EstimatedDataSize"]))
        self.assertLess(abs(estimated / len(full.encode("utf-8")) - 1.0), 0.1)
        self.assertTrue(str(body["Preview"]).startswith("000 Lorem ipsum"))
        self.assertLessEqual(len(str(body["Preview"])), 100)

    def test_whole_plain_body(self) -> None:
        body = self._body(render("alternative", ctx("12.1", BodyPreference(1))))
        self.assertEqual(body["Type"], "1")
        self.assertNotIn("Truncated", body)
        self.assertIn("079 Lorem ipsum", str(body["Data"]))
        self.assertIn("Grüße aus Köln – naïve café “quotes”", str(body["Data"]))
        self.assertEqual(int(str(body["EstimatedDataSize"])), len(str(body["Data"]).encode()))

    def test_html_to_plain_and_plain_to_html(self) -> None:
        body = self._body(render("html_only", ctx("14.1", BodyPreference(1))))
        self.assertEqual(body["Type"], "1")
        self.assertEqual(body["Data"], "Offers\nCafé beans – now 20% off.\nTea & more\nSee you!")
        body = self._body(render("plain", ctx("14.1", BodyPreference(2))))
        self.assertEqual(body["Type"], "2")
        self.assertIn("Hi Alice,<br>", str(body["Data"]))

    def test_all_or_none_falls_through(self) -> None:
        context = ctx("14.1", BodyPreference(2, 100, all_or_none=True), BodyPreference(1, 100000))
        plan = dict(plan_sections(Recorded("alternative").structure, context))
        self.assertEqual(set(plan), {"1", "2"})
        body = self._body(render("alternative", context))
        self.assertEqual(body["Type"], "1")
        self.assertNotIn("Truncated", body)

    def test_all_or_none_alone_sends_no_data(self) -> None:
        body = self._body(render("alternative", ctx("14.1", BodyPreference(2, 100,
                                                                           all_or_none=True))))
        self.assertEqual(body["Truncated"], "1")
        self.assertNotIn("Data", body)

    def test_rtf_is_answered_with_plain_text(self) -> None:
        self.assertEqual(self._body(render("plain", ctx("12.1", BodyPreference(3))))["Type"],
                         "1")

    def test_mime_needs_mime_support(self) -> None:
        context = ctx("14.1", BodyPreference(4), BodyPreference(1))
        self.assertEqual(self._body(render("plain", context))["Type"], "1")
        self.assertEqual(plan_sections(Recorded("plain").structure, context), [("1", None)])
        body = self._body(render("plain", context, mime_support=2))
        self.assertEqual(body["Type"], "4")
        self.assertEqual(str(body["Data"]).encode("latin-1"), Recorded("plain").sections[""])

    def test_mime_truncated(self) -> None:
        context = ctx("16.1", BodyPreference(4, 1000))
        rec = Recorded("alternative")
        self.assertEqual(plan_sections(rec.structure, context, mime_support=2), [("", 1000)])
        body = self._body(render("alternative", context, mime_support=2))
        self.assertEqual(body["Truncated"], "1")
        self.assertEqual(body["EstimatedDataSize"], str(rec.size))
        self.assertEqual(len(str(body["Data"])), 1000)

    def test_eight_bit_mime_goes_out_opaque(self) -> None:
        body = self._body(render("windows1252", ctx("14.1", BodyPreference(4)), mime_support=2))
        self.assertEqual(body["Data"], Recorded("windows1252").sections[""])

    def test_body_part_preference(self) -> None:
        prefs = (BodyPreference(2, 200, preview=50),)
        app = render("alternative", ctx("14.1", BodyPreference(1, 100)),
                     body_part_preferences=prefs)
        part = app.find("AirSyncBase:BodyPart")
        assert part is not None
        fields = {c.tag.split(":")[1]: c.text for c in part.children}
        self.assertEqual(fields["Status"], "1")
        self.assertEqual(fields["Type"], "2")
        self.assertEqual(fields["Truncated"], "1")
        self.assertLessEqual(len(str(fields["Data"]).encode()), 200)
        self.assertTrue(str(fields["Preview"]).startswith("000 Lorem"))
        self.assertIsNone(render("alternative", ctx("14.0", BodyPreference(1, 100)),
                                 body_part_preferences=prefs).find("AirSyncBase:BodyPart"))

    def test_charsets_become_utf8(self) -> None:
        cases = {
            "latin1": "anbei die Übersicht für März. Größe: 5 m².",
            "windows1252": "The price is 100 € – “special” offer… ‘today’ only.",
            "koi8r": "Встреча перенесена на пятницу.",
            "shift_jis": "会議の資料を送ります。",
            "eightbit_nocharset": "Bonjour, voici mon résumé. À bientôt!",
            "broken_charset": "Menu: café crème",
        }
        for name, expected in cases.items():
            for version in ("14.1", "16.1"):
                body = self._body(render(name, ctx(version, BodyPreference(1))))
                self.assertIn(expected, str(body["Data"]), name)
        broken = str(self._body(render("broken_charset", ctx("14.1")))["Data"])
        self.assertNotIn("\x00", broken)
        self.assertNotIn("\x1b", broken)

    def test_legacy_body(self) -> None:
        app = render("alternative", ctx("2.5", truncation=1))
        body = app.findtext("Email:Body")
        assert body is not None
        self.assertEqual(len(body), 512)
        self.assertEqual(app.findtext("Email:BodyTruncated"), "1")
        self.assertGreater(int(app.findtext("Email:BodySize") or 0), 9000)
        whole = render("plain", ctx("2.5"))
        self.assertIn("Regards,\r\nBob", whole.findtext("Email:Body") or "")
        self.assertEqual(whole.findtext("Email:BodyTruncated"), "0")
        self.assertEqual(render("html_only", ctx("2.5", truncation=9)).findtext("Email:Body"),
                         "Offers\nCafé beans – now 20% off.\nTea & more\nSee you!")

    def test_legacy_mime(self) -> None:
        rec = Recorded("alternative")
        self.assertEqual(plan_sections(rec.structure, ctx("2.5"), mime_support=2,
                                       mime_truncation=1), [("", 4096)])
        app = render("alternative", ctx("2.5"), mime_support=2, mime_truncation=1)
        self.assertEqual(len(app.findtext("Email:MIMEData") or ""), 4096)
        self.assertEqual(app.findtext("Email:MIMETruncated"), "1")
        self.assertEqual(app.findtext("Email:MIMESize"), str(rec.size))
        self.assertIsNone(app.find("Email:Body"))


class AttachmentTests(TestCase):
    """Attachment lists and file references."""

    def test_mixed(self) -> None:
        atts = attachment_list(Recorded("mixed_attachments").structure, "f/1", 42)
        self.assertEqual([a.display_name for a in atts],
                         ["contract.pdf", "Notizen für München.txt", "Kostenübersicht.xls"])
        self.assertEqual([a.part_id for a in atts], ["2", "3", "4"])
        self.assertEqual(atts[0].file_reference, "f%2F1:42:2")
        self.assertEqual(parse_file_reference(atts[0].file_reference), ("f/1", 42, "2"))
        self.assertLess(abs(atts[0].size - (9 + 256 * 12 + 7)), 40)
        self.assertEqual({a.method for a in atts}, {1})
        self.assertFalse(any(a.is_inline for a in atts))

    def test_inline_image(self) -> None:
        [logo] = attachment_list(Recorded("related_inline").structure, "INBOX", 1)
        self.assertEqual((logo.display_name, logo.content_id, logo.is_inline),
                         ("logo.png", "logo123@example.org", True))
        app = render("related_inline", ctx("14.1"))
        att = app.find("AirSyncBase:Attachments/AirSyncBase:Attachment")
        assert att is not None
        self.assertEqual(att.findtext("AirSyncBase:IsInline"), "1")
        self.assertEqual(att.findtext("AirSyncBase:ContentId"), "logo123@example.org")
        self.assertEqual(att.findtext("AirSyncBase:FileReference"), "INBOX:42:2")

    def test_forwarded_message(self) -> None:
        [fwd] = attachment_list(Recorded("forwarded").structure, "INBOX", 1)
        self.assertEqual((fwd.display_name, fwd.method, fwd.part_id),
                         ("Quarterly numbers.eml", 5, "2"))

    def test_invitation_calendar_part_is_hidden(self) -> None:
        atts = attachment_list(Recorded("meeting_request").structure, "INBOX", 1)
        self.assertEqual([a.display_name for a in atts], ["invite.ics"])

    def test_legacy_attachments(self) -> None:
        app = render("mixed_attachments", ctx("2.5"))
        items = app.findall("Email:Attachments/Email:Attachment")
        self.assertEqual(len(items), 3)
        self.assertEqual(items[0].findtext("Email:AttName"), "INBOX:42:2")
        self.assertEqual(items[0].findtext("Email:DisplayName"), "contract.pdf")
        self.assertEqual(items[0].findtext("Email:AttMethod"), "1")

    def test_file_reference_rejects_foreign(self) -> None:
        self.assertEqual(parse_file_reference(file_reference("a:b", 7, "1.2")),
                         ("a:b", 7, "1.2"))
        self.assertRaises(ValueError, parse_file_reference, "nonsense")
        self.assertRaises(ValueError, parse_file_reference, "INBOX:x:1")


class MeetingTests(TestCase):
    """Invitations."""

    def test_request(self) -> None:
        app = render("meeting_request", ctx("14.1", BodyPreference(2)))
        self.assertEqual(app.findtext("Email:MessageClass"), "IPM.Schedule.Meeting.Request")
        self.assertEqual(app.findtext("Email:ContentClass"),
                         "urn:content-classes:calendarmessage")
        req = app.find("Email:MeetingRequest")
        assert req is not None
        self.assertEqual(req.findtext("Email:StartTime"), "2023-12-04T09:00:00.000Z")
        self.assertEqual(req.findtext("Email:EndTime"), "2023-12-04T10:00:00.000Z")
        self.assertEqual(req.findtext("Email:AllDayEvent"), "0")
        self.assertEqual(req.findtext("Email:Location"), "Room 4.01")
        self.assertEqual(req.findtext("Email:Organizer"), '"Bob Sender" <bob@example.org>')
        self.assertEqual(req.findtext("Email:Reminder"), "900")
        self.assertEqual(req.findtext("Email:InstanceType"), "1")
        self.assertEqual(req.findtext("Email:ResponseRequested"), "1")
        self.assertEqual(req.findtext("Email2:MeetingMessageType"), "1")
        rec = req.find("Email:Recurrences/Email:Recurrence")
        assert rec is not None
        self.assertEqual((rec.findtext("Email:Type"), rec.findtext("Email:DayOfWeek"),
                          rec.findtext("Email:Occurrences")), ("1", "2", "10"))
        goid = base64.b64decode(req.findtext("Email:GlobalObjId") or "")
        self.assertTrue(goid.startswith(bytes.fromhex("040000008200E00074C5B7101A82E008")))
        self.assertIn(b"vCal-Uid\x01\x00\x00\x00meeting-7f3a@example.org\x00", goid)
        self.assertEqual(len(base64.b64decode(req.findtext("Email:TimeZone") or "")), 172)
        plan = plan_sections(Recorded("meeting_request").structure, ctx("14.1",
                                                                        BodyPreference(2)))
        self.assertEqual(sorted(plan), [("1.2", None), ("1.3", None)])

    def test_versions(self) -> None:
        old = render("meeting_request", ctx("2.5")).find("Email:MeetingRequest")
        assert old is not None
        self.assertFalse([t for t in all_tags(old) if t.startswith("Email2:")])
        self.assertIsNone(old.find("Email:DisallowNewTimeProposal"))
        new = render("meeting_request", ctx("16.1")).find("Email:MeetingRequest")
        assert new is not None
        self.assertIsNone(new.find("Email:Location"))
        self.assertEqual(new.findtext("AirSyncBase:Location/AirSyncBase:DisplayName"),
                         "Room 4.01")

    def test_cancel(self) -> None:
        app = render("meeting_cancel", ctx("14.1"))
        self.assertEqual(app.findtext("Email:MessageClass"), "IPM.Schedule.Meeting.Canceled")
        self.assertIsNotNone(app.find("Email:MeetingRequest"))


class SmimeTests(TestCase):
    """S/MIME goes out whole."""

    def test_signed(self) -> None:
        rec = Recorded("smime_signed")
        context = ctx("14.1", BodyPreference(2, 10))
        self.assertEqual(plan_sections(rec.structure, context, mime_support=1), [("", None)])
        app = render("smime_signed", context, mime_support=1)
        self.assertEqual(app.findtext("Email:MessageClass"), "IPM.Note.SMIME.MultipartSigned")
        body = app.find("AirSyncBase:Body")
        assert body is not None
        self.assertEqual(body.findtext("AirSyncBase:Type"), "4")
        self.assertIsNone(body.find("AirSyncBase:Truncated"))
        self.assertEqual((body.findtext("AirSyncBase:Data") or "").encode(), rec.sections[""])
        # Without MIMESupport, the signed text is shown as text.
        plain = render("smime_signed", ctx("14.1", BodyPreference(1)))
        self.assertEqual(plain.findtext("AirSyncBase:Body/AirSyncBase:Data"),
                         "This message is signed. Do not change a byte.\r\n")

    def test_encrypted(self) -> None:
        rec = Recorded("smime_encrypted")
        self.assertEqual(plan_sections(rec.structure, ctx("14.1", BodyPreference(2)),
                                       mime_support=0), [])
        app = render("smime_encrypted", ctx("14.1", BodyPreference(2)))
        self.assertEqual(app.findtext("Email:MessageClass"), "IPM.Note.SMIME")
        self.assertIsNone(app.find("AirSyncBase:Body"))
        mime = render("smime_encrypted", ctx("2.5"), mime_support=1, mime_truncation=1)
        self.assertEqual((mime.findtext("Email:MIMEData") or "").encode(), rec.sections[""])
        self.assertIsNone(mime.find("Email:MIMETruncated"))


class PlanTests(TestCase):
    """Only what a response needs is fetched."""

    def test_never_attachments(self) -> None:
        for name in NAMES:
            rec = Recorded(name)
            attachment_ids = {a.part_id for a in attachment_list(rec.structure, "INBOX", 1)}
            for version in VERSIONS:
                for prefs in ((BodyPreference(1, 500),), (BodyPreference(2),), ()):
                    plan = plan_sections(rec.structure, ctx(version, *prefs, truncation=3))
                    ids = [pid for pid, _limit in plan]
                    self.assertEqual(len(ids), len(set(ids)))
                    self.assertFalse(set(ids) & attachment_ids, (name, version))
                    self.assertNotIn("", ids)

    def test_limits(self) -> None:
        rec = Recorded("alternative")
        self.assertEqual(plan_sections(rec.structure, ctx("14.1", BodyPreference(1))),
                         [("1", None)])
        [(pid, limit)] = plan_sections(rec.structure, ctx("14.1", BodyPreference(1, 1000)))
        self.assertEqual(pid, "1")
        assert limit is not None
        self.assertGreaterEqual(limit, 3000)  # quoted-printable may triple
        self.assertLess(limit, 12400)
        self.assertEqual(plan_sections(rec.structure, ctx("14.1", BodyPreference(1, 0))), [])

    def test_unknown_structure(self) -> None:
        self.assertEqual(plan_sections(None, ctx("14.1")), [("TEXT", None)])
        view = MessageView(1, frozenset(), WHEN, 40,
                           b"Subject: x\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n",
                           None, {"TEXT": "Привет".encode("koi8-r")})
        app = email_to_eas(view, ctx("14.1"), folder_server_id="INBOX")
        self.assertEqual(app.findtext("AirSyncBase:Body/AirSyncBase:Data"), "Привет")


class ErrorTests(TestCase):
    """A message that cannot be rendered is a per-item error."""

    def test_nothing_fetched(self) -> None:
        view = MessageView(1, frozenset(), None, None, b"", None, {})
        self.assertRaises(CodecError, email_to_eas, view, ctx("14.1"), folder_server_id="INBOX")

    def test_unexpected_failure_becomes_codec_error(self) -> None:
        view = MessageView(1, frozenset(), WHEN, 1, b"Subject: x\r\n\r\n",
                           None, {"TEXT": 12})  # type: ignore[dict-item]
        self.assertRaises(CodecError, email_to_eas, view, ctx("14.1"), folder_server_id="INBOX")
