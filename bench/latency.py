"""Request latency through the real daemon (twistd, SQLite, loopback HTTP).

    .venv/bin/python bench/latency.py [--requests 500]

Measures: the first authenticated request (an scrypt hash) against later ones
(the credential cache), FolderSync round trips on a provisioned device
(sequential, one keep-alive connection), and the daemon's resident memory.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import requests

from easyncd.testing.daemon import Daemon, folder_sync, provision
from easyncd.wbxml import encode


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(tmp)
        daemon.add_user("alice", "secret")
        daemon.start()
        try:
            assert daemon.process is not None
            started_rss = rss_kib(daemon.process.pid)
            t0 = time.perf_counter()
            first = requests.options(f"{daemon.base}/Microsoft-Server-ActiveSync",
                                     auth=("alice", "secret"), timeout=30)
            first_ms = (time.perf_counter() - t0) * 1000
            assert first.status_code == 200
            key = provision(daemon, device_id="bench")
            session = requests.Session()
            session.auth = ("alice", "secret")
            url = (f"{daemon.base}/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice"
                   "&DeviceId=bench&DeviceType=Bench")
            headers = {"MS-ASProtocolVersion": "16.1", "X-MS-PolicyKey": str(key),
                       "Content-Type": "application/vnd.ms-sync.wbxml"}
            body = encode(folder_sync("0"))
            timings = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                response = session.post(url, data=body, headers=headers, timeout=30)
                timings.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200
            timings.sort()
            end_rss = rss_kib(daemon.process.pid)
        finally:
            daemon.stop()
    total_s = sum(timings) / 1000
    print(f"first request (scrypt hash, n=15): {first_ms:.1f} ms")
    print(f"FolderSync SyncKey 0 (cached credentials, full hierarchy reset and resend), "
          f"{args.requests} sequential requests:")
    print(f"  mean {statistics.mean(timings):.2f} ms, p50 {timings[len(timings) // 2]:.2f} ms, "
          f"p99 {timings[int(len(timings) * 0.99) - 1]:.2f} ms, {args.requests / total_s:.0f} req/s")
    print(f"daemon RSS: {started_rss / 1024:.1f} MiB after start, {end_rss / 1024:.1f} MiB after")


if __name__ == "__main__":
    main()
