#!/usr/bin/env python3
"""Generates the intake benchmark's alert batches in two formats.

The same alerts are written twice: as Alertmanager webhook (version "4")
bodies for warden's `POST /api/v1/alerts`, and as Alertmanager API v2 lists
for Alertmanager's own `POST /api/v2/alerts`. Both servers therefore receive
exactly the same label sets, so neither side gets an easier workload.

Every alert has a label set of its own (the `instance` label is unique) and
a fingerprint of its own, so the number of distinct alerts is
batches x size - resends, which the benchmark checks against the store.

Usage: gen_batches.py OUT_DIR [--batches N] [--size S] [--resend-share F]
Writes OUT_DIR/warden/NNNNN.json, OUT_DIR/alertmanager/NNNNN.json and
OUT_DIR/manifest.json ({"batches", "size", "distinct_alerts"}).
"""

import argparse
import hashlib
import json
import os
import random
from datetime import datetime, timedelta, timezone

# Services with the namespace and data domain they live in: a shop, its data
# tier, the platform and the network, so grouping links alerts across
# services through shared namespaces.
SERVICES = [
    ("checkout-api", "shop", "application"),
    ("cart", "shop", "application"),
    ("frontend", "shop-web", "application"),
    ("search", "shop-web", "application"),
    ("orders-db", "shop-data", "database"),
    ("payments-db", "shop-data", "database"),
    ("redis-cache", "shop-data", "database"),
    ("ingress-nginx", "ingress", "network"),
    ("coredns", "kube-system", "network"),
    ("kube-proxy", "kube-system", "network"),
    ("ids-sensor", "security", "security"),
    ("auth", "identity", "application"),
]

ALERTNAMES = [
    ("HighErrorRate", "critical"),
    ("HighLatencyP99", "warning"),
    ("PodCrashLooping", "critical"),
    ("CPUThrottlingHigh", "warning"),
    ("MemoryNearLimit", "warning"),
    ("TargetDown", "critical"),
    ("DiskPressure", "warning"),
    ("ConnectionErrors", "critical"),
]

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def fingerprint(labels):
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_alert(index, rng, start):
    service, namespace, domain = SERVICES[rng.randrange(len(SERVICES))]
    alertname, severity = ALERTNAMES[rng.randrange(len(ALERTNAMES))]
    labels = {
        "alertname": alertname,
        "service": service,
        "namespace": namespace,
        "severity": severity,
        # Unique per alert: no two alerts share a label set.
        "instance": f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}:9100",
        "domain": domain,
        "job": service,
    }
    annotations = {
        "summary": f"{alertname} on {service}",
        "description": f"{alertname} for {labels['instance']} in {namespace} has been firing.",
        "runbook_url": f"https://runbooks.example.invalid/{alertname.lower()}",
    }
    return {"labels": labels, "annotations": annotations, "startsAt": rfc3339(start)}


def webhook_body(alerts):
    return {
        "version": "4",
        "status": "firing",
        "receiver": "r",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "groupKey": "k",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": a["labels"],
                "annotations": a["annotations"],
                "startsAt": a["startsAt"],
                "endsAt": ZERO_TIME,
                "generatorURL": "",
                "fingerprint": fingerprint(a["labels"]),
            }
            for a in alerts
        ],
    }


def api_v2_body(alerts):
    return [
        {
            "labels": a["labels"],
            "annotations": a["annotations"],
            "startsAt": a["startsAt"],
            "generatorURL": "",
        }
        for a in alerts
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument(
        "--resend-share",
        type=float,
        default=0.0,
        help="share of each batch (after the first) that re-sends alerts of the previous batch",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.batches < 1 or args.size < 1 or not 0.0 <= args.resend_share < 1.0:
        parser.error("batches and size must be positive, resend-share in [0, 1)")

    rng = random.Random(args.seed)
    # Event times spread over the last 20 minutes: recent enough that
    # Alertmanager keeps them active, spread enough that the correlation
    # window matters.
    now = datetime.now(timezone.utc)
    origin = now - timedelta(minutes=20)
    span_ms = 20 * 60 * 1000

    for sub in ("warden", "alertmanager"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)

    resend = int(args.size * args.resend_share)
    next_index = 0
    previous = []
    distinct = 0
    for b in range(args.batches):
        fresh_count = args.size - (resend if previous else 0)
        batch = previous[:resend] if previous else []
        for _ in range(fresh_count):
            start = origin + timedelta(milliseconds=rng.randrange(span_ms))
            batch.append(make_alert(next_index, rng, start))
            next_index += 1
        distinct += fresh_count
        rng.shuffle(batch)
        name = f"{b:05d}.json"
        with open(os.path.join(args.out, "warden", name), "w") as f:
            json.dump(webhook_body(batch), f, separators=(",", ":"))
        with open(os.path.join(args.out, "alertmanager", name), "w") as f:
            json.dump(api_v2_body(batch), f, separators=(",", ":"))
        previous = batch

    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"batches": args.batches, "size": args.size, "distinct_alerts": distinct}, f)
    print(distinct)


if __name__ == "__main__":
    main()
