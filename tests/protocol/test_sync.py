"""Sync: initial sync and paging, incremental changes, the device's commands,
retries, conflicts, filters, ghosting, versions."""
from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS, KIND_TASKS
from easyncd.protocol.sync.constants import REQUEST_CACHE_ID
from tests.protocol.groupware_helpers import (
    AS,
    GroupwareHarness,
    add_command,
    change_command,
    collection,
    delete_command,
    eas_time,
    fetch_command,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import START_TIME, result_of

C = "Contacts:"
CAL = "Calendar:"


class InitialSyncTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CONTACTS]

    def test_key_zero_answers_key_one_without_commands(self) -> None:
        self.h.add(KIND_CONTACTS, FileAs="A")
        answer = read_sync(self.h.sync(sync_request(collection(self.folder, "0"))))[self.folder]
        self.assertEqual(("1", "1", []), (answer.status, answer.key, answer.commands))
        self.assertEqual(["SyncKey", "CollectionId", "Status"], answer.order)

    def test_paging_to_the_end(self) -> None:
        ids = {self.h.add(KIND_CONTACTS, FileAs=f"c{n}") for n in range(250)}
        key = self.h.initial(KIND_CONTACTS)
        seen: list[str] = []
        pages = []
        while True:
            response = self.h.sync(sync_request(collection(self.folder, key, window=100)))
            if response.body is None:
                break
            answer = read_sync(response)[self.folder]
            self.assertEqual("1", answer.status)
            self.assertEqual(str(int(key) + 1), answer.key)
            key = answer.key
            seen.extend(answer.ops("Add"))
            pages.append((len(answer.commands), answer.more))
            if not answer.more:
                break
        self.assertEqual([(100, True), (100, True), (50, False)], pages)
        self.assertEqual(sorted(self.h.server_id(KIND_CONTACTS, i) for i in ids), sorted(seen))
        # Caught up: nothing to say, so 16.1 gets the empty response.
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, key))).body)

    def test_items_deleted_before_they_were_sent_are_not_sent(self) -> None:
        first = self.h.add(KIND_CONTACTS, FileAs="A")
        second = self.h.add(KIND_CONTACTS, FileAs="B")
        key = self.h.initial(KIND_CONTACTS)
        self.h.delete(KIND_CONTACTS, first)
        answer = read_sync(self.h.sync(sync_request(collection(self.folder, key))))[self.folder]
        self.assertEqual([("Add", self.h.server_id(KIND_CONTACTS, second), {"FileAs": "B"})],
                         answer.commands)

    def test_global_window_size(self) -> None:
        for n in range(3):
            self.h.add(KIND_CONTACTS, FileAs=f"c{n}")
            self.h.add(KIND_CALENDAR, Subject=f"e{n}")
        ckey = self.h.initial(KIND_CONTACTS)
        cal = self.h.folders[KIND_CALENDAR]
        kkey = self.h.initial(KIND_CALENDAR)
        answers = read_sync(self.h.sync(sync_request(
            collection(self.folder, ckey), collection(cal, kkey), window=4)))
        self.assertEqual(3, len(answers[self.folder].commands))
        self.assertFalse(answers[self.folder].more)
        self.assertEqual(1, len(answers[cal].commands))
        self.assertTrue(answers[cal].more)


class IncrementalTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CONTACTS]
        self.kept = self.h.add(KIND_CONTACTS, FileAs="kept")
        self.gone = self.h.add(KIND_CONTACTS, FileAs="gone")
        key = self.h.initial(KIND_CONTACTS)
        self.key = read_sync(self.h.sync(sync_request(collection(self.folder, key))))[
            self.folder].key

    def sync(self, *commands, **kwargs):  # type: ignore[no-untyped-def]
        return self.h.sync(sync_request(collection(self.folder, self.key, commands=commands,
                                                   **kwargs)))

    def test_server_changes(self) -> None:
        new = self.h.add(KIND_CONTACTS, FileAs="new")
        self.h.change(KIND_CONTACTS, self.kept, FileAs="kept2")
        self.h.delete(KIND_CONTACTS, self.gone)
        answer = read_sync(self.sync())[self.folder]
        sid = lambda i: self.h.server_id(KIND_CONTACTS, i)  # noqa: E731
        self.assertEqual(
            [("Add", sid(new), {"FileAs": "new"}), ("Change", sid(self.kept), {"FileAs": "kept2"}),
             ("Delete", sid(self.gone), {})],
            answer.commands)
        self.assertEqual(str(int(self.key) + 1), answer.key)

    def test_history_trimmed_gives_status_3(self) -> None:
        self.h.add(KIND_CONTACTS, FileAs="new")
        self.h.clock.advance(10)
        self.h.add(KIND_CONTACTS, FileAs="newer")
        result_of(self.h.backend.trim_history(self.h.clock.seconds()))
        answer = read_sync(self.sync())[self.folder]
        self.assertEqual(("3", "0"), (answer.status, answer.key))

    def test_unknown_key_is_status_3_and_nothing_applied(self) -> None:
        response = self.h.sync(sync_request(collection(
            self.folder, "77", commands=[add_command("c1", C, FileAs="X")])))
        answer = read_sync(response)[self.folder]
        self.assertEqual(("3", "0"), (answer.status, answer.key))
        self.assertEqual(2, len(self.h.items(KIND_CONTACTS)))

    def test_device_adds_with_client_ids_are_not_echoed(self) -> None:
        answer = read_sync(self.sync(add_command("c1", C, FileAs="X"),
                                     add_command("c2", C, FileAs="Y")))[self.folder]
        adds = answer.response("Add")
        self.assertEqual(["c1", "c2"], [a["ClientId"] for a in adds])
        self.assertEqual(["1", "1"], [a["Status"] for a in adds])
        items = self.h.items(KIND_CONTACTS)
        by_name = {props["FileAs"]: self.h.server_id(KIND_CONTACTS, i)
                   for i, props in items.items()}
        self.assertEqual([by_name["X"], by_name["Y"]], [a["ServerId"] for a in adds])
        self.assertEqual(["ClientId", "ServerId", "Status"], [c.name for c in answer.responses[0].children])
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, answer.key))).body)

    def test_retry_with_previous_key_does_not_create_twice(self) -> None:
        changed = self.h.add(KIND_CONTACTS, FileAs="server")
        request = sync_request(collection(self.folder, self.key, commands=[
            add_command("c1", C, FileAs="X"), delete_command(
                self.h.server_id(KIND_CONTACTS, self.gone))]))
        first = read_sync(self.h.sync(request))[self.folder]
        again = read_sync(self.h.sync(request))[self.folder]
        self.assertEqual(first.key, again.key)
        self.assertEqual(first.commands, again.commands)
        self.assertEqual([("Add", self.h.server_id(KIND_CONTACTS, changed), {"FileAs": "server"})],
                         again.commands)
        self.assertEqual(first.response("Add"), again.response("Add"))
        self.assertEqual([], again.response("Delete"))
        names = sorted(p["FileAs"] for p in self.h.items(KIND_CONTACTS).values())
        self.assertEqual(["X", "kept", "server"], names)
        # The device goes on with the key it got; nothing is echoed.
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, again.key))).body)

    def test_retry_with_a_new_add_advances_the_key(self) -> None:
        first = read_sync(self.sync(add_command("c1", C, FileAs="X")))[self.folder]
        again = read_sync(self.sync(add_command("c1", C, FileAs="X"),
                                    add_command("c2", C, FileAs="Y")))[self.folder]
        self.assertEqual(str(int(first.key) + 1), again.key)
        self.assertEqual(first.response("Add")[0], again.response("Add")[0])
        names = sorted(p["FileAs"] for p in self.h.items(KIND_CONTACTS).values())
        self.assertEqual(["X", "Y", "gone", "kept"], names)
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, again.key))).body)

    def test_per_item_errors_do_not_fail_the_collection(self) -> None:
        answer = read_sync(self.sync(
            add_command("bad", C, FileAs="!bad"),
            add_command("good", C, FileAs="fine"),
            change_command(self.h.server_id(KIND_CONTACTS, "999"), C, FileAs="x"),
            change_command(self.h.server_id(KIND_CONTACTS, self.kept), C, FileAs="!bad"),
            delete_command("nonsense"),
        ))[self.folder]
        self.assertEqual("1", answer.status)
        adds = {a["ClientId"]: a for a in answer.response("Add")}
        self.assertEqual("6", adds["bad"]["Status"])
        self.assertNotIn("ServerId", adds["bad"])
        self.assertEqual("1", adds["good"]["Status"])
        self.assertEqual(["8", "6"], [c["Status"] for c in answer.response("Change")])
        self.assertEqual(["8"], [d["Status"] for d in answer.response("Delete")])
        self.assertEqual("kept", self.h.items(KIND_CONTACTS)[self.kept]["FileAs"])

    def test_device_change_and_delete(self) -> None:
        answer = read_sync(self.sync(
            change_command(self.h.server_id(KIND_CONTACTS, self.kept), C, FileAs="mine"),
            delete_command(self.h.server_id(KIND_CONTACTS, self.gone))))[self.folder]
        self.assertEqual([], answer.responses)
        self.assertEqual(str(int(self.key) + 1), answer.key)
        self.assertEqual({self.kept: {"FileAs": "mine"}}, self.h.items(KIND_CONTACTS))
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, answer.key))).body)

    def test_conflict_server_wins_by_default(self) -> None:
        self.h.change(KIND_CONTACTS, self.kept, FileAs="server")
        answer = read_sync(self.sync(
            change_command(self.h.server_id(KIND_CONTACTS, self.kept), C, FileAs="device")))[
            self.folder]
        self.assertEqual(["7"], [c["Status"] for c in answer.response("Change")])
        self.assertEqual([("Change", self.h.server_id(KIND_CONTACTS, self.kept),
                           {"FileAs": "server"})], answer.commands)
        self.assertEqual("server", self.h.items(KIND_CONTACTS)[self.kept]["FileAs"])

    def test_conflict_client_wins(self) -> None:
        self.h.change(KIND_CONTACTS, self.kept, FileAs="server")
        answer = read_sync(self.sync(
            change_command(self.h.server_id(KIND_CONTACTS, self.kept), C, FileAs="device"),
            conflict=0))[self.folder]
        self.assertEqual([], answer.responses)
        self.assertEqual([], answer.commands)
        self.assertEqual("device", self.h.items(KIND_CONTACTS)[self.kept]["FileAs"])

    def test_fetch(self) -> None:
        answer = read_sync(self.sync(
            fetch_command(self.h.server_id(KIND_CONTACTS, self.kept)),
            fetch_command(self.h.server_id(KIND_CONTACTS, "12345"))))[self.folder]
        fetched = [r for r in answer.responses if r.name == "Fetch"]
        self.assertEqual(["1", "8"], [r.findtext(AS + "Status") for r in fetched])
        self.assertEqual("kept", fetched[0].findtext(AS + "ApplicationData/" + C + "FileAs"))
        self.assertEqual(["ServerId", "Status", "ApplicationData"],
                         [c.name for c in fetched[0].children])

    def test_get_changes_zero_applies_commands_only(self) -> None:
        self.h.add(KIND_CONTACTS, FileAs="server")
        answer = read_sync(self.sync(add_command("c1", C, FileAs="X"),
                                     get_changes="0"))[self.folder]
        self.assertEqual([], answer.commands)
        after = read_sync(self.h.sync(sync_request(collection(self.folder, answer.key))))[
            self.folder]
        self.assertEqual([{"FileAs": "server"}], [p for _, _, p in after.commands])


