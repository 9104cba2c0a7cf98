"""Convert dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The source file ships in the PyPI package ``face_recognition_models`` (CC0). It is read here in
pure Python/numpy, without dlib:

* dlib writes a network with ``serialize(net, out)``. Each wrapper (``add_loss_layer``,
  ``add_layer``, ``add_tag_layer``, ``add_skip_layer``) writes its version number and then its
  subnetwork *before* its own layer, so the file starts with a run of version numbers
  (outermost first) and then holds the layer details innermost first: the input layer, the first
  convolution, ... the final ``fc_no_bias``. Each ``add_layer`` follows its layer with three bools
  and two or three (empty) state tensors.
* Integers are dlib's variable-length form: one byte ``size | 0x80 if negative`` then ``size``
  little-endian bytes. Floats and doubles are ``mantissa * 2**exponent`` as two such integers.
  Strings are a length then bytes. Tensors are ``version, n, k, nr, nc`` then raw little-endian
  float32. Bools are the characters ``'0'``/``'1'``.

The topology is not in the file (it is a C++ type); it is written out below (``_ITEMS``) exactly
as dlib's ``dnn_face_recognition_ex.cpp`` defines ``anet_type``, and the version run at the top of
the file is checked against it, so a different network fails loudly instead of converting wrong.

Network facts the forward pass depends on: batch-norm is already folded into per-channel
``affine`` layers; convolutions and pools with stride 2 have padding 0 (stride 1: kernel // 2);
``add_prev`` adds tensors of different shapes by zero-padding both to the larger shape at the end
of each axis; the input is RGB minus the per-channel mean stored in the input layer, divided by
256; 150x150 chips; 128-d output (the ``fc_no_bias`` output, not normalised).

``reference_forward`` runs the parsed network in numpy (layer by layer, as dlib does) for parity
tests. ``to_onnx`` emits the same network with each affine folded into the preceding
convolution; the bytes are deterministic, so the sha256 is pinned in ``pins.json``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from liveness.errors import ModelError, ModelMissingError
from liveness.models.registry import ModelEntry, atomic_write_bytes, pinned_sha256, sha256_file

if TYPE_CHECKING:
    from liveness.models.build import BuildOptions

__all__ = [
    "CHIP_SIZE",
    "DlibResNet",
    "MODEL_NAME",
    "build",
    "find_source",
    "parse",
    "reference_forward",
    "to_onnx",
]

MODEL_NAME = "face_embedder"
ONNX_FILE = "face_embedder.onnx"
SOURCE_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SOURCE_PACKAGE = "face_recognition_models"
CHIP_SIZE = 150
INPUT_SCALE = 1.0 / 256.0
CONVERTER_VERSION = "1"
_OPSET = 17
_MAX_TENSOR = 1 << 24  # no layer of this network has more than 16M values


# --------------------------------------------------------------------------------------------
# topology


@dataclass(frozen=True, slots=True)
class _Item:
    kind: str  # input, con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    arg: int = 0  # tag/skip/add_prev id


def _block() -> list[_Item]:
    # block = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,s,s, SUBNET>>>>>, innermost first
    return [_Item("con"), _Item("affine"), _Item("relu"), _Item("con"), _Item("affine")]


def _ares() -> list[_Item]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [_Item("tag", 1), *_block(), _Item("add_prev", 1), _Item("relu")]


def _ares_down() -> list[_Item]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        _Item("tag", 1),
        *_block(),
        _Item("tag", 2),
        _Item("skip", 1),
        _Item("avg_pool"),
        _Item("add_prev", 2),
        _Item("relu"),
    ]


def _topology() -> list[_Item]:
    items = [_Item("input"), _Item("con"), _Item("affine"), _Item("relu"), _Item("max_pool")]
    items += _ares() * 3  # alevel4: 32 filters
    items += _ares_down() + _ares() * 3  # alevel3: 64
    items += _ares_down() + _ares() * 2  # alevel2: 128
    items += _ares_down() + _ares() * 2  # alevel1: 256
    items += _ares_down()  # alevel0: 256
    items += [_Item("avg_pool"), _Item("fc")]  # avg_pool_everything, fc_no_bias<128>
    return items


_ITEMS = _topology()


# --------------------------------------------------------------------------------------------
# parsed network


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One computational layer of the parsed network (innermost first)."""

    kind: str
    weights: np.ndarray | None = None  # con: (O, I, kh, kw); fc: (in, out); affine: gamma (C,)
    bias: np.ndarray | None = None  # con: (O,); affine: beta (C,)
    window: tuple[int, int] = (0, 0)  # pools: 0 means the whole input
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    tag: int = 0  # add_prev: which tag to add


