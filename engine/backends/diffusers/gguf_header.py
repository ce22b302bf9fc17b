"""Check a GGUF file's header against its size before any reader trusts it.

A GGUF header is a list of counts and lengths (tensors, key/value pairs,
string lengths, array lengths, tensor shapes and data offsets). A reader
that believes them allocates what they claim: a crafted 1 KB file claiming
2^40 array items or a tensor of 2^60 elements takes gigabytes before any
check. `check_gguf_header` walks the header with ``struct`` over the file
(no arrays, no reader objects), and refuses the file, naming it and the
field, as soon as a count, a length or a tensor's data would reach past the
end of the file. Format: ggml's ``docs/gguf.md`` (versions 2 and 3).
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from engine.backend import BackendError

__all__ = ["check_gguf_header"]

MAGIC = b"GGUF"
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32
# value type -> bytes of one item (8: string, 9: array, read on their own)
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MIN_KV = 8 + 4 + 1  # empty key, a type, one byte of value
_MIN_TENSOR = 8 + 4 + 4 + 8  # empty name, no dims, a type, an offset


class _Header:
    """A cursor over the file's bytes that refuses to read past their end."""

    def __init__(self, data: mmap.mmap | bytes, shown: str, order: str) -> None:
        self.data, self.shown, self.order, self.at = data, shown, order, 0

    def fail(self, what: str) -> BackendError:
        return BackendError(
            f"transformer_file {self.shown} is not a valid GGUF file: {what} "
            f"(at byte {self.at:,} of {len(self.data):,}); the file is damaged "
            "or crafted: download or convert it again"
        )

    def left(self) -> int:
        return len(self.data) - self.at

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left():
            raise self.fail(f"{what} needs {n:,} bytes, only {self.left():,} remain")
        out = self.data[self.at : self.at + n]
        self.at += n
        return bytes(out)

    def u32(self, what: str) -> int:
        return struct.unpack(self.order + "I", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack(self.order + "Q", self.take(8, what))[0]

    def string(self, what: str) -> bytes:
        return self.take(self.u64(f"the length of {what}"), what)

    def count(self, what: str, each: int) -> int:
        n = self.u64(what)
        if n * each > self.left():
            raise self.fail(
                f"{what} claims {n:,} entries of at least {each} bytes, more than "
                f"the {self.left():,} bytes left"
            )
        return n

    def value(self, kind: int, key: str) -> int | None:
        """Skip one value; its integer when it is one (for general.alignment)."""
        if kind in _SCALAR:
            raw = self.take(_SCALAR[kind], f"the value of {key}")
            return int.from_bytes(raw, "little" if self.order == "<" else "big")
        if kind == _STRING:
            self.string(f"the value of {key}")
            return None
        if kind == _ARRAY:
            item = self.u32(f"the item type of {key}")
            if item in _SCALAR:
                n = self.count(f"the array {key}", _SCALAR[item])
                self.take(n * _SCALAR[item], f"the array {key}")
            elif item == _STRING:
                for _ in range(self.count(f"the array {key}", 8)):
                    self.string(f"an item of {key}")
            else:  # arrays of arrays: no GGUF writer makes them
                raise self.fail(f"the array {key} holds items of type {item}")
            return None
        raise self.fail(f"{key} has the unknown value type {kind}")


def _tensor_bytes(dims: list[int], kind: int, head: _Header, name: str) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise head.fail(f"tensor {name} has the unknown type {kind}") from None
    elements = 1
    for d in dims:
        elements *= d
    if elements % block:
        raise head.fail(
            f"tensor {name} has {elements:,} elements, not blocks of {block}"
        )
    return elements // block * size


def check_gguf_header(path: str | os.PathLike[str]) -> None:
    """Refuse a GGUF file whose header claims more than the file holds.

    Raises `BackendError` naming the file and the field that does not fit.
    """
    file = Path(path)
    with open(file, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 24:
            raise BackendError(
                f"transformer_file {file} is {size} bytes, too short for a GGUF "
                "header; download or convert it again"
            )
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _walk(data, str(file))


def _walk(data: mmap.mmap | bytes, shown: str) -> None:
    if bytes(data[:4]) != MAGIC:
        raise BackendError(
            f"transformer_file {shown} is not a GGUF file (it does not start with "
            "'GGUF'); point it at a .gguf file"
        )
    order = "<" if struct.unpack("<I", data[4:8])[0] < 0x10000 else ">"
    head = _Header(data, shown, order)
    head.at = 4
    version = head.u32("the version")
    if version not in (2, 3):
        raise head.fail(f"version {version} is not 2 or 3")
    tensors = head.u64("the tensor count")
    kv_count = head.count("the key/value count", _MIN_KV)
    alignment = DEFAULT_ALIGNMENT
    for _ in range(kv_count):
        key = head.string("a key").decode("utf-8", "replace")
        got = head.value(head.u32(f"the type of {key}"), key)
        if key == "general.alignment" and got:
            alignment = got
    if tensors * _MIN_TENSOR > head.left():
        raise head.fail(
            f"the tensor count claims {tensors:,} tensors, more than the "
            f"{head.left():,} bytes left can describe"
        )
    extents = []
    for _ in range(tensors):
        name = head.string("a tensor name").decode("utf-8", "replace")
        n_dims = head.u32(f"the dimensions of {name}")
        if n_dims > MAX_DIMS:
            raise head.fail(f"tensor {name} claims {n_dims} dimensions (at most 4)")
        dims = [head.u64(f"a dimension of {name}") for _ in range(n_dims)]
        kind = head.u32(f"the type of {name}")
        offset = head.u64(f"the data offset of {name}")
        extents.append((name, offset, _tensor_bytes(dims, kind, head, name)))
    start = head.at + (-head.at % alignment)
    for name, offset, nbytes in extents:
        if start + offset + nbytes > len(data):
            raise head.fail(
                f"tensor {name} claims {nbytes:,} bytes at offset {offset:,}, past "
                f"the end of the file"
            )
