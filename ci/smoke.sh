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

# The docs checker on the seed articles: they contain real problems, so it must exit 1 and
# still write a complete report.
set +e
cargo run -q -p mic-cli -- docs check docs/articles --format json --out reports/docs.json > /dev/null
code=$?
set -e
if [ "$code" -ne 1 ] || ! python3 -c 'import json,sys; json.load(open("reports/docs.json"))'; then
  echo "mic docs check on docs/articles: exit $code, expected 1 with a JSON report" >&2
  exit 1
fi
echo "mic docs check docs/articles: exit 1 as expected (the seed articles have known problems)"
