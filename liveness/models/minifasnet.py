"""MiniFASNet anti-spoofing weights (PyTorch ``.pth``) to ONNX, without torch.

Upstream: minivision-ai/Silent-Face-Anti-Spoofing at b6d5f04 (Apache-2.0),
``resources/anti_spoof_models/``: MiniFASNetV2 (face box scaled 2.7x) and MiniFASNetV1SE
(scaled 4.0x), both 80x80 BGR input with raw 0..255 values, softmax over 3 classes, class 1 = real.

A ``.pth`` is untrusted input: it is a pickle, and unpickling can call any Python callable. This
module never hands it to ``pickle.load`` unchecked. Every pickle in the file is first walked
opcode by opcode with ``pickletools.genops`` (which parses without executing); any opcode outside
a small allowlist, or any global other than the few that rebuild tensors, raises
``UnsafeModelError`` before anything runs. Only then is it unpickled, by an unpickler whose
``find_class`` maps those few names to our own harmless functions (torch is never imported) and
refuses the rest again. Both the legacy format (five pickles then raw storages, which is what the
upstream files use) and the zip format (``archive/data.pkl`` + ``archive/data/<key>``) are read.

The graph is rebuilt node by node with ``onnx.helper`` from the architecture below, checking the
shape of every weight against it, so the bytes written depend only on the weights: the same
``.pth`` always gives the same ONNX file (pinned in ``pins.json``).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liveness.errors import ModelError, ModelIntegrityError, ModelMissingError, UnsafeModelError
from liveness.models.fetch import FetchSource
from liveness.models.registry import ModelEntry, atomic_write_bytes, pinned_sha256, sha256_file

if TYPE_CHECKING:
    import onnx

    from liveness.models.build import BuildOptions

__all__ = [
    "FETCH_SOURCES",
    "SPECS",
    "MiniFASNetSpec",
    "build",
    "convert",
    "read_state_dict",
    "to_onnx",
]

UPSTREAM_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
_RAW = (
    "https://raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing/"
    f"{UPSTREAM_COMMIT}/resources/anti_spoof_models/"
)
ENV_WEIGHTS = "LIVENESS_ANTISPOOF_WEIGHTS"

# Channel plans of the pruned MobileFaceNet variants (upstream `keep_dict`).
_KEEP_1_8M = (
    32, 32, 103, 103, 64, 13, 13, 64, 26, 26, 64, 13, 13, 64, 52, 52, 64, 231, 231, 128,
    154, 154, 128, 52, 52, 128, 26, 26, 128, 52, 52, 128, 26, 26, 128, 26, 26, 128, 308, 308,
    128, 26, 26, 128, 26, 26, 128, 512, 512,
)  # fmt: skip
_KEEP_1_8M_ = (
    32, 32, 103, 103, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 231, 231, 128,
    231, 231, 128, 52, 52, 128, 26, 26, 128, 77, 77, 128, 26, 26, 128, 26, 26, 128, 308, 308,
    128, 26, 26, 128, 26, 26, 128, 512, 512,
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class MiniFASNetSpec:
    """One upstream model: where its weights come from and how its input is cropped."""

    name: str  # model name in our cache
    pth: str  # upstream file name
    pth_sha256: str
    keep: tuple[int, ...]
    se: bool  # squeeze-excitation in the last block of each residual stage (V1SE)
    crop_scale: float
    input_size: int = 80
    embedding: int = 128
    classes: int = 3
    live_class: int = 1


SPECS: dict[str, MiniFASNetSpec] = {
    "antispoof_v2": MiniFASNetSpec(
        name="antispoof_v2",
        pth="2.7_80x80_MiniFASNetV2.pth",
        pth_sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        keep=_KEEP_1_8M_,
        se=False,
        crop_scale=2.7,
    ),
    "antispoof_v1se": MiniFASNetSpec(
        name="antispoof_v1se",
        pth="4_0_0_80x80_MiniFASNetV1SE.pth",
        pth_sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        keep=_KEEP_1_8M,
        se=True,
        crop_scale=4.0,
    ),
}

FETCH_SOURCES: list[FetchSource] = [
    FetchSource(
        name="antispoof",
        url=_RAW + s.pth,
        sha256=s.pth_sha256,
        target=s.pth,
        size=4 << 20,
        note="MiniFASNet weights, Apache-2.0; build with `liveness models build "
        "minifasnet --antispoof-weights DIR`",
    )
    for s in SPECS.values()
]

# --------------------------------------------------------------------------------------------
# Restricted reading of .pth files
# --------------------------------------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_PICKLE_BYTES = 64 << 20
_MAX_FILE_BYTES = 512 << 20

# Opcodes that only build plain data (and GLOBAL / REDUCE / BINPERSID / BUILD, which are safe
# because the only globals that pass are ours). Everything else (INST, OBJ, NEWOBJ, EXT*,
# STACK_GLOBAL, text PERSID, BYTEARRAY8 / buffers, ...) is refused.
_ALLOWED_OPCODES = frozenset(
    {
        "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
        "NONE", "NEWTRUE", "NEWFALSE",
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "BINFLOAT",
        "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
        "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
        "EMPTY_LIST", "LIST", "APPEND", "APPENDS",
        "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
        "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
        "GLOBAL", "REDUCE", "BINPERSID", "BUILD",
    }
)  # fmt: skip

_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: str
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _StateDict(dict[str, Any]):
    """Stands in for ``collections.OrderedDict`` (dicts keep order); absorbs ``_metadata``."""

    def __setstate__(self, state: Any) -> None:
        # torch attaches `_metadata` (per-module versions) with BUILD; we have no use for it.
        pass


def _rebuild_tensor_v2(
    storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise ModelError("tensor record does not point to a storage")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)):
        raise ModelError("tensor record has a malformed size/stride")
    if not all(type(v) is int for v in (offset, *size, *stride)):
        raise ModelError("tensor record has non-integer size/stride/offset")
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    if not isinstance(data, _TensorRef):
        raise ModelError("parameter record does not wrap a tensor")
    return data


def _allowed_globals() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _StateDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }
    for name, dt in _STORAGE_DTYPES.items():
        out[("torch", name)] = _StorageType(dt)
    return out


_GLOBALS = _allowed_globals()


def _scan(data: bytes, where: str, *, allow_globals: bool) -> None:
    """Walk a pickle's opcodes without executing it; refuse anything outside the allowlist."""
    try:
        for op, arg, pos in pickletools.genops(data):
            if op.name not in _ALLOWED_OPCODES:
                raise UnsafeModelError(
                    f"{where}: pickle opcode {op.name} at byte {pos} is not allowed in a "
                    "weights file; refused without unpickling"
                )
            if op.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                if not allow_globals or (module, name) not in _GLOBALS:
                    raise UnsafeModelError(
                        f"{where}: pickle refers to {module}.{name}, which is not a tensor "
                        "type; refused without unpickling"
                    )
    except UnsafeModelError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise ModelError(f"{where}: not a readable pickle: {exc}") from None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, where: str, storages: dict[str, _StorageRef]) -> None:
        super().__init__(io.BytesIO(data))
        self._where = where
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeModelError(
                f"{self._where}: pickle refers to {module}.{name}; refused"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ModelError(f"{self._where}: unknown persistent record {pid!r:.80}")
        stype, key, _location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise ModelError(f"{self._where}: storage views are not supported")
        if not isinstance(stype, _StorageType) or not isinstance(key, str):
            raise ModelError(f"{self._where}: malformed storage record")
        if type(numel) is not int or numel < 0:
            raise ModelError(f"{self._where}: storage {key!r} has an invalid size")
        ref = _StorageRef(key, stype.dtype, numel)
        seen = self._storages.setdefault(key, ref)
        if seen != ref:
            raise ModelError(f"{self._where}: storage {key!r} is declared twice differently")
        return seen


def _unpickle(data: bytes, where: str, storages: dict[str, _StorageRef] | None = None) -> Any:
    _scan(data, where, allow_globals=storages is not None)
    try:
        return _Unpickler(data, where, storages if storages is not None else {}).load()
    except ModelError:
        raise
    except Exception as exc:  # any malformed structure: a clear error, never a crash
        raise ModelError(f"{where}: cannot rebuild the weights: {exc}") from None


def _pickle_spans(buf: bytes, start: int, count: int, where: str) -> Iterator[tuple[int, int]]:
    """Byte spans of ``count`` consecutive pickles starting at ``start`` (parsed, not run)."""
    pos = start
    for _ in range(count):
        end = None
        try:
            for op, _arg, p in pickletools.genops(io.BytesIO(buf[pos : pos + _MAX_PICKLE_BYTES])):
                if op.name == "STOP" and p is not None:
                    end = pos + p + 1
                    break
        except (ValueError, EOFError, UnicodeDecodeError) as exc:
            raise ModelError(f"{where}: not a torch weights file ({exc})") from None
        if end is None:
            raise ModelError(f"{where}: truncated pickle")
        yield pos, end
        pos = end


def _materialise(t: _TensorRef, data: dict[str, np.ndarray], where: str) -> np.ndarray:
    store = data[t.storage.key]
    if any(s < 0 for s in t.size) or any(s < 0 for s in t.stride) or t.offset < 0:
        raise ModelError(f"{where}: negative tensor size, stride or offset")
    numel = math.prod(t.size)
    if numel > store.size or len(t.size) > 8:
        # zero strides could make a huge tensor from a small storage (a memory bomb)
        raise ModelError(f"{where}: tensor is larger than its storage")
    if numel:
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True))
        if last >= store.size:
            raise ModelError(f"{where}: tensor reaches past the end of its storage")
    item = store.itemsize
    view = np.lib.stride_tricks.as_strided(
        store[t.offset :] if numel else store[:0],
        shape=t.size,
        strides=tuple(s * item for s in t.stride),
        writeable=False,
    )
    return np.array(view, dtype=store.dtype.newbyteorder("="), order="C", copy=True)


