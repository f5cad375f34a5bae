#!/usr/bin/python3
"""PyTorch baseline for `hone finetune`: the same network, data and recipe.

The network is the graph of models/fmnist_resnet14.onnx rebuilt in torch: the
CIFAR-style ResNet-14 (16/32/64 channels, two basic blocks per stage) of
/work/shared/models/make_reference_models.py as exported to ONNX, i.e. with
every BatchNormalization folded into its convolution, so each convolution
carries a bias and there is no BN layer. Weights are initialised as
`hone finetune --reinit` does: Kaiming-normal (fan_in, ReLU gain) for conv and
linear weights, zero biases.

The recipe mirrors hone's flags: optimiser (sgd, nesterov, adam, adamw),
momentum, weight decay, schedule stepped per batch (cosine with warm-up,
step, one-cycle, constant), gradient-norm clipping, random horizontal flip,
data normalisation (x*scale - mean)/std. Training prints one line per epoch;
the last stdout lines are "test_top1 X" and "train_images_per_s Y".

--throughput STEPS skips accuracy: it times STEPS training steps (after
--warmup-steps untimed ones) on batches of the training set and prints
"images_per_s Y".

usage: torch_train.py [--epochs N] [--lr LR] [--batch B] [--optim nesterov]
                      [--momentum M] [--wd WD] [--schedule cosine] [--warmup-epochs E]
                      [--clip NORM] [--flip] [--seed S] [--threads T] [--limit N]
                      [--throughput STEPS]
"""
import argparse
import gzip
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """IDX file (gzip) as a numpy array."""
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


class Block(nn.Module):
    """Basic residual block, BN folded: conv-relu-conv + shortcut, relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.sc = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.c2(F.relu(self.c1(x)))
        return F.relu(y + (x if self.sc is None else self.sc(x)))


class ResNet14(nn.Module):
    def __init__(self, n=2, widths=(16, 32, 64), cin=1, ncls=10):
        super().__init__()
        self.stem = nn.Conv2d(cin, widths[0], 3, 1, 1)
        layers, c = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(n):
                layers.append(Block(c, w, 2 if (j == 0 and i > 0) else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, ncls)

    def forward(self, x):
        y = self.layers(F.relu(self.stem(x)))
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


def reinit(model):
    """Kaiming-normal (fan_in, ReLU gain) weights, zero biases: hone's --reinit."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)


def make_optimizer(args, params):
    if args.optim in ("sgd", "nesterov"):
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum,
                               weight_decay=args.wd, nesterov=args.optim == "nesterov")
    if args.optim == "adam":
        return torch.optim.Adam(params, lr=args.lr, weight_decay=args.wd)
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.wd)


def lr_factor(args, step, total, per_epoch):
    """Multiplier of the base lr at a step, the same rules as passes/train/schedule.c."""
    warm = int(round(args.warmup_epochs * per_epoch))
    if args.schedule == "onecycle":
        up = args.pct_start * total - 1
        lo = 1 / 25.0
        if step <= up:
            return 1 + (lo - 1) * (1 + math.cos(math.pi * step / up)) / 2
        p = (step - up) / (total - 1 - up)
        return lo / 1e4 + (1 - lo / 1e4) * (1 + math.cos(math.pi * p)) / 2
    if step < warm:
        return (step + 1) / warm
    if args.schedule == "cosine":
        t, span = step - warm, total - warm
        return 0.5 * (1 + math.cos(math.pi * min(t, span) / span))
    if args.schedule == "step":
        return 0.1 ** sum(1 for m in args.milestones if step >= m * per_epoch)
    return 1.0


def onecycle_momentum(step, total, pct_start=0.3, lo=0.85, hi=0.95):
    """OneCycleLR's momentum cycle (hi -> lo -> hi), as schedule.c."""
    up = pct_start * total - 1
    if step <= up:
        p, a, b = step / up, hi, lo
    else:
        p, a, b = (step - up) / (total - 1 - up), lo, hi
    return b + (a - b) * (1 + math.cos(math.pi * p)) / 2


