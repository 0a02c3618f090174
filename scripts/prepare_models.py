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

Speed rewrites (exact algebra; OpenCV runs the result several times faster per elementwise op):
  * HardSwish: PaddlePaddle exports hardswish(x) as x * Clip(x + 3, 0, 6) / 6, four layers that
    each stream the whole activation through memory, and because x has two consumers OpenCV can
    fuse none of them into the convolution before. One HardSwish node (OpenCV 4.6 has the layer)
    computes the same function and fuses into the preceding convolution.
  * Per-channel affine after a convolution (BatchNormalization, and PP-LCNetV3's "learnable
    affine block" Mul(s) + Add(b) with constant s, b) is folded into the convolution's weights
    and bias: conv(x) * s + b = conv_{w*s}(x) + (bias*s + b).
  * A scalar affine in front of an unpadded convolution (the learnable affine block after an
    activation, feeding a 1x1 convolution) is folded into that convolution's weights and bias:
    conv_w(s*x + b) = conv_{w*s}(x) + b*sum(w). Padded convolutions are left alone (their zero
    padding would see b).

Usage: prepare_models.py PACKAGE_ASSETS_DIR OUT_DIR
Writes OUT_DIR/{plate_det.onnx, plate_det_region.onnx, plate_rec_w160.onnx, plate_rec_w320.onnx, rec_keys.txt,
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


def _consumers(model):
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    for out in model.graph.output:
        users.setdefault(out.name, []).append(None)  # a graph output is a consumer we keep
    return users


def _set_constant(model, name, array):
    """Replaces the value of the Constant node or initializer called name (same name)."""
    tensor = numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            node.attribute[0].t.CopyFrom(tensor)
            return
    for init in model.graph.initializer:
        if init.name == name:
            init.CopyFrom(tensor)
            return
    raise ValueError(f"no constant called {name}")


def _add_constant(model, name, array):
    # An initializer, not a Constant node: nodes must stay in topological order for importers.
    model.graph.initializer.append(
        numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))


def _scalar_operand(node, values):
    """For a Mul/Add with one constant operand of a single element: (other input, value)."""
    if len(node.input) != 2:
        return None, None
    for const_idx in (0, 1):
        name = node.input[const_idx]
        if name in values and np.asarray(values[name]).size == 1:
            return node.input[1 - const_idx], float(np.asarray(values[name]).reshape(-1)[0])
    return None, None


def _channel_operand(node, values, channels):
    """For a Mul/Add with a constant operand broadcasting per channel over NCHW: (input, [C])."""
    if len(node.input) != 2:
        return None, None
    for const_idx in (0, 1):
        name = node.input[const_idx]
        if name not in values:
            continue
        array = np.asarray(values[name], dtype=np.float32)
        if array.size == 1:
            return node.input[1 - const_idx], np.full(channels, array.reshape(-1)[0], np.float32)
        squeezed = array.reshape(-1)
        # [C,1,1] or [1,C,1,1]: one value per channel of an NCHW activation.
        if array.size == channels and array.ndim >= 3 and array.shape[-1] == 1 \
                and array.shape[-2] == 1:
            return node.input[1 - const_idx], squeezed
    return None, None


def _drop_unused(model):
    """Removes nodes (Constants included) and initializers nobody reads, to a fixed point."""
    while True:
        users = _consumers(model)
        keep = [n for n in model.graph.node if any(o in users for o in n.output)]
        if len(keep) == len(model.graph.node):
            break
        del model.graph.node[:]
        model.graph.node.extend(keep)
    inputs = {i.name for i in model.graph.input}
    inits = [i for i in model.graph.initializer if i.name in users or i.name in inputs]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def fuse_hardswish(model):
    """Rewrites x * Clip(x + 3, 0, 6) / 6 (Clip in attribute form) into HardSwish(x).

    Returns the number of rewrites. Run after clip_inputs_to_attributes."""
    values = constant_values(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    users = _consumers(model)
    fused = 0
    for div in list(model.graph.node):
        if div.op_type != "Div" or div.input[1] not in values:
            continue
        if not np.allclose(np.asarray(values[div.input[1]]).reshape(-1), 6.0):
            continue
        mul = producers.get(div.input[0])
        if mul is None or mul.op_type != "Mul" or len(users.get(mul.output[0], [])) != 1:
            continue
        for x_idx in (0, 1):
            x, clip = mul.input[x_idx], producers.get(mul.input[1 - x_idx])
            if clip is None or clip.op_type != "Clip" or len(clip.input) != 1:
                continue
            bounds = {a.name: a.f for a in clip.attribute}
            if bounds != {"min": 0.0, "max": 6.0}:
                continue
            add = producers.get(clip.input[0])
            if add is None or add.op_type != "Add":
                continue
            other, shift = _scalar_operand(add, values)
            if other != x or shift != 3.0:
                continue
            if len(users.get(clip.output[0], [])) != 1 or len(users.get(add.output[0], [])) != 1:
                continue
            # The Div becomes the HardSwish (it keeps the output name); the rest goes unused.
            div.op_type = "HardSwish"
            del div.input[:]
            div.input.append(x)
            fused += 1
            break
    _drop_unused(model)
    return fused


def fold_affine_into_conv(model):
    """Folds BatchNormalization / per-channel Mul and Add that follow a convolution into it.

    Returns the number of folded nodes."""
    folded = 0
    changed = True
    while changed:
        changed = False
        values = constant_values(model)
        producers = {out: node for node in model.graph.node for out in node.output}
        users = _consumers(model)
        for node in model.graph.node:
            if node.op_type not in ("BatchNormalization", "Mul", "Add"):
                continue
            conv = None
            for name in node.input:
                p = producers.get(name)
                if p is not None and p.op_type == "Conv":
                    conv = p
            if conv is None or len(users.get(conv.output[0], [])) != 1:
                continue
            if conv.input[1] not in values or (len(conv.input) > 2 and conv.input[2] not in values):
                continue
            weight = np.asarray(values[conv.input[1]], dtype=np.float32)
            out_ch = weight.shape[0]
            bias = (np.asarray(values[conv.input[2]], dtype=np.float32) if len(conv.input) > 2
                    else np.zeros(out_ch, np.float32))
            if node.op_type == "BatchNormalization":
                if node.input[0] != conv.output[0] or len(node.output) != 1 or \
                        any(n not in values for n in node.input[1:5]):
                    continue
                gamma, beta, mean, var = (np.asarray(values[n], np.float32).reshape(-1)
                                          for n in node.input[1:5])
                eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
                scale = gamma / np.sqrt(var + eps)
                shift = beta - mean * scale
            else:
                x, per_channel = _channel_operand(node, values, out_ch)
                if x != conv.output[0]:
                    continue
                scale = per_channel if node.op_type == "Mul" else np.ones(out_ch, np.float32)
                shift = per_channel if node.op_type == "Add" else np.zeros(out_ch, np.float32)
            new_w, new_b = conv.input[1] + f"_fold{folded}", conv.output[0] + f"_bias{folded}"
            _add_constant(model, new_w, weight * scale.reshape(-1, 1, 1, 1))
            _add_constant(model, new_b, bias * scale + shift)
            del conv.input[1:]
            conv.input.extend([new_w, new_b])
            # The convolution takes over the folded node's output name.
            old_out = conv.output[0]
            conv.output[0] = node.output[0]
            node.output[0] = old_out + "_unused"
            folded += 1
            changed = True
            break
    _drop_unused(model)
    return folded


def fold_scalar_affine_into_next_conv(model):
    """Folds y = s*x + b (scalar constants; Mul then Add) into the unpadded convolutions that read
    y. Returns the number of folded Mul/Add pairs."""
    folded = 0
    changed = True
    while changed:
        changed = False
        values = constant_values(model)
        producers = {out: node for node in model.graph.node for out in node.output}
        users = _consumers(model)
        for add in model.graph.node:
            if add.op_type != "Add":
                continue
            mid, shift = _scalar_operand(add, values)
            mul = producers.get(mid) if mid is not None else None
            if mul is None or mul.op_type != "Mul" or len(users.get(mul.output[0], [])) != 1:
                continue
            x, scale = _scalar_operand(mul, values)
            if x is None:
                continue
            readers = users.get(add.output[0], [])
            if not readers or any(
                    r is None or r.op_type != "Conv" or r.input[0] != add.output[0]
                    or r.input[1] not in values
                    or (len(r.input) > 2 and r.input[2] not in values)
                    or any(v != 0 for a in r.attribute if a.name == "pads" for v in a.ints)
                    or any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET", b"VALID")
                           for a in r.attribute)
                    for r in readers):
                continue
            for r in readers:
                weight = np.asarray(values[r.input[1]], dtype=np.float32)
                bias = (np.asarray(values[r.input[2]], dtype=np.float32) if len(r.input) > 2
                        else np.zeros(weight.shape[0], np.float32))
                new_w, new_b = r.input[1] + f"_pre{folded}", r.output[0] + f"_prebias{folded}"
                _add_constant(model, new_w, weight * scale)
                _add_constant(model, new_b, bias + shift * weight.reshape(weight.shape[0], -1).sum(1))
                del r.input[:]
                r.input.extend([x, new_w, new_b])
            folded += 1
            changed = True
            break
    _drop_unused(model)
    return folded


def speed_rewrites(model):
    """The exact rewrites that make OpenCV 4.6 run the graph faster; returns their counts."""
    return {"hardswish_fused": fuse_hardswish(model),
            "affine_folded_into_conv": fold_affine_into_conv(model),
            "scalar_affine_folded_into_next_conv": fold_scalar_affine_into_next_conv(model)}


SE_POOL_PREFIX = "se_pool_"


def name_global_pools(model):
    """Names every GlobalAveragePool node and its output se_pool_<k> (k in graph order), so the
    engine can ask OpenCV for them (layer "onnx_node!se_pool_<k>"). Returns the count."""
    renames = {}
    for node in model.graph.node:
        if node.op_type == "GlobalAveragePool":
            name = f"{SE_POOL_PREFIX}{len(renames)}"
            renames[node.output[0]] = name
            node.name = name
            node.output[0] = name
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    return len(renames)


def region_detector(model):
    """The detector for proposal regions: each squeeze-and-excitation block's global average
    (se_pool_<k>) becomes an input, so a crop is weighted with the statistics of the whole image
    (computed by the coarse pass) instead of its own -- on a crop alone the SE blocks see
    different averages and the network finds far less text (docs/benchmarks.md)."""
    pools = [n for n in model.graph.node if n.op_type == "GlobalAveragePool"]
    if not pools or any(not n.output[0].startswith(SE_POOL_PREFIX) for n in pools):
        raise ValueError("run name_global_pools first")
    users = _consumers(model)
    values = constant_values(model)
    for node in pools:
        readers = users.get(node.output[0], [])
        if not readers or readers[0] is None or readers[0].op_type != "Conv":
            raise ValueError(f"{node.output[0]} does not feed a convolution")
        channels = np.asarray(values[readers[0].input[1]]).shape[1]
        model.graph.node.remove(node)
        model.graph.input.append(helper.make_tensor_value_info(
            node.output[0], onnx.TensorProto.FLOAT, [1, channels, 1, 1]))
    _drop_unused(model)
    return len(pools)


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


def prepare_detector(src, dst, speed=True, region_dst=None):
    model = onnx.load(src)
    clips = clip_inputs_to_attributes(model)
    set_static_input(model, DET_SHAPE)
    speed = speed_rewrites(model) if speed else {}
    pools = name_global_pools(model)
    # No onnx.checker here: the attribute form of Clip is what OpenCV reads, and the checker
    # (rightly, for opset 11) rejects it. The engine's tests load and run the result instead.
    onnx.save(model, dst)
    if region_dst is not None:
        region_detector(model)
        onnx.save(model, region_dst)
    return {"clip_rewritten": clips, "input_shape": list(DET_SHAPE), "se_pools": pools, **speed}


def prepare_recognizer(src, dst, width, speed=True):
    if width % 8:
        raise ValueError("recogniser width must be a multiple of 8")
    model = onnx.load(src)
    clips = clip_inputs_to_attributes(model)
    set_static_input(model, (1, 3, REC_HEIGHT, width))
    speed = speed_rewrites(model) if speed else {}
    tiled = tile_sequence_constants(model, width // 8)
    if tiled == 0:
        raise ValueError("no layer-norm/linear constants found: unexpected recogniser graph")
    # No onnx.checker here: the attribute form of Clip is what OpenCV reads, and the checker
    # (rightly, for opset 11) rejects it. The engine's tests load and run the result instead.
    onnx.save(model, dst)
    return {"clip_rewritten": clips, "constants_tiled": tiled,
            "input_shape": [1, 3, REC_HEIGHT, width], **speed}


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

    region_tmp = os.path.join(out_dir, "plate_det_region.onnx.tmp")
    jobs = [("plate_det.onnx", lambda d: prepare_detector(os.path.join(src_dir, DET_SOURCE), d,
                                                          region_dst=region_tmp)),
            ("plate_det_region.onnx", lambda d: {"from": "plate_det.onnx"})]
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
