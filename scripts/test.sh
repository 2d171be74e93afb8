#!/usr/bin/env bash
# The test command (`npm test`): setup (quiet when nothing is missing), typecheck, unit tests,
# every notebook through the tslab kernel, then the render check in headless Chromium.
# Ends with one line `N passed, N failed` summing all stages; exits non-zero on any failure.
#   TSFAST_TEST_STAGES="unit notebooks"   run only some stages (typecheck unit ops notebooks render)
set -uo pipefail
cd "$(dirname "$0")/.."
STAGES=${TSFAST_TEST_STAGES:-"typecheck unit ops notebooks render"}
mkdir -p out
PASS=0; FAIL=0
count() { # add "N passed, M failed" found in the last matching line of file $1
  local line; line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -z "$line" ]; then FAIL=$((FAIL + 1)); echo "test: no result line from $2 (counted as 1 failure)"; return; fi
  PASS=$((PASS + $(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')))
  FAIL=$((FAIL + $(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')))
}

T_SETUP=$(date +%s)
if ! bash scripts/setup.sh --no-run --quiet; then
  echo "test: setup failed"; echo "0 passed, 1 failed"; exit 1
fi
echo "test: setup took $(( $(date +%s) - T_SETUP )) s"

T_ALL=$(date +%s)
for stage in $STAGES; do
  T_STAGE=$(date +%s)
  case "$stage" in
    typecheck)
      echo "== typecheck"
      if node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit; then PASS=$((PASS + 1)); echo "typecheck: 1 passed, 0 failed"
      else FAIL=$((FAIL + 1)); echo "typecheck: 0 passed, 1 failed"; fi ;;
    unit)
      echo "== unit tests (node --test)"
      node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination=out/unit.tap dist/test/*.test.js
      p=$(grep -E '^# pass [0-9]+' out/unit.tap | tail -1 | awk '{print $3}')
      f=$(grep -E '^# fail [0-9]+' out/unit.tap | tail -1 | awk '{print $3}')
      if [ -z "$p" ]; then FAIL=$((FAIL + 1)); echo "unit: no summary (counted as 1 failure)"
      else PASS=$((PASS + p)); FAIL=$((FAIL + f)); echo "unit: $p passed, $f failed"; fi ;;
    ops)
      # tfjs-core's own op test suite against each engine this machine has (native only if built).
      echo "== tfjs-core op suite (test:ops)"
      for b in native wasm cpu; do
        if [ "$b" = native ] && [ ! -f native/build/Release/tsfast_native.node ]; then
          echo "test-ops (native): skipped, the native engine is not built ($(cat native/build-skipped.txt 2>/dev/null || echo 'no reason recorded'))"
          continue
        fi
        node dist/scripts/test-ops.js --backend "$b" 2>&1 | tee "out/ops-$b.log" | tail -3
        count "out/ops-$b.log" "test:ops $b"
      done ;;
    notebooks)
      echo "== notebooks (tslab via nbclient)"
      /usr/bin/python3 scripts/run_notebooks.py 2>&1 | tee out/notebooks.log
      count out/notebooks.log notebooks ;;
    render)
      echo "== render check (headless Chromium)"
      node dist/scripts/render-check.js 2>&1 | tee out/render.log
      count out/render.log render ;;
    *) echo "test: unknown stage '$stage'"; FAIL=$((FAIL + 1)) ;;
  esac
  echo "test: stage $stage took $(( $(date +%s) - T_STAGE )) s"
done
echo "test: all stages took $(( $(date +%s) - T_ALL )) s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
