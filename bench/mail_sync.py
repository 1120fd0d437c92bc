"""Mail Sync through the real daemon (twistd, SQLite) and a real Dovecot.

    .venv/bin/python bench/mail_sync.py [--messages 10000] [--small 1000]
                                        [--window 100] [--rounds 20]
                                        [--repeat 50] [--no-qresync]

Before anyone logs in, the bench writes a Maildir for user alice into the
throw-away Dovecot's mail store (``DovecotServer.mail_dir``): ``--messages``
messages in INBOX and ``--small`` in a folder "Small".  The messages are
generated (seeded, so every run gets the same ones): plain text, HTML only,
multipart/alternative, multipart/mixed with 1-3 attachments (a few KB, some
up to 1 MB), multipart/related with an inline image, and ~3 % invitations
(text/calendar METHOD:REQUEST with a VTIMEZONE); charsets UTF-8,
ISO-8859-1, windows-1252 and KOI8-R in bodies (8bit, quoted-printable,
base64) and RFC 2047 headers; replies with In-Reply-To/References, some
priorities, flags (\\Seen, \\Flagged, \\Answered) from the file names and
INTERNALDATE from the file times.

Then, as a 16.1 device (our WBXML codec, one keep-alive connection,
WindowSize ``--window``, BodyPreference Type 2 (HTML) truncated at 5,120
bytes):

* initial Sync of "Small" and of INBOX: SyncKey 0, then windows until
  MoreAvailable is gone; messages/s from the client's wall time, the
  daemon's CPU seconds (its process CPU clock; utime+stime of
  /proc/<pid>/stat agrees), Dovecot's CPU seconds (its ``imap`` processes),
  and the daemon's peak memory (VmHWM);
* for both folders, ``--rounds`` times each: one message APPENDed by another
  IMAP client then one Sync (must bring exactly that Add); one flag changed
  by another client (UID STORE) then one Sync (exactly that Change);
* for both folders, ``--repeat`` Syncs with nothing new (empty answers).

Per request figures are the daemon's CPU time for that request (CPU clock
before and after, nanoseconds) and the client's wall time; the median and
the mean are printed.  ``--no-qresync`` runs Dovecot with
``imap_capability = IMAP4rev1 IDLE`` (the fallback path).
"""
from __future__ import annotations

import argparse
import base64
import imaplib
import os
import random
import re
import ssl
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from quopri import encodestring as qp_encode

import requests

from easyncd.testing.daemon import WBXML, Daemon, folder_sync, provision
from easyncd.testing.dovecot import DovecotServer
from easyncd.wbxml import Element, decode, encode

AS = "AirSync:"
BASE = "AirSyncBase:"
PASSWORD = "alice mail pw"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAILBOXES = """\
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
"""


# -- processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """The CPU time of a whole process (every thread), from its CPU clock."""
    return time.clock_gettime(((~pid) << 3) | 2)  # Linux: CPUCLOCK_SCHED of ``pid``


