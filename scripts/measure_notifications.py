#!/usr/bin/env python3
"""Measures change-notification delivery: notifications per second and ingest-to-delivery latency
(p50/p99) while call records are ingested at a fixed rate.

Usage: scripts/measure_notifications.py [--bin target/release/callrecords] [--db URL]
                                        [--rate 1000] [--seconds 20] [--batch 100]

It starts `callrecords serve` on a free loopback port (SQLite in a temp dir unless --db is given),
a webhook receiver on another free port, subscribes the receiver, ingests small one-session
records at --rate records/s in NDJSON batches, and times each notification from the moment its
batch was acknowledged (durable) to its arrival. Load generator, receiver and server share the
machine's cores. Everything it starts stops by itself.
"""
import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


arrivals = {}
arrivals_lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        if "validationToken=" in self.path:
            token = urllib.parse.unquote(self.path.split("validationToken=", 1)[1])
            out = token.encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        now = time.monotonic()
        with arrivals_lock:
            for item in json.loads(body)["value"]:
                arrivals.setdefault(item["resourceData"]["id"], now)
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()


def record(record_id, start):
    return {
        "id": record_id, "version": 1, "type": "peerToPeer", "modalities": ["audio"],
        "startDateTime": start, "endDateTime": start,
        "participants_v2": [{"id": "alice", "identity": {"user": {"id": "alice", "displayName": "Alice"}}}],
        "organizer_v2": {"id": "alice", "identity": {"user": {"id": "alice", "displayName": "Alice"}}},
        "sessions": [{"id": record_id, "modalities": ["audio"], "startDateTime": start, "endDateTime": start, "segments": []}],
    }


def main():
    import urllib.parse  # noqa: F401  (used by the receiver)
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/callrecords")
    parser.add_argument("--db")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp()
    db = args.db or f"sqlite://{tmp}/notify.db"
    port = free_port()
    server = subprocess.Popen(
        [args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--retention-days", "0",
         "--auth", "none", "--throttle", "off"],
        stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        expiration = (datetime.now(timezone.utc) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"changeType": "created", "resource": "/communications/callRecords", "expirationDateTime": expiration,
                           "notificationUrl": f"http://127.0.0.1:{receiver.server_address[1]}/hook"}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{base}/v1.0/subscriptions", body, {"content-type": "application/json"}))

        acked = {}
        interval = args.batch / args.rate
        n_batches = args.rate * args.seconds // args.batch
        started = time.monotonic()
        late = 0
        for b in range(n_batches):
            due = started + b * interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late += 1
            ids = [f"m-{b:06d}-{i:04d}" for i in range(args.batch)]
            start = (datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=b)).strftime("%Y-%m-%dT%H:%M:%SZ")
            payload = "".join(json.dumps(record(i, start)) + "\n" for i in ids).encode()
            request = urllib.request.Request(f"{base}/ingest/callRecords", payload, {"content-type": "application/x-ndjson"})
            urllib.request.urlopen(request).read()
            now = time.monotonic()
            for i in ids:
                acked[i] = now
        ingest_seconds = time.monotonic() - started
        wait_until = time.monotonic() + 60
        while time.monotonic() < wait_until:
            with arrivals_lock:
                if len(arrivals) >= len(acked):
                    break
            time.sleep(0.05)
        with arrivals_lock:
            latencies = sorted(max(0.0, arrivals[i] - acked[i]) for i in acked if i in arrivals)
            first, last = min(arrivals.values()), max(arrivals.values())
        delivered = len(latencies)
        pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
        print(f"store: {db.split('://')[0]}; records ingested: {len(acked)} in {ingest_seconds:.1f} s "
              f"({len(acked) / ingest_seconds:.0f} records/s offered at {args.rate}/s, {late} batches late)")
        print(f"notifications delivered: {delivered} ({delivered / max(last - first, 1e-9):.0f}/s while arriving)")
        print(f"ingest-to-delivery latency: p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms")
        print(f"(latency counts from the ingest acknowledgement of the record's batch; server, receiver and load "
              f"generator share {os.cpu_count()} cores)")
        return 0 if delivered == len(acked) else 1
    finally:
        server.terminate()
        server.wait(timeout=10)
        receiver.shutdown()


if __name__ == "__main__":
    sys.exit(main())