def _resolve(obj: Any, data: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ModelError(f"{where}: the weights are not a state dict")
    out: dict[str, np.ndarray] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, _TensorRef):
            raise ModelError(f"{where}: state dict entry {k!r:.60} is not a named tensor")
        out[k] = _materialise(v, data, where)
    return out


def _read_legacy(buf: bytes, where: str) -> dict[str, np.ndarray]:
    spans = list(_pickle_spans(buf, 0, 5, where))
    magic = _unpickle(buf[slice(*spans[0])], where)
    if magic != _LEGACY_MAGIC:
        raise ModelError(f"{where}: not a torch weights file (bad magic number)")
    if _unpickle(buf[slice(*spans[1])], where) != _LEGACY_PROTOCOL:
        raise ModelError(f"{where}: unsupported torch legacy protocol")
    sys_info = _unpickle(buf[slice(*spans[2])], where)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelError(f"{where}: only little-endian weight files are supported")
    storages: dict[str, _StorageRef] = {}
    state = _unpickle(buf[slice(*spans[3])], where, storages)
    keys = _unpickle(buf[slice(*spans[4])], where)
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise ModelError(f"{where}: storage list does not match the tensors")
    pos = spans[4][1]
    data: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages[key]
        if pos + 8 > len(buf):
            raise ModelError(f"{where}: truncated storage {key!r}")
        numel = int.from_bytes(buf[pos : pos + 8], "little", signed=True)
        pos += 8
        if numel != ref.numel:
            raise ModelError(f"{where}: storage {key!r} size differs from its record")
        nbytes = numel * np.dtype(ref.dtype).itemsize
        if pos + nbytes > len(buf):
            raise ModelError(f"{where}: truncated storage {key!r}")
        data[key] = np.frombuffer(buf, dtype=ref.dtype, count=numel, offset=pos)
        pos += nbytes
    if pos != len(buf):
        raise ModelError(f"{where}: {len(buf) - pos} unexpected bytes after the last storage")
    return _resolve(state, data, where)


