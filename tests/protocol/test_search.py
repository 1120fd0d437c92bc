"""Tests for Search (Store Mailbox/GAL/DocumentLibrary) with a fake mail backend.

The fake answers like :class:`IMAPMailBackend`: ``search`` gives SearchHits
newest first, ``fetch_messages`` answers the FETCH items it is asked for
from messages recorded from Dovecot (tests/fixtures/mail), partial fetches
included, and remembers every call so the tests can check that only the
page's messages and only the planned sections are fetched.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.mail.imap4 import parseNestedParens
from twisted.trial.unittest import TestCase

from easyncd.backends.imap.client import FetchedMessage
from easyncd.backends.interfaces import (
    MailAuthFailed,
    MailBackendUnavailable,
    MailQuery,
    NoSuchMailbox,
    SearchHit,
)
from easyncd.protocol.commands.search import SearchCommand, parse_mailbox_query
from easyncd.protocol.context import CommandResponse
from easyncd.protocol.mailsearch import QueryError, free_text_words, parse_range, split_result_id
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_context, result_of

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mail")
_PARTIAL = re.compile(r"^BODY\.PEEK\[([^\]]*)\](?:<0\.(\d+)>)?$")


@dataclass
class StoredMessage:
    """One message of the fake: a recorded fixture, its date and flags."""

    fixture: str
    internaldate: datetime
    flags: frozenset[str] = frozenset({"\\Seen"})

    def raw(self) -> dict[str, Any]:
        with open(os.path.join(FIXTURES, self.fixture + ".imap.json"), encoding="ascii") as f:
            return json.load(f)  # type: ignore[no-any-return]


class FakeMail:
    """A fake IMailBackend: the parts Search and Find use."""

    def __init__(self) -> None:
        self.boxes: dict[str, dict[int, StoredMessage]] = {}
        self.searches: list[MailQuery] = []
        self.fetches: list[tuple[str, list[int], list[str]]] = []
        self.search_error: Exception | None = None
        self.passwords: list[str] = []
        #: UIDs whose FETCH answers carry nothing (a message the codec cannot render).
        self.blank: set[int] = set()

    def add(self, mailbox: str, uid: int, fixture: str, when: datetime,
            flags: Sequence[str] = ("\\Seen",)) -> None:
        self.boxes.setdefault(mailbox, {})[uid] = StoredMessage(fixture, when, frozenset(flags))

    def search(self, user: str, password: str, query: MailQuery,
               limit: int | None = None) -> "Deferred[list[SearchHit]]":
        self.searches.append(query)
        self.passwords.append(password)
        if self.search_error is not None:
            return fail(self.search_error)
        hits = []
        for box in query.mailboxes or list(self.boxes):
            if box not in self.boxes:
                return fail(NoSuchMailbox(box))
            for uid, message in self.boxes[box].items():
                text = message.raw()["sections"][""].lower()
                if any(word.lower() not in text for word in (query.text or "").split()):
                    continue
                if query.since is not None and message.internaldate < query.since:
                    continue
                if query.before is not None and message.internaldate >= query.before:
                    continue
                hits.append(SearchHit(box, uid, message.internaldate))
        hits.sort(key=lambda h: (h.internaldate, h.uid), reverse=True)
        return succeed(hits[:limit] if limit is not None else hits)

    def fetch_messages(self, user: str, password: str, mailbox: str, uids: Sequence[int],
                       items: Sequence[str]) -> "Deferred[list[FetchedMessage]]":
        self.fetches.append((mailbox, list(uids), list(items)))
        out = []
        for uid in uids:
            message = self.boxes.get(mailbox, {}).get(uid)
            if message is None:
                continue
            raw = message.raw()
            fetched = FetchedMessage(uid=uid)
            for item in items if uid not in self.blank else ():
                if item == "FLAGS":
                    fetched.flags = message.flags
                elif item == "INTERNALDATE":
                    fetched.internaldate = message.internaldate
                elif item == "RFC822.SIZE":
                    fetched.size = int(raw["size"])
                elif item == "BODYSTRUCTURE":
                    fetched.bodystructure = parseNestedParens(
                        raw["bodystructure"].encode("latin-1"))[0]
                else:
                    match = _PARTIAL.match(item)
                    assert match, item
                    section, limit = match.group(1), match.group(2)
                    data = raw["sections"][section].encode("latin-1")
                    if limit is None:
                        fetched.sections[section] = data
                    else:
                        fetched.sections[f"{section}<0>"] = data[:int(limit)]
            out.append(fetched)
        return succeed(out)


def when(day: int) -> datetime:
    return datetime(2023, 11, day, 9, 0, tzinfo=timezone.utc)


class Harness:
    """A memory store with mail folders and a fake mail backend."""

    def __init__(self) -> None:
        self.store = MemoryStateStore()
        self.mail = FakeMail()
        self.ids: dict[str, str] = {}
        for name, parent, ftype in (("INBOX", None, 2), ("Archive", None, 12),
                                    ("Archive/2023", "Archive", 12), ("Sent", None, 5)):
            parent_id = self.ids[parent] if parent else "0"
            folder = result_of(self.store.add_folder("alice", parent_id, name.split("/")[-1],
                                                     ftype, "imap:" + name))
            self.ids[name] = folder.server_id
        contacts = result_of(self.store.add_folder("alice", "0", "Contacts", 9,
                                                   "groupware:contacts:default"))
        self.ids["Contacts"] = contacts.server_id
        self.mail.add("INBOX", 1, "plain", when(14))
        self.mail.add("INBOX", 2, "alternative", when(15), flags=())
        self.mail.add("INBOX", 3, "mixed_attachments", when(16))
        self.mail.add("Archive", 7, "html_only", when(10))
        self.mail.add("Archive/2023", 4, "latin1", when(12))
        self.mail.add("Sent", 9, "forwarded", when(17))

    def run(self, body: Element | bytes, version: str = "16.1",
            services: dict[str, Any] | None = None, password: str | None = "pw") -> Element:
        ctx = make_context(self.store, "Search", version,
                           services={"mail": self.mail} if services is None else services)
        ctx.password = password
        if isinstance(body, Element):
            body = encode(body)
        response: CommandResponse = result_of(SearchCommand().run(ctx, decode(body)))
        assert response.body is not None
        # Every answer must survive WBXML.
        return decode(encode(response.body))


def mailbox_search(*conditions: Element, range_text: str | None = "0-9", deep: bool = False,
                   body_type: int | None = None, truncation: int | None = None,
                   name: str = "Mailbox") -> Element:
    root = Element("Search:Search")
    store = root.add("Search:Store")
    store.add("Search:Name", name)
    query = store.add("Search:Query")
    query.add("Search:And").children.extend(conditions)
    options = store.add("Search:Options")
    if range_text is not None:
        options.add("Search:Range", range_text)
    if deep:
        options.add("Search:DeepTraversal")
    options.add("Search:RebuildResults")
    if body_type is not None:
        pref = options.add("AirSyncBase:BodyPreference")
        pref.add("AirSyncBase:Type", str(body_type))
        if truncation is not None:
            pref.add("AirSyncBase:TruncationSize", str(truncation))
    return root


def cls(value: str = "Email") -> Element:
    return Element("AirSync:Class", value)


def folder(server_id: str) -> Element:
    return Element("AirSync:CollectionId", server_id)


def text(value: str) -> Element:
    return Element("Search:FreeText", value)


def date_bound(tag: str, value: str) -> Element:
    element = Element("Search:" + tag)
    element.add("Email:DateReceived")
    element.add("Search:Value", value)
    return element


def store_of(answer: Element) -> Element:
    assert answer.findtext("Search:Status") == "1", answer.to_xml()
    store = answer.find("Search:Response/Search:Store")
    assert store is not None, answer.to_xml()
    return store


def subjects(store: Element) -> list[str]:
    return [r.findtext("Search:Properties/Email:Subject") or ""
            for r in store.findall("Search:Result") if r.children]


class ParsingTests(TestCase):
    """The query parts."""

    def test_range(self) -> None:
        self.assertEqual(parse_range(None), (0, 99))
        self.assertEqual(parse_range("5-9"), (5, 9))
        self.assertEqual(parse_range("0-500"), (0, 99))
        for bad in ("9-5", "x", "1-", "-3"):
            with self.assertRaises(QueryError):
                parse_range(bad)
        with self.assertRaises(QueryError):
            parse_range("1-4", must_start_at_zero=True)

    def test_free_text(self) -> None:
        self.assertEqual(free_text_words('"quarterly numbers" AND subject:report'),
                         "quarterly numbers report")
        self.assertIsNone(free_text_words("  "))
        with self.assertRaises(QueryError):
            free_text_words("a OR b")

    def test_query_needs_text_or_dates(self) -> None:
        query = Element("Search:Query")
        query.add("Search:And").children.extend([cls(), folder("1")])
        with self.assertRaises(QueryError) as caught:
            parse_mailbox_query(query)
        self.assertEqual(caught.exception.reason, "invalid")

    def test_dates(self) -> None:
        query = Element("Search:Query")
        query.add("Search:And").children.extend([
            date_bound("GreaterThan", "2023-11-12T00:00:00.000Z"),
            date_bound("LessThan", "2023-11-16T00:00:00.000Z")])
        parsed = parse_mailbox_query(query)
        assert parsed.since is not None and parsed.before is not None
        self.assertEqual(parsed.before, datetime(2023, 11, 16, tzinfo=timezone.utc))
        self.assertGreater(parsed.since, datetime(2023, 11, 12, tzinfo=timezone.utc))

    def test_result_ids(self) -> None:
        self.assertEqual(split_result_id("12:345"), ("12", 345))
        self.assertIsNone(split_result_id("12:abc"))
        self.assertIsNone(split_result_id("12"))


class MailboxSearchTests(TestCase):
    """Search of the mailbox."""

    def setUp(self) -> None:
        self.h = Harness()

    def test_free_text_over_every_folder_newest_first(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("example"))))
        self.assertEqual(store.findtext("Search:Status"), "1")
        results = store.findall("Search:Result")
        total = int(store.findtext("Search:Total") or "0")
        self.assertEqual(total, len(results))
        self.assertGreaterEqual(total, 5)
        dates = [r.findtext("Search:Properties/Email:DateReceived") for r in results]
        self.assertEqual(dates, sorted(dates, reverse=True))
        first = results[0]
        self.assertEqual(first.findtext("AirSync:Class"), "Email")
        self.assertEqual(first.findtext("AirSync:CollectionId"), self.h.ids["Sent"])
        self.assertEqual(first.findtext("Search:LongId"), f"{self.h.ids['Sent']}:9")
        self.assertEqual(store.findtext("Search:Range"), f"0-{total - 1}")
        # One SEARCH per mail folder, never the groupware folder; the password passed on.
        searched = sorted(q.mailboxes[0] for q in self.h.mail.searches if q.mailboxes)
        self.assertEqual(searched, ["Archive", "Archive/2023", "INBOX", "Sent"])
        self.assertEqual(set(self.h.mail.passwords), {"pw"})

    def test_subject_words(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("quarterly NUMBERS"))))
        self.assertEqual(subjects(store), ["Fwd: Quarterly numbers", "Quarterly numbers"])
        store = store_of(self.h.run(mailbox_search(cls(), text("NUMBERS quarterly"),
                                                   folder(self.h.ids["INBOX"]))))
        self.assertEqual(subjects(store), ["Quarterly numbers"])
        result = store.find("Search:Result")
        assert result is not None
        self.assertEqual(result.findtext("Search:LongId"), f"{self.h.ids['INBOX']}:1")
        props = result.find("Search:Properties")
        assert props is not None
        self.assertIsNotNone(props.find("Email:From"))
        self.assertIsNotNone(props.find("AirSyncBase:Body"))
        self.assertEqual(props.findtext("Email:Read"), "1")
        self.assertEqual(self.h.mail.searches[-1].text, "NUMBERS quarterly")
        self.assertEqual(self.h.mail.searches[-1].mailboxes, ("INBOX",))

    def test_no_match_gives_an_empty_result(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("zyxwvut-nothing"))))
        self.assertEqual(store.findtext("Search:Status"), "1")
        results = store.findall("Search:Result")
        self.assertEqual(len(results), 1)
        self.assertEqual(results[0].children, [])
        self.assertEqual(store.findtext("Search:Total"), "0")
        self.assertIsNone(store.find("Search:Range"))
        self.assertEqual(self.h.mail.fetches, [])

    def test_folder_restriction_and_deep_traversal(self) -> None:
        archive = self.h.ids["Archive"]
        shallow = store_of(self.h.run(mailbox_search(cls(), folder(archive), text("example"))))
        self.assertEqual({r.findtext("AirSync:CollectionId")
                          for r in shallow.findall("Search:Result")}, {archive})
        deep = store_of(self.h.run(mailbox_search(cls(), folder(archive), text("example"),
                                                  deep=True)))
        self.assertEqual({r.findtext("AirSync:CollectionId")
                          for r in deep.findall("Search:Result")},
                         {archive, self.h.ids["Archive/2023"]})

    def test_date_range(self) -> None:
        store = store_of(self.h.run(mailbox_search(
            cls(), text("example"),
            date_bound("GreaterThan", "2023-11-13T00:00:00.000Z"),
            date_bound("LessThan", "2023-11-16T00:00:00.000Z"))))
        dates = [r.findtext("Search:Properties/Email:DateReceived")
                 for r in store.findall("Search:Result")]
        self.assertEqual(dates, ["2023-11-15T09:00:00.000Z", "2023-11-14T09:00:00.000Z"])

    def test_date_only_query(self) -> None:
        store = store_of(self.h.run(mailbox_search(
            cls(), folder(self.h.ids["INBOX"]),
            date_bound("GreaterThan", "2023-11-15T12:00:00.000Z"))))
        self.assertEqual([r.findtext("Search:LongId") for r in store.findall("Search:Result")],
                         [f"{self.h.ids['INBOX']}:3"])

    def test_paging_fetches_only_the_page(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("example"), range_text="1-2")))
        results = store.findall("Search:Result")
        self.assertEqual(len(results), 2)
        self.assertEqual(store.findtext("Search:Range"), "1-2")
        total = int(store.findtext("Search:Total") or "0")
        self.assertGreater(total, 3)
        fetched = {(box, uid) for box, uids, _items in self.h.mail.fetches for uid in uids}
        self.assertEqual(len(fetched), 2)
        everything = store_of(self.h.run(mailbox_search(cls(), text("example"),
                                                        range_text="0-99")))
        ids = [r.findtext("Search:LongId") for r in everything.findall("Search:Result")]
        self.assertEqual([r.findtext("Search:LongId") for r in results], ids[1:3])

    def test_page_after_the_end(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("example"), range_text="50-59")))
        self.assertEqual(len(store.findall("Search:Result")), 1)
        self.assertEqual(store.find("Search:Result").children, [])  # type: ignore[union-attr]
        self.assertNotEqual(store.findtext("Search:Total"), "0")

    def test_body_preference_plans_the_fetch(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("Lorem ipsum"), body_type=2,
                                                   truncation=100)))
        self.assertEqual(len(store.findall("Search:Result")), 1)
        body = store.find("Search:Result/Search:Properties/AirSyncBase:Body")
        assert body is not None
        self.assertEqual(body.findtext("AirSyncBase:Type"), "2")
        self.assertEqual(body.findtext("AirSyncBase:Truncated"), "1")
        items = [item for _box, _uids, batch in self.h.mail.fetches for item in batch]
        self.assertIn("BODY.PEEK[HEADER]", items)
        self.assertIn("BODYSTRUCTURE", items)
        self.assertNotIn("BODY.PEEK[]", items)
        # Only the start of the HTML part (2), never the plain one (1) or the message.
        self.assertEqual([i for i in items if i.startswith("BODY.PEEK[2]<0.")], [items[-1]])
        self.assertFalse([i for i in items if i.startswith("BODY.PEEK[1]")])
        data = body.findtext("AirSyncBase:Data") or ""
        self.assertLessEqual(len(data.encode("utf-8")), 100)

    def test_default_body_is_cut_plain_text(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("quarterly"))))
        body = store.find("Search:Result/Search:Properties/AirSyncBase:Body")
        assert body is not None
        self.assertEqual(body.findtext("AirSyncBase:Type"), "1")

    def test_other_classes_find_nothing(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls("Contacts"), text("example"))))
        self.assertEqual(store.findtext("Search:Total"), "0")
        self.assertEqual(self.h.mail.searches, [])

    def test_unknown_folder_wants_foldersync(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), folder("999"), text("x"))))
        self.assertEqual(store.findtext("Search:Status"), "11")

    def test_groupware_folder_is_not_a_mail_folder(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), folder(self.h.ids["Contacts"]),
                                                   text("x"))))
        self.assertEqual(store.findtext("Search:Status"), "11")

    def test_too_complex(self) -> None:
        conv = Element("Search:ConversationId", "abc")
        store = store_of(self.h.run(mailbox_search(cls(), conv, text("x"))))
        self.assertEqual(store.findtext("Search:Status"), "8")
        either = Element("Search:Or", children=[text("a"), text("b")])
        store = store_of(self.h.run(mailbox_search(cls(), either)))
        self.assertEqual(store.findtext("Search:Status"), "8")

    def test_invalid_requests(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls())))
        self.assertEqual(store.findtext("Search:Status"), "2")
        store = store_of(self.h.run(mailbox_search(cls(), text("x"), range_text="9-1")))
        self.assertEqual(store.findtext("Search:Status"), "2")
        store = store_of(self.h.run(mailbox_search(
            cls(), date_bound("GreaterThan", "yesterday"))))
        self.assertEqual(store.findtext("Search:Status"), "2")
        store = store_of(self.h.run(Element("Search:Search")))
        self.assertEqual(store.findtext("Search:Status"), "2")

    def test_mailbox_search_needs_12(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("example")), version="2.5"))
        self.assertEqual(store.findtext("Search:Status"), "2")

    def test_older_versions_get_their_properties(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("quarterly")), version="12.1"))
        props = store.find("Search:Result/Search:Properties")
        assert props is not None
        self.assertIsNotNone(props.find("AirSyncBase:Body"))
        self.assertIsNone(props.find("Email2:ConversationId"))

    def test_backend_errors(self) -> None:
        self.h.mail.search_error = MailBackendUnavailable("down")
        store = store_of(self.h.run(mailbox_search(cls(), text("x"))))
        self.assertEqual(store.findtext("Search:Status"), "3")
        self.h.mail.search_error = MailAuthFailed("no")
        store = store_of(self.h.run(mailbox_search(cls(), text("x"))))
        self.assertEqual(store.findtext("Search:Status"), "5")

    def test_vanished_mailbox_is_skipped(self) -> None:
        del self.h.mail.boxes["Sent"]
        store = store_of(self.h.run(mailbox_search(cls(), text("example"))))
        self.assertEqual(store.findtext("Search:Status"), "1")
        self.assertNotIn(self.h.ids["Sent"], {r.findtext("AirSync:CollectionId")
                                              for r in store.findall("Search:Result")})

    def test_unrenderable_message_gets_a_stand_in(self) -> None:
        self.h.mail.blank.add(1)
        store = store_of(self.h.run(mailbox_search(cls(), text("quarterly"),
                                                   folder(self.h.ids["INBOX"]))))
        self.assertEqual(store.findtext("Search:Status"), "1")
        self.assertEqual(subjects(store), ["(message cannot be shown)"])
        self.assertEqual(store.findtext("Search:Result/Search:LongId"), f"{self.h.ids['INBOX']}:1")

    def test_without_mail_backend(self) -> None:
        store = store_of(self.h.run(mailbox_search(cls(), text("x")), services={}))
        self.assertEqual(store.findtext("Search:Status"), "1")
        self.assertEqual(store.findtext("Search:Total"), "0")


class OtherStoreTests(TestCase):
    """GAL and document libraries."""

    def test_gal_is_empty(self) -> None:
        h = Harness()
        root = Element("Search:Search")
        store = root.add("Search:Store")
        store.add("Search:Name", "GAL")
        store.add("Search:Query", "alice")
        options = store.add("Search:Options")
        options.add("Search:Range", "0-4")
        answer = store_of(h.run(root, version="14.1"))
        self.assertEqual(answer.findtext("Search:Status"), "1")
        self.assertEqual(answer.findtext("Search:Total"), "0")
        self.assertEqual(answer.findall("Search:Result"), [])

    def test_document_library_is_refused(self) -> None:
        h = Harness()
        root = Element("Search:Search")
        store = root.add("Search:Store")
        store.add("Search:Name", "DocumentLibrary")
        query = store.add("Search:Query").add("Search:EqualTo")
        query.add("DocumentLibrary:LinkId")
        query.add("Search:Value", "\\\\server\\share")
        answer = store_of(h.run(root))
        self.assertEqual(answer.findtext("Search:Status"), "5")

    def test_unknown_store(self) -> None:
        h = Harness()
        root = Element("Search:Search")
        root.add("Search:Store").add("Search:Name", "Elsewhere")
        self.assertEqual(store_of(h.run(root)).findtext("Search:Status"), "2")
