#!/usr/bin/env python3
"""Measures the same workload on SQLite and PostgreSQL in one run: NDJSON ingest (records/s,
durably acknowledged) and sequential list/get latencies (p50/p99) over keep-alive HTTP.

Usage: scripts/measure_stores.py [--bin target/release/callrecords] [--calls 5000]
                                 [--pg postgres://postgres@127.0.0.1:5432/postgres] [--requests 300]

Records come from `callrecords generate` (seed 9, fixed --until). The PostgreSQL database is
created fresh and dropped at the end. This is a measurement for notes, not a test; the full
benchmark is `callrecords bench`.
"""
import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def run_store(binary, db_url, lines, requests):
    port = free_port()
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--db", db_url, "--retention-days", "0",
                               "--auth", "none", "--throttle", "off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        started = time.monotonic()
        for i in range(0, len(lines), 500):
            body = "".join(lines[i:i + 500]).encode()
            conn.request("POST", "/ingest/callRecords", body, {"content-type": "application/x-ndjson"})
            report = json.loads(conn.getresponse().read())
            assert report["rejected"] == 0, report
        ingest = len(lines) / (time.monotonic() - started)

        def timed(path):
            t = time.monotonic()
            conn.request("GET", path)
            response = conn.getresponse()
            data = response.read()
            assert response.status == 200, (path, response.status, data[:200])
            return time.monotonic() - t, data

        ids = [json.loads(line)["id"] for line in lines]
        get_latencies = []
        for _ in range(requests):
            record_id = random.choice(ids)
            elapsed, _ = timed(f"/v1.0/communications/callRecords/{record_id}?$expand=sessions($expand=segments)")
            get_latencies.append(elapsed)
        list_latencies = []
        path = "/v1.0/communications/callRecords"
        for _ in range(requests):
            elapsed, data = timed(path)
            list_latencies.append(elapsed)
            next_link = json.loads(data).get("@odata.nextLink")
            path = urllib.parse.urlsplit(next_link)._replace(scheme="", netloc="").geturl() if next_link else "/v1.0/communications/callRecords"
        return ingest, get_latencies, list_latencies
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/callrecords")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    random.seed(9)
    generated = subprocess.run([args.bin, "generate", "--calls", str(args.calls), "--seed", "9", "--until", "2024-06-01T00:00:00Z"],
                               check=True, capture_output=True).stdout.decode()
    lines = [line + "\n" for line in generated.splitlines() if line]
    size = sum(len(line) for line in lines) / len(lines)
    tmp = tempfile.mkdtemp()
    name = f"callrecords_measure_{int(time.time())}"
    admin = args.pg
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        results = {
            "SQLite": run_store(args.bin, f"sqlite://{tmp}/measure.db", lines, args.requests),
            "PostgreSQL": run_store(args.bin, f"{admin.rsplit('/', 1)[0]}/{name}", lines, args.requests),
        }
    finally:
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)
    print(f"{len(lines)} records, {size / 1024:.1f} KB on average; {args.requests} sequential requests each; one client")
    print("| store | ingest records/s | get p50 | get p99 | list page p50 | list page p99 |")
    print("|---|---|---|---|---|---|")
    for store, (ingest, gets, lists) in results.items():
        print(f"| {store} | {ingest:.0f} | {percentile(gets, .5):.1f} ms | {percentile(gets, .99):.1f} ms "
              f"| {percentile(lists, .5):.1f} ms | {percentile(lists, .99):.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
