#!/usr/bin/env bash
# CLI behaviour: exit codes and clear errors for bad input. Usage: run_cli_tests.sh HONE SRC_DIR
set -u
HONE=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { # name expected_rc expected_stderr_substring -- cmd...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ] && grep -q -- "$pat" "$T/err" "$T/out"; then pass=$((pass+1))
  else fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want), output:"; head -5 "$T/err" "$T/out"; fi
}
check no-args 2 "usage" -- "$HONE"
check help 0 "commands" -- "$HONE" --help
check unknown-cmd 2 "unknown command" -- "$HONE" frobnicate
check missing-file 1 "cannot open" -- "$HONE" dump "$T/nope.onnx"
head -c 1000 /dev/urandom > "$T/random.onnx"
check random-bytes 1 "random.onnx" -- "$HONE" dump "$T/random.onnx"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
