#!/usr/bin/python3
"""Compares two .npy files: prints max abs error, max rel error (relative to the
largest reference magnitude) and whether the argmax agrees.
usage: npy_compare.py GOT.npy WANT.npy [RTOL]   exit 1 when max rel error > RTOL
"""
import sys

import numpy as np

got, want = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
if got.shape != want.shape:
    print(f"shape mismatch {got.shape} vs {want.shape}")
    sys.exit(1)
abs_err = float(np.max(np.abs(got - want))) if got.size else 0.0
scale = float(np.max(np.abs(want))) if want.size else 1.0
rel = abs_err / scale if scale > 0 else abs_err
same_arg = bool(np.argmax(got.reshape(got.shape[0], -1), axis=1).tolist()
                == np.argmax(want.reshape(want.shape[0], -1), axis=1).tolist())
print(f"max_abs {abs_err:.3e} max_rel {rel:.3e} argmax_equal {same_arg}")
sys.exit(0 if rel <= rtol else 1)
