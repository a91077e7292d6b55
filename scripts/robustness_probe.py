#!/usr/bin/env python3
"""Measures, against one callrecords binary, what a hostile or unlucky client can do to it:

1. disk full: ingest onto a small tmpfs until it fills, free space, kill -9, restart, and count
   the acknowledged records that are readable;
2. idle connections: 5,000 idle sockets against a server started with a soft limit of 1,024
   open files; how many of 20 health checks are answered, and the server's peak RSS;
3. slow uploads: two ingests whose bodies arrive at 1 byte/s; how long a 1-record ingest waits.

Usage (as root, for the tmpfs): scripts/robustness_probe.py path/to/callrecords
Run it against two builds in one sitting to compare them; it prints one line per figure.
"""

import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def start(binary, db_url, open_files=None):
    command = [binary, "serve", "--listen", "127.0.0.1:0", "--db", db_url,
               "--retention-days", "0", "--auth", "none", "--throttle", "off"]
    if open_files:
        command = ["sh", "-c", f'ulimit -S -n {open_files} && exec "$0" "$@"'] + command
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "RUST_LOG": "warn"})
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stderr.readline()
        match = re.search(r"listening on (http://[^/\s]+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
            return process, match.group(1)
    raise SystemExit("the server did not start")


def request(method, url, body=None, content_type=None, timeout=30):
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return None, b""


def generated(binary, calls):
    out = subprocess.run([binary, "generate", "--calls", str(calls), "--seed", "3", "--days", "3"],
                         capture_output=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def disk_full(binary, records):
    mount = tempfile.mkdtemp()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mount], check=True)
    try:
        ballast = os.path.join(mount, "ballast")
        with open(ballast, "wb") as f:
            f.write(b"\0" * (22 << 20))
        db_url = f"sqlite://{mount}/calls.db"
        server, base = start(binary, db_url)
        acknowledged, statuses, sequence = [], {}, []
        batches = [records[i:i + 10] for i in range(0, len(records), 10)]
        failures_seen = 0
        for index, batch in enumerate(batches):
            status, body = request("POST", f"{base}/ingest/callRecords", b"\n".join(batch) + b"\n",
                                   "application/x-ndjson")
            statuses[status] = statuses.get(status, 0) + 1
            sequence.append(str(status))
            if status == 200 and json.loads(body).get("stored") == len(batch):
                acknowledged.extend(json.loads(line)["id"] for line in batch)
            else:
                failures_seen += 1
            if failures_seen == 20 and os.path.exists(ballast):
                os.remove(ballast)
                sequence.append("[space freed]")
            if failures_seen >= 20 and index >= len(batches) - 1:
                break
        health, _ = request("GET", f"{base}/healthz")
        server.kill()
        server.wait()
        server, base = start(binary, db_url)
        readable = sum(1 for record_id in set(acknowledged)
                       if request("GET", f"{base}/v1.0/communications/callRecords/{record_id}")[0] == 200)
        server.kill()
        server.wait()
        print(f"disk full: statuses {dict(sorted((str(k), v) for k, v in statuses.items()))}; "
              f"acknowledged {len(set(acknowledged))}, readable after kill -9 and restart {readable}; "
              f"healthz at the end {health}")
        print(f"disk full: answers in order: {' '.join(sequence)}")
    finally:
        subprocess.run(["umount", "-l", mount])
        shutil.rmtree(mount, ignore_errors=True)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def idle_connections(binary):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    directory = tempfile.mkdtemp()
    server, base = start(binary, f"sqlite://{directory}/idle.db", open_files=1024)
    host, port = base.removeprefix("http://").split(":")
    sockets = []
    for _ in range(5000):
        try:
            sockets.append(socket.create_connection((host, int(port)), timeout=5))
        except OSError:
            break
    answered = sum(1 for _ in range(20) if request("GET", f"{base}/healthz", timeout=2)[0] == 200)
    rss = peak_rss_kib(server.pid)
    for s in sockets:
        s.close()
    server.kill()
    server.wait()
    shutil.rmtree(directory, ignore_errors=True)
    print(f"idle connections: {len(sockets)} open, {answered} of 20 health checks answered, "
          f"server peak RSS {rss // 1024} MiB")


def slow_uploads(binary, record):
    directory = tempfile.mkdtemp()
    server, base = start(binary, f"sqlite://{directory}/slow.db")
    host, port = base.removeprefix("http://").split(":")
    stop = threading.Event()

    def trickle():
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /ingest/callRecords HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-ndjson\r\nContent-Length: 5000\r\n\r\n")
        while not stop.is_set():
            try:
                s.sendall(b"{")
            except OSError:
                return
            time.sleep(1)

    for _ in range(2):
        threading.Thread(target=trickle, daemon=True).start()
    time.sleep(1)
    started = time.time()
    status, _ = request("POST", f"{base}/ingest/callRecords", record + b"\n", "application/x-ndjson", timeout=120)
    waited = time.time() - started
    stop.set()
    server.kill()
    server.wait()
    shutil.rmtree(directory, ignore_errors=True)
    print(f"slow uploads: a 1-record ingest beside two 1-byte/s uploads answered {status} after {waited:.2f} s")


def main():
    binary = sys.argv[1]
    records = generated(binary, 600)
    disk_full(binary, records)
    idle_connections(binary)
    slow_uploads(binary, records[0])


if __name__ == "__main__":
    main()