def _read_zip(path: Path, where: str) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkl) != 1:
                raise ModelError(f"{where}: zip has no single <archive>/data.pkl")
            prefix = pkl[0][: -len("data.pkl")]
            if prefix + "byteorder" in names and z.read(prefix + "byteorder") != b"little":
                raise ModelError(f"{where}: only little-endian weight files are supported")
            if z.getinfo(pkl[0]).file_size > _MAX_PICKLE_BYTES:
                raise ModelError(f"{where}: data.pkl is implausibly large")
            storages: dict[str, _StorageRef] = {}
            state = _unpickle(z.read(pkl[0]), where, storages)
            data: dict[str, np.ndarray] = {}
            for key, ref in storages.items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise ModelError(f"{where}: storage {key!r} is missing from the zip")
                nbytes = ref.numel * np.dtype(ref.dtype).itemsize
                if z.getinfo(member).file_size != nbytes:
                    raise ModelError(f"{where}: storage {key!r} has the wrong size")
                data[key] = np.frombuffer(z.read(member), dtype=ref.dtype, count=ref.numel)
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        raise ModelError(f"{where}: unreadable zip weights file: {exc}") from None
    return _resolve(state, data, where)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The named tensors of a PyTorch ``.pth`` state dict, read without torch and without
    running any code from the file (``UnsafeModelError`` if it tries to)."""
    p = Path(path)
    where = str(p)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ModelMissingError(f"weights file not found: {p}") from None
    if size > _MAX_FILE_BYTES:
        raise ModelError(f"{where}: {size} bytes is too large for a MiniFASNet weights file")
    if zipfile.is_zipfile(p):
        return _read_zip(p, where)
    return _read_legacy(p.read_bytes(), where)


# --------------------------------------------------------------------------------------------
# ONNX graph
# --------------------------------------------------------------------------------------------

_OPSET = 17
_IR_VERSION = 8
_BN_EPS = 1e-5  # torch BatchNorm default


class _Graph:
    """Accumulates nodes and initializers; every weight is taken once and shape-checked."""

    def __init__(self, state: dict[str, np.ndarray], where: str) -> None:
        self.state = {k.removeprefix("module."): v for k, v in state.items()}
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.where = where
        self._n = 0

    def weight(self, key: str, shape: tuple[int, ...]) -> str:
        from onnx import numpy_helper

        if key not in self.state:
            raise ModelError(f"{self.where}: weight {key!r} is missing")
        w = self.state[key]
        if tuple(w.shape) != shape:
            raise ModelError(f"{self.where}: weight {key!r} has shape {w.shape}, expected {shape}")
        if not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
            raise ModelError(f"{self.where}: weight {key!r} is not finite floating point")
        self.used.add(key)
        self.inits.append(numpy_helper.from_array(w.astype(np.float32), name=key))
        return key

    def const(self, name: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(arr, name=name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = f"{name}:{op}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{name}.{op}", **attrs))
        return out

    def bn(self, x: str, p: str, c: int) -> str:
        ins = [
            self.weight(f"{p}.{k}", (c,)) for k in ("weight", "bias", "running_mean", "running_var")
        ]
        self.used.add(f"{p}.num_batches_tracked")
        return self.node("BatchNormalization", [x, *ins], p, epsilon=_BN_EPS)

    def conv(self, x: str, p: str, cin: int, cout: int, k: int, s: int, pad: int, g: int) -> str:
        if cin % g or cout % g:
            raise ModelError(f"{self.where}: {p}: channels not divisible by groups")
        w = self.weight(f"{p}.weight", (cout, cin // g, k, k))
        return self.node(
            "Conv", [x, w], p, kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4, group=g
        )

    def conv_block(
        self, x: str, p: str, cin: int, cout: int, *, k: int = 1, s: int = 1, pad: int = 0,
        g: int = 1, prelu: bool = True,
    ) -> str:  # fmt: skip
        y = self.conv(x, f"{p}.conv", cin, cout, k, s, pad, g)
        y = self.bn(y, f"{p}.bn", cout)
        if prelu:
            key = f"{p}.prelu.weight"
            self.weight(key, (cout,))
            slope = self.const(f"{key}:chw", self.state[key].astype(np.float32).reshape(cout, 1, 1))
            y = self.node("PRelu", [y, slope], f"{p}.prelu")
        return y

    def depth_wise(
        self, x: str, p: str, c1: tuple[int, int], c2: tuple[int, int], c3: tuple[int, int],
        *, s: int, residual: bool, se: bool = False,
    ) -> str:  # fmt: skip
        y = self.conv_block(x, f"{p}.conv", c1[0], c1[1])
        y = self.conv_block(y, f"{p}.conv_dw", c2[0], c2[1], k=3, s=s, pad=1, g=c2[0])
        y = self.conv_block(y, f"{p}.project", c3[0], c3[1], prelu=False)
        if not residual:
            return y
        if se:
            y = self.se_module(y, f"{p}.se_module", c3[1], 4)
        return self.node("Add", [x, y], f"{p}.residual")

    def se_module(self, x: str, p: str, c: int, reduction: int) -> str:
        r = c // reduction
        z = self.node("GlobalAveragePool", [x], f"{p}.avg_pool")
        z = self.conv(z, f"{p}.fc1", c, r, 1, 1, 0, 1)
        z = self.bn(z, f"{p}.bn1", r)
        z = self.node("Relu", [z], f"{p}.relu")
        z = self.conv(z, f"{p}.fc2", r, c, 1, 1, 0, 1)
        z = self.bn(z, f"{p}.bn2", c)
        z = self.node("Sigmoid", [z], f"{p}.sigmoid")
        return self.node("Mul", [x, z], f"{p}.scale")

    def residual(self, x: str, p: str, keep: tuple[int, ...], first: int, n: int, se: bool) -> str:
        for i in range(n):
            j = first + 3 * i
            x = self.depth_wise(
                x, f"{p}.model.{i}", (keep[j], keep[j + 1]), (keep[j + 1], keep[j + 2]),
                (keep[j + 2], keep[j + 3]), s=1, residual=True, se=se and i == n - 1,
            )  # fmt: skip
        return x


def to_onnx(state: dict[str, np.ndarray], spec: MiniFASNetSpec, where: str = "") -> onnx.ModelProto:
    """The ONNX graph of one MiniFASNet from its state dict (input ``input`` Nx3x80x80 BGR
    0..255 float32; output ``prob`` Nx3 softmax, class ``spec.live_class`` = real)."""
    import onnx
    from onnx import TensorProto, helper

    where = where or spec.name
    k = spec.keep
    g = _Graph(state, where)
    x = "input"
    x = g.conv_block(x, "conv1", 3, k[0], k=3, s=2, pad=1)
    x = g.conv_block(x, "conv2_dw", k[0], k[1], k=3, s=1, pad=1, g=k[1])
    x = g.depth_wise(x, "conv_23", (k[1], k[2]), (k[2], k[3]), (k[3], k[4]), s=2, residual=False)
    x = g.residual(x, "conv_3", k, 4, 4, spec.se)
    x = g.depth_wise(
        x, "conv_34", (k[16], k[17]), (k[17], k[18]), (k[18], k[19]), s=2, residual=False
    )
    x = g.residual(x, "conv_4", k, 19, 6, spec.se)
    x = g.depth_wise(
        x, "conv_45", (k[37], k[38]), (k[38], k[39]), (k[39], k[40]), s=2, residual=False
    )
    x = g.residual(x, "conv_5", k, 40, 2, spec.se)
    x = g.conv_block(x, "conv_6_sep", k[46], k[47])
    # the last depthwise kernel spans the whole map: (80 + 15) // 16 = 5 (upstream get_kernel)
    kernel = (spec.input_size + 15) // 16
    x = g.conv_block(x, "conv_6_dw", k[47], k[48], k=kernel, g=k[48], prelu=False)
    x = g.node("Flatten", [x], "conv_6_flatten", axis=1)
    wl = g.weight("linear.weight", (spec.embedding, k[48]))
    x = g.node("Gemm", [x, wl], "linear", transB=1)
    x = g.bn(x, "bn", spec.embedding)
    wp = g.weight("prob.weight", (spec.classes, spec.embedding))
    x = g.node("Gemm", [x, wp], "prob", transB=1)
    x = g.node("Softmax", [x], "softmax", axis=1)
    g.nodes.append(helper.make_node("Identity", [x], ["prob"], name="output"))

    unused = sorted(set(g.state) - g.used)
    if unused:
        raise ModelError(f"{where}: weights not used by the {spec.name} graph: {unused[:5]}")

    graph = helper.make_graph(
        g.nodes,
        spec.name,
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["N", 3, spec.input_size, spec.input_size]
            )
        ],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", spec.classes])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="liveness.models.minifasnet",
        producer_version="1",
        doc_string=f"{spec.pth} (Silent-Face-Anti-Spoofing {UPSTREAM_COMMIT[:7]}, Apache-2.0)",
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    return model


def convert(pth: str | os.PathLike[str], spec: MiniFASNetSpec) -> bytes:
    """ONNX bytes for one ``.pth`` file (deterministic: same weights, same bytes)."""
    model = to_onnx(read_state_dict(pth), spec, str(pth))
    return bytes(model.SerializeToString())


def _entry(spec: MiniFASNetSpec, sha: str) -> ModelEntry:
    return ModelEntry(
        name=spec.name,
        file=f"{spec.name}.onnx",
        sha256=sha,
        version=f"minifasnet-{spec.name.removeprefix('antispoof_')}-{UPSTREAM_COMMIT[:7]}",
        input_size=(3, spec.input_size, spec.input_size),
        normalisation="BGR, raw 0..255 (not scaled), NCHW float32",
        source=f"minivision-ai/Silent-Face-Anti-Spoofing@{UPSTREAM_COMMIT[:7]} "
        f"resources/anti_spoof_models/{spec.pth} (sha256 {spec.pth_sha256})",
        extra={
            "crop_scale": spec.crop_scale,
            "live_class": spec.live_class,
            "classes": spec.classes,
            "pth_sha256": spec.pth_sha256,
        },
    )


def _weights_dir(opts: BuildOptions) -> Path:
    if opts.antispoof_weights is not None:
        return Path(opts.antispoof_weights)
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return Path(env)
    raise ModelMissingError(
        "no MiniFASNet weights folder given",
        hint="Pass `liveness models build --antispoof-weights DIR` (the folder with "
        f"{', '.join(s.pth for s in SPECS.values())}), set ${ENV_WEIGHTS}, or download them "
        "with `liveness models fetch antispoof`.",
    )


def build(out_dir: Path, opts: BuildOptions) -> list[ModelEntry]:
    """Convert both MiniFASNet models into ``out_dir`` (skipped when already built and pinned)."""
    entries: list[ModelEntry] = []
    todo: list[MiniFASNetSpec] = []
    for spec in SPECS.values():
        target = out_dir / f"{spec.name}.onnx"
        pin = pinned_sha256(spec.name)
        if not opts.force and pin and target.exists() and sha256_file(target) == pin:
            entries.append(_entry(spec, pin))
        else:
            todo.append(spec)
    if not todo:
        return entries
    src = _weights_dir(opts)
    for spec in todo:
        pth = src / spec.pth
        if not pth.is_file():
            raise ModelMissingError(
                f"MiniFASNet weights {pth} not found",
                hint=f"The folder must hold {spec.pth} (`liveness models fetch antispoof`).",
            )
        got = sha256_file(pth)
        if got != spec.pth_sha256:
            raise ModelIntegrityError(
                f"{pth} has sha256 {got}, the upstream release has {spec.pth_sha256}",
                hint="Use the upstream file (`liveness models fetch antispoof`); other weights "
                "are not pinned.",
            )
        blob = convert(pth, spec)
        target = out_dir / f"{spec.name}.onnx"
        atomic_write_bytes(target, blob)
        entries.append(_entry(spec, sha256_file(target)))
    return entries
