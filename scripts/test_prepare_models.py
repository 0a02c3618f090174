#!/usr/bin/python3
"""Tests for prepare_models.py: each graph rewrite on a small hand-built graph, and the installed
models against the checksums recorded when they were prepared."""
import hashlib
import json
import os
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_models as pm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def const(name, array):
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.asarray(array, np.float32), name))


class RewriteTest(unittest.TestCase):
    def clip_model(self):
        nodes = [const("lo", 0.0), const("hi", 6.0), helper.make_node("Clip", ["x", "lo", "hi"], ["y"])]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])

    def test_clip_bounds_become_attributes(self):
        model = self.clip_model()
        self.assertEqual(pm.clip_inputs_to_attributes(model), 1)
        clip = [n for n in model.graph.node if n.op_type == "Clip"][0]
        self.assertEqual(list(clip.input), ["x"])
        attrs = {a.name: a.f for a in clip.attribute}
        self.assertEqual(attrs, {"min": 0.0, "max": 6.0})

    def test_clip_with_non_constant_bound_is_refused(self):
        graph = helper.make_graph(
            [helper.make_node("Clip", ["x", "lo"], ["y"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
             helper.make_tensor_value_info("lo", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        with self.assertRaises(ValueError):
            pm.clip_inputs_to_attributes(helper.make_model(graph))

    def test_static_input(self):
        model = self.clip_model()
        pm.set_static_input(model, (1, 3, 48, 160))
        dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        self.assertEqual(dims, [1, 3, 48, 160])
        with self.assertRaises(ValueError):
            pm.set_static_input(model, (1, 4, 48, 160))  # channel dim already fixed at 3
        with self.assertRaises(ValueError):
            pm.set_static_input(model, (1, 3))

    def test_sequence_constants_are_tiled(self):
        nodes = [const("layer_norm_1.w_0", [1.0, 2.0, 3.0]),
                 helper.make_node("Mul", ["x", "layer_norm_1.w_0"], ["y"]),
                 const("other", [5.0, 6.0, 7.0]),
                 helper.make_node("Add", ["y", "other"], ["z"])]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3])],
            [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
        model = helper.make_model(graph)
        self.assertEqual(pm.tile_sequence_constants(model, 4), 1)
        arrays = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                  for n in model.graph.node if n.op_type == "Constant"}
        self.assertEqual(arrays["layer_norm_1.w_0"].shape, (1, 4, 3))
        np.testing.assert_array_equal(arrays["layer_norm_1.w_0"][0, 2], [1.0, 2.0, 3.0])
        self.assertEqual(arrays["other"].shape, (3,))  # not a layer-norm/linear constant

    def test_keys_gain_the_space_class(self):
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "k.txt"), os.path.join(d, "out.txt")
            with open(src, "w", encoding="utf-8") as f:
                f.write("a\nb\n")
            self.assertEqual(pm.prepare_keys(src, dst)["classes"], 4)
            with open(dst, encoding="utf-8") as f:
                self.assertEqual(f.read().split("\n")[:3], ["a", "b", " "])

    def test_missing_input_fails_cleanly(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(pm.main(["prepare_models.py", d, os.path.join(d, "out")]), 1)


class InstalledModelsTest(unittest.TestCase):
    """The models scripts/install.sh prepared are the ones its pins describe."""

    def test_manifest_matches_files_and_pins(self):
        models = os.environ.get("PORTCULLIS_MODEL_DIR", os.path.join(ROOT, "models"))
        with open(os.path.join(models, "MANIFEST.json")) as f:
            manifest = json.load(f)
        for name, digest in manifest["outputs"].items():
            with open(os.path.join(models, name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, name)
        self.assertEqual(manifest["inputs"]["ch_PP-OCRv4_det_infer.onnx"],
                         "30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff")
        self.assertEqual(manifest["inputs"]["ch_PP-OCRv4_rec_infer.onnx"],
                         "06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0")
        self.assertEqual(set(manifest["outputs"]),
                         {"plate_det.onnx", "plate_rec_w160.onnx", "plate_rec_w320.onnx",
                          "rec_keys.txt"})


if __name__ == "__main__":
    unittest.main(verbosity=1)
