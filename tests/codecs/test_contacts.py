"""Tests for easyncd.protocol.codecs.contacts (MS-ASCNTC <-> vCard)."""
from __future__ import annotations

import base64
import datetime
from pathlib import Path

from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.vobj import parse_vcard, parse_vcards, write_vcard
from easyncd.protocol.codecs.base import BodyPreference, CodecContext, CodecError
from easyncd.protocol.codecs.contacts import FIELD_TAGS, LEGACY_BODY_TAGS, ContactsCodec
from easyncd.wbxml import Element, decode, encode
from easyncd.wbxml.codepages import TOKEN_BY_TAG

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vcard"
PICTURE = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4).decode("ascii")

#: A contact as a device sends it: every field.
FULL: list[tuple[str, str]] = [
    ("Contacts:Anniversary", "2004-06-19T22:00:00.000Z"),
    ("Contacts:AssistantName", "Ada Assistant"),
    ("Contacts:AssistantPhoneNumber", "+1 555 0001"),
    ("Contacts:Birthday", "1975-03-13T23:00:00.000Z"),
    ("Contacts:Business2PhoneNumber", "+1 555 0002"),
    ("Contacts:BusinessAddressCity", "Springfield"),
    ("Contacts:BusinessAddressCountry", "USA"),
    ("Contacts:BusinessAddressPostalCode", "12345"),
    ("Contacts:BusinessAddressState", "IL"),
    ("Contacts:BusinessAddressStreet", "742 Evergreen Terrace\nSuite 5"),
    ("Contacts:BusinessFaxNumber", "+1 555 0003"),
    ("Contacts:BusinessPhoneNumber", "+1 555 0004"),
    ("Contacts:CarPhoneNumber", "+1 555 0005"),
    ("Contacts:CompanyName", "Acme; Inc"),
    ("Contacts:Department", "R&D"),
    ("Contacts:Email1Address", "one@example.com"),
    ("Contacts:Email2Address", "two@example.com"),
    ("Contacts:Email3Address", "three@example.com"),
    ("Contacts:FileAs", "Doe, John"),
    ("Contacts:FirstName", "John"),
    ("Contacts:Home2PhoneNumber", "+1 555 0006"),
    ("Contacts:HomeAddressCity", "Shelbyville"),
    ("Contacts:HomeAddressCountry", "USA"),
    ("Contacts:HomeAddressPostalCode", "54321"),
    ("Contacts:HomeAddressState", "IL"),
    ("Contacts:HomeAddressStreet", "1 Home Rd"),
    ("Contacts:HomeFaxNumber", "+1 555 0007"),
    ("Contacts:HomePhoneNumber", "+1 555 0008"),
    ("Contacts:JobTitle", "Boss"),
    ("Contacts:LastName", "Doe"),
    ("Contacts:MiddleName", "Q"),
    ("Contacts:MobilePhoneNumber", "+1 555 0009"),
    ("Contacts:OfficeLocation", "B2-301"),
    ("Contacts:OtherAddressCity", "Capital City"),
    ("Contacts:OtherAddressCountry", "USA"),
    ("Contacts:OtherAddressPostalCode", "99999"),
    ("Contacts:OtherAddressState", "XX"),
    ("Contacts:OtherAddressStreet", "PO Road 9\nBack door"),
    ("Contacts:PagerNumber", "+1 555 0010"),
    ("Contacts:RadioPhoneNumber", "+1 555 0011"),
    ("Contacts:Spouse", "Jane Doe"),
    ("Contacts:Suffix", "III"),
    ("Contacts:Title", "Dr."),
    ("Contacts:WebPage", "https://john.example.com/"),
    ("Contacts:YomiCompanyName", "akume"),
    ("Contacts:YomiFirstName", "jon"),
    ("Contacts:YomiLastName", "do"),
    ("Contacts:Picture", PICTURE),
    ("Contacts2:CustomerId", "C-1"),
    ("Contacts2:GovernmentId", "G-2"),
    ("Contacts2:IMAddress", "sip:john@example.com"),
    ("Contacts2:IMAddress2", "john@jabber.example"),
    ("Contacts2:IMAddress3", "john.aim"),
    ("Contacts2:ManagerName", "Mr. Burns"),
    ("Contacts2:CompanyMainPhone", "+1 555 0012"),
    ("Contacts2:AccountName", "jdoe"),
    ("Contacts2:NickName", "Johnny"),
    ("Contacts2:MMS", "+1 555 0013"),
]
CATEGORIES = ["Business", "VIP, gold"]
CHILDREN = ["Bart", "Lisa", "Maggie"]
BODY = "Notes line 1\nNotes line 2 – ünïcode"


