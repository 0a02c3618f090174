#!/usr/bin/python3
"""Does OpenCV 4.6's int8 path (cv::dnn::Net::quantize) make the plate networks faster?

Measures, on one thread, thread-CPU time of one forward pass (minimum of N) of each prepared
model in fp32 and after Net.quantize(calib, CV_32F, CV_32F), calibrated on random input the
script generates (the timing does not depend on the content, and no real model gets as far as an
accuracy question). Where quantising fails, it says which layer has no int8 kernel. Then, to
answer "would int8 be faster if it could run", the same for timing proxies of the detector and
recogniser whose HardSwish/HardSigmoid activations (no int8 kernel in OpenCV 4.6) are swapped
for ReLU/Sigmoid: same convolutions, same shapes, wrong numbers -- a speed probe only, never a
model to read with.

  /usr/bin/python3 bench/plate_int8_probe.py [MODEL_DIR] [--repeat N]

Needs Debian's python3-opencv (4.6) and python3-onnx. docs/plate-speed.md has the results.
"""
import os
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx


def forward_ms(net, blob, repeat):
    best = float("inf")
    out = None
    for _ in range(repeat):
        net.setInput(blob)
        start = time.thread_time()
        out = net.forward()
        best = min(best, time.thread_time() - start)
    return best * 1000, out


def probe(name, path, blob, repeat):
    fp32, out = forward_ms(cv2.dnn.readNetFromONNX(path), blob, repeat)
    start = time.thread_time()
    try:
        quantized = cv2.dnn.readNetFromONNX(path).quantize([blob], cv2.CV_32F, cv2.CV_32F)
        quantize_ms = (time.thread_time() - start) * 1000
        # OpenCV creates the int8 layers at the first forward: a missing kernel fails here.
        int8, out8 = forward_ms(quantized, blob, repeat)
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1].split(" in function")[0]
        print(f"| {name} | {fp32:.0f} | fails: {reason} | – |")
        return
    print(f"| {name} | {fp32:.0f} | {int8:.0f} (max |diff| {np.abs(out8 - out).max():.3g}) "
          f"| {quantize_ms:.0f} |")


def proxy(src, dst):
    model = onnx.load(src)
    for node in model.graph.node:
        if node.op_type == "HardSwish":
            node.op_type = "Relu"
        elif node.op_type == "HardSigmoid":
            node.op_type = "Sigmoid"
            del node.attribute[:]
    onnx.save(model, dst)


def main(argv):
    model_dir = next((a for a in argv[1:] if not a.startswith("--") and not a.isdigit()),
                     os.path.join(os.path.dirname(__file__), "..", "models"))
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 5
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    det_blob = rng.uniform(-2, 2, (1, 3, 544, 960)).astype(np.float32)
    print("| model (one thread) | fp32 ms | int8 ms | quantize ms |")
    print("|---|---|---|---|")
    probe("detector 960x544", os.path.join(model_dir, "plate_det.onnx"), det_blob, repeat)
    for width in (160, 320):
        blob = rng.uniform(-1, 1, (1, 3, 48, width)).astype(np.float32)
        probe(f"recogniser w{width}", os.path.join(model_dir, f"plate_rec_w{width}.onnx"), blob,
              repeat)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "det_proxy.onnx")
        proxy(os.path.join(model_dir, "plate_det.onnx"), path)
        probe("detector 960x544, timing proxy (ReLU/Sigmoid)", path, det_blob, repeat)
        path = os.path.join(tmp, "rec_proxy.onnx")
        proxy(os.path.join(model_dir, "plate_rec_w320.onnx"), path)
        blob = rng.uniform(-1, 1, (1, 3, 48, 320)).astype(np.float32)
        probe("recogniser w320, timing proxy (ReLU/Sigmoid)", path, blob, repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
