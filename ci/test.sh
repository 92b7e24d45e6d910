#!/usr/bin/env bash
# The README's test command: every unit table, the fakes' protocol tests and one conformance
# trial per scenario x backend (live trials are ignored offline).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace --locked
