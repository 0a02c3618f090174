#!/usr/bin/python3
"""Converts the pinned PP-OCRv4 ONNX models into graphs that OpenCV 4.6's dnn module can load.

Run once at install time by scripts/install.sh; nothing here runs when Portcullis reads plates.

Why each rewrite is needed (OpenCV 4.6's ONNX importer, checked against the shipped files):
  * Clip: opset-11 graphs pass min/max as inputs; OpenCV only reads them as attributes.
  * Dynamic input dims: OpenCV needs a static input shape to plan the graph.
  * Recogniser: the SVTR neck's layer-norm scale/shift and linear biases are 1-D constants that
    OpenCV turns into a Scale layer with the wrong broadcast axis; tiling them to the full
    [1, T, C] activation shape makes the broadcast explicit. T = width / 8 is fixed per width,
    which is why there is one recogniser file per input width.

Usage: prepare_models.py PACKAGE_ASSETS_DIR OUT_DIR
Writes OUT_DIR/{plate_det.onnx, plate_rec_w160.onnx, plate_rec_w320.onnx, rec_keys.txt,
MANIFEST.json}; MANIFEST.json records SHA-256 of every input and output file.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

DET_SOURCE = "ch_PP-OCRv4_det_infer.onnx"
REC_SOURCE = "ch_PP-OCRv4_rec_infer.onnx"
KEYS_SOURCE = "ppocr_keys_v1.txt"
REC_HEIGHT = 48
REC_WIDTHS = (160, 320)
# The detector is fully convolutional: the static shape written here only satisfies the
# importer; the engine feeds each Net one fixed size of its own choosing.
DET_SHAPE = (1, 3, 640, 640)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def constant_values(model):
    """Maps tensor names to numpy arrays for Constant nodes and initializers."""
    values = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for init in model.graph.initializer:
        values[init.name] = numpy_helper.to_array(init)
    return values


def clip_inputs_to_attributes(model):
    """Rewrites Clip(x, min, max) with constant bounds into the attribute form. Returns count."""
    values = constant_values(model)
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Clip" or len(node.input) == 1:
            continue
        bounds = {}
        for name, idx in (("min", 1), ("max", 2)):
            if len(node.input) > idx and node.input[idx]:
                if node.input[idx] not in values:
                    raise ValueError(f"Clip {node.name}: {name} is not a constant")
                bounds[name] = float(np.asarray(values[node.input[idx]]).reshape(-1)[0])
        del node.input[1:]
        for name, value in bounds.items():
            node.attribute.append(helper.make_attribute(name, value))
        rewritten += 1
    return rewritten


def set_static_input(model, dims):
    shape = model.graph.input[0].type.tensor_type.shape
    if len(shape.dim) != len(dims):
        raise ValueError(f"input rank {len(shape.dim)} != {len(dims)}")
    for dim, value in zip(shape.dim, dims):
        if dim.HasField("dim_value") and dim.dim_value not in (0, value):
            raise ValueError(f"input dim fixed at {dim.dim_value}, cannot set {value}")
        dim.ClearField("dim_param")
        dim.dim_value = value


def tile_sequence_constants(model, steps):
    """Tiles 1-D layer-norm/linear constants feeding Mul/Add to [1, steps, C]. Returns count."""
    producers = {out: node for node in model.graph.node for out in node.output}
    tiled = 0
    seen = set()
    for node in model.graph.node:
        if node.op_type not in ("Mul", "Add"):
            continue
        for name in node.input:
            if not ("layer_norm" in name or "linear" in name) or name in seen:
                continue
            producer = producers.get(name)
            if producer is None or producer.op_type != "Constant":
                continue
            tensor = producer.attribute[0].t
            array = numpy_helper.to_array(tensor)
            if array.ndim != 1:
                continue
            full = np.ascontiguousarray(np.tile(array[None, None, :], (1, steps, 1)))
            tensor.CopyFrom(numpy_helper.from_array(full.astype(np.float32), tensor.name))
            seen.add(name)
            tiled += 1
    return tiled


def prepare_detector(src, dst):
    model = onnx.load(src)
    clips = clip_inputs_to_attributes(model)
    set_static_input(model, DET_SHAPE)
    # No onnx.checker here: the attribute form of Clip is what OpenCV reads, and the checker
    # (rightly, for opset 11) rejects it. The engine's tests load and run the result instead.
    onnx.save(model, dst)
    return {"clip_rewritten": clips, "input_shape": list(DET_SHAPE)}


def prepare_recognizer(src, dst, width):
    if width % 8:
        raise ValueError("recogniser width must be a multiple of 8")
    model = onnx.load(src)
    clips = clip_inputs_to_attributes(model)
    set_static_input(model, (1, 3, REC_HEIGHT, width))
    tiled = tile_sequence_constants(model, width // 8)
    if tiled == 0:
        raise ValueError("no layer-norm/linear constants found: unexpected recogniser graph")
    # No onnx.checker here: the attribute form of Clip is what OpenCV reads, and the checker
    # (rightly, for opset 11) rejects it. The engine's tests load and run the result instead.
    onnx.save(model, dst)
    return {"clip_rewritten": clips, "constants_tiled": tiled,
            "input_shape": [1, 3, REC_HEIGHT, width]}


def prepare_keys(src, dst):
    """Writes the CTC alphabet: line i+1 is class i+1 (class 0 is the CTC blank)."""
    with open(src, encoding="utf-8") as f:
        keys = [line.rstrip("\n") for line in f]
    keys.append(" ")  # PaddleOCR appends the space class after the dictionary
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\n".join(keys) + "\n")
    return {"classes": len(keys) + 1}


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    src_dir, out_dir = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"inputs": {}, "outputs": {}, "steps": {}}
    for name in (DET_SOURCE, REC_SOURCE, KEYS_SOURCE):
        path = os.path.join(src_dir, name)
        if not os.path.isfile(path):
            sys.stderr.write(f"prepare_models: missing {path}\n")
            return 1
        manifest["inputs"][name] = sha256(path)

    jobs = [("plate_det.onnx", lambda d: prepare_detector(os.path.join(src_dir, DET_SOURCE), d))]
    for width in REC_WIDTHS:
        jobs.append((f"plate_rec_w{width}.onnx",
                     lambda d, w=width: prepare_recognizer(os.path.join(src_dir, REC_SOURCE), d, w)))
    jobs.append(("rec_keys.txt", lambda d: prepare_keys(os.path.join(src_dir, KEYS_SOURCE), d)))
    for out_name, job in jobs:
        dst = os.path.join(out_dir, out_name)
        tmp = dst + ".tmp"
        manifest["steps"][out_name] = job(tmp)
        os.replace(tmp, dst)
        manifest["outputs"][out_name] = sha256(dst)
    with open(os.path.join(out_dir, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    print(f"prepare_models: wrote {len(jobs)} files to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
