"""Tests for Find (16.1) over mail, with the fake mail backend of test_search."""
from __future__ import annotations

from typing import Any

from twisted.trial.unittest import TestCase

from easyncd.backends.interfaces import MailBackendUnavailable
from easyncd.protocol.commands.find import FindCommand
from easyncd.protocol.context import CommandResponse
from easyncd.protocol.dispatch import dispatch
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_context, result_of
from tests.protocol.test_search import Harness


def find_request(free_text: str | None = "example", *, collection: str | None = None,
                 range_text: str | None = "0-99", deep: bool = False,
                 eas_class: str | None = "Email") -> Element:
    root = Element("Find:Find")
    root.add("Find:SearchId", "5a0c1b46-0a2b-4a3c-8d57-1f2e3d4c5b6a")
    criterion = root.add("Find:ExecuteSearch").add("Find:MailBoxSearchCriterion")
    query = criterion.add("Find:Query")
    if eas_class is not None:
        query.add("AirSync:Class", eas_class)
    if collection is not None:
        query.add("AirSync:CollectionId", collection)
    if free_text is not None:
        query.add("Find:FreeText", free_text)
    options = criterion.add("Find:Options")
    if range_text is not None:
        options.add("Find:Range", range_text)
    if deep:
        options.add("Find:DeepTraversal")
    return root


def run(h: Harness, body: Element, version: str = "16.1",
        services: dict[str, Any] | None = None) -> Element:
    ctx = make_context(h.store, "Find", version,
                       services={"mail": h.mail} if services is None else services)
    ctx.password = "pw"
    response: CommandResponse = result_of(FindCommand().run(ctx, decode(encode(body))))
    assert response.body is not None
    return decode(encode(response.body))


def response_of(answer: Element) -> Element:
    assert answer.findtext("Find:Status") == "1", answer.to_xml()
    response = answer.find("Find:Response")
    assert response is not None, answer.to_xml()
    return response


