"""The torch-free .pth reader: rebuilds tensors exactly, refuses anything that would run code."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from liveness.errors import ModelError, ModelMissingError, UnsafeModelError
from liveness.models.minifasnet import read_state_dict

# --- a tiny pickle assembler (torch is not installed, so we write its opcodes by hand) -------


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(
    key: str, numel: int, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> bytes:
    pid = _tuple([_str("storage"), b"ctorch\nFloatStorage\n", _str(key), _str("cpu"), _int(numel)])
    args = _tuple(
        [
            pid + b"Q",  # BINPERSID
            _int(offset),
            _tuple([_int(v) for v in size]),
            _tuple([_int(v) for v in stride]),
            b"\x89",  # NEWFALSE: requires_grad
            b"ccollections\nOrderedDict\n)R",  # backward hooks
        ]
    )
    return b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"


def _state_pickle(entries: dict[str, bytes], metadata: bool = True) -> bytes:
    body = b"\x80\x02ccollections\nOrderedDict\n)R"
    for name, tensor in entries.items():
        body += _str(name) + tensor + b"s"  # SETITEM
    if metadata:  # torch sets `_metadata` on the OrderedDict with BUILD
        body += b"}" + _str("_metadata") + b"}s" + b"b"
    return body + b"."


def _legacy(main: bytes, storages: dict[str, np.ndarray]) -> bytes:
    head = (
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
        + pickle.dumps(1001, protocol=2)
        + pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    )
    tail = pickle.dumps(list(storages), protocol=2)
    for arr in storages.values():
        tail += struct.pack("<q", arr.size) + arr.astype("<f4").tobytes()
    return head + main + tail


def _zip(main: bytes, storages: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", main)
        z.writestr("archive/byteorder", "little")
        for k, arr in storages.items():
            z.writestr(f"archive/data/{k}", arr.astype("<f4").tobytes())
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


STORE = {"0": np.arange(12, dtype=np.float32), "1": np.array([7.5, -1.0], np.float32)}
ENTRIES = {
    "module.a.weight": _tensor("0", 12, 0, (3, 4), (4, 1)),
    "module.a.t": _tensor("0", 12, 0, (4, 3), (1, 4)),  # a transposed view
    "module.b.bias": _tensor("0", 12, 5, (2,), (1,)),  # an offset view
    "module.c.scalar": _tensor("1", 2, 1, (), ()),
}


@pytest.mark.parametrize("pack", [_legacy, _zip], ids=["legacy", "zip"])
def test_reads_tensors_exactly(tmp_path: Path, pack: object) -> None:
    p = tmp_path / "w.pth"
    p.write_bytes(pack(_state_pickle(ENTRIES), STORE))  # type: ignore[operator]
    sd = read_state_dict(p)
    assert list(sd) == list(ENTRIES)
    np.testing.assert_array_equal(sd["module.a.weight"], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(sd["module.a.t"], np.arange(12).reshape(3, 4).T)
    np.testing.assert_array_equal(sd["module.b.bias"], [5, 6])
    assert sd["module.c.scalar"].shape == () and float(sd["module.c.scalar"]) == -1.0
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in sd.values())


# --- code execution attempts -----------------------------------------------------------------


def _payload(marker: Path, kind: str) -> bytes:
    cmd = _str(f"touch {marker}")
    if kind == "os.system":
        return b"\x80\x02cos\nsystem\n" + cmd + b"\x85R."
    if kind == "posix.system":  # what pickle.dumps(os.system) really emits on Linux
        return b"\x80\x02cposix\nsystem\n" + cmd + b"\x85R."
    if kind == "builtins.eval":
        expr = _str(f"__import__('os').system('touch {marker}')")
        return b"\x80\x02cbuiltins\neval\n" + expr + b"\x85R."
    if kind == "stack_global":  # protocol 4 form of the same global
        return b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93" + cmd + b"\x85R."
    if kind == "inst":  # protocol 0 INST opcode: imports and calls in one step
        return b"(" + _str(f"touch {marker}") + b"ios\nsystem\n."
    if kind == "nested":  # the evil call hidden inside an otherwise valid tensor record
        evil = b"cos\nsystem\n" + cmd + b"\x85R"
        return (
            _state_pickle({"w": _tensor("0", 12, 0, (3,), (1,))})[:-1].replace(b"\x89", evil, 1)
            + b"."
        )
    raise AssertionError(kind)


KINDS = ["os.system", "posix.system", "builtins.eval", "stack_global", "inst", "nested"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pack", [_legacy, _zip], ids=["legacy", "zip"])
def test_refuses_code_without_running_it(tmp_path: Path, kind: str, pack: object) -> None:
    marker = tmp_path / "pwned"
    evil = _payload(marker, kind)
    # sanity: the payload really runs under a plain unpickler (so the test can fail)
    if kind in ("os.system", "posix.system", "builtins.eval", "stack_global", "inst"):
        pickle.loads(evil)
        assert marker.exists()
        marker.unlink()
    p = tmp_path / "evil.pth"
    p.write_bytes(pack(evil, STORE))  # type: ignore[operator]
    with pytest.raises(UnsafeModelError) as err:
        read_state_dict(p)
    assert isinstance(err.value, ModelError)
    assert not marker.exists(), "the payload ran"


def test_refuses_evil_header_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pth"
    p.write_bytes(_payload(marker, "os.system") + _legacy(_state_pickle(ENTRIES), STORE))
    with pytest.raises(UnsafeModelError):
        read_state_dict(p)
    assert not marker.exists()


# --- malformed files get a clear ModelError, never a crash -----------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError):
        read_state_dict(tmp_path / "nope.pth")


@pytest.mark.parametrize("cut", [0, 10, 200, -4])
def test_truncated(tmp_path: Path, cut: int) -> None:
    blob = _legacy(_state_pickle(ENTRIES), STORE)
    p = tmp_path / "t.pth"
    p.write_bytes(blob[:cut])
    with pytest.raises(ModelError):
        read_state_dict(p)


def test_trailing_bytes(tmp_path: Path) -> None:
    p = tmp_path / "t.pth"
    p.write_bytes(_legacy(_state_pickle(ENTRIES), STORE) + b"\0" * 8)
    with pytest.raises(ModelError, match="unexpected bytes"):
        read_state_dict(p)


def test_tensor_past_storage_end(tmp_path: Path) -> None:
    p = tmp_path / "t.pth"
    store = {"0": STORE["0"]}
    p.write_bytes(_legacy(_state_pickle({"w": _tensor("0", 12, 10, (4,), (1,))}), store))
    with pytest.raises(ModelError, match="past the end"):
        read_state_dict(p)


def test_zero_stride_memory_bomb(tmp_path: Path) -> None:
    p = tmp_path / "t.pth"
    store = {"0": STORE["0"]}
    bomb = _tensor("0", 12, 0, (100_000, 100_000), (0, 0))  # 40 GB from 48 bytes
    p.write_bytes(_legacy(_state_pickle({"w": bomb}), store))
    with pytest.raises(ModelError, match="larger than its storage"):
        read_state_dict(p)


def test_storage_size_mismatch(tmp_path: Path) -> None:
    p = tmp_path / "t.pth"
    p.write_bytes(_legacy(_state_pickle({"w": _tensor("0", 99, 0, (4,), (1,))}), STORE))
    with pytest.raises(ModelError):
        read_state_dict(p)


def test_not_a_state_dict(tmp_path: Path) -> None:
    p = tmp_path / "t.pth"
    p.write_bytes(_legacy(pickle.dumps([1, 2, 3], protocol=2), {}))
    with pytest.raises(ModelError, match="state dict"):
        read_state_dict(p)


def test_bad_magic(tmp_path: Path) -> None:
    p = tmp_path / "t.pth"
    p.write_bytes(pickle.dumps(42, protocol=2) + _legacy(_state_pickle(ENTRIES), STORE)[15:])
    with pytest.raises(ModelError, match="magic"):
        read_state_dict(p)
