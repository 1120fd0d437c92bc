"""Tests for easyncd.backends.groupware.vobj.vcard with hand-written exports."""
from __future__ import annotations

import datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from easyncd.backends.groupware.contact import Address, Contact
from easyncd.backends.groupware.vobj import VCardError, parse_vcard, parse_vcards, write_vcard

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vcard"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def same_contact(test: TestCase, first: Contact, second: Contact) -> None:
    """Every field equal; extra lines equal as a multiset."""
    for name in first.__dataclass_fields__:
        if name in ("sources", "extra"):
            continue
        test.assertEqual(getattr(first, name), getattr(second, name), name)
    test.assertEqual(sorted(first.extra), sorted(second.extra))


class FixtureTests(TestCase):
    """Real-world exports read right and survive a write."""

    def test_apple(self) -> None:
        c = parse_vcard(fixture("apple_contacts.vcf"))
        self.assertEqual((c.title, c.first_name, c.middle_name, c.last_name, c.suffix),
                         ("Dr.", "Johnny", "Q.", "Appleseed", "Jr."))
        self.assertEqual((c.company_name, c.department, c.job_title),
                         ("Apple Inc.", "Orchards", "Chief Planter"))
        self.assertEqual((c.yomi_first_name, c.yomi_last_name), ("jonni", "apulsiido"))
        self.assertEqual(c.email1_address, "johnny@apple.example")
        self.assertEqual(c.email2_address, "johnny@home.example")
        self.assertEqual(c.mobile_phone_number, "+1 (408) 555-0101")
        self.assertEqual(c.company_main_phone, "+1 408 555 0000")
        self.assertEqual(c.business_fax_number, "+1 408 555 0104")
        self.assertEqual(c.pager_number, "+1 408 555 0105")
        self.assertEqual(c.business_address.street, "1 Infinite Loop\nBuilding 4")
        self.assertEqual(c.home_address.city, "Sebastopol")
        self.assertEqual(c.web_page, "https://apple.example/johnny")
        self.assertEqual(c.birthday, datetime.date(1604, 9, 26))
        self.assertEqual(c.im_address, "xmpp:johnny@jabber.example")
        self.assertEqual(c.categories, ["Friends", "Gardening"])
        self.assertTrue(c.picture and c.picture.startswith(b"\xff\xd8"))
        self.assertEqual(c.uid, "5C0F0B8E-1D2A-4C3B-9E8F-0123456789AB")
        # The second iPhone number and Apple's labels are kept verbatim.
        self.assertIn("TEL;TYPE=IPHONE,CELL,VOICE:+1 (408) 555-0199", c.extra)
        self.assertIn("item6.X-ABRELATEDNAMES;TYPE=pref:Jane Appleseed", c.extra)

    def test_google_many_cards(self) -> None:
        maria, bob = parse_vcards(fixture("google_contacts.vcf"))
        self.assertEqual((maria.email1_address, maria.email2_address, maria.email3_address),
                         ("maria@gmail.example", "maria@corp.example", "maria.g@other.example"))
        self.assertIn("EMAIL;TYPE=INTERNET:fourth@other.example", maria.extra)
        self.assertEqual(maria.home_phone_number, "+34 910 000 002")
        # An untyped number fills the first free slot after the typed ones.
        self.assertEqual(maria.business_phone_number, "+34 910 000 003")
        self.assertEqual(maria.home_address.street, "Calle Mayor 1\n2º izq")
        self.assertEqual(bob.first_name, "Bob")
        self.assertEqual(bob.business_phone_number, "+1 212 555 0100")

    def test_thunderbird_vcard4(self) -> None:
        c = parse_vcard(fixture("thunderbird.vcf"))
        self.assertEqual(c.birthday, datetime.date(1975, 7, 4))
        self.assertEqual(c.department, "Vertrieb")
        self.assertIn("X-CUSTOM1:Kundennummer 4711", c.extra)

    def test_nextcloud(self) -> None:
        c = parse_vcard(fixture("nextcloud_davx5.vcf"))
        self.assertEqual((c.spouse, c.manager_name, c.assistant_name),
                         ("Zhang Min", "Boss Person", "Helper Person"))
        self.assertEqual(c.anniversary, datetime.date(2010, 10, 10))
        self.assertEqual(c.im_address, "liwei@chat.example")
        self.assertEqual(c.nickname, "Wei")
        self.assertEqual(c.home_phone_number, "+86 10 1111 2222")

    def test_outlook_21_quoted_printable(self) -> None:
        c = parse_vcard(fixture("outlook_21.vcf"))
        self.assertEqual((c.first_name, c.last_name), ("Jürgen", "Schröder"))
        self.assertEqual(c.job_title, "Einkäufer")
        self.assertEqual(c.body, "Erste Zeile\nZweite Zeile mit ümlaut und einem sehr "
                                 "langen Text der umgebrochen wird.")
        self.assertEqual(c.business_address,
                         Address(street="Hauptstraße 1\nHinterhaus", city="München",
                                 state="Bayern", postal_code="80331", country="Deutschland"))
        self.assertEqual((c.business_phone_number, c.home_phone_number,
                          c.mobile_phone_number, c.business_fax_number),
                         ("+49 89 123456", "+49 89 654321", "+49 171 5550000", "+49 89 123457"))
        self.assertEqual(c.anniversary, datetime.date(1995, 5, 20))
        self.assertEqual((c.spouse, c.manager_name), ("Anna", "Dr. Boss"))
        self.assertEqual(c.im_address, "juergen@im.contoso.example")

    def test_every_fixture_survives_a_write(self) -> None:
        for path in sorted(FIXTURES.glob("*.vcf")):
            for contact in parse_vcards(path.read_text(encoding="utf-8")):
                text = write_vcard(contact, contact.uid or "fixed-uid")
                self.assertIn("VERSION:3.0", text)
                again = parse_vcard(text)
                self.assertEqual(again.uid, contact.uid or "fixed-uid")
                again.uid = contact.uid
                same_contact(self, contact, again)
                # Parameters and groups of mapped properties survive too.
                for key, source in contact.sources.items():
                    self.assertEqual(again.sources[key].group, source.group, (path, key))
                    self.assertEqual(dict(again.sources[key].params), dict(source.params),
                                     (path, key))


