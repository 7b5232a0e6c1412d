#!/usr/bin/env bash
# Throughput and memory of `warden logs mine` against drain3 on the same
# 1,000,000-line input built by cycling the nine Loghub-2k logs.
#
#   scripts/bench-logmine.sh [DATA_DIR] [LINES]
#
# warden runs on one core (taskset -c 0) with each system's header format;
# drain3 runs with its defaults over the content of each line.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/datasets/loghub2k}
LINES=${2:-1000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 -c 'import drain3' 2>/dev/null || pip install --quiet drain3
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }

cargo build --release -q -p warden

# One input per system (headers kept), cycled up to LINES in total.
per_system=$(( LINES / 9 ))
systems=$(tail -n +2 "$DATA/log_formats.tsv" | cut -f1)
for s in $systems; do
  log="$DATA/$s/${s}_2k.log"
  : > "$WORK/$s.log"
  for _ in $(seq $(( per_system / 2000 + 1 ))); do cat "$log" >> "$WORK/$s.log"; done
  sed -i "$(( per_system + 1 )),\$d" "$WORK/$s.log"
done

total_warden=0; total_drain=0; total_lines=0; max_rss=0
printf '%-10s %10s %14s %14s %10s\n' system lines warden_l/s drain3_l/s rss_MB
for s in $systems; do
  fmt=$(awk -F'\t' -v s="$s" '$1==s {print $2}' "$DATA/log_formats.tsv")
  n=$(wc -l < "$WORK/$s.log")
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" taskset -c 0 target/release/warden logs mine \
    --format "$fmt" "$WORK/$s.log" > /dev/null
  end=$(date +%s.%N)
  w_secs=$(echo "$end - $start" | bc -l)
  rss=$(awk '/Maximum resident/ {print $6}' "$WORK/time.txt")
  d_secs=$(taskset -c 0 python3 - "$WORK/$s.log" "$fmt" <<'PY'
import re, sys, time
from drain3 import TemplateMiner
path, fmt = sys.argv[1], sys.argv[2]
parts = re.split(r'(<[^<>]+>)', fmt)
rx = ''
for p in parts:
    if p.startswith('<') and p.endswith('>'):
        rx += '(?P<%s>.*?)' % p[1:-1]
    else:
        rx += re.sub(' +', r'\\s+', p)
rx = re.compile('^' + rx + '$')
contents = []
with open(path, errors='replace') as f:
    for line in f:
        m = rx.match(line.rstrip('\n'))
        contents.append(m.group('Content') if m else line.rstrip('\n'))
miner = TemplateMiner()
t = time.perf_counter()
for c in contents:
    miner.add_log_message(c)
print(time.perf_counter() - t)
PY
)
  printf '%-10s %10d %14.0f %14.0f %10.1f\n' "$s" "$n" "$(echo "$n / $w_secs" | bc -l)" \
    "$(echo "$n / $d_secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  total_lines=$(( total_lines + n ))
  total_warden=$(echo "$total_warden + $w_secs" | bc -l)
  total_drain=$(echo "$total_drain + $d_secs" | bc -l)
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss
done

# The whole input as one stream (no header format: mixed sources).
cat "$WORK"/*.log > "$WORK/all.log"
start=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/time.txt" taskset -c 0 target/release/warden logs mine "$WORK/all.log" > /dev/null
end=$(date +%s.%N)
all_secs=$(echo "$end - $start" | bc -l)
all_rss=$(awk '/Maximum resident/ {print $6}' "$WORK/time.txt")

printf '%-10s %10d %14.0f %14.0f %10.1f\n' total "$total_lines" \
  "$(echo "$total_lines / $total_warden" | bc -l)" "$(echo "$total_lines / $total_drain" | bc -l)" \
  "$(echo "$max_rss / 1024" | bc -l)"
printf 'one stream of %d lines, no format: %.0f lines/s, peak RSS %.1f MB\n' \
  "$(wc -l < "$WORK/all.log")" "$(echo "$(wc -l < "$WORK/all.log") / $all_secs" | bc -l)" \
  "$(echo "$all_rss / 1024" | bc -l)"
echo "warden lines/s include process start, file reading and header parsing; drain3 is timed over mining only."
