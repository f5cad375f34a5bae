#!/usr/bin/env python3
"""Generates hone's CLI test fixtures with the Python standard library only.

tests/cli/data/    small valid models and datasets with known answers
                   (top-1 accuracy, PSNR, interpreter outputs).
tests/bad_inputs/  malformed files: every one must make `hone dump` or
                   `hone run` exit with status 1 and a message naming the file,
                   never crash.

ONNX protobuf bytes are written by hand (a dozen lines of wire-format
encoding below), so no onnx or protobuf package is needed. The output is
deterministic; the generated files are committed, so the tests do not need
Python. Run from the repository root: scripts/make_bad_inputs.py
"""
import gzip
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GOOD = os.path.join(ROOT, "tests", "cli", "data")
BAD = os.path.join(ROOT, "tests", "bad_inputs")

FLOAT, UINT8, INT64 = 1, 2, 7

# ---- protobuf wire format ----


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f_int(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_float(field, x):
    return varint(field << 3 | 5) + struct.pack("<f", x)


# ---- ONNX messages (field numbers from onnx.proto) ----


def dim(d):
    return f_bytes(1, f_int(1, d) if isinstance(d, int) else f_bytes(2, d))


def value_info(name, elem, shape):
    shp = b"".join(dim(d) for d in shape)
    tensor_type = f_int(1, elem) + f_bytes(2, shp)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, tensor_type))


def tensor(name, elem, dims, raw, external=None):
    t = b"".join(f_int(1, d) for d in dims) + f_int(2, elem) + f_bytes(8, name)
    if external is None:
        return t + f_bytes(9, raw)
    for k, v in external:
        t += f_bytes(13, f_bytes(1, k) + f_bytes(2, v))
    return t + f_int(14, 1)


def f32(*vals):
    return struct.pack("<%df" % len(vals), *vals)


def node(op, ins, outs, name, attrs=b""):
    return (b"".join(f_bytes(1, i) for i in ins) + b"".join(f_bytes(2, o) for o in outs)
            + f_bytes(3, name) + f_bytes(4, op) + attrs)


def model(nodes, inits, inputs, outputs, opset=13):
    g = b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, "g")
    g += b"".join(f_bytes(5, t) for t in inits)
    g += b"".join(f_bytes(11, v) for v in inputs) + b"".join(f_bytes(12, v) for v in outputs)
    return (f_int(1, 8) + f_bytes(2, "make_bad_inputs") + f_bytes(7, g)
            + f_bytes(8, f_bytes(1, "") + f_int(2, opset)))


# ---- data files ----


def npy(descr, shape, payload):
    shp = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shp)
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + payload


def idx(code, shape, payload):
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---- valid fixtures ----

W, B = (1.0, 2.0, 1.0), (0.0, 0.0, 1.0)


def classifier(batch_dims):
    """logits = Identity(Relu(x * W + B)), x float[batch_dims..., 3]."""
    nodes = [node("Mul", ["x", "w"], ["xw"], "mul0"), node("Add", ["xw", "b"], ["s"], "add0"),
             node("Relu", ["s"], ["r"], "relu0"), node("Identity", ["r"], ["logits"], "id0")]
    inits = [tensor("w", FLOAT, [3], f32(*W)), tensor("b", FLOAT, [3], f32(*B))]
    return model(nodes, inits, [value_info("x", FLOAT, batch_dims + [3])],
                 [value_info("logits", FLOAT, batch_dims + [3])])


def make_classifier_data():
    rng = random.Random(7)
    xs = [[rng.randrange(256) for _ in range(3)] for _ in range(10)]
    # argmax takes the first of equal scores, as hone's metric does
    truth = [max(range(3), key=lambda j: max(0.0, x[j] * W[j] + B[j])) for x in xs]
    labels = list(truth)
    for i in (1, 4, 8):  # three wrong labels: top1 = 0.7000
        labels[i] = (truth[i] + 1) % 3
    flat = bytes(v for x in xs for v in x)
    write(GOOD, "cls_x.npy", npy("|u1", [10, 3], flat))
    write(GOOD, "cls_y.npy", npy("<i8", [10], struct.pack("<10q", *labels)))
    write(GOOD, "cls_x.idx", idx(0x08, [10, 3], flat))
    write(GOOD, "cls_y-idx1-ubyte.gz", gzip.compress(idx(0x08, [10], bytes(labels)), mtime=0))
    # the first 5 samples hold 2 wrong labels (1 and 4): top1 0.6000 with --limit 5
    out = [max(0.0, x[j] * W[j] + B[j]) for x in xs[:2] for j in range(3)]
    write(GOOD, "cls_x2.npy", npy("<f4", [2, 3], f32(*[float(v) for x in xs[:2] for v in x])))
    write(GOOD, "cls_logits2.raw", f32(*out))


