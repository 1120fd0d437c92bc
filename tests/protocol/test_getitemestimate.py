"""GetItemEstimate: every version's request shape and its statuses."""
from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS
from easyncd.protocol.context import CommandResponse
from easyncd.wbxml import Element, decode, encode
from tests.protocol.groupware_helpers import (
    GroupwareHarness,
    collection,
    eas_time,
    read_sync,
    sync_request,
)
from tests.protocol.helpers import START_TIME

NS = "GetItemEstimate:"
AS = "AirSync:"


def old_request(collection_id: str, key: str, filter_type: int = 0,
                eas_class: str | None = "Contacts") -> Element:
    """2.5 / 12.x: Class? CollectionId FilterType SyncKey."""
    root = Element(NS + "GetItemEstimate")
    coll = root.add(NS + "Collections").add(NS + "Collection")
    if eas_class is not None:
        coll.add(NS + "Class", eas_class)
    coll.add(NS + "CollectionId", collection_id)
    coll.add(AS + "FilterType", str(filter_type))
    coll.add(AS + "SyncKey", key)
    return root


def new_request(collection_id: str, key: str, filter_type: int | None = None) -> Element:
    """14.0+: SyncKey CollectionId Options."""
    root = Element(NS + "GetItemEstimate")
    coll = root.add(NS + "Collections").add(NS + "Collection")
    coll.add(AS + "SyncKey", key)
    coll.add(NS + "CollectionId", collection_id)
    if filter_type is not None:
        coll.add(AS + "Options").add(AS + "FilterType", str(filter_type))
    return root


def answers(response: CommandResponse) -> list[tuple[str, str | None, str | None, str | None]]:
    assert response.body is not None
    body = decode(encode(response.body))
    return [(r.findtext(NS + "Status") or "", r.findtext(NS + "Collection/" + NS + "Class"),
             r.findtext(NS + "Collection/" + NS + "CollectionId"),
             r.findtext(NS + "Collection/" + NS + "Estimate"))
            for r in body.findall(NS + "Response")]


class EstimateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = GroupwareHarness()
        self.folder = self.h.folders[KIND_CONTACTS]
        for n in range(7):
            self.h.add(KIND_CONTACTS, FileAs=f"c{n}")

    def test_16_1_and_14_1(self) -> None:
        for version in ("16.1", "14.1"):
            key = self.h.initial(KIND_CONTACTS, version)
            self.assertEqual([("1", None, self.folder, "7")],
                             answers(self.h.estimate(new_request(self.folder, key), version)))
            # No writes: the same key still works, and Sync sends what was estimated.
            answer = read_sync(self.h.sync(sync_request(collection(self.folder, key)), version))
            self.assertEqual(7, len(answer[self.folder].commands))

    def test_2_5_and_12_1(self) -> None:
        for version in ("2.5", "12.1"):
            key = self.h.initial(KIND_CONTACTS, version)
            self.assertEqual([("1", "Contacts", self.folder, "7")],
                             answers(self.h.estimate(old_request(self.folder, key), version)))

    def test_filter_type_counts(self) -> None:
        folder = self.h.folders[KIND_CALENDAR]
        self.h.add(KIND_CALENDAR, Subject="now", EndTime=eas_time(START_TIME))
        self.h.add(KIND_CALENDAR, Subject="old", EndTime=eas_time(START_TIME - 100 * 86400))
        key = self.h.initial(KIND_CALENDAR, filter_type=4)
        self.assertEqual("1", answers(self.h.estimate(new_request(folder, key, 4)))[0][3])
        self.assertEqual("2", answers(self.h.estimate(new_request(folder, key, 0)))[0][3])

    def test_statuses(self) -> None:
        self.assertEqual("2", answers(self.h.estimate(new_request("999", "1")))[0][0])
        self.assertEqual("3", answers(self.h.estimate(new_request(self.folder, "0")))[0][0])
        self.assertEqual("3", answers(self.h.estimate(new_request(self.folder, "5")))[0][0])
        self.h.initial(KIND_CONTACTS)
        self.assertEqual("4", answers(self.h.estimate(new_request(self.folder, "5")))[0][0])

    def test_bad_request(self) -> None:
        response = self.h.estimate(Element(NS + "GetItemEstimate"), "14.1")
        assert response.body is not None
        self.assertEqual("103", response.body.findtext(NS + "Status"))
        response = self.h.estimate(Element(NS + "GetItemEstimate"), "12.1")
        self.assertEqual(400, response.http_status)