def application_data(version: str = "16.1", body: str | None = BODY,
                     fields: list[tuple[str, str]] | None = None) -> Element:
    """The ApplicationData a device sends for the full contact."""
    app = Element("AirSync:ApplicationData")
    for tag, text in (FULL if fields is None else fields):
        app.add(tag, text)
    categories = app.add("Contacts:Categories")
    for category in CATEGORIES:
        categories.add("Contacts:Category", category)
    children = app.add("Contacts:Children")
    for child in CHILDREN:
        children.add("Contacts:Child", child)
    if body is not None:
        if version == "2.5":
            app.add("Contacts:Body", body)
        else:
            element = app.add("AirSyncBase:Body")
            element.add("AirSyncBase:Type", "1")
            element.add("AirSyncBase:Data", body)
    return app


def flatten(app: Element) -> dict[str, object]:
    """tag -> text, or list of child texts for containers."""
    out: dict[str, object] = {}
    for child in app.children:
        if child.children:
            out[child.tag] = [(c.tag, c.text) for c in child.children]
        else:
            out[child.tag] = child.text
    return out


class RoundTripTests(TestCase):
    """Device -> vCard -> device keeps every field."""

    codec = ContactsCodec()

    def test_tags_exist_in_the_wbxml_tables(self) -> None:
        for tag in FIELD_TAGS | set(LEGACY_BODY_TAGS) | {"Contacts:Category", "Contacts:Child"}:
            self.assertIn(tag, TOKEN_BY_TAG)

    def test_full_contact_round_trip(self) -> None:
        ctx = CodecContext("16.1", default_timezone="Europe/Berlin")
        decoded = self.codec.from_eas(application_data(), None, ctx)
        self.assertTrue(decoded.uid)
        self.assertIn(f"UID:{decoded.uid}", decoded.data)
        out = flatten(self.codec.to_eas(decoded.data, ctx))
        for tag, text in FULL:
            self.assertEqual(out.pop(tag), text, tag)
        self.assertEqual(out.pop("Contacts:Categories"),
                         [("Contacts:Category", c) for c in CATEGORIES])
        self.assertEqual(out.pop("Contacts:Children"),
                         [("Contacts:Child", c) for c in CHILDREN])
        self.assertEqual(out.pop("AirSyncBase:Body"), [
            ("AirSyncBase:Type", "1"),
            ("AirSyncBase:EstimatedDataSize", str(len(BODY.encode("utf-8")))),
            ("AirSyncBase:Data", BODY)])
        self.assertEqual(out, {})

    def test_the_vcard_means_what_the_device_meant(self) -> None:
        ctx = CodecContext("14.1", default_timezone="Europe/Berlin")
        contact = parse_vcard(self.codec.from_eas(application_data(), None, ctx).data)
        # Local midnight in Berlin, sent as UTC, is the calendar date.
        self.assertEqual(contact.birthday, datetime.date(1975, 3, 14))
        self.assertEqual(contact.anniversary, datetime.date(2004, 6, 20))
        self.assertEqual(contact.business_address.street, "742 Evergreen Terrace\nSuite 5")
        self.assertEqual(contact.company_name, "Acme; Inc")
        self.assertEqual(contact.children, CHILDREN)
        self.assertEqual(contact.categories, CATEGORIES)
        self.assertEqual(contact.picture, base64.b64decode(PICTURE))
        self.assertEqual(contact.display_name, "Dr. John Q Doe III")

    def test_output_encodes_and_is_in_code_page_order(self) -> None:
        ctx = CodecContext("16.1")
        data = self.codec.from_eas(application_data(), None, ctx).data
        app = self.codec.to_eas(data, ctx)
        again = decode(encode(app))
        self.assertEqual([c.tag for c in again.children], [c.tag for c in app.children])
        contacts = [c.tag for c in app.children if c.tag.startswith("Contacts:")]
        tokens = [TOKEN_BY_TAG[t][1] for t in contacts]
        self.assertEqual(tokens, sorted(tokens))
        contacts2 = [i for i, c in enumerate(app.children) if c.tag.startswith("Contacts2:")]
        self.assertGreater(min(contacts2), max(app.children.index(c) for c in app.children
                                               if c.tag.startswith("Contacts:")))

    def test_dates_without_an_exact_value_are_midnight_in_the_users_zone(self) -> None:
        data = write_vcard(parse_vcard("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nN:x;;;;\r\n"
                                       "BDAY:1980-01-02\r\nEND:VCARD\r\n"), "u")
        utc = flatten(self.codec.to_eas(data, CodecContext("14.1")))
        self.assertEqual(utc["Contacts:Birthday"], "1980-01-02T00:00:00.000Z")
        berlin = flatten(self.codec.to_eas(data, CodecContext("14.1", default_timezone="Europe/Berlin")))
        self.assertEqual(berlin["Contacts:Birthday"], "1980-01-01T23:00:00.000Z")
        ny = flatten(self.codec.to_eas(data, CodecContext("14.1", default_timezone="America/New_York")))
        self.assertEqual(ny["Contacts:Birthday"], "1980-01-02T05:00:00.000Z")

    def test_dates_from_devices_in_other_zones(self) -> None:
        ctx = CodecContext("14.1")
        for sent, expected in [("1980-01-02T05:00:00.000Z", datetime.date(1980, 1, 2)),
                               ("1980-01-01T23:00:00Z", datetime.date(1980, 1, 2)),
                               ("1980-01-02T00:00:00.000Z", datetime.date(1980, 1, 2)),
                               ("1980-01-02T11:59:00.000Z", datetime.date(1980, 1, 2)),
                               ("19800102T000000Z", datetime.date(1980, 1, 2))]:
            data = self.codec.from_eas(application_data(fields=[("Contacts:Birthday", sent)]),
                                       None, ctx).data
            self.assertEqual(parse_vcard(data).birthday, expected, sent)
            self.assertEqual(flatten(self.codec.to_eas(data, ctx))["Contacts:Birthday"], sent)

    def test_email_with_display_name(self) -> None:
        data = self.codec.from_eas(application_data(fields=[
            ("Contacts:Email1Address", '"John Doe" <john@example.com>')]), None,
            CodecContext("14.1")).data
        self.assertEqual(parse_vcard(data).email1_address, "john@example.com")

    def test_bad_input(self) -> None:
        ctx = CodecContext("14.1")
        self.assertRaises(CodecError, self.codec.from_eas, application_data(
            fields=[("Contacts:Birthday", "yesterday")]), None, ctx)
        self.assertRaises(CodecError, self.codec.from_eas, application_data(
            fields=[("Contacts:Picture", "!!!not base64")]), None, ctx)
        self.assertRaises(CodecError, self.codec.from_eas, application_data(
            fields=[("Contacts:Picture", "A" * (48 * 1024 + 4))]), None, ctx)
        self.assertRaises(CodecError, self.codec.to_eas, "garbage", ctx)

    def test_in_filter(self) -> None:
        self.assertTrue(self.codec.in_filter("", 5, 0.0))
        self.assertEqual(self.codec.eas_class, "Contacts")