def make_good():
    write(GOOD, "cls_sym.onnx", classifier(["N"]))
    write(GOOD, "cls_b1.onnx", classifier([1]))
    write(GOOD, "cls_b4.onnx", classifier([4]))
    write(GOOD, "cls_fit.onnx", classifier(["N", 1]))
    make_classifier_data()
    sr = model([node("Identity", ["x"], ["y"], "id0")], [],
               [value_info("x", FLOAT, ["N", 4])], [value_info("y", FLOAT, ["N", 4])])
    write(GOOD, "sr_id.onnx", sr)
    # image 0: 0.1 vs 0 -> MSE 0.01, 20 dB; image 1: -0.3 clamps to 0 vs 255/255 -> 0 dB
    write(GOOD, "psnr_x.npy", npy("<f4", [2, 4], f32(*([0.1] * 4 + [-0.3] * 4))))
    write(GOOD, "psnr_t.npy", npy("|u1", [2, 4], bytes([0] * 4 + [255] * 4)))


# ---- malformed inputs ----

X_IN = value_info("x", FLOAT, ["N", 3])
Y_OUT = value_info("y", FLOAT, ["N", 3])


def add_model(inits, extra_inputs=()):
    return model([node("Add", ["x", "w"], ["y"], "add0")], inits, [X_IN, *extra_inputs], [Y_OUT])


def flip(data, pos, mask=0xFF):
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def make_bad_models(base):
    write(BAD, "truncated.onnx", base[: len(base) // 2])
    write(BAD, "random.onnx", bytes(random.Random(1).randrange(256) for _ in range(600)))
    write(BAD, "empty.onnx", b"")
    write(BAD, "flip_first_byte.onnx", flip(base, 0))  # invalid wire type
    graph_len_at = len(f_int(1, 8) + f_bytes(2, "make_bad_inputs")) + 1  # graph's length varint
    write(BAD, "flip_graph_length.onnx", flip(base, graph_len_at, 0x40))
    write(BAD, "flip_op_type.onnx", flip(base, base.index(b"Relu"), 0x20))  # "relu"
    raw_at = base.index(f32(*W))  # one byte of a weight: still a valid model...
    write(BAD, "flip_raw_length.onnx", flip(base, raw_at - 1, 0x01))  # ...its length is not
    big = 1 << 62
    write(BAD, "dim_2p62_initializer.onnx", add_model([tensor("w", FLOAT, [big], f32(1, 2, 3))]))
    write(BAD, "dim_2p62_input.onnx",
          model([node("Relu", ["x"], ["y"], "relu0")], [], [value_info("x", FLOAT, [big, 3])],
                [Y_OUT]))
    cyc = [node("Add", ["x", "c"], ["a"], "add_a"), node("Relu", ["a"], ["c"], "relu_c"),
           node("Identity", ["a"], ["y"], "id_y")]
    write(BAD, "cyclic.onnx", model(cyc, [], [X_IN], [Y_OUT]))
    write(BAD, "missing_initializer.onnx", add_model([]))
    write(BAD, "type_mismatch.onnx", add_model([tensor("w", INT64, [3], struct.pack("<3q", 1, 2, 3))]))
    for name, loc in (("extdata_dotdot.onnx", "../x"), ("extdata_absolute.onnx", "/etc/passwd")):
        ext = [("location", loc), ("offset", "0"), ("length", "12")]
        write(BAD, name, add_model([tensor("w", FLOAT, [3], None, ext)]))


def make_bad_data():
    good = npy("<f4", [2, 3], f32(1, 2, 3, 4, 5, 6))
    write(BAD, "truncated.npy", good[:-5])
    write(BAD, "truncated_header.npy", good[:20])
    write(BAD, "huge_dim.npy", npy("<f4", [1 << 62, 3], f32(1, 2, 3)))
    write(BAD, "huge_numel.npy", npy("<f4", [1 << 20, 1 << 20], f32(1, 2, 3)))
    write(BAD, "bad_magic.npy", b"\x93NUMPZ" + good[6:])
    ok_idx = idx(0x08, [10, 3], bytes(30))
    write(BAD, "truncated.idx", ok_idx[:-7])
    write(BAD, "bad_magic.idx", b"\x01" + ok_idx[1:])
    write(BAD, "bad_type.idx", ok_idx[:2] + b"\x07" + ok_idx[3:])
    write(BAD, "huge_dims.idx", idx(0x08, [1 << 31, 1 << 31], bytes(8)))
    write(BAD, "truncated-ubyte.gz", gzip.compress(ok_idx, mtime=0)[:-12])
    write(BAD, "lying_size-ubyte.gz", gzip.compress(idx(0x08, [1 << 20, 1 << 10], bytes(64)), mtime=0))


def main():
    make_good()
    base = model([node("Add", ["x", "w"], ["s"], "add0"), node("Relu", ["s"], ["y"], "relu0")],
                 [tensor("w", FLOAT, [3], f32(*W))], [X_IN], [Y_OUT])
    write(GOOD, "base.onnx", base)
    make_bad_models(base)
    make_bad_data()


if __name__ == "__main__":
    main()
