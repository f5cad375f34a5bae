#!/usr/bin/python3
"""Exports torchvision architectures (random weights, eval mode) to ONNX.

usage: export_torchvision.py OUTDIR [name ...]
Writes OUTDIR/<name>.onnx (opset 13, batch 1, input 'input' [1,3,224,224]),
OUTDIR/<name>.input.npy (a fixed random input) and OUTDIR/<name>_raw.onnx: the same
network exported as a framework hands it over before any optimisation (no constant
folding, BatchNormalization and Identity nodes kept, symbolic batch 'N'), the input
for hone's graph optimisations. No weights are downloaded.
"""
import os
import sys

import numpy as np
import torch
import torchvision

MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "resnet50": lambda: torchvision.models.resnet50(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(),
}


def export(name, outdir):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    # Random weights give exploding activations in deep nets; make BN statistics
    # realistic by running a few batches in train mode first.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 224, 224))
    model.eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    path = os.path.join(outdir, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"],
                      output_names=["output"], do_constant_folding=True)
    np.save(os.path.join(outdir, name + ".input.npy"), x.numpy())
    raw = os.path.join(outdir, name + "_raw.onnx")
    torch.onnx.export(model, x, raw, opset_version=13, input_names=["input"],
                      output_names=["output"], do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    print("wrote", path, "and", raw)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for name in sys.argv[2:] or MODELS:
        if not os.path.exists(os.path.join(outdir, name + "_raw.onnx")):
            export(name, outdir)


if __name__ == "__main__":
    main()
