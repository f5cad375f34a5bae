#!/usr/bin/python3
"""Writes seeded random inputs for the shared reference models (../shared/models).

usage: shared_inputs.py OUTDIR BATCH CLIPS
OUTDIR/cls.npy  [BATCH,1,28,28] standard normal (fmnist_resnet14, normalised pixels)
OUTDIR/sr.npy   [BATCH,1,14,14] uniform in [0,1) (fmnist_sr_x2, low-resolution images)
OUTDIR/tsn.npy  [CLIPS,8,1,28,28] standard normal (mfmnist_tsn, 8-frame clips)
"""
import sys

import numpy as np

out, batch, clips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
np.save(f"{out}/cls.npy", rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
np.save(f"{out}/sr.npy", rng.random((batch, 1, 14, 14)).astype(np.float32))
np.save(f"{out}/tsn.npy", rng.standard_normal((clips, 8, 1, 28, 28)).astype(np.float32))
