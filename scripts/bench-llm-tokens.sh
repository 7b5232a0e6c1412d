#!/usr/bin/env bash
# Input tokens the LLM reasoner sends per investigation: the shipped demo
# (multi-domain) and every Nezha case, each a full investigation (real loop,
# engines and prompts) against the scripted OpenAI-compatible server.
#
#   scripts/bench-llm-tokens.sh [--json] [NEZHA_DIR [CASES_CSV]]
#
# Tokens are counted as sum(ceil(request body bytes / 4)) over the requests
# the server recorded; prompt bytes are printed next to them (docs/llm.md).
set -euo pipefail
cd "$(dirname "$0")/.."
FLAGS=()
if [ "${1:-}" = "--json" ]; then FLAGS+=(--json); shift; fi
DATA=${1:-../shared/datasets/nezha}
CASES=${2:-$DATA/cases_dev.csv}
cargo run -q -p warden-llm --example token_bench -- --nezha "$DATA" --cases "$CASES" "${FLAGS[@]}"
