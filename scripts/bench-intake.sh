#!/usr/bin/env bash
# Intake throughput: warden's Alertmanager webhook vs Alertmanager's own API.
#
# Both servers get the same alerts in the same 50-alert batches, from the
# same wrk settings, side by side in one run, alternating which goes first.
# warden deduplicates, groups and durably stores (SQLite, WAL, fsync on
# commit) every alert before it answers; afterwards the script kills warden
# with SIGKILL and counts the alerts in its database, which must equal the
# number of distinct alerts sent.
#
# Settings (environment):
#   BATCHES=200          distinct batches (x SIZE alerts, all distinct)
#   SIZE=50              alerts per request
#   RESEND_SHARE=0       share of each batch re-sending the previous batch's alerts
#   THREADS=1            wrk threads
#   CONNECTIONS="32 8 64"  wrk connection counts, measured in this order
#   DURATION=15s         per measurement
#   ROUNDS=3             rounds per connection count (order alternates)
#   WARMUP=3s            one warm-up run per server before measuring
#   KEEP=1               keep the work directory (printed at the end)
#   PERF=1               profile warden with `perf record --call-graph dwarf` during its first measurement
#   WARDEN_BIN=PATH      measure this warden binary instead of building one (e.g. a candidate build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/bench
# shellcheck source-path=SCRIPTDIR source=bench/lib.sh
source "$HERE/lib.sh"

BATCHES=${BATCHES:-200}
SIZE=${SIZE:-50}
RESEND_SHARE=${RESEND_SHARE:-0}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-"32 8 64"}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}

bench_require wrk:wrk prometheus-alertmanager:prometheus-alertmanager sqlite3:sqlite3 curl:curl python3:python3
if [ -n "${WARDEN_BIN:-}" ]; then
    WARDEN=$WARDEN_BIN
    [ -x "$WARDEN" ] || bench_die "WARDEN_BIN=$WARDEN is not an executable"
else
    WARDEN=$(bench_build_warden "$ROOT")
fi

WORK=$(mktemp -d /tmp/warden-bench-intake.XXXXXX)
WARDEN_PID=""
AM_PID=""
PERF_PID=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    [ -n "$PERF_PID" ] && bench_stop "$PERF_PID"
    [ -n "$WARDEN_PID" ] && bench_stop "$WARDEN_PID"
    [ -n "$AM_PID" ] && bench_stop "$AM_PID"
    if [ "${KEEP:-0}" = 1 ]; then
        bench_log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_log "generating $BATCHES batches of $SIZE alerts"
DISTINCT=$(python3 "$HERE/gen_batches.py" "$WORK/batches" --batches "$BATCHES" --size "$SIZE" --resend-share "$RESEND_SHARE")

# --- warden -----------------------------------------------------------------
WARDEN_PORT=$(bench_free_port)
# JSON is valid YAML. Jobs for the bench's incidents run /bin/true: they
# cost (almost) nothing, so the measurement is the intake path.
cat >"$WORK/warden.yaml" <<EOF
{"runtime": {"command": ["/bin/true"], "max_concurrent": 4}}
EOF
mkdir -p "$WORK/warden-data"
WARDEN_LOG=warn "$WARDEN" serve --listen "127.0.0.1:$WARDEN_PORT" --data-dir "$WORK/warden-data" \
    --config "$WORK/warden.yaml" >"$WORK/warden.log" 2>&1 &
WARDEN_PID=$!
bench_wait_http "http://127.0.0.1:$WARDEN_PORT/healthz" "$WARDEN_PID"

# --- Alertmanager -----------------------------------------------------------
AM_PORT=$(bench_free_port)
cat >"$WORK/alertmanager.yml" <<EOF
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
mkdir -p "$WORK/am-data"
prometheus-alertmanager --config.file="$WORK/alertmanager.yml" --storage.path="$WORK/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=warn \
    >"$WORK/alertmanager.log" 2>&1 &
