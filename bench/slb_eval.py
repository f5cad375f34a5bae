#!/usr/bin/env python3
"""Helpers of bench/slb_results.sh (numpy only).

  slb_eval.py prep OUTDIR CHUNK       Fashion-MNIST test set -> OUTDIR/t<k>.npy (normalised
                                      float32 [CHUNK,1,28,28]) and OUTDIR/labels.npy
  slb_eval.py random FILE N C H W     seeded N(0,1) float32 [N,C,H,W] (calibration data)
  slb_eval.py score DIR_PREFIX K LABELS [ORT_PREFIX]
                                      top-1 (%) of the logits DIR_PREFIX<k>/*.npy, k < K,
                                      against LABELS; with ORT_PREFIX also the share (%) of
                                      samples whose argmax agrees. Prints "top1 AGREE".
"""
import glob
import gzip
import sys

import numpy as np

FM = "/usr/share/datasets/fashion-mnist/"


def prep(out, chunk):
    raw = gzip.open(FM + "t10k-images-idx3-ubyte.gz").read()
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32)
    x = ((x * np.float32(0.00392156862745098) - np.float32(0.2860)) / np.float32(0.3530))
    y = np.frombuffer(gzip.open(FM + "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    np.save(out + "/labels.npy", y.astype(np.int64))
    k = 0
    for i in range(0, len(x), chunk):
        np.save("%s/t%d.npy" % (out, k), x[i:i + chunk].astype(np.float32))
        k += 1
    print(k)


def logits(prefix, k):
    return np.concatenate([np.load(glob.glob("%s%d/*.npy" % (prefix, i))[0]) for i in range(k)])


def score(prefix, k, labels, ort=None):
    h = logits(prefix, int(k)).argmax(1)
    y = np.load(labels)
    top1 = 100.0 * (h == y[:len(h)]).mean()
    agree = 100.0 * (logits(ort, int(k)).argmax(1) == h).mean() if ort else float("nan")
    print("%.2f %.2f" % (top1, agree))


def main():
    cmd = sys.argv[1]
    if cmd == "prep":
        prep(sys.argv[2], int(sys.argv[3]))
    elif cmd == "random":
        n, c, h, w = map(int, sys.argv[3:7])
        rng = np.random.default_rng(0)
        np.save(sys.argv[2], rng.standard_normal((n, c, h, w)).astype(np.float32))
    elif cmd == "score":
        score(*sys.argv[2:])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