@dataclass(frozen=True, slots=True, kw_only=True)
class DlibResNet:
    """The network read from the .dat file: layers in forward order, the topology and metadata."""

    mean_rgb: tuple[float, float, float]
    chip_size: int
    layers: tuple[Layer, ...]
    items: tuple[_Item, ...] = field(repr=False)
    loss: str = ""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _fail(self, what: str) -> ModelError:
        return ModelError(
            f"dlib model file is not a valid {SOURCE_FILE}: {what} at byte {self.pos}",
            hint=f"Reinstall `{SOURCE_PACKAGE}` (pip install --force-reinstall {SOURCE_PACKAGE}).",
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self._fail("unexpected end of file")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_int(self) -> int:
        head = self.take(1)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise self._fail(f"bad integer header 0x{head:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if head & 0x80 else value

    def read_uint(self, what: str, limit: int = _MAX_TENSOR) -> int:
        v = self.read_int()
        if v < 0 or v > limit:
            raise self._fail(f"{what} out of range ({v})")
        return v

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        if not -1100 < exponent < 1100:  # dlib's markers for inf/nan sit at the int16 limits
            raise self._fail(f"non-finite float (exponent {exponent})")
        return float(np.ldexp(float(mantissa), exponent))

    def read_bool(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            raise self._fail(f"bad bool {c!r}")
        return c == b"1"

    def read_str(self, limit: int = 256) -> str:
        n = self.read_uint("string length", limit)
        try:
            return self.take(n).decode("ascii")
        except UnicodeDecodeError:
            raise self._fail("non-ASCII name") from None

    def expect(self, *names: str) -> str:
        got = self.read_str()
        if got not in names:
            raise self._fail(f"expected {' or '.join(names)}, found {got!r}")
        return got

    def tensor(self) -> np.ndarray:
        version = self.read_int()
        if version != 2:
            raise self._fail(f"unsupported tensor version {version}")
        shape = tuple(self.read_uint("tensor dimension") for _ in range(4))
        count = int(np.prod(shape))
        if count > _MAX_TENSOR:
            raise self._fail(f"tensor too large {shape}")
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if self.read_int() != 1:
            raise self._fail("unsupported alias_tensor version")
        return tuple(self.read_uint("alias dimension") for _ in range(4))  # type: ignore[return-value]


def _arr(a: np.ndarray | None) -> np.ndarray:
    if a is None:
        raise ModelError("internal: a parsed layer lacks its parameters")
    return a


def _pad_for(stride: int, window: int) -> int:
    return 0 if stride != 1 else window // 2


def _read_con(r: _Reader) -> Layer:
    r.expect("con_4", "con_5")
    params = r.tensor().reshape(-1)
    n_filters = r.read_uint("filters")
    nr, nc = r.read_uint("rows"), r.read_uint("cols")
    sy, sx = r.read_uint("stride"), r.read_uint("stride")
    py, px = r.read_uint("padding"), r.read_uint("padding")
    fshape = r.alias()
    bshape = r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.read_float()
    o, i, kh, kw = fshape
    if (o, kh, kw) != (n_filters, nr, nc) or bshape != (1, n_filters, 1, 1):
        raise r._fail(f"inconsistent convolution shapes {fshape} {bshape}")
    if params.size != o * i * kh * kw + o:
        raise r._fail("convolution parameter count does not match its shape")
    if (py, px) != (_pad_for(sy, nr), _pad_for(sx, nc)):
        raise r._fail(f"unexpected convolution padding {(py, px)}")
    w = params[: o * i * kh * kw].reshape(o, i, kh, kw)
    b = params[o * i * kh * kw :]
    return Layer(kind="con", weights=w, bias=b, stride=(sy, sx), padding=(py, px))


def _read_affine(r: _Reader) -> Layer:
    r.expect("affine_")
    params = r.tensor().reshape(-1)
    g = r.alias()
    b = r.alias()
    mode = r.read_int()
    if mode != 0 or g != b or g[0] != 1 or g[2:] != (1, 1):  # 0 = CONV_MODE: per channel
        raise r._fail(f"unexpected affine layer (mode {mode}, shape {g})")
    c = g[1]
    if params.size != 2 * c:
        raise r._fail("affine parameter count does not match its shape")
    return Layer(kind="affine", weights=params[:c].copy(), bias=params[c:].copy())


def _read_pool(r: _Reader, name: str) -> Layer:
    r.expect(name)
    nr, nc = r.read_uint("rows"), r.read_uint("cols")
    sy, sx = r.read_uint("stride"), r.read_uint("stride")
    py, px = r.read_uint("padding"), r.read_uint("padding")
    kind = name.rsplit("_", 1)[0]
    return Layer(kind=kind, window=(nr, nc), stride=(sy, sx), padding=(py, px))


def _read_fc(r: _Reader) -> Layer:
    r.expect("fc_2")
    n_out = r.read_uint("outputs")
    n_in = r.read_uint("inputs")
    params = r.tensor().reshape(-1)
    wshape = r.alias()
    r.alias()  # biases (unused: fc_no_bias)
    bias_mode = r.read_int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
    for _ in range(4):
        r.read_float()
    if bias_mode != 1 or wshape[:2] != (n_in, n_out) or params.size != n_in * n_out:
        raise r._fail(f"unexpected fc layer (bias mode {bias_mode}, shape {wshape})")
    return Layer(kind="fc", weights=params.reshape(n_in, n_out).copy())


def _read_add_layer_tail(r: _Reader, version: int) -> None:
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, output disabled
        r.read_bool()
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    if version == 3:  # innermost add_layer: grad_final, sample_expansion_factor
        r.tensor()
        r.read_int()
    elif version == 2:
        r.tensor()  # params_grad


def _expected_versions(items: list[_Item]) -> list[int]:
    out = []
    for i, it in enumerate(items):
        if it.kind == "input":
            continue
        if it.kind in ("tag", "skip"):
            out.append(1)
        else:
            out.append(3 if items[i - 1].kind == "input" else 2)
    return out[::-1]  # written outermost first


def parse(data: bytes) -> DlibResNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat`` (raises ModelError)."""
    r = _Reader(data)
    if r.read_int() != 1:
        raise r._fail("unexpected add_loss_layer version")
    loss = r.expect("loss_metric_2", "loss_metric_")
    r.read_float()  # margin
    r.read_float()  # distance threshold
    expected = _expected_versions(_ITEMS)
    got = [r.read_int() for _ in expected]
    if got != expected:
        raise r._fail("the layer structure is not dlib's face recognition ResNet v1")
    r.expect("input_rgb_image_sized")
    mean = (r.read_float(), r.read_float(), r.read_float())
    nr, nc = r.read_uint("rows"), r.read_uint("cols")
    if (nr, nc) != (CHIP_SIZE, CHIP_SIZE):
        raise r._fail(f"unexpected input size {nr}x{nc}")
    layers: list[Layer] = []
    add_versions = [v for v in expected if v != 1][::-1]  # innermost first
    computational = [it for it in _ITEMS if it.kind not in ("input", "tag", "skip")]
    for it, version in zip(computational, add_versions, strict=True):
        if it.kind == "con":
            layer = _read_con(r)
        elif it.kind == "affine":
            layer = _read_affine(r)
        elif it.kind == "relu":
            r.expect("relu_")
            layer = Layer(kind="relu")
        elif it.kind in ("max_pool", "avg_pool"):
            layer = _read_pool(r, f"{it.kind}_2")
        elif it.kind == "add_prev":
            r.expect("add_prev_")
            layer = Layer(kind="add_prev", tag=it.arg)
        else:
            layer = _read_fc(r)
        _read_add_layer_tail(r, version)
        layers.append(layer)
    if r.pos != len(data):
        raise r._fail(f"{len(data) - r.pos} trailing bytes")
    _check_channels(layers, r)
    return DlibResNet(
        mean_rgb=mean, chip_size=nr, layers=tuple(layers), items=tuple(_ITEMS), loss=loss
    )


def _check_channels(layers: list[Layer], r: _Reader) -> None:
    channels = 3
    for layer in layers:
        if layer.kind == "con":
            w = _arr(layer.weights)
            if w.shape[1] != channels:
                raise r._fail("convolution input channels do not chain")
            channels = w.shape[0]
        elif layer.kind == "affine" and _arr(layer.weights).shape[0] != channels:
            raise r._fail("affine channels do not chain")
    fc = layers[-1]
    if fc.weights is None or fc.weights.shape[0] != channels:
        raise r._fail("fc input size does not match the last convolution")


# --------------------------------------------------------------------------------------------
# reference forward pass (numpy, layer by layer like dlib)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    if c < 128:  # im2col in one tensordot: fastest for few channels
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        win = win[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, kh, kw)
        y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
    else:  # one matmul per kernel tap: fastest for many channels on small maps
        ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
        xh = x.transpose(0, 2, 3, 1)
        y = np.zeros((n, ho, wo, o), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                tap = xh[
                    :,
                    i : i + (ho - 1) * stride + 1 : stride,
                    j : j + (wo - 1) * stride + 1 : stride,
                ]
                y += np.ascontiguousarray(tap) @ w[:, :, i, j].T
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) + b[None, :, None, None]


def _pool(x: np.ndarray, layer: Layer, op: str) -> np.ndarray:
    kh, kw = layer.window
    if kh == 0:  # avg_pool_everything
        return x.mean(axis=(2, 3), keepdims=True)
    if layer.padding != (0, 0):
        raise ModelError("reference pooling supports padding 0 only")
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, :: layer.stride[0], :: layer.stride[1]]
    return win.max(axis=(4, 5)) if op == "max" else win.mean(axis=(4, 5))


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape, dtype=np.result_type(a, b))
    out[tuple(slice(0, s) for s in a.shape)] += a
    out[tuple(slice(0, s) for s in b.shape)] += b
    return out


def reference_forward(net: DlibResNet, x: np.ndarray) -> np.ndarray:
    """Run the parsed network on normalised input (N, 3, 150, 150) -> (N, 128), in numpy.

    Follows dlib's own layer order (convolution, then affine), with tags, skips and the
    zero-padding residual add, so it checks the ONNX graph's folding and wiring independently.
    """
    layers = iter(net.layers)
    tags: dict[int, np.ndarray] = {}
    dtype = x.dtype
    for it in net.items:
        if it.kind == "input":
            continue
        if it.kind == "tag":
            tags[it.arg] = x
            continue
        if it.kind == "skip":
            x = tags[it.arg]
            continue
        layer = next(layers)
        if layer.kind == "con":
            w, b = _arr(layer.weights), _arr(layer.bias)
            x = _conv(x, w.astype(dtype), b.astype(dtype), layer.stride[0], layer.padding[0])
        elif layer.kind == "affine":
            g, b = _arr(layer.weights), _arr(layer.bias)
            x = x * g.astype(dtype)[None, :, None, None] + b.astype(dtype)[None, :, None, None]
        elif layer.kind == "relu":
            x = np.maximum(x, 0)
        elif layer.kind == "max_pool":
            x = _pool(x, layer, "max")
        elif layer.kind == "avg_pool":
            x = _pool(x, layer, "avg")
        elif layer.kind == "add_prev":
            x = _add_padded(x, tags[layer.tag])
        elif layer.kind == "fc":
            x = x.reshape(x.shape[0], -1) @ _arr(layer.weights).astype(dtype)
    return x


# --------------------------------------------------------------------------------------------
# ONNX export


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def to_onnx(net: DlibResNet) -> bytes:
    """The network as a serialised ONNX model (deterministic bytes).

    Input ``input``: float32 (N, 3, 150, 150), RGB already normalised; output ``embedding``:
    float32 (N, 128). Each affine layer is folded into the convolution before it.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(prefix: str, arr: np.ndarray) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    # symbolic shape tracking: (channels, height, width) of each value
    cur = "input"
    shape: tuple[int, ...] = (3, net.chip_size, net.chip_size)
    shapes: dict[str, tuple[int, ...]] = {cur: shape}
    tags: dict[int, str] = {}
    layers = list(net.layers)
    li = 0
    items = [it for it in net.items if it.kind != "input"]
    k = 0
    while k < len(items):
        it = items[k]
        if it.kind == "tag":
            tags[it.arg] = cur
            k += 1
            continue
        if it.kind == "skip":
            cur = tags[it.arg]
            k += 1
            continue
        layer = layers[li]
        li += 1
        k += 1
        c, h, w = shapes[cur]
        out = name(layer.kind)
        if layer.kind == "con":
            wt = _arr(layer.weights).astype(np.float64)
            bs = _arr(layer.bias).astype(np.float64)
            nxt = layers[li] if li < len(layers) else None
            if nxt is not None and nxt.kind == "affine":  # fold: g*(w*x+b)+beta
                g = _arr(nxt.weights).astype(np.float64)
                wt = wt * g[:, None, None, None]
                bs = bs * g + _arr(nxt.bias).astype(np.float64)
                li += 1
                k += 1
            sy, sx = layer.stride
            py, px = layer.padding
            kh, kw = wt.shape[2:]
            nodes.append(
                helper.make_node(
                    "Conv",
                    [cur, const("w", wt.astype(np.float32)), const("b", bs.astype(np.float32))],
                    [out],
                    kernel_shape=[kh, kw],
                    strides=[sy, sx],
                    pads=[py, px, py, px],
                )
            )
            shape = (wt.shape[0], _out_size(h, kh, sy, py), _out_size(w, kw, sx, px))
        elif layer.kind == "affine":  # not after a convolution (does not occur in this net)
            mul = name("mul")
            gamma = _arr(layer.weights).reshape(1, -1, 1, 1)
            beta = _arr(layer.bias).reshape(1, -1, 1, 1)
            nodes.append(helper.make_node("Mul", [cur, const("g", gamma)], [mul]))
            nodes.append(helper.make_node("Add", [mul, const("beta", beta)], [out]))
            shape = (c, h, w)
        elif layer.kind == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out]))
            shape = (c, h, w)
        elif layer.kind in ("max_pool", "avg_pool"):
            kh, kw = layer.window
            if kh == 0:
                nodes.append(helper.make_node("GlobalAveragePool", [cur], [out]))
                shape = (c, 1, 1)
            else:
                sy, sx = layer.stride
                py, px = layer.padding
                op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
                nodes.append(
                    helper.make_node(
                        op,
                        [cur],
                        [out],
                        kernel_shape=[kh, kw],
                        strides=[sy, sx],
                        pads=[py, px, py, px],
                    )
                )
                shape = (c, _out_size(h, kh, sy, py), _out_size(w, kw, sx, px))
        elif layer.kind == "add_prev":
            other = tags[layer.tag]
            target = tuple(max(p, q) for p, q in zip(shapes[cur], shapes[other], strict=True))
            operands = []
            for v in (cur, other):
                vs = shapes[v]
                if vs != target:  # zero-pad at the end of each axis, as dlib's tt::add does
                    pads = [0, 0, 0, 0, 0, target[0] - vs[0], target[1] - vs[1], target[2] - vs[2]]
                    padded = name("pad")
                    pad_const = const("pads", np.array(pads, dtype=np.int64))
                    nodes.append(helper.make_node("Pad", [v, pad_const], [padded]))
                    shapes[padded] = target
                    v = padded
                operands.append(v)
            nodes.append(helper.make_node("Add", operands, [out]))
            shape = target
        elif layer.kind == "fc":
            fc = _arr(layer.weights)
            flat = name("flat")
            nodes.append(helper.make_node("Flatten", [cur], [flat], axis=1))
            nodes.append(helper.make_node("MatMul", [flat, const("fc", fc)], [out]))
            shape = (fc.shape[1], 1, 1)
        else:
            raise ModelError(f"unsupported layer kind {layer.kind!r}")
        shapes[out] = shape
        cur = out
    nodes.append(helper.make_node("Identity", [cur], ["embedding"]))
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 150, 150])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="liveness.models.dlib_resnet",
        producer_version=CONVERTER_VERSION,
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


