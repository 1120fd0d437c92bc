"""Groupware Sync through the real daemon (twistd, SQLite, loopback HTTP).

    .venv/bin/python bench/groupware_sync.py [--items 10000] [--small 100]
                                             [--window 100] [--rounds 20]

Before the daemon starts, the bench fills four collections of user alice
through the backend API (``SQLGroupwareBackend.add_items`` on the daemon's
own SQLite file): ``--items`` contacts, ``--items`` events, and ``--small``
of each.  Contacts carry a name, two emails, two phones, an address, a
company and a note; events a time zone (a VTIMEZONE with the IANA name),
attendees and an organizer, a reminder, and every fifth one a weekly RRULE.

Then, as a 16.1 device with our WBXML codec:

* initial Sync of each big collection: SyncKey 0, then WindowSize
  ``--window`` until MoreAvailable is gone; items/s from the client's wall
  time, the daemon's CPU seconds and its peak memory (VmHWM);
* incremental Sync, ``--rounds`` times per collection: one item changed
  through the backend (by this process, on the same database file), then
  one Sync with the current key, which must bring exactly that Change; the
  daemon's CPU time and the client's wall time of that request, for the
  small and the big collection of each kind.

The daemon's CPU time is read from its process CPU clock
(``clock_gettime`` on the CPU clock id of the pid: nanoseconds, all
threads) and cross-checked with utime+stime of ``/proc/<pid>/stat``.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests
from twisted.internet import reactor as _reactor
from twisted.internet.threads import blockingCallFromThread

from easyncd.backends.groupware.sql import SQLGroupwareBackend
from easyncd.store import open_store
from easyncd.testing.daemon import WBXML, Daemon, folder_sync, provision
from easyncd.wbxml import Element, decode, encode

AS = "AirSync:"
BASE = "AirSyncBase:"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ACCESS_SYNC = re.compile(r"POST Sync .* ([0-9.]+)ms$", re.MULTILINE)


# -- the daemon's process -----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """The CPU time of a whole process (every thread), from its CPU clock."""
    clock_id = ((~pid) << 3) | 2  # Linux: CPUCLOCK_SCHED of the process ``pid``
    return time.clock_gettime(clock_id)


def proc_stat_seconds(pid: int) -> float:
    """utime + stime of /proc/<pid>/stat (clock ticks, 10 ms resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def server_seconds(daemon: Daemon, since: int) -> tuple[float, int]:
    """The Sync request times the daemon logged after byte ``since`` of its
    log (summed, seconds), and the log's length now."""
    text = daemon.log()
    return sum(float(ms) for ms in ACCESS_SYNC.findall(text[since:])) / 1000, len(text)


def status_kib(pid: int, key: str) -> int:
    """A ``Vm*`` line of /proc/<pid>/status, KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# -- items ---------------------------------------------------------------------------------

FIRST = ("Anna", "Bernd", "Chloé", "David", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jonas")
LAST = ("Müller", "Schmidt", "O'Brien", "Nakamura", "García", "Kowalski", "Dubois", "Rossi")
CITIES = (("Berlin", "BE", "10115", "Germany"), ("Springfield", "IL", "62701", "USA"),
          ("Lyon", "", "69001", "France"), ("Osaka", "", "530-0001", "Japan"))


def contact(i: int) -> str:
    """A realistic vCard 3.0."""
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    city, region, code, country = CITIES[i % len(CITIES)]
    login = f"{first.lower()}.{last.lower()}{i}".replace("'", "")
    return "\r\n".join([
        "BEGIN:VCARD", "VERSION:3.0", f"UID:bench-contact-{i}@example.org",
        f"FN:{first} {last} {i}", f"N:{last} {i};{first};;;",
        f"ORG:Company {i % 97} GmbH;Sales", "TITLE:Account manager",
        f"EMAIL;TYPE=INTERNET,WORK:{login}@company{i % 97}.example",
        f"EMAIL;TYPE=INTERNET,HOME:{login}@mail.example",
        f"TEL;TYPE=CELL:+49 170 {i:07d}", f"TEL;TYPE=WORK,VOICE:+49 30 {i:07d}",
        f"ADR;TYPE=WORK:;;{i % 300 + 1} Main Street;{city};{region};{code};{country}",
        f"NOTE:Met at the trade fair {2000 + i % 25}\\, talk about the renewal "
        "in spring. Prefers email.",
        "END:VCARD", ""])


BERLIN = "\r\n".join([
    "BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST",
    "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
    "BEGIN:STANDARD", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "TZNAME:CET",
    "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
    "END:VTIMEZONE"])


def event(i: int) -> str:
    """A realistic VCALENDAR with one VEVENT (every fifth weekly recurring)."""
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    year = 2025 + (i // 336) % 2
    hour = 8 + i % 9
    stamp = f"{year}{month:02d}{day:02d}"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//easyncd bench//EN", BERLIN,
        "BEGIN:VEVENT", f"UID:bench-event-{i}@example.org", "DTSTAMP:20250101T120000Z",
        f"DTSTART;TZID=Europe/Berlin:{stamp}T{hour:02d}0000",
        f"DTEND;TZID=Europe/Berlin:{stamp}T{hour + 1:02d}0000",
        f"SUMMARY:Project meeting {i}", f"LOCATION:Room {i % 40}",
        "DESCRIPTION:Agenda: status\\, risks\\, next steps.",
        "ORGANIZER;CN=Anna Müller:mailto:anna@example.org",
        f"ATTENDEE;CN=Bernd;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bernd{i}@example.org",
        f"ATTENDEE;CN=Chloé;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:chloe{i}@example.org",
        "CATEGORIES:Work", "TRANSP:OPAQUE", "CLASS:PUBLIC",
    ]
    if i % 5 == 0:
        lines.append("RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=20")
    lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-PT15M",
              "END:VALARM", "END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def changed(data: str, round_no: int) -> str:
    """The item with one property changed."""
    if data.startswith("BEGIN:VCARD"):
        return data.replace("TITLE:Account manager", f"TITLE:Account manager {round_no}")
    return data.replace("SUMMARY:Project meeting", f"SUMMARY:Moved meeting {round_no}")


# -- the backend in this process (a reactor in a thread) --------------------------------------


class Filler:
    """The backend API on the daemon's database, from this process."""

    def __init__(self, url: str) -> None:
        self.thread = threading.Thread(target=_reactor.run, kwargs={"installSignalHandlers": False},
                                       daemon=True)
        self.thread.start()
        self.store = self.call(lambda: open_store(url, _reactor))  # type: ignore[arg-type]
        self.call(self.store.migrate)
        self.backend = SQLGroupwareBackend(self.store, _reactor)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` in the reactor thread; its (Deferred) result."""
        return blockingCallFromThread(_reactor, function, *args)  # type: ignore[arg-type]

    def collection(self, kind: str, name: str, default: bool) -> str:
        """The id of the default collection of ``kind``, or a new one."""
        if default:
            found = self.call(self.backend.list_collections, "alice", kind)
            return str(found[0].collection_id)
        return str(self.call(self.backend.create_collection, "alice", kind, name).collection_id)

    def fill(self, collection_id: str, make: Callable[[int], str], count: int) -> None:
        """``count`` items, 1,000 per transaction."""
        for start in range(0, count, 1000):
            datas = [make(i) for i in range(start, min(count, start + 1000))]
            self.call(self.backend.add_items, "alice", collection_id, datas)

    def change_one(self, collection_id: str, round_no: int) -> None:
        """Change one item (the middle one) of a collection."""
        _, ids = self.call(self.backend.list_items, "alice", collection_id)
        item_id = ids[len(ids) // 2]
        item = self.call(self.backend.get_items, "alice", collection_id, [item_id])[0]
        self.call(self.backend.update_item, "alice", collection_id, item_id,
                  changed(item.data, round_no))

    def stop(self) -> None:
        """Close the store and stop the reactor thread."""
        self.call(self.store.close)
        _reactor.callFromThread(_reactor.stop)  # type: ignore[attr-defined]
        self.thread.join(10)


# -- the device ---------------------------------------------------------------------------------


class Device:
    """A 16.1 device on one keep-alive connection."""

    def __init__(self, daemon: Daemon, policy_key: int) -> None:
        self.session = requests.Session()
        self.session.auth = ("alice", "secret")
        self.base = daemon.base
        self.headers = {"MS-ASProtocolVersion": "16.1", "X-MS-PolicyKey": str(policy_key),
                        "Content-Type": WBXML}

    def post(self, command: str, body: Element) -> Element:
        """One command; the decoded answer."""
        url = (f"{self.base}/Microsoft-Server-ActiveSync?Cmd={command}&User=alice"
               "&DeviceId=bench&DeviceType=Bench")
        response = self.session.post(url, data=encode(body), headers=self.headers, timeout=120)
        assert response.status_code == 200, (response.status_code, response.text)
        return decode(response.content)

    def folders(self) -> dict[str, str]:
        """DisplayName -> ServerId of the FolderSync."""
        answer = self.post("FolderSync", folder_sync("0"))
        changes = answer.find("FolderHierarchy:Changes")
        assert changes is not None, answer.to_xml()
        found = {}
        for add in changes.children:
            if add.tag == "FolderHierarchy:Add":
                found[add.findtext("FolderHierarchy:DisplayName") or ""] = \
                    add.findtext("FolderHierarchy:ServerId") or ""
        return found

    def sync(self, server_id: str, key: str, window: int, calendar: bool) -> Element:
        """One Sync of one collection; the Collection element of the answer."""
        request = Element(AS + "Sync")
        collection = request.add(AS + "Collections").add(AS + "Collection")
        collection.add(AS + "SyncKey", key)
        collection.add(AS + "CollectionId", server_id)
        if key != "0":
            collection.add(AS + "WindowSize", str(window))
            options = collection.add(AS + "Options")
            if calendar:
                options.add(AS + "FilterType", "0")
            preference = options.add(BASE + "BodyPreference")
            preference.add(BASE + "Type", "1")
            preference.add(BASE + "TruncationSize", "32768")
        answer = self.post("Sync", request)
        result = answer.find(AS + "Collections/" + AS + "Collection")
        assert result is not None, answer.to_xml()
        assert result.findtext(AS + "Status") == "1", answer.to_xml()
        return result


@dataclass
class Initial:
    """Figures of one initial sync."""

    items: int
    requests: int
    wall: float
    cpu: float
    cpu_ticks: float
    hwm_kib: int
    server_wall: float = 0.0


def initial_sync(device: Device, pid: int, server_id: str, expected: int, window: int,
                 calendar: bool) -> tuple[Initial, str]:
    """SyncKey 0, then windows until MoreAvailable is gone; the figures and the key."""
    cpu0, ticks0 = cpu_seconds(pid), proc_stat_seconds(pid)
    t0 = time.perf_counter()
    key = device.sync(server_id, "0", window, calendar).findtext(AS + "SyncKey") or ""
    items = requests_made = 0
    while True:
        result = device.sync(server_id, key, window, calendar)
        requests_made += 1
        key = result.findtext(AS + "SyncKey") or ""
        commands = result.find(AS + "Commands")
        if commands is not None:
            for command in commands.children:
                assert command.tag == AS + "Add", command.tag
                assert command.find(AS + "ApplicationData") is not None
                items += 1
        if result.find(AS + "MoreAvailable") is None:
            break
    wall = time.perf_counter() - t0
    figures = Initial(items, requests_made + 1, wall, cpu_seconds(pid) - cpu0,
                      proc_stat_seconds(pid) - ticks0, status_kib(pid, "VmHWM"))
    assert items == expected, (items, expected)
    return figures, key


def incremental(device: Device, filler: Filler, pid: int, collection_id: str, server_id: str,
                key: str, rounds: int, calendar: bool) -> tuple[list[float], list[float], str]:
    """``rounds`` times: change one item, Sync once; server CPU and wall time (s)."""
    cpus, walls = [], []
    for round_no in range(rounds):
        filler.change_one(collection_id, round_no)
        time.sleep(0.02)
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        result = device.sync(server_id, key, 100, calendar)
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds(pid) - cpu0)
        key = result.findtext(AS + "SyncKey") or ""
        commands = result.find(AS + "Commands")
        assert commands is not None and [c.tag for c in commands.children] == [AS + "Change"]
    return cpus, walls, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(tmp)
        daemon.add_user("alice", "secret")
        url = "sqlite:///" + os.path.join(daemon.data_dir, "easyncd.db")
        filler = Filler(url)
        t0 = time.perf_counter()
        big_contacts = filler.collection("contacts", "", True)
        big_events = filler.collection("calendar", "", True)
        small_contacts = filler.collection("contacts", "Small contacts", False)
        small_events = filler.collection("calendar", "Small calendar", False)
        filler.fill(big_contacts, contact, args.items)
        filler.fill(big_events, event, args.items)
        filler.fill(small_contacts, contact, args.small)
        filler.fill(small_events, event, args.small)
        print(f"filled {2 * (args.items + args.small)} items in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        daemon.start()
        try:
            assert daemon.process is not None
            pid = daemon.process.pid
            device = Device(daemon, provision(daemon, device_id="bench", device_type="Bench"))
            folders = device.folders()
            ids = {big_contacts: folders["Contacts"], big_events: folders["Calendar"],
                   small_contacts: folders["Small contacts"],
                   small_events: folders["Small calendar"]}
            rss_start = status_kib(pid, "VmRSS")
            print(f"daemon RSS after start and FolderSync: {rss_start / 1024:.1f} MiB")
            keys: dict[str, str] = {}
            for label, cid, count, is_cal in (
                    ("contacts", big_contacts, args.items, False),
                    ("events", big_events, args.items, True),
                    ("contacts", small_contacts, args.small, False),
                    ("events", small_events, args.small, True)):
                _, log_at = server_seconds(daemon, 0)
                figures, keys[cid] = initial_sync(device, pid, ids[cid], count, args.window,
                                                  is_cal)
                time.sleep(0.2)  # the access log line follows the response
                figures.server_wall, _ = server_seconds(daemon, log_at)
                if count == args.small and count != args.items:
                    continue  # the small ones are primed for the incremental runs only
                print(f"initial Sync, {figures.items} {label}, WindowSize {args.window} "
                      f"({figures.requests} requests): {figures.wall:.2f} s, "
                      f"{figures.items / figures.wall:.0f} {label}/s end to end; "
                      f"server CPU {figures.cpu:.2f} s (utime+stime {figures.cpu_ticks:.2f} s), "
                      f"{figures.items / figures.cpu:.0f} {label}/CPU-s; server request time "
                      f"(access log) {figures.server_wall:.2f} s; "
                      f"daemon peak memory (VmHWM) {figures.hwm_kib / 1024:.1f} MiB", flush=True)
            for label, cid, size, is_cal in (
                    ("contacts", small_contacts, args.small, False),
                    ("contacts", big_contacts, args.items, False),
                    ("events", small_events, args.small, True),
                    ("events", big_events, args.items, True)):
                cpus, walls, keys[cid] = incremental(device, filler, pid, cid, ids[cid],
                                                     keys[cid], args.rounds, is_cal)
                print(f"incremental Sync, one change among {size} {label}, {args.rounds} rounds: "
                      f"server CPU median {statistics.median(cpus) * 1000:.2f} ms "
                      f"(min {min(cpus) * 1000:.2f}, max {max(cpus) * 1000:.2f}); "
                      f"wall median {statistics.median(walls) * 1000:.2f} ms "
                      f"(max {max(walls) * 1000:.2f})", flush=True)
            print(f"daemon peak memory (VmHWM) at the end: "
                  f"{status_kib(pid, 'VmHWM') / 1024:.1f} MiB, RSS "
                  f"{status_kib(pid, 'VmRSS') / 1024:.1f} MiB")
        except BaseException:
            print(daemon.log()[-5000:], file=sys.stderr)
            raise
        finally:
            filler.stop()
            daemon.stop()


if __name__ == "__main__":
    main()
