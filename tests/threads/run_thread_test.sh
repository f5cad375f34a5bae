#!/usr/bin/env bash
# Compiles the bundled classifier and runs it from 8 threads x 1000 inferences, each
# thread with its own workspace, comparing every output with the single-threaded run.
# usage: run_thread_test.sh HONE THREAD_TEST SRC_DIR [THREADS] [RUNS]
set -eu
HONE=$1; PROG=$2; SRC=$3; THREADS=${4:-8}; RUNS=${5:-1000}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
"$HONE" compile "$SRC/models/fmnist_resnet14.onnx" -o "$T/fm.so" --name fm --input-shape input=1x1x28x28
OPENBLAS_NUM_THREADS=1 "$PROG" "$T/fm.so" fm "$THREADS" "$RUNS"