class GhostingTests(SynchronousTestCase):
    def test_unsupported_properties_are_kept(self) -> None:
        h = GroupwareHarness()
        folder = h.folders[KIND_CONTACTS]
        item = h.add(KIND_CONTACTS, FileAs="A", FirstName="Ann", LastName="Lee",
                     Birthday="19800101T000000Z")
        key = h.initial(KIND_CONTACTS, supported=[C + "FirstName", C + "LastName"])
        key = read_sync(h.sync(sync_request(collection(folder, key))))[folder].key
        answer = read_sync(h.sync(sync_request(collection(folder, key, commands=[
            change_command(h.server_id(KIND_CONTACTS, item), C, FileAs="B", FirstName="Anna")]))))
        self.assertEqual("1", answer[folder].status)
        # LastName is supported and was left out: cleared.  Birthday is not
        # supported: kept.
        self.assertEqual({"FileAs": "B", "FirstName": "Anna", "Birthday": "19800101T000000Z"},
                         h.items(KIND_CONTACTS)[item])


class FilterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CALENDAR]
        day = 86400
        self.recent = self.h.add(KIND_CALENDAR, Subject="recent",
                                 EndTime=eas_time(START_TIME - 2 * day))
        self.old = self.h.add(KIND_CALENDAR, Subject="old",
                              EndTime=eas_time(START_TIME - 60 * day))

    def test_two_weeks_filter_and_soft_delete(self) -> None:
        key = self.h.initial(KIND_CALENDAR, filter_type=4)
        answer = read_sync(self.h.sync(sync_request(collection(self.folder, key))))[self.folder]
        self.assertEqual([self.h.server_id(KIND_CALENDAR, self.recent)], answer.ops("Add"))
        # Moved out of the window: SoftDelete.  Moved into it: Add.
        self.h.change(KIND_CALENDAR, self.recent, Subject="recent",
                      EndTime=eas_time(START_TIME - 90 * 86400))
        self.h.change(KIND_CALENDAR, self.old, Subject="old", EndTime=eas_time(START_TIME))
        later = read_sync(self.h.sync(sync_request(collection(self.folder, answer.key))))[
            self.folder]
        self.assertEqual([("SoftDelete", self.h.server_id(KIND_CALENDAR, self.recent)),
                          ("Add", self.h.server_id(KIND_CALENDAR, self.old))],
                         [(op, sid) for op, sid, _ in later.commands])
        # A server delete of an item the device never had is not sent.
        self.h.delete(KIND_CALENDAR, self.recent)
        self.assertIsNone(self.h.sync(sync_request(collection(self.folder, later.key))).body)

    def test_soft_delete_is_delete_in_2_5(self) -> None:
        key = self.h.initial(KIND_CALENDAR, "2.5", filter_type=4, eas_class="Calendar")
        answer = read_sync(self.h.sync(sync_request(collection(
            self.folder, key, eas_class="Calendar")), "2.5"))[self.folder]
        self.assertEqual("Calendar", answer.eas_class)
        self.assertEqual("Class", answer.order[0])
        self.h.change(KIND_CALENDAR, self.recent, Subject="r",
                      EndTime=eas_time(START_TIME - 90 * 86400))
        later = read_sync(self.h.sync(sync_request(collection(
            self.folder, answer.key, eas_class="Calendar")), "2.5"))[self.folder]
        self.assertEqual(["Delete"], [op for op, _, _ in later.commands])

    def test_incomplete_tasks_filter(self) -> None:
        folder = self.h.folders[KIND_TASKS]
        open_task = self.h.add(KIND_TASKS, Subject="open", Complete="0")
        self.h.add(KIND_TASKS, Subject="done", Complete="1")
        key = self.h.initial(KIND_TASKS, filter_type=8)
        answer = read_sync(self.h.sync(sync_request(collection(folder, key))))[folder]
        self.assertEqual([self.h.server_id(KIND_TASKS, open_task)], answer.ops("Add"))


class RequestShapeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CONTACTS]

    def top_status(self, response) -> str | None:  # type: ignore[no-untyped-def]
        assert response.body is not None
        return response.body.findtext(AS + "Status")

    def test_bad_shape_is_status_4(self) -> None:
        root = sync_request()
        root.add(AS + "Collections").add(AS + "Collection").add(AS + "SyncKey", "0")
        self.assertEqual("4", self.top_status(self.h.sync(root)))
        self.assertEqual("4", self.top_status(self.h.sync(sync_request(
            collection(self.folder, "0"), wait=5, heartbeat=300))))

    def test_unknown_collection_is_status_12(self) -> None:
        answer = read_sync(self.h.sync(sync_request(collection("999", "0"))))["999"]
        self.assertEqual("12", answer.status)

    def test_wait_and_heartbeat_limits(self) -> None:
        response = self.h.sync(sync_request(collection(self.folder, "0"), heartbeat=30))
        self.assertEqual("14", self.top_status(response))
        assert response.body is not None
        self.assertEqual("60", response.body.findtext(AS + "Limit"))
        response = self.h.sync(sync_request(collection(self.folder, "0"), wait=90), "14.0")
        self.assertEqual("14", self.top_status(response))
        assert response.body is not None
        self.assertEqual("59", response.body.findtext(AS + "Limit"))

    def test_empty_request_without_cache_is_status_13(self) -> None:
        self.assertEqual("13", self.top_status(self.h.sync(None)))
        self.assertEqual("13", self.top_status(self.h.sync(sync_request(
            collection(self.folder, "0"), partial=True))))
        self.assertEqual("4", self.top_status(self.h.sync(None, "12.0")))

    def test_empty_request_reuses_the_last_request(self) -> None:
        cal = self.h.folders[KIND_CALENDAR]
        ckey = self.h.initial(KIND_CONTACTS)
        kkey = self.h.initial(KIND_CALENDAR)
        self.assertIsNone(self.h.sync(sync_request(
            collection(self.folder, ckey), collection(cal, kkey)), "14.1").body)
        stored = result_of(self.h.store.get_sync_state("dev1", "alice", REQUEST_CACHE_ID))
        self.assertIsNotNone(stored)
        event = self.h.add(KIND_CALENDAR, Subject="e")
        answers = read_sync(self.h.sync(None, "14.1"))
        self.assertEqual([self.h.server_id(KIND_CALENDAR, event)], answers[cal].ops("Add"))
        self.assertNotIn(self.folder, answers)
        # Partial: the listed collection plus the cached ones.
        contact = self.h.add(KIND_CONTACTS, FileAs="c")
        self.h.add(KIND_CALENDAR, Subject="f")
        answers = read_sync(self.h.sync(sync_request(
            collection(self.folder, ckey, window=1), partial=True), "14.1"))
        self.assertEqual([self.h.server_id(KIND_CONTACTS, contact)], answers[self.folder].ops("Add"))
        self.assertEqual(1, len(answers[cal].commands))