class DateRoundTripTests(TestCase):
    """Birthday and Anniversary from a device come back to it unchanged
    (device -> server -> device, then an unchanged Change) at every version:
    the exact dateTime rides in a quoted X-EAS-TIME parameter."""

    codec = ContactsCodec()
    #: (sent by the device, its date in the user's zone) -- not midnight
    #: there, so the exact value must be kept in the vCard.
    DATES = [("Contacts:Birthday", "2001-06-01T22:00:00.000Z", datetime.date(2001, 6, 2)),
             ("Contacts:Anniversary", "1999-12-31T23:00:00.000Z", datetime.date(2000, 1, 1))]

    def test_every_version(self) -> None:
        for version in ("2.5", "12.0", "14.1", "16.1"):
            ctx = CodecContext(version, default_timezone="America/New_York")
            app = application_data(version, fields=[(t, s) for t, s, _ in self.DATES])
            stored = self.codec.from_eas(decode(encode(app)), None, ctx).data
            self.assertIn('X-EAS-TIME="2001-06-01T22:00:00.000Z":2001-06-02', stored)
            self.assertIn('X-EAS-TIME="1999-12-31T23:00:00.000Z":2000-01-01', stored)
            contact = parse_vcard(stored)
            self.assertEqual((contact.birthday, contact.anniversary),
                             (self.DATES[0][2], self.DATES[1][2]), version)
            self.assertEqual(contact.extra, [], version)
            # Written again by the server (an export, an admin edit).
            stored = write_vcard(contact, contact.uid or "u")
            out = flatten(self.codec.to_eas(stored, ctx))
            for tag, sent, _ in self.DATES:
                self.assertEqual(out[tag], sent, (version, tag))
            # The device sends it back unchanged.
            back = self.codec.from_eas(decode(encode(self.codec.to_eas(stored, ctx))),
                                       stored, ctx).data
            again = flatten(self.codec.to_eas(back, ctx))
            for tag, sent, _ in self.DATES:
                self.assertEqual(again[tag], sent, (version, tag))

    def test_stored_in_the_unquoted_form(self) -> None:
        """A vCard whose X-EAS-TIME is not quoted still gives the dates."""
        stored = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nFN:x\r\nN:x;;;;\r\n"
                  "BDAY;X-EAS-TIME=2001-06-01T22:00:00.000Z:2001-06-02\r\n"
                  "X-ANNIVERSARY;X-EAS-TIME=1999-12-31T23:00:00.000Z:2000-01-01\r\n"
                  "END:VCARD\r\n")
        out = flatten(self.codec.to_eas(stored, CodecContext("14.1")))
        for tag, sent, _ in self.DATES:
            self.assertEqual(out[tag], sent, tag)

    def test_stored_org_lines_vobject_cannot_write(self) -> None:
        stored = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nORG:\r\nORG:,0\r\nEND:VCARD\r\n"
        ctx = CodecContext("14.1")
        out = flatten(self.codec.to_eas(stored, ctx))  # readable now: kept verbatim
        self.assertNotIn("Contacts:CompanyName", out)
        data = self.codec.from_eas(self.codec.to_eas(stored, ctx), stored, ctx).data
        self.assertIn("ORG:,0", data)
        self.assertRaises(CodecError, self.codec.to_eas, "BEGIN:VCARD\r\nEND:VCALENDAR\r\n",
                          ctx)


