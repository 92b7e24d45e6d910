#!/usr/bin/env bash
# Formatting and clippy (pedantic, warnings are errors here, not locally).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