# --------------------------------------------------------------------------------------------
# build


def find_source() -> Path:
    """Path of the .dat file inside the installed ``face_recognition_models`` package."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelMissingError(
            f"the package {SOURCE_PACKAGE!r} is not installed",
            hint=f"pip install {SOURCE_PACKAGE} (it ships {SOURCE_FILE}, CC0).",
        )
    path = Path(spec.origin).parent / "models" / SOURCE_FILE
    if not path.is_file():
        raise ModelMissingError(
            f"{SOURCE_FILE} not found in {path.parent}",
            hint=f"pip install --force-reinstall {SOURCE_PACKAGE}",
        )
    return path


def _source_version() -> str:
    try:
        return importlib.metadata.version(SOURCE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def convert(source: Path) -> tuple[bytes, DlibResNet]:
    """Read a .dat file and return (ONNX bytes, parsed network)."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelMissingError(f"cannot read {source}: {exc}") from None
    net = parse(data)
    return to_onnx(net), net


def _entry(path: Path, source: Path, mean: tuple[float, ...], digest: str) -> ModelEntry:
    return ModelEntry(
        name=MODEL_NAME,
        file=ONNX_FILE,
        sha256=digest,
        version=f"dlib_face_recognition_resnet_model_v1 ({SOURCE_PACKAGE} {_source_version()})",
        input_size=(3, CHIP_SIZE, CHIP_SIZE),
        normalisation="RGB, (x - mean_rgb) / 256, NCHW float32",
        source=f"{SOURCE_PACKAGE}/models/{SOURCE_FILE}",
        extra={
            "mean_rgb": [round(m, 6) for m in mean],
            "scale": INPUT_SCALE,
            "output_dim": 128,
            "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "converter": f"liveness.models.dlib_resnet {CONVERTER_VERSION}",
        },
    )


def build(out_dir: Path, opts: BuildOptions) -> list[ModelEntry]:
    """Build ``face_embedder.onnx`` into ``out_dir``.

    Skips the conversion when the file is already there with the sha256 pinned in pins.json
    (unless ``opts.force``); the source is still parsed (0.1 s) so a broken install is noticed.
    """
    source = find_source()
    out = out_dir / ONNX_FILE
    pin = pinned_sha256(MODEL_NAME)
    if not opts.force and pin is not None and out.is_file() and sha256_file(out) == pin:
        net = parse(source.read_bytes())
        return [_entry(out, source, net.mean_rgb, pin)]
    blob, net = convert(source)
    atomic_write_bytes(out, blob)
    return [_entry(out, source, net.mean_rgb, hashlib.sha256(blob).hexdigest())]
