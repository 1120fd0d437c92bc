"""Benchmark the WBXML codec on a large Sync response.

Builds a Sync response with 2,000 emails (bodies of a few KB, realistic
Email/AirSyncBase/Email2 tags), then reports decode and encode throughput
(best of several runs) and the time libwbxml's ``wbxml2xml`` takes for the
same bytes.  Run from the checkout:

    .venv/bin/python bench/wbxml.py
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from easyncd.wbxml import Element, decode, encode  # noqa: E402

WORDS = (
    "meeting project budget review please find attached the report for "
    "quarter results team schedule update thanks regards tomorrow office "
    "Grüße Übersicht naïve café"
).split()


def _body(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
        if rng.random() < 0.08:
            words.append("\r\n")
    return " ".join(words)


def build_sync_response(count: int = 2000, seed: int = 1) -> Element:
    """A Sync response adding ``count`` emails to one collection."""
    rng = random.Random(seed)
    root = Element("AirSync:Sync")
    collection = root.add("AirSync:Collections").add("AirSync:Collection")
    collection.add("AirSync:SyncKey", "42")
    collection.add("AirSync:CollectionId", "1")
    collection.add("AirSync:Status", "1")
    commands = collection.add("AirSync:Commands")
    for number in range(count):
        add = commands.add("AirSync:Add")
        add.add("AirSync:ServerId", f"1:{number + 1}")
        data = add.add("AirSync:ApplicationData")
        data.add("Email:To", f'"User {number}" <user{number}@example.org>')
        data.add("Email:Cc", "team@example.org")
        data.add("Email:From", f'"Sender {number % 50}" <s{number % 50}@example.com>')
        data.add("Email:Subject", f"Re: {_body(rng, 40)}")
        data.add("Email:ReplyTo", "noreply@example.com")
        data.add("Email:DateReceived", "2024-05-01T10:%02d:00.000Z" % (number % 60))
        data.add("Email:DisplayTo", f"User {number}")
        data.add("Email:ThreadTopic", "Quarterly report")
        data.add("Email:Importance", "1")
        data.add("Email:Read", str(number % 2))
        body_text = _body(rng, rng.randint(2000, 6000))
        body = data.add("AirSyncBase:Body")
        body.add("AirSyncBase:Type", "1")
        body.add("AirSyncBase:EstimatedDataSize", str(len(body_text)))
        body.add("AirSyncBase:Data", body_text)
        data.add("Email:MessageClass", "IPM.Note")
        data.add("Email:InternetCPID", "65001")
        data.add("Email:Flag")
        data.add("Email:ContentClass", "urn:content-classes:message")
        data.add("AirSyncBase:NativeBodyType", "1")
        data.add("Email2:ConversationId", rng.randbytes(16))
        data.add("Email2:ConversationIndex", rng.randbytes(5))
        categories = data.add("Email:Categories")
        categories.add("Email:Category", "Work")
    return root


def best_of(runs: int, func, *args) -> float:  # type: ignore[no-untyped-def]
    """Fastest wall time of ``runs`` calls, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - start)
    return best


def time_wbxml2xml(data: bytes, runs: int) -> float | None:
    """Fastest ``wbxml2xml`` run on ``data`` (None if it is not installed)."""
    tool = shutil.which("wbxml2xml")
    if tool is None:
        return None
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(workdir) / "sync.wbxml"
        target = Path(workdir) / "sync.xml"
        source.write_bytes(data)
        command = [tool, "-m", "0", "-l", "ACTIVESYNC", "-o", str(target), str(source)]
        return best_of(
            runs,
            lambda: subprocess.run(command, check=True, capture_output=True),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()

    tree = build_sync_response(options.emails)
    data = encode(tree)
    assert decode(data) == tree
    megabytes = len(data) / 1e6

    decode_time = best_of(options.runs, decode, data)
    encode_time = best_of(options.runs, encode, tree)
    print(f"document: {options.emails} emails, {len(data):,} bytes WBXML")
    print(f"decode: {decode_time * 1e3:8.1f} ms  {megabytes / decode_time:7.1f} MB/s")
    print(f"encode: {encode_time * 1e3:8.1f} ms  {megabytes / encode_time:7.1f} MB/s")
    tool_time = time_wbxml2xml(data, options.runs)
    if tool_time is None:
        print("wbxml2xml: not installed")
    else:
        print(
            f"wbxml2xml -l ACTIVESYNC (process, WBXML -> XML file): "
            f"{tool_time * 1e3:8.1f} ms  {megabytes / tool_time:7.1f} MB/s"
        )
        print(f"ratio wbxml2xml time / our decode time: {tool_time / decode_time:.2f}")


if __name__ == "__main__":
    main()
