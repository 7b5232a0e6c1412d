#!/usr/bin/env bash
# Dispatch latency: incident posted -> its job process running.
#
# Starts `warden serve` (release build, fresh data directory) with
# group_wait_ms 0 and a job command that writes the time it started
# (`date +%s%N > started`) into its working directory, then posts K
# single-alert incidents one after another and measures, for each, the time
# from just before the POST to the job's recorded start. That span includes
# the HTTP request, the durable intake commit, planning, the investigation's
# durable records and the spawn.
#
# Settings (environment):
#   K=60            incidents per run
#   RUNS=3          runs (each against the same server; distinct services)
#   PAUSE_MS=100    pause after each job started, so that jobs never queue
#   KEEP=1          keep the work directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/bench
# shellcheck source-path=SCRIPTDIR source=bench/lib.sh
source "$HERE/lib.sh"

K=${K:-60}
RUNS=${RUNS:-3}
PAUSE_MS=${PAUSE_MS:-100}

bench_require curl:curl python3:python3
WARDEN=$(bench_build_warden "$ROOT")

WORK=$(mktemp -d /tmp/warden-bench-dispatch.XXXXXX)
WARDEN_PID=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    [ -n "$WARDEN_PID" ] && bench_stop "$WARDEN_PID"
    if [ "${KEEP:-0}" = 1 ]; then
        bench_log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(bench_free_port)
# max_concurrent is above K so that no job ever waits for a slot: the
# measurement is dispatch, not queueing.
cat >"$WORK/warden.yaml" <<EOF
{
  "correlation": {"group_wait_ms": 0},
  "runtime": {
    "command": ["/bin/sh", "-c", "date +%s%N > started; cat > /dev/null"],
    "keep_work_dir_seconds": 3600,
    "max_concurrent": $((K + 1))
  }
}
EOF
mkdir -p "$WORK/data"
WARDEN_LOG=warn "$WARDEN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    --config "$WORK/warden.yaml" >"$WORK/warden.log" 2>&1 &
WARDEN_PID=$!
bench_wait_http "http://127.0.0.1:$PORT/healthz" "$WARDEN_PID"
DATA=$(cd "$WORK/data" && pwd -P)

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
    echo
    echo "run $run:"
    python3 "$HERE/dispatch_client.py" "127.0.0.1:$PORT" "$DATA" "$K" --pause-ms "$PAUSE_MS" \
        --label "r$run-" --json "$WORK/run-$run.json"
done

echo
python3 - "$WORK" "$RUNS" <<'EOF'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
total = []
for r in range(1, runs + 1):
    total += json.load(open(f"{work}/run-{r}.json"))["total_ms"]
total.sort()
p90 = total[round(0.9 * (len(total) - 1))]
print(f"all runs ({len(total)} incidents): median {statistics.median(total):.1f} ms, p90 {p90:.1f} ms, max {total[-1]:.1f} ms")
EOF
METRICS=$(curl -fsS "http://127.0.0.1:$PORT/metrics")
sum=$(sed -En 's/^(warden_)?dispatch_latency[^ ]*_sum[^ ]* ([0-9.e+]+).*$/\2/p' <<<"$METRICS")
count=$(sed -En 's/^(warden_)?dispatch_latency[^ ]*_count[^ ]* ([0-9.e+]+).*$/\2/p' <<<"$METRICS")
if [ -n "$sum" ] && [ -n "$count" ] && [ "$count" != 0 ]; then
    # The control plane's own view: incident ready -> runtime.start() returned
    # (spawned, limited, recorded), without HTTP and the intake commit.
    awk -v s="$sum" -v c="$count" 'BEGIN { printf "warden_dispatch_latency_seconds: mean %.1f ms over %d starts (ready -> job started and recorded)\n", s / c * 1000, c }'
fi
STARTED=$(find "$DATA/jobs" -path '*/work/started' | wc -l)
echo "jobs started: $STARTED (expected $((K * RUNS)))"
[ "$STARTED" -eq $((K * RUNS)) ] || bench_die "expected $((K * RUNS)) started jobs, found $STARTED"