class FindTests(TestCase):
    """Find over the mailbox."""

    def setUp(self) -> None:
        self.h = Harness()

    def test_results_and_properties(self) -> None:
        response = response_of(run(self.h, find_request("quarterly",
                                                        collection=self.h.ids["INBOX"])))
        self.assertEqual(response.findtext("ItemOperations:Store"), "Mailbox")
        self.assertEqual(response.findtext("Find:Status"), "1")
        results = response.findall("Find:Result")
        self.assertEqual(len(results), 1)
        result = results[0]
        self.assertEqual(result.findtext("AirSync:Class"), "Email")
        self.assertEqual(result.findtext("AirSync:ServerId"), f"{self.h.ids['INBOX']}:1")
        self.assertEqual(result.findtext("AirSync:CollectionId"), self.h.ids["INBOX"])
        props = result.find("Find:Properties")
        assert props is not None
        self.assertEqual(props.findtext("Email:Subject"), "Quarterly numbers")
        self.assertEqual(props.findtext("Email:DateReceived"), "2023-11-14T09:00:00.000Z")
        self.assertEqual(props.findtext("Email:DisplayTo"), "Alice Example; carol@example.net")
        self.assertEqual(props.findtext("Find:DisplayCc"), "Dave, the Reviewer")
        self.assertEqual(props.findtext("Email:Read"), "1")
        self.assertEqual(props.findtext("Email2:IsDraft"), "0")
        self.assertEqual(props.findtext("Find:HasAttachments"), "0")
        self.assertIn("bob@example.org", props.findtext("Email:From") or "")
        preview = props.findtext("Find:Preview") or ""
        self.assertTrue(preview)
        self.assertLessEqual(len(preview), 255)
        self.assertIsNone(props.find("AirSyncBase:Body"))
        self.assertEqual(response.findtext("Find:Range"), "0-0")
        self.assertEqual(response.findtext("Find:Total"), "1")
        # Only a preview's worth of the body was fetched.
        items = [i for _b, _u, batch in self.h.mail.fetches for i in batch]
        self.assertNotIn("BODY.PEEK[]", items)

    def test_attachments_and_order(self) -> None:
        response = response_of(run(self.h, find_request("example")))
        results = response.findall("Find:Result")
        self.assertEqual(int(response.findtext("Find:Total") or 0), len(results))
        dates = [r.findtext("Find:Properties/Email:DateReceived") for r in results]
        self.assertEqual(dates, sorted(dates, reverse=True))
        by_id = {r.findtext("AirSync:ServerId"): r for r in results}
        mixed = by_id[f"{self.h.ids['INBOX']}:3"]
        self.assertEqual(mixed.findtext("Find:Properties/Find:HasAttachments"), "1")
        unread = by_id[f"{self.h.ids['INBOX']}:2"]
        self.assertEqual(unread.findtext("Find:Properties/Email:Read"), "0")

    def test_paging_starts_at_zero(self) -> None:
        response = response_of(run(self.h, find_request("example", range_text="0-1")))
        self.assertEqual(len(response.findall("Find:Result")), 2)
        self.assertEqual(response.findtext("Find:Range"), "0-1")
        self.assertGreater(int(response.findtext("Find:Total") or 0), 2)
        refused = response_of(run(self.h, find_request("example", range_text="2-3")))
        self.assertEqual(refused.findtext("Find:Status"), "4")
        self.assertEqual(refused.findall("Find:Result"), [])

    def test_folder_and_deep_traversal(self) -> None:
        archive = self.h.ids["Archive"]
        shallow = response_of(run(self.h, find_request("example", collection=archive)))
        self.assertEqual({r.findtext("AirSync:CollectionId")
                          for r in shallow.findall("Find:Result")}, {archive})
        deep = response_of(run(self.h, find_request("example", collection=archive, deep=True)))
        self.assertEqual({r.findtext("AirSync:CollectionId") for r in deep.findall("Find:Result")},
                         {archive, self.h.ids["Archive/2023"]})

    def test_no_match(self) -> None:
        response = response_of(run(self.h, find_request("zyxwvut-nothing")))
        self.assertEqual(response.findtext("Find:Status"), "1")
        self.assertEqual(response.findall("Find:Result"), [])
        self.assertEqual(response.findtext("Find:Total"), "0")
        self.assertIsNone(response.find("Find:Range"))

    def test_unknown_folder(self) -> None:
        answer = run(self.h, find_request("x", collection="999"))
        self.assertEqual(answer.findtext("Find:Status"), "3")

    def test_invalid(self) -> None:
        self.assertEqual(run(self.h, find_request(None)).findtext("Find:Status"), "2")
        self.assertEqual(run(self.h, find_request("a OR b")).findtext("Find:Status"), "2")
        no_id = find_request("x")
        no_id.children = [c for c in no_id.children if c.tag != "Find:SearchId"]
        self.assertEqual(run(self.h, no_id).findtext("Find:Status"), "2")
        self.assertEqual(run(self.h, Element("Find:Find")).findtext("Find:Status"), "2")

    def test_gal_is_empty(self) -> None:
        root = Element("Find:Find")
        root.add("Find:SearchId", "x")
        gal = root.add("Find:ExecuteSearch").add("Find:GalSearchCriterion")
        gal.add("Find:Query", "alice")
        gal.add("Find:Options").add("Find:Range", "0-9")
        response = response_of(run(self.h, root))
        self.assertEqual(response.findtext("ItemOperations:Store"), "GAL")
        self.assertEqual(response.findtext("Find:Status"), "1")
        self.assertEqual(response.findtext("Find:Total"), "0")

    def test_other_class(self) -> None:
        response = response_of(run(self.h, find_request("example", eas_class="Contacts")))
        self.assertEqual(response.findtext("Find:Total"), "0")

    def test_server_error(self) -> None:
        self.h.mail.search_error = MailBackendUnavailable("down")
        self.assertEqual(run(self.h, find_request("x")).findtext("Find:Status"), "110")

    def test_refused_before_16_1(self) -> None:
        """Through the dispatcher: Find does not exist before 16.1."""
        ctx = make_context(self.h.store, "Find", "14.1", services={"mail": self.h.mail})
        response = result_of(dispatch(ctx, encode(find_request("x"))))
        assert response.body is not None
        self.assertEqual(response.body.tag, "Find:Find")
        self.assertEqual(response.body.findtext("Find:Status"), "138")