def set_rate(args, opt, step, total, per_epoch):
    for g in opt.param_groups:
        g["lr"] = args.lr * lr_factor(args, step, total, per_epoch)
        if args.schedule != "onecycle":
            continue
        m = onecycle_momentum(step, total, args.pct_start)
        if "betas" in g:
            g["betas"] = (m, g["betas"][1])
        elif g["momentum"] > 0:
            g["momentum"] = m


def flip(x, gen):
    m = torch.rand(x.shape[0], generator=gen) < 0.5
    x = x.clone()
    x[m] = x[m].flip(-1)
    return x


def accuracy(model, x, y, bs=1000):
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i:i + bs]).argmax(1) == y[i:i + bs]).sum())
                   for i in range(0, len(x), bs))
    return hits / len(x)


def load(args, split):
    x = read_idx(f"{DATA}/{split}-images-idx3-ubyte.gz")
    y = read_idx(f"{DATA}/{split}-labels-idx1-ubyte.gz")
    if split == "train" and args.limit:
        x, y = x[:args.limit], y[:args.limit]
    xf = (torch.from_numpy(x.astype(np.float32)) * args.scale - args.mean) / args.std
    return xf[:, None], torch.from_numpy(y.astype(np.int64))


def train_step(model, opt, x, y, clip):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return float(loss)


def throughput(args, model, opt, xtr, ytr):
    model.train()
    for k in range(args.throughput + args.warmup_steps):
        if k == args.warmup_steps:
            t0 = time.perf_counter()
        i = (k * args.batch) % (len(xtr) - args.batch)
        train_step(model, opt, xtr[i:i + args.batch], ytr[i:i + args.batch], args.clip)
    dt = time.perf_counter() - t0
    print(f"images_per_s {args.throughput * args.batch / dt:.1f}")


def train(args, model, opt, xtr, ytr):
    gen = torch.Generator().manual_seed(args.seed)
    per_epoch = (len(xtr) + args.batch - 1) // args.batch
    total, step, images, t_all = args.epochs * per_epoch, 0, 0, 0.0
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        t0, tot = time.perf_counter(), 0.0
        for i in range(0, len(xtr), args.batch):
            set_rate(args, opt, step, total, per_epoch)
            b = perm[i:i + args.batch]
            x = flip(xtr[b], gen) if args.flip else xtr[b]
            tot += train_step(model, opt, x, ytr[b], args.clip) * len(b)
            step += 1
        dt = time.perf_counter() - t0
        t_all += dt
        images += len(xtr)
        print(f"epoch {ep + 1} loss {tot / len(xtr):.4f} time {dt:.1f}s "
              f"images/s {len(xtr) / dt:.1f}", flush=True)
    return images / t_all


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--optim", default="nesterov", choices=["sgd", "nesterov", "adam", "adamw"])
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--schedule", default="cosine", choices=["cosine", "step", "onecycle", "constant"])
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--milestones", type=float, nargs="*", default=[])
    p.add_argument("--pct-start", type=float, default=0.3)
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--flip", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--scale", type=float, default=1 / 255)
    p.add_argument("--mean", type=float, default=0.2860)
    p.add_argument("--std", type=float, default=0.3530)
    p.add_argument("--throughput", type=int, default=0)
    p.add_argument("--warmup-steps", type=int, default=2)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = ResNet14()
    reinit(model)
    opt = make_optimizer(args, model.parameters())
    xtr, ytr = load(args, "train")
    if args.throughput:
        throughput(args, model, opt, xtr, ytr)
        return
    ips = train(args, model, opt, xtr, ytr)
    xte, yte = load(args, "t10k")
    print(f"params {sum(p.numel() for p in model.parameters())}")
    print(f"train_images_per_s {ips:.1f}")
    print(f"test_top1 {accuracy(model, xte, yte):.4f}")


if __name__ == "__main__":
    sys.exit(main())