class FixtureRoundTripTests(TestCase):
    """vCard exports -> device -> unchanged Change -> vCard keep everything."""

    codec = ContactsCodec()

    def test_every_fixture(self) -> None:
        for path in sorted(FIXTURES.glob("*.vcf")):
            for contact in parse_vcards(path.read_text(encoding="utf-8")):
                stored = write_vcard(contact, contact.uid or "uid-x")
                for version in ("2.5", "12.1", "16.1"):
                    ctx = CodecContext(version)
                    app = self.codec.to_eas(stored, ctx)
                    # The device sends back what it got (a Change with no edits).
                    back = self.codec.from_eas(decode(encode(app)), stored, ctx)
                    before, after = parse_vcard(stored), parse_vcard(back.data)
                    for name in before.__dataclass_fields__:
                        if name in ("sources", "extra"):
                            continue
                        self.assertEqual(getattr(before, name), getattr(after, name),
                                         (path.name, version, name))
                    self.assertEqual(sorted(before.extra), sorted(after.extra))
                    self.assertEqual(back.uid, contact.uid or "uid-x")

    def test_an_edit_keeps_unknown_properties(self) -> None:
        stored = (FIXTURES / "apple_contacts.vcf").read_text(encoding="utf-8")
        ctx = CodecContext("16.1")
        app = self.codec.to_eas(stored, ctx)
        for child in app.children:
            if child.tag == "Contacts:JobTitle":
                child.text = "Head Gardener"
        data = self.codec.from_eas(app, stored, ctx).data
        self.assertIn("TITLE:Head Gardener", data)
        self.assertIn("X-ABUID:5C0F0B8E-1D2A-4C3B-9E8F-0123456789AB:ABPerson", data)
        self.assertIn("item6.X-ABRELATEDNAMES;TYPE=pref:Jane Appleseed", data)
        self.assertIn("item1.EMAIL;TYPE=INTERNET,WORK,pref:johnny@apple.example", data)
        self.assertIn("FN:Dr. Johnny Q. Appleseed Jr.", data)


