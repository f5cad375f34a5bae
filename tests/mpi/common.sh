# Shared by the tests/mpi scripts (sourced): arguments, the mpirun command line
# and the checks. Usage of every script: SCRIPT HONE_MPI HONE WEIGHTS_DIFF SRC_DIR
# (HONE_MPI: hone with the MPI transport; HONE: the default, MPI-free hone).
set -u
HONE_MPI=$1; HONE=$2; WDIFF=$3; SRC=$4
FM=${HONE_FMNIST:-/usr/share/datasets/fashion-mnist}
MODEL=$SRC/models/fmnist_resnet14.onnx
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
  echo "skipped: Fashion-MNIST not found at $FM (scripts/install-deps.sh installs dataset-fashion-mnist)"
  exit 77
fi
# Open MPI refuses root unless told; CI containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1
MPIRUN=(mpirun --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS)
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do [ -n "${!v:-}" ] && MPIRUN+=(-x "$v"); done
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
# A small run: 160 samples, 32 held out, global batch 32: 4 steps an epoch.
DATA=(--data "$FM/train-images-idx3-ubyte.gz" --labels "$FM/train-labels-idx1-ubyte.gz"
      --scale 0.00392156862745098 --mean 0.2860 --std 0.3530 --limit 160 --val-split 32)
TRAIN=(finetune "$MODEL" "${DATA[@]}" --lr 0.005 --flip --seed 3)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
# run NAME want_rc -- cmd...: runs cmd with output in $T/NAME.out / .err; checks the
# status (want_rc "fail": any non-zero status)
run() {
  local name=$1 want=$2 t0=$SECONDS; shift 3
  "$@" >"$T/$name.out" 2>"$T/$name.err"; local rc=$?
  echo "$name: exit $rc after $((SECONDS - t0)) s"
  if [ "$rc" = "$want" ] || { [ "$want" = fail ] && [ "$rc" != 0 ]; }; then ok; return 0; fi
  bad "$name: rc=$rc (want $want)"; tail -n 15 "$T/$name.err" "$T/$name.out"; return 1
}
# has NAME FILE_SUFFIX PATTERN: the run's out or err contains PATTERN
has() {
  if grep -q -- "$3" "$T/$1.$2"; then ok; else bad "$1: no '$3' in its $2"; tail -n 15 "$T/$1.$2"; fi
}
# same_weights NAME A B TOL: weights_diff A B TOL succeeds
same_weights() {
  if "$WDIFF" "$2" "$3" "$4" >"$T/wd.out" 2>&1; then ok; else bad "$1: $(cat "$T/wd.out")"; fi
  echo "$1: $(cat "$T/wd.out")"
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]
}
