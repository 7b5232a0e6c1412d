#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration (real processes,
# real HTTP, real SQLite) and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Real OpenBao and PostgreSQL for the secrets tests (idempotent).
scripts/install-test-deps.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
cargo test --workspace --doc --quiet
