#!/usr/bin/env python3
"""Measures posted incident -> job process running, one incident at a time.

For each of K incidents: take T0, POST it to /api/v1/incidents on a kept-alive
connection, then wait for the job's `started` file (written by the job
command with `date +%s%N`) to appear in <data-dir>/jobs/<id>/work/. The
latency is started - T0; both are CLOCK_REALTIME on the same machine.

The HTTP answer time (T1 - T0) is reported too: it is the part spent in the
request and the durable intake commit; the rest is group wait (0 here),
planning, the investigation's durable records and the spawn.

Usage: dispatch_client.py HOST:PORT DATA_DIR K [--pause-ms MS] [--json OUT]
"""

import argparse
import glob
import http.client
import json
import os
import statistics
import sys
import time


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def wait_started(jobs_dir, seen, timeout_s):
    """The first `started` file not in `seen` with a complete timestamp."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(jobs_dir, "*", "work", "started")):
            if path in seen:
                continue
            with open(path) as f:
                text = f.read()
            if text.endswith("\n") and text.strip().isdigit():
                seen.add(path)
                return path, int(text)
        time.sleep(0.0005)
    return None, None


def summary(name, values_ms):
    return (
        f"{name:<32} min {min(values_ms):7.1f}  median {statistics.median(values_ms):7.1f}  "
        f"p90 {percentile(values_ms, 90):7.1f}  max {max(values_ms):7.1f}  ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addr")
    parser.add_argument("data_dir")
    parser.add_argument("count", type=int)
    parser.add_argument("--pause-ms", type=int, default=100, help="pause after each job started")
    parser.add_argument("--json", help="write the raw samples here")
    parser.add_argument("--label", default="", help="prefix of titles and service names")
    args = parser.parse_args()

    host, port = args.addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    jobs_dir = os.path.join(args.data_dir, "jobs")
    seen = set(glob.glob(os.path.join(jobs_dir, "*", "work", "started")))
    total_ms, http_ms = [], []

    for n in range(args.count):
        body = json.dumps(
            {
                "title": f"bench {args.label}{n}",
                "alerts": [
                    {"labels": {"alertname": "A", "service": f"svc-{args.label}{n}", "namespace": f"ns-{args.label}{n}"}}
                ],
            }
        )
        t0 = time.time_ns()
        conn.request("POST", "/api/v1/incidents", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        t1 = time.time_ns()
        if response.status != 201:
            sys.exit(f"incident {n}: HTTP {response.status}: {answer[:300]!r}")
        path, started = wait_started(jobs_dir, seen, timeout_s=10)
        if path is None:
            sys.exit(f"incident {n}: no job started within 10 s")
        total_ms.append((started - t0) / 1e6)
        http_ms.append((t1 - t0) / 1e6)
        time.sleep(args.pause_ms / 1000)

    print(f"{args.count} incidents, one at a time")
    print(summary("posted -> job process running", total_ms))
    print(summary("  of which HTTP answer (201)", http_ms))
    print(summary("  after the answer", [t - h for t, h in zip(total_ms, http_ms)]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"total_ms": total_ms, "http_ms": http_ms}, f)


if __name__ == "__main__":
    main()