AM_PID=$!
bench_wait_http "http://127.0.0.1:$AM_PORT/-/ready" "$AM_PID"

AM_VERSION=$(prometheus-alertmanager --version 2>&1 | head -1)
bench_log "warden on :$WARDEN_PORT (pid $WARDEN_PID), $AM_VERSION on :$AM_PORT (pid $AM_PID)"

pid_of() {
    case $1 in
        warden) echo "$WARDEN_PID" ;;
        alertmanager) echo "$AM_PID" ;;
    esac
}

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

url_of() {
    case $1 in
        warden) echo "http://127.0.0.1:$WARDEN_PORT/api/v1/alerts" ;;
        alertmanager) echo "http://127.0.0.1:$AM_PORT/api/v2/alerts" ;;
    esac
}

# run_wrk SERVER CONNECTIONS DURATION -> prints the RESULT line's fields
run_wrk() {
    local server=$1 conns=$2 duration=$3 out
    out=$(wrk -t"$THREADS" -c"$conns" -d"$duration" --timeout 10s -s "$HERE/rotate.lua" "$(url_of "$server")" \
        -- "$WORK/batches/$server" "$BATCHES" "$THREADS") || bench_die "wrk against $server failed: $out"
    grep '^RESULT ' <<<"$out" | sed 's/^RESULT //' || bench_die "no RESULT from wrk against $server: $out"
}

field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

RESULTS=$WORK/results.tsv
printf 'server\tconnections\tround\trequests\treq_per_s\talerts_per_s\tp50_ms\tp99_ms\tnon_2xx\tsocket_errors\tserver_cpu_s\talerts_per_cpu_s\tload1\n' >"$RESULTS"
FAILED=0

record() {
    local server=$1 conns=$2 round=$3 r=$4 cpu=$5 load=$6
    local requests duration status sock p50 p99
    requests=$(field requests "$r")
    duration=$(field duration_us "$r")
    status=$(field status_errors "$r")
    sock=$(($(field connect_errors "$r") + $(field read_errors "$r") + $(field write_errors "$r") + $(field timeouts "$r")))
    p50=$(field p50_us "$r")
    p99=$(field p99_us "$r")
    awk -v s="$server" -v c="$conns" -v rd="$round" -v n="$requests" -v d="$duration" -v size="$SIZE" \
        -v p50="$p50" -v p99="$p99" -v st="$status" -v so="$sock" -v cpu="$cpu" -v tck="$TICKS" -v load="$load" 'BEGIN {
            rps = n / (d / 1e6);
            cpus = cpu / tck;
            printf "%s\t%d\t%d\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%d\t%.2f\t%.0f\t%s\n", s, c, rd, n, rps, rps * size, p50 / 1000, p99 / 1000, st, so, cpus, (cpus > 0 ? n * size / cpus : 0), load
        }' >>"$RESULTS"
    if [ "$status" -ne 0 ] || [ "$sock" -ne 0 ]; then
        bench_log "FAIL: $server at -c$conns round $round: $status non-2xx responses, $sock socket errors"
        FAILED=1
    fi
}

for server in warden alertmanager; do
    bench_log "warm-up: $server ($WARMUP, -c8)"
    r=$(run_wrk "$server" 8 "$WARMUP")
    [ "$(field status_errors "$r")" -eq 0 ] || bench_die "warm-up against $server got non-2xx responses; see $WORK/*.log"
done

