"""Small ONNX models shaped like the MLPerf ones, built deterministically and cached.

The weights are seeded random numbers: the models exercise the same tensor interfaces and
a comparable compute pattern (attention blocks, 3-D convolutions), not the real quality.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pytest_mlperf.backends.reference import cache

OPSET = 17
BUILDER_VERSION = 1  # bump when the graph layout changes so caches are rebuilt


class _Graph:
    """Tiny helper that names nodes and initializers uniquely."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, value: np.ndarray[Any, Any], prefix: str = "c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, shape: tuple[int, ...], scale: float) -> str:
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), "w")

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def one(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        return self.op(op_type, inputs, **attrs)[0]


def _layer_norm(g: _Graph, x: str, hidden: int) -> str:
    scale = g.const(np.ones(hidden, np.float32))
    bias = g.const(np.zeros(hidden, np.float32))
    return g.one("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-5)


def _encoder_layer(
    g: _Graph, x: str, bias: str, reshapes: tuple[str, str], dims: tuple[int, int, int]
) -> str:
    """One encoder layer (attention, then the feed-forward block) over ``x`` [N, S, H];
    ``reshapes``: the shapes that split into heads and merge them; ``dims``: hidden, heads,
    ffn."""
    split_shape, merge_shape = reshapes
    hidden, heads, ffn = dims
    head_dim = hidden // heads
    s = 1.0 / np.sqrt(hidden)
    heads_out = []
    for w in ("q", "k", "v"):
        proj = g.one("MatMul", [x, g.weight((hidden, hidden), s)])
        proj = g.one("Reshape", [proj, split_shape])
        perm = [0, 2, 3, 1] if w == "k" else [0, 2, 1, 3]
        heads_out.append(g.one("Transpose", [proj], perm=perm))
    q, k, v = heads_out
    scores = g.one("MatMul", [q, k])
    scores = g.one("Mul", [scores, g.const(np.array(1.0 / np.sqrt(head_dim), np.float32))])
    probs = g.one("Softmax", [g.one("Add", [scores, bias])], axis=-1)
    ctx = g.one("Transpose", [g.one("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = g.one("Reshape", [ctx, merge_shape])
    attn = g.one("MatMul", [ctx, g.weight((hidden, hidden), s)])
    x = _layer_norm(g, g.one("Add", [x, attn]), hidden)
    h = g.one("Relu", [g.one("MatMul", [x, g.weight((hidden, ffn), s)])])
    h = g.one("MatMul", [h, g.weight((ffn, hidden), 1.0 / np.sqrt(ffn))])
    return _layer_norm(g, g.one("Add", [x, h]), hidden)


def _split_logits(g: _Graph, logits: str) -> None:
    """[N, S, 2] logits → the graph's outputs start_logits and end_logits [N, S]."""
    g.nodes.append(
        helper.make_node(
            "Split",
            [logits, g.const(np.array([1, 1], np.int64))],
            ["start_3d", "end_3d"],
            axis=-1,
        )
    )
    axis = g.const(np.array([-1], np.int64))
    g.nodes.append(helper.make_node("Squeeze", ["start_3d", axis], ["start_logits"]))
    g.nodes.append(helper.make_node("Squeeze", ["end_3d", axis], ["end_logits"]))


def build_bert(spec: Mapping[str, Any]) -> onnx.ModelProto:
    """BERT-shaped encoder: int64 input_ids/input_mask/segment_ids [N, S] → start/end logits."""
    seq, hidden, ffn = int(spec["seq_len"]), int(spec["hidden"]), int(spec["ffn"])
    vocab, layers, heads = int(spec["vocab_size"]), int(spec["layers"]), int(spec["heads"])
    head_dim = hidden // heads
    g = _Graph(int(spec["seed"]))
    s = 1.0 / np.sqrt(hidden)
    tok = g.one("Gather", [g.weight((vocab, hidden), 0.5), "input_ids"])
    seg = g.one("Gather", [g.weight((2, hidden), 0.5), "segment_ids"])
    x = g.one("Add", [g.one("Add", [tok, seg]), g.weight((seq, hidden), 0.5)])
    x = _layer_norm(g, x, hidden)
    # attention bias: (1 - mask) * -10000, shaped [N, 1, 1, S]
    maskf = g.one("Cast", ["input_mask"], to=TensorProto.FLOAT)
    inv = g.one("Sub", [g.const(np.array(1.0, np.float32)), maskf])
    bias = g.one("Mul", [inv, g.const(np.array(-10000.0, np.float32))])
    bias = g.one("Unsqueeze", [bias, g.const(np.array([1, 2], np.int64))])
    split_shape = g.const(np.array([0, seq, heads, head_dim], np.int64))
    merge_shape = g.const(np.array([0, seq, hidden], np.int64))
    for _ in range(layers):
        x = _encoder_layer(g, x, bias, (split_shape, merge_shape), (hidden, heads, ffn))
    logits = g.one("MatMul", [x, g.weight((hidden, 2), s)])
    gain = float(spec.get("span_gain", 0.0))
    if gain:
        # A fixed per-token preference for starting/ending an answer (its own seed, so the
        # encoder weights stay the same): makes the best span decisive, as a trained model's
        # is, instead of a near-tie between random logits.
        table = np.random.default_rng(int(spec["seed"]) + 1).standard_normal((vocab, 2)) * gain
        prior = g.one("Gather", [g.const(table.astype(np.float32), "span_prior"), "input_ids"])
        logits = g.one("Add", [logits, prior])
    _split_logits(g, logits)
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["N", seq])
        for n in ("input_ids", "input_mask", "segment_ids")
    ]
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", seq])
        for n in ("start_logits", "end_logits")
    ]
    graph = helper.make_graph(g.nodes, "bert_reference", inputs, outputs, g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _conv(g: _Graph, x: str, cin: int, cout: int, k: int) -> str:
    w = g.weight((cout, cin, k, k, k), float(np.sqrt(2.0 / (cin * k**3))))
    b = g.const(np.zeros(cout, np.float32))
    pad = k // 2
    return g.one("Conv", [x, w, b], kernel_shape=[k, k, k], pads=[pad] * 6)


def build_unet3d(spec: Mapping[str, Any]) -> onnx.ModelProto:
    """3D U-Net-shaped network: float32 [N, 1, D, H, W] → float32 [N, 3, D, H, W] logits.

    With ``label_gain`` in the spec, a fixed intensity path is added to the class scores.
    """
    d, h, w = (int(v) for v in spec["volume"])
    c = int(spec["channels"])
    g = _Graph(int(spec["seed"]))
    e1 = g.one("Relu", [_conv(g, "input", 1, c, 3)])
    down = g.one("MaxPool", [e1], kernel_shape=[2, 2, 2], strides=[2, 2, 2])
    e2 = g.one("Relu", [_conv(g, down, c, 2 * c, 3)])
    scales = g.const(np.array([1, 1, 2, 2, 2], np.float32))
    up = g.one("Resize", [e2, "", scales], mode="nearest")
    cat = g.one("Concat", [up, e1], axis=1)
    d1 = g.one("Relu", [_conv(g, cat, 3 * c, c, 3)])
    gain = float(spec.get("label_gain", 0.0))
    g.nodes.append(
        helper.make_node(
            "Conv",
            [d1, g.weight((3, c, 1, 1, 1), 1.0 / np.sqrt(c)), g.const(np.zeros(3, np.float32))],
            ["conv_logits" if gain else "output"],
            kernel_shape=[1, 1, 1],
        )
    )
    if gain:
        # A fixed 1x1x1 path from the intensity x to the class scores, gain * (-x, -0.5, x - 2):
        # background below 0.5, kidney from 0.5 to 1.5, tumor above 1.5 (the synthetic organs
        # have intensities 1 and 2), so labels form organ-like regions instead of noise.
        weight = g.const(np.array([-gain, 0.0, gain], np.float32).reshape(3, 1, 1, 1, 1))
        bias = g.const(np.array([0.0, -0.5 * gain, -2.0 * gain], np.float32))
        skip = g.one("Conv", ["input", weight, bias], kernel_shape=[1, 1, 1])
        g.nodes.append(helper.make_node("Add", ["conv_logits", skip], ["output"]))
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, d, h, w])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, d, h, w])]
    graph = helper.make_graph(g.nodes, "unet3d_reference", inputs, outputs, g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


BUILDERS = {"bert": build_bert, "unet3d": build_unet3d}


def model_key(spec: Mapping[str, Any]) -> str:
    """A short hash of the model spec and builder version: the cache key."""
    blob = json.dumps({"v": BUILDER_VERSION, **spec}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def ensure_model(spec: Mapping[str, Any], cache_dir: Path) -> tuple[Path, bool]:
    """Return the cached model file for ``spec``, building it first when absent or damaged.

    The second value says whether the model was built now. The file is written to a
    temporary name and renamed, then sealed with its checksum (see ``cache.py``), so no
    builder or user ever takes a partial file for a model. Call under ``cache.build_lock``.
    """
    kind = str(spec["kind"])
    if kind not in BUILDERS:
        raise ValueError(f"unknown reference model kind {kind!r}; valid: {', '.join(BUILDERS)}")
    path = cache_dir / f"{kind}-{model_key(spec)}.onnx"
    problem = cache.damage(path) if cache_dir.is_dir() else "not built yet"
    if problem is None:
        return path, False
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache.require_usable(path, problem)
    cache.discard(path)
    model = BUILDERS[kind](spec)
    onnx.checker.check_model(model)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    cache.seal(path)
    return path, True