class GhostingTests(TestCase):
    """Change semantics (MS-ASCMD Change, Supported)."""

    codec = ContactsCodec()

    def stored(self) -> str:
        return self.codec.from_eas(application_data(), None, CodecContext("16.1")).data

    def change(self, fields: list[tuple[str, str]], ctx: CodecContext,
               body: str | None = None) -> Element:
        app = Element("AirSync:ApplicationData")
        for tag, text in fields:
            app.add(tag, text)
        if body is not None:
            element = app.add("AirSyncBase:Body")
            element.add("AirSyncBase:Type", "1")
            element.add("AirSyncBase:Data", body)
        return app

    def test_without_supported_missing_fields_are_cleared(self) -> None:
        ctx = CodecContext("16.1")
        app = self.change([("Contacts:FirstName", "Johnny"), ("Contacts:LastName", "Doe")],
                          ctx, body="new")
        contact = parse_vcard(self.codec.from_eas(app, self.stored(), ctx).data)
        self.assertEqual((contact.first_name, contact.last_name), ("Johnny", "Doe"))
        self.assertEqual(contact.body, "new")
        self.assertEqual(contact.mobile_phone_number, "")
        self.assertEqual(contact.nickname, "")
        self.assertEqual(contact.categories, [])
        self.assertEqual(contact.children, [])
        self.assertIsNone(contact.picture)
        self.assertIsNone(contact.birthday)
        self.assertTrue(contact.business_address.is_empty())
        self.assertEqual(contact.display_name, "Johnny Doe")

    def test_with_supported_unsupported_fields_are_kept(self) -> None:
        supported = frozenset(["Contacts:FirstName", "Contacts:LastName",
                               "Contacts:MobilePhoneNumber", "Contacts:Categories",
                               "Contacts:BusinessAddressCity"])
        ctx = CodecContext("16.1", supported=supported)
        app = self.change([("Contacts:FirstName", "Johnny"), ("Contacts:LastName", "Doe")], ctx)
        contact = parse_vcard(self.codec.from_eas(app, self.stored(), ctx).data)
        self.assertEqual(contact.first_name, "Johnny")
        # Supported but not sent: cleared.
        self.assertEqual(contact.mobile_phone_number, "")
        self.assertEqual(contact.categories, [])
        self.assertEqual(contact.business_address.city, "")
        # Not supported: ghosted, kept.
        self.assertEqual(contact.business_address.street, "742 Evergreen Terrace\nSuite 5")
        self.assertEqual(contact.nickname, "Johnny")
        self.assertEqual(contact.children, CHILDREN)
        self.assertEqual(contact.picture, base64.b64decode(PICTURE))
        self.assertEqual(contact.birthday, datetime.date(1975, 3, 14))
        self.assertEqual(contact.body, BODY)

    def test_empty_supported_keeps_everything_not_sent(self) -> None:
        ctx = CodecContext("16.1", supported=frozenset())
        app = self.change([("Contacts2:NickName", "JD")], ctx)
        stored = self.stored()
        contact = parse_vcard(self.codec.from_eas(app, stored, ctx).data)
        expected = parse_vcard(stored)
        expected.nickname = "JD"
        for name in expected.__dataclass_fields__:
            if name != "sources":
                self.assertEqual(getattr(contact, name), getattr(expected, name), name)

    def test_a_body_the_device_got_truncated_is_kept(self) -> None:
        ctx = CodecContext("16.1", (BodyPreference(1, truncation_size=5),))
        app = self.change([("Contacts:FirstName", "J")], ctx)
        contact = parse_vcard(self.codec.from_eas(app, self.stored(), ctx).data)
        self.assertEqual(contact.body, BODY)
        whole = CodecContext("16.1", (BodyPreference(1, truncation_size=5000),))
        contact = parse_vcard(self.codec.from_eas(app, self.stored(), whole).data)
        self.assertEqual(contact.body, "")

    def test_legacy_body_kept_when_truncated_cleared_when_whole(self) -> None:
        stored = self.stored()
        app = self.change([("Contacts:FirstName", "J")], CodecContext("2.5"))
        cut = CodecContext("2.5", truncation=0)
        self.assertEqual(parse_vcard(self.codec.from_eas(app, stored, cut).data).body, BODY)
        whole = CodecContext("2.5")
        self.assertEqual(parse_vcard(self.codec.from_eas(app, stored, whole).data).body, "")
        app.add("Contacts:Body", "old style")
        self.assertEqual(parse_vcard(self.codec.from_eas(app, stored, whole).data).body,
                         "old style")

    def test_a_picture_too_large_to_send_is_kept(self) -> None:
        contact = parse_vcard(self.stored())
        contact.picture = b"\xff\xd8" + b"x" * 40000
        stored = write_vcard(contact, "u")
        ctx = CodecContext("16.1")
        self.assertNotIn("Contacts:Picture", flatten(self.codec.to_eas(stored, ctx)))
        app = self.change([("Contacts:FirstName", "J")], ctx)
        self.assertEqual(parse_vcard(self.codec.from_eas(app, stored, ctx).data).picture,
                         contact.picture)

    def test_an_empty_element_clears(self) -> None:
        ctx = CodecContext("16.1", supported=frozenset())
        app = self.change([("Contacts:Picture", ""), ("Contacts:Birthday", "")], ctx)
        app.add("Contacts:Categories")
        contact = parse_vcard(self.codec.from_eas(app, self.stored(), ctx).data)
        self.assertIsNone(contact.picture)
        self.assertIsNone(contact.birthday)
        self.assertEqual(contact.categories, [])
        self.assertEqual(contact.children, CHILDREN)


