#!/usr/bin/env bash
# The whole test suite: type check, then every test file with node:test
# (test/*.test.ts and the fast tier, test/unit/*.test.ts), against the real
# S3 server. When no S3 server is configured
# (CAIRN_S3_ENDPOINT unset) it installs and starts one (scripts/s3-server.sh)
# and stops it afterwards. CAIRN_TEST_S3=skip runs the fs variants only.
set -euo pipefail
cd "$(dirname "$0")/.."

npx tsc --noEmit
# the servers the tests start run the compiled code, as npm start does
node scripts/build.mjs

started=""
if [ -z "${CAIRN_S3_ENDPOINT:-}" ] && [ "${CAIRN_TEST_S3:-}" != skip ]; then
  S3_DIR=${CAIRN_TEST_S3_DIR:-${TMPDIR:-/tmp}/cairn-test-s3}
  if ! RGW_PORT=${RGW_PORT:-7490} MON_V2=${MON_V2:-3310} MON_V1=${MON_V1:-6799} bash scripts/s3-server.sh status "$S3_DIR" >/dev/null 2>&1; then
    RGW_PORT=${RGW_PORT:-7490} MON_V2=${MON_V2:-3310} MON_V1=${MON_V1:-6799} bash scripts/s3-server.sh start "$S3_DIR"
    started=$S3_DIR
  fi
  # shellcheck disable=SC1091
  source "$S3_DIR/env"
fi
stop_s3() { [ -z "$started" ] || bash scripts/s3-server.sh stop "$started" >/dev/null 2>&1 || true; }
trap stop_s3 EXIT

node --import tsx --test --test-concurrency=1 test/*.test.ts test/unit/*.test.ts
