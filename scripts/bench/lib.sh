# shellcheck shell=bash
# Shared helpers for the benchmark scripts (sourced, not run).

bench_log() { printf '==> %s\n' "$*" >&2; }
bench_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages that provide the given commands, if any is
# missing. Usage: bench_require cmd:package ...
bench_require() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || bench_die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
    bench_log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A TCP port on 127.0.0.1 that is free right now.
bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until URL answers 200, or fails after TIMEOUT seconds (default 30).
# Usage: bench_wait_http URL PID [TIMEOUT]
bench_wait_http() {
    local url=$1 pid=$2 timeout=${3:-30} waited=0
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || bench_die "process $pid serving $url exited during start-up"
        [ "$waited" -ge $((timeout * 10)) ] && bench_die "$url not healthy after ${timeout}s"
        sleep 0.1
        waited=$((waited + 1))
    done
}

# Stops a process we started: SIGTERM, then SIGKILL after 5 s.
bench_stop() {
    local pid=$1 _
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

# Builds the release binary of warden and prints its path.
bench_build_warden() {
    local root=$1
    bench_log "building warden (release)"
    (cd "$root" && cargo build --release -p warden --quiet) >&2 || bench_die "cargo build --release -p warden failed"
    local target=${CARGO_TARGET_DIR:-$root/target}
    [ -x "$target/release/warden" ] || bench_die "no binary at $target/release/warden"
    printf '%s\n' "$target/release/warden"
}
