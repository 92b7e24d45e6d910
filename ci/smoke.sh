#!/usr/bin/env bash
# The README's main job as a user runs it, plus the diagnostics contract of `mic check`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -p mic-cli -- run --report junit --out reports/junit.xml
set +e
cargo run -q -p mic-cli -- check bad-scenarios > /dev/null 2> reports/bad-scenarios.txt
code=$?
set -e
if [ "$code" -ne 2 ]; then
  echo "mic check on bad-scenarios/ exited $code, expected 2" >&2
  cat reports/bad-scenarios.txt >&2
  exit 1
fi
echo "mic check bad-scenarios: exit 2 as expected ($(grep -c '^error\[' reports/bad-scenarios.txt) diagnostics)"