WARDEN_REQUESTS=0
first=1
for conns in $CONNECTIONS; do
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="warden alertmanager"; else order="alertmanager warden"; fi
        for server in $order; do
            if [ "$server" = warden ] && [ "$first" = 1 ] && [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
                perf record -F 499 --call-graph dwarf,32768 -p "$WARDEN_PID" -o "$WORK/perf.data" >/dev/null 2>&1 &
                PERF_PID=$!
            fi
            bench_log "$server -t$THREADS -c$conns -d$DURATION (round $round)"
            load=$(cut -d' ' -f1 /proc/loadavg)
            cpu0=$(cpu_ticks "$(pid_of "$server")")
            r=$(run_wrk "$server" "$conns" "$DURATION")
            cpu1=$(cpu_ticks "$(pid_of "$server")")
            if [ -n "$PERF_PID" ]; then
                kill -INT "$PERF_PID" 2>/dev/null || true
                wait "$PERF_PID" 2>/dev/null || true
                PERF_PID=""
                bench_log "perf profile: $WORK/perf.data (perf report -i $WORK/perf.data --children); keep it with KEEP=1"
            fi
            [ "$server" = warden ] && { first=0; WARDEN_REQUESTS=$((WARDEN_REQUESTS + $(field requests "$r"))); }
            record "$server" "$conns" "$round" "$r" $((cpu1 - cpu0)) "$load"
        done
    done
done

# --- durability: every acknowledged alert is in the database -----------------
METRICS=$(curl -fsS "http://127.0.0.1:$WARDEN_PORT/metrics" || true)
AM_ACTIVE=$(curl -fsS "http://127.0.0.1:$AM_PORT/api/v2/alerts?silenced=false&inhibited=false" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
# SIGKILL: nothing gets a chance to flush; what is in the database was
# committed before the 200 went out.
kill -9 "$WARDEN_PID"
wait "$WARDEN_PID" 2>/dev/null || true
WARDEN_PID=""
DB=$WORK/warden-data/warden.db
STORED=$(sqlite3 "$DB" 'select count(*) from alerts')
INCIDENTS=$(sqlite3 "$DB" 'select count(*) from incidents')
INVESTIGATIONS=$(sqlite3 "$DB" 'select count(*) from investigations')

# --- report -------------------------------------------------------------------
echo
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
echo "workload: $BATCHES batches x $SIZE alerts = $DISTINCT distinct alerts, rotated; wrk -t$THREADS, $DURATION per run, $ROUNDS rounds"
echo "warden: $WARDEN"
echo "server_cpu_s: CPU time the server used during the run; load1: load average when the run began"
echo
column -t -s $'\t' "$RESULTS"
echo
echo "median over rounds:"
python3 "$HERE/summarize_intake.py" "$RESULTS"
echo
commit_sum=$(sed -En 's/^(warden_)?intake_commit_alerts_sum[^ ]* ([0-9.e+]+).*$/\2/p' <<<"$METRICS")
commit_count=$(sed -En 's/^(warden_)?intake_commit_alerts_count[^ ]* ([0-9.e+]+).*$/\2/p' <<<"$METRICS")
if [ -n "$commit_sum" ] && [ -n "$commit_count" ] && [ "$commit_count" != 0 ]; then
    awk -v s="$commit_sum" -v c="$commit_count" 'BEGIN { printf "warden group commit: %d transactions, %.0f alerts per transaction on average\n", c, s / c }'
fi
echo "warden store after SIGKILL: $STORED alerts, $INCIDENTS incidents, $INVESTIGATIONS investigations"
echo "alertmanager active alerts: $AM_ACTIVE"

if [ "$WARDEN_REQUESTS" -lt "$BATCHES" ]; then
    bench_log "FAIL: warden got $WARDEN_REQUESTS requests, fewer than the $BATCHES batches: not every alert was sent"
    FAILED=1
elif [ "$STORED" -ne "$DISTINCT" ]; then
    bench_log "FAIL: warden stored $STORED alerts, expected $DISTINCT distinct alerts"
    FAILED=1
else
    echo "durability: OK ($STORED of $DISTINCT distinct alerts stored)"
fi
[ "$AM_ACTIVE" -eq "$DISTINCT" ] || echo "note: alertmanager holds $AM_ACTIVE active alerts (expected $DISTINCT)"
exit "$FAILED"