class WriteTests(TestCase):
    """What write_vcard produces for contacts that come from EAS."""

    def test_full_contact(self) -> None:
        c = Contact(first_name="Ann", last_name="Lee", file_as="Lee, Ann",
                    birthday=datetime.date(1980, 4, 3),
                    birthday_eas="1980-04-02T22:00:00.000Z",
                    anniversary=datetime.date(2005, 1, 1), children=["Kim", "Sam, Jr."],
                    categories=["A", "B,C"], picture=b"\x89PNG\r\n\x1a\nxx",
                    mms="+1 5", radio_phone_number="+1 6", body="line1\nline2",
                    other_address=Address(street="1 St\n2nd floor", country="X"))
        text = write_vcard(c, "uid-1")
        self.assertIn("PHOTO;ENCODING=b;TYPE=PNG:", text)
        self.assertIn('BDAY;X-EAS-TIME="1980-04-02T22:00:00.000Z":1980-04-03', text)
        self.assertIn("X-ANNIVERSARY:2005-01-01", text)
        self.assertIn("X-FILE-AS:Lee\\, Ann", text)
        self.assertIn("FN:Ann Lee", text)
        again = parse_vcard(text)
        again.uid = None
        self.assertEqual(again.display_name, "Ann Lee")
        again.display_name = ""
        same_contact(self, c, again)

    def test_file_as_equal_to_fn_is_not_repeated(self) -> None:
        text = write_vcard(Contact(first_name="Ann", file_as="Ann"), "u")
        self.assertNotIn("X-FILE-AS", text)

    def test_garbage(self) -> None:
        self.assertRaises(VCardError, parse_vcard, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        self.assertRaises(VCardError, parse_vcard, "not a vcard at all")


def _card(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCARD", "VERSION:3.0", "FN:x", *lines, "END:VCARD", ""])


#: A line that sends the card through vobject (the fast reader declines it).
_SLOW = "X-UNKNOWN:kept"


class EasTimeTests(TestCase):
    """The exact EAS dateTime of BDAY / X-ANNIVERSARY (an X-EAS-TIME
    parameter with ':' in it) survives a write and a read on both readers."""

    contact = Contact(first_name="A", birthday=datetime.date(2001, 6, 2),
                      birthday_eas="2001-06-01T22:00:00.000Z",
                      anniversary=datetime.date(2010, 1, 1),
                      anniversary_eas="2009-12-31T23:00:00.000Z")

    def check(self, contact: Contact) -> None:
        self.assertEqual(contact.birthday, datetime.date(2001, 6, 2))
        self.assertEqual(contact.birthday_eas, "2001-06-01T22:00:00.000Z")
        self.assertEqual(contact.anniversary, datetime.date(2010, 1, 1))
        self.assertEqual(contact.anniversary_eas, "2009-12-31T23:00:00.000Z")
        self.assertEqual([line for line in contact.extra if line != _SLOW], [])

    def test_written_quoted(self) -> None:
        text = write_vcard(self.contact, "u")
        self.assertIn('\r\nBDAY;X-EAS-TIME="2001-06-01T22:00:00.000Z":2001-06-02\r\n', text)
        self.assertIn('\r\nX-ANNIVERSARY;X-EAS-TIME="2009-12-31T23:00:00.000Z":2010-01-01\r\n',
                      text)
        self.check(parse_vcard(text))
        self.check(parse_vcard(text.replace("END:VCARD", _SLOW + "\r\nEND:VCARD")))
        self.check(parse_vcards(text + text)[1])

    def test_kept_source_parameters_are_quoted_too(self) -> None:
        text = write_vcard(parse_vcard(_card(
            'BDAY;VALUE=date;X-A="a:b;c":2001-06-02')), "u")
        self.assertIn('BDAY;VALUE=date;X-A="a:b;c":2001-06-02', text)
        contact = parse_vcard(text)
        self.assertEqual(contact.birthday, datetime.date(2001, 6, 2))
        self.assertEqual(dict(contact.sources["birthday"].params),
                         {"VALUE": ("date",), "X-A": ("a:b;c",)})

    def test_unquoted_form_is_read(self) -> None:
        """Text with the dateTime unquoted (not RFC 6350 / 2426: the first ':'
        ends the parameters) is read as meant: the dateTime has a fixed
        shape, so the reader quotes it before splitting the line."""
        lines = ["BDAY;X-EAS-TIME=2001-06-01T22:00:00.000Z:2001-06-02",
                 "X-ANNIVERSARY;VALUE=date;X-EAS-TIME=2009-12-31T23:00:00.000Z:20100101"]
        self.check(parse_vcard(_card(*lines)))
        self.check(parse_vcard(_card(*lines, _SLOW)))
        folded = _card("BDAY;X-EAS-TIME=2001-06-01T2\r\n 2:00:00.000Z:2001-06-02", lines[1])
        self.check(parse_vcard(folded))
        self.check(parse_vcards(_card(*lines, _SLOW) * 2)[1])
        # A NOTE that merely contains the text is left alone.
        note = parse_vcard(_card("NOTE:a;X-EAS-TIME=2001-06-01T22:00:00Z:b"))
        self.assertEqual(note.body, "a;X-EAS-TIME=2001-06-01T22:00:00Z:b")
        # Written back, the dateTime is quoted.
        text = write_vcard(parse_vcard(_card(*lines)), "u")
        self.assertIn('BDAY;X-EAS-TIME="2001-06-01T22:00:00.000Z":2001-06-02', text)


class ErrorTests(TestCase):
    """Only VCardError ever leaves the module."""

    def test_second_org_with_a_comma(self) -> None:
        # Found by hypothesis: vobject raised NativeError writing ORG:,0 back.
        contact = parse_vcard(_card("ORG:", "ORG:,0"))
        self.assertEqual((contact.company_name, contact.department), ("", ""))
        self.assertEqual(contact.extra, ["ORG:,0"])
        self.assertEqual(parse_vcard(write_vcard(contact, "u")).company_name, ",0")
        self.assertEqual(len(parse_vcards(_card("ORG:", "ORG:,0") * 2)), 2)

    def test_unescaped_commas_in_org_are_literal(self) -> None:
        contact = parse_vcard(_card("ORG:A,B;C,D"))
        self.assertEqual((contact.company_name, contact.department), ("A,B", "C,D"))
        self.assertIn("ORG:A\\,B;C\\,D", write_vcard(contact, "u"))

    def test_vobject_errors(self) -> None:
        for text in ["BEGIN:VCARD\r\nVERSION:3.0\r\nBDAY;VALUE=x\r\nEND:VCARD\r\n",
                     "BEGIN:VCARD\r\nEND:VCALENDAR\r\n",
                     _card("PHOTO;ENCODING=b:!!!"),
                     _card('TEL;TYPE="unterminated:1')]:
            try:
                parse_vcard(text)
            except VCardError:
                pass
        self.assertRaises(VCardError, write_vcard,
                          Contact(first_name="A", birthday=datetime.date(2001, 6, 2),
                                  birthday_eas='bad"quote'), "u")

    @settings(max_examples=400, deadline=None)
    @given(st.lists(st.tuples(
        st.sampled_from(["ORG", "N", "ADR", "FN", "BDAY", "X-ANNIVERSARY", "CATEGORIES",
                         "TEL", "EMAIL", "PHOTO", "NOTE", "X-CHILD", "X-OTHER", "item1.ORG"]),
        st.text(";:,=\\\"0aZ ", max_size=8),
        st.text(";:,\\\"0aZ-T ", max_size=10)), max_size=6))
    def test_anything_raises_only_vcard_error(self, lines: list[tuple[str, str, str]]
                                              ) -> None:
        text = _card(*(name + (";" + params if params else "") + ":" + value
                       for name, params, value in lines))
        for read in (parse_vcard, lambda t: parse_vcards(t)[0]):
            try:
                contact = read(text)
            except VCardError:
                continue
            try:
                written = write_vcard(contact, "u")
            except VCardError:
                continue
            parse_vcard(written)  # what we write, we read
