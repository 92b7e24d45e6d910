#!/usr/bin/env bash
# Independent cross-check of the fake Blob service against Azurite (pinned in
# ci/azurite/package.json + package-lock.json, installed with `npm ci` into
# ci/azurite/node_modules). Starts Azurite's blob service on 127.0.0.1 (a free port,
# in-memory, telemetry off, strict mode: no --loose, no --skipApiVersionCheck), runs
# harness/fake/tests/azurite_crosscheck.rs and the blob GET benchmark against both, and
# kills Azurite on exit. Exit status: non-zero when the fake and Azurite disagree (or setup
# fails). Idempotent; every step is bounded in time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/ci/azurite"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

command -v node >/dev/null || { echo "azurite.sh: node is required" >&2; exit 2; }
command -v npm >/dev/null || { echo "azurite.sh: npm is required" >&2; exit 2; }

# Install (again) only when node_modules does not match the lock file.
stamp="$DIR/node_modules/.mic-lock.sha256"
want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [[ ! -x "$DIR/node_modules/.bin/azurite-blob" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$want" >"$stamp"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

(cd "$work" && exec node "$DIR/node_modules/.bin/azurite-blob" \
  --blobHost 127.0.0.1 --blobPort "$port" \
  --inMemoryPersistence --disableTelemetry --silent >"$work/azurite.log" 2>&1) &
pid=$!

for _ in $(seq 1 150); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "azurite.sh: Azurite exited:" >&2; cat "$work/azurite.log" >&2; exit 2; }
  sleep 0.2
done
export MIC_AZURITE_URL="http://127.0.0.1:$port"
echo "azurite.sh: Azurite $(node "$DIR/node_modules/.bin/azurite-blob" --version 2>/dev/null) at $MIC_AZURITE_URL"

cd "$ROOT"
status=0
timeout 900 cargo test -q -p mic-fake --test azurite_crosscheck -- --nocapture || status=$?
if [[ "${MIC_AZURITE_BENCH:-1}" == "1" ]]; then
  timeout 900 cargo bench -q -p mic-fake --bench blob_get || status=$((status == 0 ? $? : status))
fi
exit "$status"
