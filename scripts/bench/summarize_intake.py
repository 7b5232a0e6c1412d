#!/usr/bin/env python3
"""Summarises bench-intake.sh's results.tsv: medians over rounds per
connection count, and warden's throughput relative to Alertmanager's.

The ratio is taken per round (the two measurements of a round ran back to
back) and then the median of those ratios, which holds up better on a
machine with other load than a ratio of medians would.

Usage: summarize_intake.py RESULTS_TSV
"""

import csv
import statistics
import sys


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    by = {}
    for r in rows:
        by.setdefault((int(r["connections"]), r["server"]), []).append(r)
    print(
        f"{'conns':>5}  {'server':<12} {'alerts/s':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'alerts/cpu-s':>12}   {'warden/alertmanager (per-round median)'}"
    )
    for conns in sorted({c for c, _ in by}):
        for server in ("warden", "alertmanager"):
            rs = by.get((conns, server), [])
            if not rs:
                continue

            def med(key):
                return statistics.median(float(x[key]) for x in rs)

            ratio = ""
            if server == "alertmanager":
                warden = {x["round"]: float(x["alerts_per_s"]) for x in by.get((conns, "warden"), [])}
                ratios = [warden[x["round"]] / float(x["alerts_per_s"]) for x in rs if x["round"] in warden]
                if ratios:
                    ratio = f"{statistics.median(ratios):.2f}x (rounds: {', '.join(f'{q:.2f}' for q in ratios)})"
            print(
                f"{conns:>5}  {server:<12} {med('alerts_per_s'):>9.0f} {med('req_per_s'):>7.0f}"
                f" {med('p50_ms'):>7.2f} {med('p99_ms'):>7.2f} {med('alerts_per_cpu_s'):>12.0f}   {ratio}"
            )


if __name__ == "__main__":
    main()