def proc_stat_seconds(pid: int) -> float:
    """utime + stime of /proc/<pid>/stat (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def dovecot_imap_seconds(master: int) -> float:
    """utime+stime of Dovecot's live ``imap`` processes (children of ``master``)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        name = text[text.find("(") + 1:text.rfind(")")]
        fields = text.rsplit(")", 1)[1].split()
        if name == "imap" and int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def status_kib(pid: int, key: str) -> int:
    """A ``Vm*`` line of /proc/<pid>/status, KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# -- messages ----------------------------------------------------------------------------------

NAMES = ("Anna Müller", "Bernd Schäfer", "Chloé Dubois", "David O'Brien", "Emma García",
         "Фёдор Иванов", "Ольга Смирнова", "Hiro Nakamura", "Jonas Weiß", "Zoë Ålander")
WORDS = {
    "utf-8": ("status", "report", "Größe", "naïve", "café", "日本語", "emoji 🎉", "ответ",
              "déjà", "vu", "project", "budget", "Übersicht", "meeting", "€ 42"),
    "iso-8859-1": ("Grüße", "Straße", "Käse", "über", "façade", "señor", "año", "Bericht",
                   "Woche", "Termin", "Angebot", "Kunde", "müssen", "état", "réunion"),
    "windows-1252": ("“quoted”", "it’s", "€ 100", "–", "…", "naïve", "rôle", "Preis",
                     "invoice", "offer", "™", "price", "order", "shipping", "delivery"),
    "koi8-r": ("привет", "отчёт", "встреча", "проект", "бюджет", "неделя", "договор",
               "письмо", "срочно", "клиент", "сумма", "счёт", "план", "задача", "итог"),
}
CHARSETS = ("utf-8", "iso-8859-1", "windows-1252", "koi8-r")
SUBJECTS = ("Quarterly report", "Re: Budget", "Lunch?", "Angebot für Ihre Anfrage",
            "Счёт за март", "Fwd: Photos", "Invoice 2024-", "Meeting notes",
            "Réunion de lundi", "Your order has shipped", "Weekly newsletter", "Ticket #")
BERLIN = "\r\n".join([
    "BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "TZNAME:CEST",
    "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
    "BEGIN:STANDARD", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "TZNAME:CET",
    "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
    "END:VTIMEZONE"])
#: Random bytes the attachments are cut from (base64 lines, 76 chars + CRLF).
_BLOB = base64.encodebytes(random.Random(7).randbytes(1_200_000)).replace(b"\n", b"\r\n")
_PNG = base64.encodebytes(b"\x89PNG\r\n\x1a\n" + random.Random(8).randbytes(6000)) \
    .replace(b"\n", b"\r\n")


def _words(rng: random.Random, charset: str, count: int) -> str:
    pool = WORDS[charset]
    plain = ("the", "and", "we", "please", "see", "attached", "next", "week", "thanks",
             "for", "your", "mail", "I", "think", "that", "is", "fine", "by", "me")
    return " ".join(rng.choice(pool) if rng.random() < 0.25 else rng.choice(plain)
                    for _ in range(count))


def _text(rng: random.Random, charset: str, size: int) -> str:
    paragraphs = []
    total = 0
    while total < size:
        paragraph = _words(rng, charset, rng.randint(20, 80)).capitalize() + "."
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\r\n\r\n".join(paragraphs)


def _header_word(text: str, charset: str, rng: random.Random) -> str:
    """RFC 2047 for non-ASCII header text."""
    if text.isascii():
        return text
    raw = text.encode(charset, "replace")
    if rng.random() < 0.5:
        return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    encoded = "".join(chr(b) if 33 <= b < 127 and chr(b) not in "=?_" else
                      ("_" if b == 32 else f"={b:02X}") for b in raw)
    return f"=?{charset}?Q?{encoded}?="


def _body_part(rng: random.Random, subtype: str, content: str, charset: str) -> bytes:
    """One text/* part: headers and an encoded body."""
    raw = content.encode(charset, "replace")
    choice = rng.random()
    if charset == "utf-8" and choice < 0.3 or charset == "koi8-r" and choice < 0.5:
        cte, body = "base64", base64.encodebytes(raw).replace(b"\n", b"\r\n")
    elif choice < 0.8:
        cte = "quoted-printable"
        body = qp_encode(raw.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    else:
        cte, body = "8bit", raw
    return (f"Content-Type: text/{subtype}; charset=\"{charset}\"\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + body + b"\r\n"


def _html(text: str) -> str:
    paragraphs = "".join(f"<p style=\"margin:0 0 1em 0;font-family:Arial\">{p}</p>\r\n"
                         for p in text.split("\r\n\r\n"))
    return ("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Type\" "
            "content=\"text/html\"><style>p{color:#222}</style></head><body>\r\n"
            f"<div class=\"mail\">{paragraphs}<table><tr><td>Regards</td></tr></table>"
            "</div></body></html>")


def _attachment(rng: random.Random, index: int) -> bytes:
    big = rng.random() < 0.03
    size = rng.randint(300_000, 1_000_000) if big else rng.randint(3_000, 120_000)
    length = (size * 4 // 3) // 78 * 78
    start = rng.randrange(0, (len(_BLOB) - length) // 78) * 78
    kind, name = rng.choice((("application/pdf", "report.pdf"), ("image/jpeg", "photo.jpg"),
                             ("application/vnd.openxmlformats-officedocument."
                              "spreadsheetml.sheet", "figures.xlsx"),
                             ("application/zip", "archive.zip")))
    if rng.random() < 0.2:
        name = "=?utf-8?B?" + base64.b64encode(f"Übersicht {index}.pdf".encode()).decode() + "?="
    return (f"Content-Type: {kind}; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + _BLOB[start:start + length]


def _invitation(rng: random.Random, index: int, when: datetime) -> str:
    start = when + timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 8))
    stamp = start.strftime("%Y%m%dT%H0000")
    end = (start + timedelta(hours=1)).strftime("%Y%m%dT%H0000")
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN", "METHOD:REQUEST", BERLIN,
        "BEGIN:VEVENT", f"UID:bench-invite-{index}@example.org",
        when.strftime("DTSTAMP:%Y%m%dT%H%M%SZ"),
        f"DTSTART;TZID=Europe/Berlin:{stamp}", f"DTEND;TZID=Europe/Berlin:{end}",
        f"SUMMARY:Planning session {index}", f"LOCATION:Room {index % 40}",
        "DESCRIPTION:Agenda: status\\, risks\\, next steps.",
        "ORGANIZER;CN=Anna Müller:mailto:anna@example.org",
        "ATTENDEE;CN=Alice;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:"
        "mailto:alice@example.org",
        f"ATTENDEE;CN=Bernd;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:bernd{index}"
        "@example.org",
        "SEQUENCE:0", "STATUS:CONFIRMED", "TRANSP:OPAQUE",
        "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-PT15M",
        "END:VALARM", "END:VEVENT", "END:VCALENDAR", ""])


def make_message(index: int, when: datetime, seed: int = 0) -> tuple[bytes, str]:
    """A realistic message and its Maildir flag letters."""
    rng = random.Random(index * 7919 + seed)
    charset = rng.choice(CHARSETS)
    sender = rng.choice(NAMES)
    login = re.sub(r"[^a-z]", "", sender.lower()) or "someone"
    subject = rng.choice(SUBJECTS) + str(index)
    if charset == "koi8-r" and rng.random() < 0.7:
        subject = "Отчёт " + subject
    hcs = charset if charset != "windows-1252" else "iso-8859-1"
    headers = [
        "Return-Path: <" + login + "@example.net>",
        f"Received: from mx.example.net (mx.example.net [192.0.2.{index % 250}]) by "
        f"mail.example.org with ESMTPS id {index:08x}; {format_datetime(when)}",
        f"From: {_header_word(sender, 'utf-8', rng)} <{login}@example.net>",
        "To: Alice Example <alice@example.org>",
        f"Date: {format_datetime(when)}",
        f"Subject: {_header_word(subject, hcs if subject.encode(hcs, 'ignore') else 'utf-8', rng)}",
        f"Message-ID: <bench-{index}@example.net>",
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.3:
        headers.append("Cc: Bob <bob@example.org>, =?utf-8?Q?J=C3=B6rg?= <joerg@example.org>")
    if rng.random() < 0.3 and index > 1:
        parent = rng.randrange(max(1, index - 50), index)
        headers += [f"In-Reply-To: <bench-{parent}@example.net>",
                    f"References: <bench-{parent - 1}@example.net> <bench-{parent}@example.net>"]
    if rng.random() < 0.05:
        headers += ["X-Priority: 1 (Highest)", "Importance: High"]
    if rng.random() < 0.2:
        headers += ["List-Id: <news.example.net>",
                    "List-Unsubscribe: <mailto:leave@example.net>"]
    kind = rng.random()
    text = _text(rng, charset, rng.choice((400, 1500, 4000, 12000)))
    boundary = f"=_bench_{index}_{rng.getrandbits(32):08x}"
    if kind < 0.03:  # an invitation
        calendar = _invitation(rng, index, when)
        outer = (f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
                 f"--{boundary}\r\n").encode() + _body_part(rng, "plain", text[:600], "utf-8")
        outer += (f"--{boundary}\r\nContent-Type: text/calendar; charset=\"utf-8\"; "
                  "method=REQUEST\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode()
        outer += calendar.encode() + f"\r\n--{boundary}--\r\n".encode()
        body = outer
    elif kind < 0.30:  # plain text
        body = _body_part(rng, "plain", text, charset)
    elif kind < 0.42:  # HTML only
        body = _body_part(rng, "html", _html(text), charset)
    elif kind < 0.75:  # alternative
        body = (f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
                f"--{boundary}\r\n").encode() + _body_part(rng, "plain", text, charset) + \
            f"--{boundary}\r\n".encode() + _body_part(rng, "html", _html(text), charset) + \
            f"--{boundary}--\r\n".encode()
    elif kind < 0.80:  # related: HTML with an inline image
        body = (f"Content-Type: multipart/related; boundary=\"{boundary}\"\r\n\r\n"
                f"--{boundary}\r\n").encode()
        body += _body_part(rng, "html", _html(text).replace(
            "</div>", f"<img src=\"cid:logo{index}@example.net\"></div>"), charset)
        body += (f"--{boundary}\r\nContent-Type: image/png; name=\"logo.png\"\r\n"
                 f"Content-ID: <logo{index}@example.net>\r\nContent-Disposition: inline\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n").encode() + _PNG
        body += f"--{boundary}--\r\n".encode()
    else:  # mixed: alternative + attachments
        inner = "alt" + boundary
        body = (f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
                f"--{boundary}\r\n"
                f"Content-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n"
                f"--{inner}\r\n").encode() + _body_part(rng, "plain", text, charset) + \
            f"--{inner}\r\n".encode() + _body_part(rng, "html", _html(text), charset) + \
            f"--{inner}--\r\n".encode()
        for number in range(rng.choice((1, 1, 1, 2, 3))):
            body += f"--{boundary}\r\n".encode() + _attachment(rng, index * 10 + number)
        body += f"--{boundary}--\r\n".encode()
    message = ("\r\n".join(headers) + "\r\n").encode() + body
    flags = ""
    if rng.random() < 0.15:
        flags += "F"
    if rng.random() < 0.1:
        flags += "R"
    if rng.random() < 0.7:
        flags += "S"
    return message, flags


def write_maildir(folder: str, count: int, start: datetime, seed: int, uid: int, gid: int
                  ) -> int:
    """``count`` messages into the Maildir folder directory; the bytes written.

    File names sort by date, so Dovecot gives the oldest message the lowest
    UID; each file's mtime is its date (Dovecot's INTERNALDATE for Maildir)."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    total = 0
    step = timedelta(days=730) / max(count, 1)
    for index in range(count):
        when = start + step * index
        data, flags = make_message(index, when, seed)
        stamp = int(when.timestamp())
        name = f"{stamp:010d}.M{index:06d}P1.bench,S={len(data)}:2,{flags}"
        path = os.path.join(folder, "cur", name)
        with open(path, "wb") as handle:
            handle.write(data)
        os.utime(path, (stamp, stamp))
        os.chown(path, uid, gid)
        total += len(data)
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            os.chown(os.path.join(root, name), uid, gid)
    os.chown(folder, uid, gid)
    return total


# -- the device --------------------------------------------------------------------------------


class Device:
    """A 16.1 device on one keep-alive connection."""

    def __init__(self, daemon: Daemon, policy_key: int) -> None:
        self.session = requests.Session()
        self.session.auth = ("alice", PASSWORD)
        self.base = daemon.base
        self.headers = {"MS-ASProtocolVersion": "16.1", "X-MS-PolicyKey": str(policy_key),
                        "Content-Type": WBXML}

    def post(self, command: str, body: Element) -> Element | None:
        """One command; the decoded answer (None for an empty one)."""
        url = (f"{self.base}/Microsoft-Server-ActiveSync?Cmd={command}&User=alice"
               "&DeviceId=bench&DeviceType=Bench")
        response = self.session.post(url, data=encode(body), headers=self.headers, timeout=300)
        assert response.status_code == 200, (response.status_code, response.text)
        return decode(response.content) if response.content else None

    def folders(self) -> dict[str, str]:
        """DisplayName -> ServerId of the FolderSync."""
        answer = self.post("FolderSync", folder_sync("0"))
        assert answer is not None
        found = {}
        for add in answer.findall("FolderHierarchy:Changes/FolderHierarchy:Add"):
            found[add.findtext("FolderHierarchy:DisplayName") or ""] = \
                add.findtext("FolderHierarchy:ServerId") or ""
        return found

    def sync(self, server_id: str, key: str, window: int) -> Element | None:
        """One Sync of one mail folder; its Collection element (None: empty answer)."""
        request = Element(AS + "Sync")
        collection = request.add(AS + "Collections").add(AS + "Collection")
        collection.add(AS + "SyncKey", key)
        collection.add(AS + "CollectionId", server_id)
        if key != "0":
            collection.add(AS + "WindowSize", str(window))
            options = collection.add(AS + "Options")
            preference = options.add(BASE + "BodyPreference")
            preference.add(BASE + "Type", "2")
            preference.add(BASE + "TruncationSize", "5120")
        answer = self.post("Sync", request)
        if answer is None:
            return None
        result = answer.find(AS + "Collections/" + AS + "Collection")
        assert result is not None, answer.to_xml()
        assert result.findtext(AS + "Status") == "1", answer.to_xml()
        return result


def commands_of(result: Element | None) -> list[Element]:
    """The server's commands in a Collection."""
    if result is None:
        return []
    commands = result.find(AS + "Commands")
    return list(commands.children) if commands is not None else []


# -- the runs ----------------------------------------------------------------------------------


@dataclass
class Procs:
    """The processes whose CPU is counted."""

    daemon: int
    dovecot: int

    def sample(self) -> tuple[float, float, float]:
        """(daemon CPU clock, daemon utime+stime, Dovecot imap utime+stime)."""
        return (cpu_seconds(self.daemon), proc_stat_seconds(self.daemon),
                dovecot_imap_seconds(self.dovecot))


def initial_sync(device: Device, procs: Procs, server_id: str, expected: int, window: int,
                 label: str) -> str:
    """SyncKey 0, then windows until MoreAvailable is gone; prints the figures."""
    before = procs.sample()
    t0 = time.perf_counter()
    result = device.sync(server_id, "0", window)
    assert result is not None
    key = result.findtext(AS + "SyncKey") or ""
    items = requests_made = 0
    largest = 0.0
    while True:
        t1 = time.perf_counter()
        result = device.sync(server_id, key, window)
        largest = max(largest, time.perf_counter() - t1)
        requests_made += 1
        assert result is not None
        key = result.findtext(AS + "SyncKey") or ""
        for command in commands_of(result):
            assert command.tag == AS + "Add", command.tag
            data = command.find(AS + "ApplicationData")
            assert data is not None and data.find("Email:Subject") is not None
            items += 1
        if result.find(AS + "MoreAvailable") is None:
            break
    wall = time.perf_counter() - t0
    after = procs.sample()
    assert items == expected, (items, expected)
    cpu, ticks, imap = (a - b for a, b in zip(after, before))
    print(f"initial Sync of {label}: {items} messages, WindowSize {window} "
          f"({requests_made + 1} requests): {wall:.2f} s, **{items / wall:.0f} messages/s** "
          f"end to end (slowest request {largest * 1000:.0f} ms); daemon CPU {cpu:.2f} s "
          f"(utime+stime {ticks:.2f} s), {items / cpu:.0f} messages/CPU-s; Dovecot imap "
          f"CPU {imap:.2f} s; daemon VmHWM {status_kib(procs.daemon, 'VmHWM') / 1024:.1f} MiB",
          flush=True)
    return key


def measured_sync(device: Device, procs: Procs, server_id: str, key: str
                  ) -> tuple[Element | None, float, float]:
    """One Sync; (result, daemon CPU seconds, wall seconds)."""
    cpu0 = cpu_seconds(procs.daemon)
    t0 = time.perf_counter()
    result = device.sync(server_id, key, 100)
    wall = time.perf_counter() - t0
    return result, cpu_seconds(procs.daemon) - cpu0, wall


def _figures(label: str, cpus: list[float], walls: list[float],
             dovecot: list[float] | None = None) -> None:
    extra = ""
    if dovecot:
        extra = f"; Dovecot imap CPU mean {statistics.mean(dovecot) * 1000:.1f} ms"
    print(f"{label}: daemon CPU median {statistics.median(cpus) * 1000:.2f} ms, mean "
          f"{statistics.mean(cpus) * 1000:.2f} ms (min {min(cpus) * 1000:.2f}, max "
          f"{max(cpus) * 1000:.2f}); client wall median {statistics.median(walls) * 1000:.2f} ms "
          f"(max {max(walls) * 1000:.2f}){extra}", flush=True)


class Other:
    """Another IMAP client (the bench's), changing the mailbox behind the daemon."""

    def __init__(self, server: DovecotServer) -> None:
        self.client = imaplib.IMAP4("localhost", server.imap_port)
        self.client.starttls(ssl.create_default_context(cafile=server.ca_file))
        self.client.login("alice", PASSWORD)

    def append(self, mailbox: str, data: bytes) -> None:
        status, _ = self.client.append(mailbox, None, None, data)
        assert status == "OK"

    def toggle_flag(self, mailbox: str, rng: random.Random) -> None:
        """Flip \\Flagged of a random message."""
        self.client.select(mailbox)
        status, data = self.client.uid("SEARCH", "ALL")
        assert status == "OK"
        uids = data[0].split()
        uid = rng.choice(uids).decode()
        status, data = self.client.uid("FETCH", uid, "(FLAGS)")
        mode = "-FLAGS" if b"\\Flagged" in (data[0] or b"") else "+FLAGS"
        status, _ = self.client.uid("STORE", uid, mode, "(\\Flagged)")
        assert status == "OK"
        self.client.close()

    def logout(self) -> None:
        try:
            self.client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def incremental(device: Device, procs: Procs, other: Other, mailbox: str, server_id: str,
                key: str, rounds: int, size: int, seed: int) -> str:
    """New mail and flag changes, one at a time; prints the figures."""
    rng = random.Random(seed)
    cpus: list[float] = []
    walls: list[float] = []
    dovecot: list[float] = []
    for round_no in range(rounds):
        data, _ = make_message(100_000 + seed * 1000 + round_no, datetime.now(timezone.utc), seed)
        other.append(mailbox, data)
        before = dovecot_imap_seconds(procs.dovecot)
        result, cpu, wall = measured_sync(device, procs, server_id, key)
        dovecot.append(dovecot_imap_seconds(procs.dovecot) - before)
        tags = [c.tag for c in commands_of(result)]
        assert tags == [AS + "Add"], tags
        assert result is not None
        key = result.findtext(AS + "SyncKey") or ""
        cpus.append(cpu)
        walls.append(wall)
    _figures(f"incremental Sync, one new message in {size} ({rounds} rounds)", cpus, walls,
             dovecot)
    cpus, walls, dovecot = [], [], []
    for _ in range(rounds):
        other.toggle_flag(mailbox, rng)
        before = dovecot_imap_seconds(procs.dovecot)
        result, cpu, wall = measured_sync(device, procs, server_id, key)
        dovecot.append(dovecot_imap_seconds(procs.dovecot) - before)
        tags = [c.tag for c in commands_of(result)]
        assert tags == [AS + "Change"], tags
        assert result is not None
        key = result.findtext(AS + "SyncKey") or ""
        cpus.append(cpu)
        walls.append(wall)
    _figures(f"incremental Sync, one flag change in {size} ({rounds} rounds)", cpus, walls,
             dovecot)
    return key


def no_change(device: Device, procs: Procs, server_id: str, key: str, repeat: int,
              size: int) -> None:
    """``repeat`` Syncs with nothing new."""
    cpus, walls = [], []
    before = procs.sample()
    for _ in range(repeat):
        result, cpu, wall = measured_sync(device, procs, server_id, key)
        assert not commands_of(result)
        cpus.append(cpu)
        walls.append(wall)
    after = procs.sample()
    _figures(f"no-change Sync of {size} messages ({repeat} requests)", cpus, walls)
    print(f"    over the {repeat}: daemon utime+stime {(after[1] - before[1]) * 1000 / repeat:.2f} "
          f"ms per request, Dovecot imap {(after[2] - before[2]) * 1000 / repeat:.2f} ms "
          "per request", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--no-qresync", action="store_true")
    args = parser.parse_args()
    extra = MAILBOXES + ("imap_capability = IMAP4rev1 IDLE\n" if args.no_qresync else "")
    server = DovecotServer({"alice": PASSWORD}, extra_config=extra)
    server.start()
    other: Other | None = None
    try:
        home_stat = os.stat(os.path.dirname(server.mail_dir("alice")))
        uid, gid = home_stat.st_uid, home_stat.st_gid
        home = server.mail_dir("alice")
        os.makedirs(home, exist_ok=True)
        os.chown(home, uid, gid)
        start = datetime(2023, 1, 2, 8, 0, tzinfo=timezone.utc)
        t0 = time.perf_counter()
        size = write_maildir(os.path.join(home, "Maildir"), args.messages, start, 0, uid, gid)
        size += write_maildir(os.path.join(home, "Maildir", ".Small"), args.small, start, 1,
                              uid, gid)
        print(f"wrote {args.messages + args.small} messages ({size / 2 ** 20:.0f} MiB) in "
              f"{time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.2f}",
              flush=True)
        assert server._process is not None  # noqa: SLF001 - the bench reads its pid
        with tempfile.TemporaryDirectory() as tmp:
            imap = {"host": "localhost", "port": str(server.imap_port), "tls": "starttls",
                    "ca_file": server.ca_file}
            options = {f"imap.{k}": v for k, v in imap.items()}
            options.update({f"auth.imap_{k}": v for k, v in imap.items()})
            options.update({"imap.enabled": "yes", "auth.checkers": "imap"})
            daemon = Daemon(tmp, options=options)
            daemon.start()
            try:
                assert daemon.process is not None
                procs = Procs(daemon.process.pid, server._process.pid)  # noqa: SLF001
                device = Device(daemon, provision(daemon, device_id="bench", device_type="Bench",
                                                  password=PASSWORD))
                folders = device.folders()
                print(f"daemon RSS after start and FolderSync: "
                      f"{status_kib(procs.daemon, 'VmRSS') / 1024:.1f} MiB", flush=True)
                small_key = initial_sync(device, procs, folders["Small"], args.small,
                                         args.window, f"Small ({args.small})")
                inbox_key = initial_sync(device, procs, folders["Inbox"], args.messages,
                                         args.window, f"INBOX ({args.messages})")
                other = Other(server)
                small_key = incremental(device, procs, other, "Small", folders["Small"],
                                        small_key, args.rounds, args.small, 1)
                inbox_key = incremental(device, procs, other, "INBOX", folders["Inbox"],
                                        inbox_key, args.rounds, args.messages, 2)
                no_change(device, procs, folders["Small"], small_key, args.repeat, args.small)
                no_change(device, procs, folders["Inbox"], inbox_key, args.repeat,
                          args.messages)
                log = daemon.log()
                print(f"daemon log: {log.count('cannot be rendered')} messages not rendered, "
                      f"{log.count('Traceback')} tracebacks", flush=True)
                print(f"daemon peak memory (VmHWM) at the end: "
                      f"{status_kib(procs.daemon, 'VmHWM') / 1024:.1f} MiB, RSS "
                      f"{status_kib(procs.daemon, 'VmRSS') / 1024:.1f} MiB; load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
            except BaseException:
                print(daemon.log()[-5000:], file=sys.stderr)
                raise
            finally:
                if other is not None:
                    other.logout()
                daemon.stop()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