class VersionTests(TestCase):
    """What differs between 2.5, 12.1 and 16.1 output."""

    codec = ContactsCodec()

    def stored(self) -> str:
        return self.codec.from_eas(application_data(), None, CodecContext("16.1")).data

    def test_2_5_uses_the_contacts_body(self) -> None:
        out = flatten(self.codec.to_eas(self.stored(), CodecContext("2.5", truncation=1)))
        self.assertEqual(out["Contacts:Body"], BODY)
        self.assertEqual(out["Contacts:BodyTruncated"], "0")
        self.assertNotIn("AirSyncBase:Body", out)
        self.assertIn("Contacts2:NickName", out)
        self.assertIn("Contacts:Picture", out)

    def test_12_1_uses_airsyncbase_without_preview(self) -> None:
        ctx = CodecContext("12.1", (BodyPreference(1, truncation_size=5, preview=10),))
        out = flatten(self.codec.to_eas(self.stored(), ctx))
        self.assertNotIn("Contacts:Body", out)
        body = dict(out["AirSyncBase:Body"])  # type: ignore[call-overload]
        self.assertEqual(body["AirSyncBase:Data"], "Notes")
        self.assertEqual(body["AirSyncBase:Truncated"], "1")
        self.assertNotIn("AirSyncBase:Preview", body)

    def test_16_1_has_preview_and_never_search_only_fields(self) -> None:
        ctx = CodecContext("16.1", (BodyPreference(1, truncation_size=5, preview=10),))
        out = flatten(self.codec.to_eas(self.stored(), ctx))
        body = dict(out["AirSyncBase:Body"])  # type: ignore[call-overload]
        self.assertEqual(body["AirSyncBase:Preview"], "Notes line")
        self.assertNotIn("Contacts:Alias", out)
        self.assertNotIn("Contacts:WeightedRank", out)

    def test_2_5_device_body_is_read(self) -> None:
        ctx = CodecContext("2.5")
        data = self.codec.from_eas(application_data("2.5"), None, ctx).data
        self.assertEqual(parse_vcard(data).body, BODY)
