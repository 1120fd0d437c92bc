"""Sync of mail folders against a fake IMailBackend: paging, newest first,
FilterType, retries, the device's changes, drafts, resets, per-item errors,
GetItemEstimate, Wait."""
from __future__ import annotations

from typing import Sequence

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.mailsync.engine import window_start
from easyncd.protocol.mailsync.fetch import HEAD_ITEMS, PLACEHOLDER_TEXT
from easyncd.protocol.mailsync.state import MailSyncState, compress_uids, expand_uids
from easyncd.wbxml import Element
from tests.protocol.groupware_helpers import (
    AS,
    change_command,
    delete_command,
    fetch_command,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import START_TIME, result_of
from tests.protocol.test_mailsync_support import MailHarness, days_ago

BASE = "AirSyncBase:"
E = "Email:"


def mail_collection(collection_id: str, key: str, *, window: int | None = None,
                    filter_type: int | None = None, body_type: int | None = 2,
                    truncation: int | None = 5120, mime_support: int | None = None,
                    commands: Sequence[Element] = (), deletes_as_moves: str | None = None,
                    get_changes: str | None = None) -> Element:
    """A mail Collection in MS-ASCMD order."""
    element = Element(AS + "Collection")
    element.add(AS + "SyncKey", key)
    element.add(AS + "CollectionId", collection_id)
    if deletes_as_moves is not None:
        element.add(AS + "DeletesAsMoves", deletes_as_moves)
    if get_changes is not None:
        element.add(AS + "GetChanges", get_changes)
    if window is not None:
        element.add(AS + "WindowSize", str(window))
    options = element.add(AS + "Options")
    if filter_type is not None:
        options.add(AS + "FilterType", str(filter_type))
    if mime_support is not None:
        options.add(AS + "MIMESupport", str(mime_support))
    if body_type is not None:
        pref = options.add(BASE + "BodyPreference")
        pref.add(BASE + "Type", str(body_type))
        if truncation is not None:
            pref.add(BASE + "TruncationSize", str(truncation))
    if commands:
        block = element.add(AS + "Commands")
        for command in commands:
            block.append(command)
    return element


class MailSyncCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = MailHarness()
        self.inbox = self.h.folders["INBOX"]

    def sync(self, *collections: Element, version: str = "16.1", window: int | None = None):  # type: ignore[no-untyped-def]
        response = self.h.sync(sync_request(*collections, window=window), version)
        if response.body is None:
            return None
        return read_sync(response)

    def initial(self, folder: str | None = None, **kwargs) -> str:  # type: ignore[no-untyped-def]
        folder = folder or self.inbox
        answer = self.sync(mail_collection(folder, "0", **kwargs))[folder]
        self.assertEqual(("1", "1", []), (answer.status, answer.key, answer.commands))
        return answer.key

    def drain(self, key: str, window: int = 10, **kwargs) -> tuple[str, list[list[str]]]:  # type: ignore[no-untyped-def]
        pages: list[list[str]] = []
        while True:
            answers = self.sync(mail_collection(self.inbox, key, window=window, **kwargs))
            if answers is None:
                return key, pages
            answer = answers[self.inbox]
            self.assertEqual("1", answer.status)
            key = answer.key
            pages.append([sid for _, sid, _ in answer.commands])
            if not answer.more:
                return key, pages


class InitialSyncTests(MailSyncCase):
    def test_state_helpers(self) -> None:
        uids = [1, 2, 3, 7, 9, 10]
        self.assertEqual([[10, 9], [7, 7], [3, 1]], compress_uids(uids))
        self.assertEqual(sorted(uids, reverse=True), expand_uids(compress_uids(uids)))
        self.assertIsNone(MailSyncState.from_text('{"v":1,"rev":3}'))
        self.assertIsNone(window_start(0, START_TIME))
        self.assertEqual(days_ago(3), window_start(2, START_TIME))

    def test_pages_to_the_end_newest_first(self) -> None:
        uids = [self.h.mail.deliver(fixture="alternative") for _ in range(25)]
        key = self.initial()
        self.assertEqual(0, self.h.mail.count("changes"))
        key, pages = self.drain(key, window=10)
        self.assertEqual([10, 10, 5], [len(p) for p in pages])
        sent = [sid for page in pages for sid in page]
        self.assertEqual([self.h.sid(u) for u in sorted(uids, reverse=True)], sent)
        self.assertEqual("4", key)
        # Caught up: 16.1 gets the empty response, nothing is written.
        self.assertIsNone(self.sync(mail_collection(self.inbox, key)))
        self.assertEqual(4, result_of(self.h.store.get_sync_state("dev1", self.h.user, self.inbox)).sync_key)

    def test_each_page_fetches_only_its_messages_in_two_round_trips(self) -> None:
        for _ in range(12):
            self.h.mail.deliver(fixture="alternative")
        key = self.initial()
        before = self.h.mail.count("fetch_messages")
        self.sync(mail_collection(self.inbox, key, window=5))
        fetches = [args for name, args in self.h.mail.calls if name == "fetch_messages"][before:]
        self.assertEqual(2, len(fetches))
        (_, uids1, items1), (_, uids2, items2) = fetches
        self.assertEqual([12, 11, 10, 9, 8], uids1)
        self.assertEqual(list(HEAD_ITEMS), items1)
        self.assertEqual(sorted(uids1), sorted(uids2))
        self.assertTrue(all(i.startswith("BODY.PEEK[") for i in items2), items2)
        self.assertNotIn("BODY.PEEK[]", items2)

    def test_sections_grouped_by_plan(self) -> None:
        self.h.mail.deliver(fixture="plain")
        self.h.mail.deliver(fixture="alternative")
        self.h.mail.deliver(fixture="plain")
        key = self.initial()
        self.sync(mail_collection(self.inbox, key, window=10))
        fetches = [args for name, args in self.h.mail.calls if name == "fetch_messages"]
        self.assertEqual(3, len(fetches))
        groups = sorted(sorted(u) for _, u, _ in fetches[1:])
        self.assertEqual([[1, 3], [2]], groups)

    def test_rendered_items(self) -> None:
        uid = self.h.mail.deliver(fixture="plain", flags={"\\Seen", "\\Flagged", "Work"})
        key = self.initial()
        answer = self.sync(mail_collection(self.inbox, key))[self.inbox]
        self.assertEqual([("Add", self.h.sid(uid))], [(k, s) for k, s, _ in answer.commands])
        props = answer.commands[0][2]
        self.assertEqual("Quarterly numbers", props["Subject"])
        self.assertEqual("1", props["Read"])

    def test_filter_type_window(self) -> None:
        old = self.h.mail.deliver(date=days_ago(10))
        new = self.h.mail.deliver(date=days_ago(2))
        key = self.initial(filter_type=3)
        _, pages = self.drain(key, filter_type=3)
        self.assertEqual([[self.h.sid(new)]], pages)
        self.assertNotIn(self.h.sid(old), pages[0])

    def test_deleted_flag_not_shown(self) -> None:
        self.h.mail.deliver(flags={"\\Deleted"})
        shown = self.h.mail.deliver()
        key = self.initial()
        _, pages = self.drain(key)
        self.assertEqual([[self.h.sid(shown)]], pages)

    def test_message_deleted_between_changes_and_fetch_is_skipped(self) -> None:
        uids = [self.h.mail.deliver() for _ in range(3)]
        key = self.initial()
        answer = self.sync(mail_collection(self.inbox, key, window=1))[self.inbox]
        self.h.mail.expunge("INBOX", uids[1])
        _, pages = self.drain(answer.key)
        self.assertEqual([[self.h.sid(uids[0])]], pages)
        # The vanished one is never announced as deleted either.
        self.h.mail.deliver()
        _, pages = self.drain(answer.key if not pages else _last_key(self, answer.key))
        self.assertFalse(any(self.h.sid(uids[1]) in p for p in pages))

    def test_global_window_size(self) -> None:
        for _ in range(4):
            self.h.mail.deliver()
        for _ in range(4):
            self.h.mail.deliver("Drafts")
        drafts = self.h.folders["Drafts"]
        k1 = self.initial()
        k2 = self.initial(drafts)
        answers = self.sync(mail_collection(self.inbox, k1), mail_collection(drafts, k2),
                            window=6)
        self.assertEqual(4, len(answers[self.inbox].commands))
        self.assertEqual(2, len(answers[drafts].commands))
        self.assertTrue(answers[drafts].more)

    def test_unrenderable_message_gets_a_stand_in_and_does_not_stall(self) -> None:
        bad = self.h.mail.deliver(broken=True)
        good = self.h.mail.deliver()
        key = self.initial()
        answer = self.sync(mail_collection(self.inbox, key))[self.inbox]
        sids = [sid for _, sid, _ in answer.commands]
        self.assertEqual([self.h.sid(good), self.h.sid(bad)], sids)
        self.assertEqual("Quarterly numbers", answer.commands[0][2]["Subject"])
        body = _body(self.h, answer.key, bad)
        self.assertEqual(PLACEHOLDER_TEXT, body)

    def test_fetch_failure_is_a_folder_error_and_loses_nothing(self) -> None:
        uids = [self.h.mail.deliver() for _ in range(2)]
        key = self.initial()
        self.h.mail.fail_fetch = True
        answer = self.sync(mail_collection(self.inbox, key))[self.inbox]
        self.assertEqual(("5", key), (answer.status, answer.key))
        self.h.mail.fail_fetch = False
        _, pages = self.drain(key)
        self.assertEqual([[self.h.sid(u) for u in reversed(uids)]], pages)

    def test_versions_render(self) -> None:
        self.h.mail.deliver()
        for version in ("2.5", "12.1", "14.1"):
            h = MailHarness()
            h.mail.deliver(fixture="mixed_attachments")
            folder = h.folders["INBOX"]
            body = sync_request(mail_collection(folder, "0", body_type=None))
            key = read_sync(h.sync(body, version))[folder].key
            answer = read_sync(h.sync(sync_request(mail_collection(folder, key, body_type=None)),
                                      version))[folder]
            self.assertEqual(1, len(answer.commands), version)


def _last_key(case: MailSyncCase, key: str) -> str:
    stored = result_of(case.h.store.get_sync_state("dev1", case.h.user, case.inbox))
    return str(stored.sync_key)


def _body(h: MailHarness, key: str, uid: int) -> str:
    """Body data of a message via a Sync Fetch."""
    folder = h.folders["INBOX"]
    answer = read_sync(h.sync(sync_request(mail_collection(
        folder, key, commands=[fetch_command(h.sid(uid))]))))[folder]
    body = answer.responses[0].find(AS + "ApplicationData/" + BASE + "Body")
    assert body is not None
    return body.findtext(BASE + "Data") or ""


class RetryTests(MailSyncCase):
    def test_retry_of_previous_key_gets_the_same_answer(self) -> None:
        for _ in range(7):
            self.h.mail.deliver()
        key = self.initial()
        first = self.sync(mail_collection(self.inbox, key, window=3))[self.inbox]
        again = self.sync(mail_collection(self.inbox, key, window=3))[self.inbox]
        self.assertEqual((first.key, first.commands, first.more),
                         (again.key, again.commands, again.more))
        # The device goes on from the answer it finally got: nothing lost or doubled.
        _, pages = self.drain(again.key, window=3)
        sent = [s for _, s, _ in first.commands] + [s for p in pages for s in p]
        self.assertEqual([self.h.sid(u) for u in range(7, 0, -1)], sent)

    def test_unknown_key_is_status_3(self) -> None:
        key = self.initial()
        answer = self.sync(mail_collection(self.inbox, "7"))[self.inbox]
        self.assertEqual(("3", "0"), (answer.status, answer.key))
        self.assertIsNotNone(key)

    def test_retry_does_not_run_commands_twice(self) -> None:
        uid = self.h.mail.deliver()
        key = self.initial()
        key, _ = self.drain(key)
        request = mail_collection(self.inbox, key, commands=[delete_command("99:1"),
                                                             change_command(self.h.sid(uid), E, Read="1")])
        first = self.sync(request)[self.inbox]
        calls = self.h.mail.count("set_flags")
        again = self.sync(mail_collection(self.inbox, key, commands=[
            delete_command("99:1"), change_command(self.h.sid(uid), E, Read="1")]))[self.inbox]
        self.assertEqual(calls, self.h.mail.count("set_flags"))
        self.assertEqual(first.key, again.key)
        self.assertEqual(first.response("Delete"), again.response("Delete"))
        self.assertEqual([{"ServerId": "99:1", "Status": "8"}], again.response("Delete"))

    def test_uidvalidity_change_is_status_3_for_that_folder_only(self) -> None:
        self.h.mail.deliver()
        self.h.mail.deliver("Drafts")
        drafts = self.h.folders["Drafts"]
        k1, _ = self.drain(self.initial())
        k2 = self.initial(drafts)
        self.h.mail.boxes["INBOX"].uidvalidity = 2
        self.h.mail.deliver()
        answers = self.sync(mail_collection(self.inbox, k1), mail_collection(drafts, k2))
        self.assertEqual(("3", "0"), (answers[self.inbox].status, answers[self.inbox].key))
        self.assertEqual("1", answers[drafts].status)
        self.assertEqual(1, len(answers[drafts].commands))


class DeviceChangeTests(MailSyncCase):
    def synced(self, count: int = 2, **kwargs) -> tuple[list[int], str]:  # type: ignore[no-untyped-def]
        uids = [self.h.mail.deliver(**kwargs) for _ in range(count)]
        key, _ = self.drain(self.initial())
        return uids, key

    def test_read_flag_categories_then_no_echo(self) -> None:
        (a, b), key = self.synced(flags={"Old-Keyword"})
        flag = Element(AS + "Change")
        flag.add(AS + "ServerId", self.h.sid(b))
        app = flag.add(AS + "ApplicationData")
        app.add(E + "Flag").add(E + "Status", "2")
        cats = app.add(E + "Categories")
        cats.add(E + "Category", "Work")
        cats.add(E + "Category", "Two words")
        answer = self.sync(mail_collection(self.inbox, key, commands=[
            change_command(self.h.sid(a), E, Read="1"), flag]))[self.inbox]
        self.assertEqual(("1", str(int(key) + 1), [], []),
                         (answer.status, answer.key, answer.commands, answer.responses))
        self.assertEqual({"\\Seen"}, self.h.mail.boxes["INBOX"].messages[a].flags - {"Old-Keyword"})
        self.assertEqual({"\\Flagged", "Work", "Two_words"}, self.h.mail.boxes["INBOX"].messages[b].flags)
        self.assertIsNone(self.sync(mail_collection(self.inbox, answer.key)))

    def test_unread_and_unflag(self) -> None:
        (a,), key = self.synced(1, flags={"\\Seen", "\\Flagged"})
        flag = Element(AS + "Change")
        flag.add(AS + "ServerId", self.h.sid(a))
        app = flag.add(AS + "ApplicationData")
        app.add(E + "Read", "0")
        app.add(E + "Flag")
        self.sync(mail_collection(self.inbox, key, commands=[flag]))
        self.assertEqual(set(), self.h.mail.boxes["INBOX"].messages[a].flags)

    def test_change_of_a_missing_message_is_status_8(self) -> None:
        (a,), key = self.synced(1)
        self.h.mail.expunge("INBOX", a)
        answer = self.sync(mail_collection(self.inbox, key, commands=[
            change_command(self.h.sid(a), E, Read="1")]))[self.inbox]
        self.assertEqual([{"ServerId": self.h.sid(a), "Status": "8"}], answer.response("Change"))
        # The expunge the device caused no Delete to be needed... but this one is
        # the server's: the device hears of it.
        self.assertEqual([self.h.sid(a)], answer.ops("Delete"))

    def test_server_flag_change_is_sent(self) -> None:
        (a, b), key = self.synced()
        self.h.mail.store("INBOX", a, {"\\Seen", "Project"})
        answer = self.sync(mail_collection(self.inbox, key))[self.inbox]
        self.assertEqual([("Change", self.h.sid(a))], [(k, s) for k, s, _ in answer.commands])
        self.assertEqual("1", answer.commands[0][2]["Read"])
        self.assertIsNone(self.sync(mail_collection(self.inbox, answer.key)))

    def test_server_delete_is_sent(self) -> None:
        (a, b), key = self.synced()
        self.h.mail.expunge("INBOX", b)
        answer = self.sync(mail_collection(self.inbox, key))[self.inbox]
        self.assertEqual([self.h.sid(b)], answer.ops("Delete"))

    def test_delete_moves_to_trash_by_default(self) -> None:
        (a, b), key = self.synced()
        answer = self.sync(mail_collection(self.inbox, key, commands=[
            delete_command(self.h.sid(a))]))[self.inbox]
        self.assertEqual(([], []), (answer.commands, answer.responses))
        self.assertEqual([b], list(self.h.mail.boxes["INBOX"].messages))
        self.assertEqual(1, len(self.h.mail.boxes["Trash"].messages))
        self.assertIn(("delete", ("INBOX", [a], True)), self.h.mail.calls)
        self.assertIsNone(self.sync(mail_collection(self.inbox, answer.key)))

    def test_delete_expunges_without_deletes_as_moves(self) -> None:
        (a, b), key = self.synced()
        self.sync(mail_collection(self.inbox, key, deletes_as_moves="0",
                                  commands=[delete_command(self.h.sid(a))]))
        self.assertIn(("delete", ("INBOX", [a], False)), self.h.mail.calls)
        self.assertEqual(0, len(self.h.mail.boxes["Trash"].messages))

    def test_new_mail_shows_up_next_sync(self) -> None:
        _, key = self.synced()
        uid = self.h.mail.deliver(fixture="html_only")
        answer = self.sync(mail_collection(self.inbox, key))[self.inbox]
        self.assertEqual([self.h.sid(uid)], answer.ops("Add"))

    def test_get_changes_0_applies_commands_only(self) -> None:
        (a, b), key = self.synced()
        self.h.mail.deliver()
        answer = self.sync(mail_collection(self.inbox, key, get_changes="0", commands=[
            change_command(self.h.sid(a), E, Read="1")]))[self.inbox]
        self.assertEqual([], answer.commands)
        self.assertIn("\\Seen", self.h.mail.boxes["INBOX"].messages[a].flags)
        answer = self.sync(mail_collection(self.inbox, answer.key))[self.inbox]
        self.assertEqual(1, len(answer.commands))


class DraftTests(MailSyncCase):
    def draft_add(self, client_id: str = "c1", subject: str = "Plans") -> Element:
        add = Element(AS + "Add")
        add.add(AS + "ClientId", client_id)
        app = add.add(AS + "ApplicationData")
        app.add(E + "To", "bob@example.org")
        app.add(E + "Subject", subject)
        body = app.add(BASE + "Body")
        body.add(BASE + "Type", "1")
        body.add(BASE + "Data", "Draft text")
        return add

    def test_add_draft_16(self) -> None:
        drafts = self.h.folders["Drafts"]
        key = self.initial(drafts)
        answer = self.sync(mail_collection(drafts, key, commands=[self.draft_add()]))[drafts]
        [response] = answer.response("Add")
        self.assertEqual("1", response["Status"])
        self.assertEqual("c1", response["ClientId"])
        [(mailbox, message, flags)] = self.h.mail.appended
        self.assertEqual(("Drafts", ("\\Draft", "\\Seen")), (mailbox, flags))
        self.assertIn(b"Subject: Plans", message)
        self.assertIn(b"To: bob@example.org", message)
        self.assertIn(b"From: alice@example.com", message)
        self.assertEqual(f"{drafts}:1", response["ServerId"])
        # Not echoed back.
        self.assertIsNone(self.sync(mail_collection(drafts, answer.key)))
        # A retry gets the same response and does not append twice.
        again = self.sync(mail_collection(drafts, key, commands=[self.draft_add()]))[drafts]
        self.assertEqual(answer.response("Add"), again.response("Add"))
        self.assertEqual(1, len(self.h.mail.appended))

    def test_change_draft_replaces_it(self) -> None:
        drafts = self.h.folders["Drafts"]
        key = self.initial(drafts)
        answer = self.sync(mail_collection(drafts, key, commands=[self.draft_add()]))[drafts]
        sid = answer.response("Add")[0]["ServerId"]
        answer = self.sync(mail_collection(drafts, answer.key, commands=[
            change_command(sid, E, Subject="New plans")]))[drafts]
        self.assertEqual(2, len(self.h.mail.appended))
        self.assertIn(b"Subject: New plans", self.h.mail.appended[1][1])
        self.assertIn(b"Draft text", self.h.mail.appended[1][1])
        self.assertIn(b"To: bob@example.org", self.h.mail.appended[1][1])
        # The same answer tells the device: the old draft went, the new one came.
        self.assertEqual([sid], answer.ops("Delete"))
        self.assertEqual([f"{drafts}:2"], answer.ops("Add"))

    def test_add_outside_drafts_or_before_16_refused(self) -> None:
        key = self.initial()
        answer = self.sync(mail_collection(self.inbox, key, commands=[self.draft_add()]))[self.inbox]
        self.assertEqual("4", answer.response("Add")[0]["Status"])
        self.assertEqual([], self.h.mail.appended)


class EstimateAndWaitTests(MailSyncCase):
    def estimate_body(self, key: str, filter_type: int = 0) -> Element:
        root = Element("GetItemEstimate:GetItemEstimate")
        coll = root.add("GetItemEstimate:Collections").add("GetItemEstimate:Collection")
        coll.add(AS + "SyncKey", key)
        coll.add("GetItemEstimate:CollectionId", self.inbox)
        coll.add(AS + "Options").add(AS + "FilterType", str(filter_type))
        return root

    def estimate(self, key: str, filter_type: int = 0) -> tuple[str, str | None]:
        body = self.h.estimate(self.estimate_body(key, filter_type)).body
        assert body is not None
        response = body.find("GetItemEstimate:Response")
        assert response is not None
        return (response.findtext("GetItemEstimate:Status") or "",
                response.findtext("GetItemEstimate:Collection/GetItemEstimate:Estimate"))

    def test_estimate(self) -> None:
        for _ in range(5):
            self.h.mail.deliver()
        self.h.mail.deliver(date=days_ago(40))
        self.assertEqual(("3", None), self.estimate("0"))
        key = self.initial()
        self.assertEqual(("1", "6"), self.estimate(key))
        self.assertEqual(("1", "5"), self.estimate(key, filter_type=5))
        answer = self.sync(mail_collection(self.inbox, key, window=2))[self.inbox]
        self.assertEqual(("1", "4"), self.estimate(answer.key))
        self.assertEqual(("4", None), self.estimate("9"))

    def test_wait_returns_when_mail_arrives(self) -> None:
        self.h.mail.deliver()
        key, _ = self.drain(self.initial())
        body = sync_request(mail_collection(self.inbox, key), heartbeat=120)
        pending = self.h.start(body)
        self.assertNoResult(pending)
        self.assertEqual([["INBOX"]], [w.mailboxes for w in self.h.mail.watches])
        uid = self.h.mail.deliver()
        response = self.successResultOf(pending)
        answer = read_sync(response)[self.inbox]
        self.assertEqual([self.h.sid(uid)], answer.ops("Add"))

    def test_wait_times_out_empty(self) -> None:
        key, _ = self.drain(self.initial())
        pending = self.h.start(sync_request(mail_collection(self.inbox, key), heartbeat=120))
        self.h.clock.advance(121)
        self.assertIsNone(self.successResultOf(pending).body)

    def test_mail_before_the_watch_is_not_missed(self) -> None:
        key, _ = self.drain(self.initial())
        # Mail arrives after the folder was looked at but before the watch:
        # simulated by a watch that delivers while being set up.
        original = self.h.mail.watch

        def watch(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.h.mail.watch = original  # type: ignore[method-assign]
            self.h.mail.deliver()
            return original(*args, **kwargs)

        self.h.mail.watch = watch  # type: ignore[method-assign]
        response = self.successResultOf(
            self.h.start(sync_request(mail_collection(self.inbox, key), heartbeat=120)))
        self.assertEqual(1, len(read_sync(response)[self.inbox].ops("Add")))
