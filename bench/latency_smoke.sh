#!/usr/bin/env bash
# Smoke test of bench/latency on the stand-in model fake.so (y = a + b, from
# tests/install/fake_model.c): timing lines are printed and ordered
# (min <= median <= p90), .npy inputs reach the model and its output comes
# back bit-exact (a = i/4, b = 1 - i/8, so y = 1 + i/8, all exact in float32),
# random inputs work, and bad usage fails with a message.
# usage: latency_smoke.sh LATENCY FAKE.so DATA_DIR
set -euo pipefail
lat=$1 model=$2 data=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "latency smoke: $*" >&2; exit 1; }

"$lat" "$model" --input a="$data/fake_a.npy" --input b="$data/fake_b.npy" --repeat 15 \
  --warmup 2 --threads 1 --output-dir "$tmp" >"$tmp/out.txt" || fail "run failed"
cat "$tmp/out.txt"
val() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/out.txt"; }
[ "$(val runs)" = 15 ] || fail "runs line missing"
for k in median_ms min_ms p90_ms peak_rss_mb; do [ -n "$(val $k)" ] || fail "$k missing"; done
awk -v a="$(val min_ms)" -v b="$(val median_ms)" -v c="$(val p90_ms)" -v r="$(val peak_rss_mb)" \
  'BEGIN { exit !(a >= 0 && a <= b && b <= c && r > 0) }' || fail "timings out of order"
# The float32 payload is the last 40 bytes of both .npy files.
cmp <(tail -c 40 "$tmp/y.npy") <(tail -c 40 "$data/fake_y.npy") || fail "y != 1 + i/8"

"$lat" "$model" --name fake --repeat 3 >/dev/null || fail "random inputs failed"
! "$lat" "$model" --name nosuch >/dev/null 2>"$tmp/err" || fail "unknown PREFIX accepted"
grep -q "no symbol nosuch_info" "$tmp/err" || fail "unclear message: $(cat "$tmp/err")"
! "$lat" "$model" --input a="$data/fake_bad.npy" >/dev/null 2>"$tmp/err" || fail "bad shape accepted"
grep -q "shape of input 'a'" "$tmp/err" || fail "unclear message: $(cat "$tmp/err")"
! "$lat" "$model" --repeat 0 >/dev/null 2>&1 || fail "--repeat 0 accepted"
echo "latency smoke: ok"
