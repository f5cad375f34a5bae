#!/usr/bin/env bash
# Installs hone into a temporary prefix and builds examples/classify against it
# in three ways, each linking tests/install/fake_model.c compiled to an object
# file against the installed headers (as `hone compile --emit=obj` output would
# be): CMake with hone::hone_rt, CMake with hone::hone_rt_static, and the
# pkg-config Makefile. Each program must print the top classes of the fake
# model (y = a + b on classify's fixed pattern, worked out below) and pass its
# own --expect check.
# usage: run_install_test.sh BUILD_DIR SOURCE_DIR LIBDIR CC CMAKE
set -euo pipefail
build=$1 src=$2 libdir=$3 cc=$4 cmake=$5
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install test: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install failed"; }
for f in bin/hone include/hone/hone.h include/hone/model.h include/hone/runtime/hone_rt.h \
         "$libdir/libhone_rt.a" "$libdir/libhone_rt.so" "$libdir/pkgconfig/hone_rt.pc" \
         "$libdir/cmake/hone/honeConfig.cmake" "$libdir/cmake/hone/honeConfigVersion.cmake" \
         "$libdir/cmake/hone/honeTargets.cmake"; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
# The installed headers must stand alone (no include of the source tree).
"$cc" -std=c11 -Wall -Wextra -Werror -c -fPIC -I"$prefix/include" \
  "$src/tests/install/fake_model.c" -o "$tmp/fake_model.o"

# a = (3i mod 10)/10, b = (4i mod 10)/10 for i = 0..9, so y = a + b is
# 0 .7 1.4 1.1 .8 .5 1.2 .9 .6 1.3: top classes 2 (1.4), 9 (1.3), 6 (1.2).
want='sample 0 rank 1: class 2 score 1.400
sample 0 rank 2: class 9 score 1.300
sample 0 rank 3: class 6 score 1.200'
check() { # name program
  local got; got=$("$2" --expect 2) || fail "$1: classify failed"
  [ "$got" = "$want" ] || fail "$1: classify printed:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"
  echo "install test: $1 ok"
}
loads_installed() { # name program: it must load the installed libhone_rt.so
  local loaded; loaded=$(ldd "$2" | awk '$1 ~ /^libhone_rt\.so/ { print $3 }')
  [ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$prefix/$libdir/libhone_rt.so")" ] \
    || fail "$1: loads '$loaded', not the installed libhone_rt.so"
}

for mode in shared static; do
  static=OFF; [ $mode = static ] && static=ON
  "$cmake" -S "$src/examples" -B "$tmp/cmake-$mode" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DHONE_MODEL_NAME=fake -DHONE_MODEL="$tmp/fake_model.o" \
    -DHONE_EXAMPLE_STATIC=$static >"$tmp/cfg.log" 2>&1 || { cat "$tmp/cfg.log"; fail "cmake ($mode) failed"; }
  "$cmake" --build "$tmp/cmake-$mode" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build ($mode) failed"; }
  check "find_package(hone), $mode runtime" "$tmp/cmake-$mode/classify"
done
loads_installed "find_package(hone), shared runtime" "$tmp/cmake-shared/classify"
if ldd "$tmp/cmake-static/classify" | grep -q libhone_rt; then
  fail "static build still needs libhone_rt.so"
fi

mkdir -p "$tmp/make"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" make -s -C "$src/examples" CC="$cc" \
  BUILD="$tmp/make" MODEL_NAME=fake MODEL="$tmp/fake_model.o" >"$tmp/make.log" 2>&1 \
  || { cat "$tmp/make.log"; fail "pkg-config build failed"; }
check "pkg-config" "$tmp/make/classify"
loads_installed "pkg-config" "$tmp/make/classify"

# The real thing: the installed hone compiles the bundled classifier to an object file
# (--emit=obj), and examples/classify links it through CMake and through pkg-config.
# Input: the first Fashion-MNIST test image (t10k #0, normalised), whose label is 9.
"$prefix/bin/hone" compile "$src/models/fmnist_resnet14.onnx" --emit=obj -o "$tmp/fm.o" \
  --name fm --input-shape input=1x1x28x28 >"$tmp/compile.log" 2>&1 \
  || { cat "$tmp/compile.log"; fail "hone compile --emit=obj failed"; }
img=$src/tests/install/fmnist_t10k_0.f32
"$cmake" -S "$src/examples" -B "$tmp/cmake-fm" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DHONE_MODEL_NAME=fm -DHONE_MODEL="$tmp/fm.o" \
  -DHONE_EXAMPLE_STATIC=ON >"$tmp/cfg.log" 2>&1 || { cat "$tmp/cfg.log"; fail "cmake (fm) failed"; }
"$cmake" --build "$tmp/cmake-fm" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build (fm) failed"; }
"$tmp/cmake-fm/classify" --expect 9 "$img" >/dev/null || fail "compiled classifier (CMake): t10k #0 is not class 9"
echo "install test: compiled fmnist_resnet14 through find_package(hone) ok"
mkdir -p "$tmp/make-fm"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" make -s -C "$src/examples" CC="$cc" \
  BUILD="$tmp/make-fm" MODEL_NAME=fm MODEL="$tmp/fm.o" >"$tmp/make.log" 2>&1 \
  || { cat "$tmp/make.log"; fail "pkg-config build (fm) failed"; }
"$tmp/make-fm/classify" --expect 9 "$img" >/dev/null || fail "compiled classifier (pkg-config): t10k #0 is not class 9"
echo "install test: compiled fmnist_resnet14 through pkg-config ok"
