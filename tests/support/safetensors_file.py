"""Writing files in the safetensors layout without the safetensors package.

The layout: an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, padded with spaces to 8 bytes, then the
tensors' bytes.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

_DTYPES = {"float32": "F32", "float16": "F16", "int64": "I64", "uint8": "U8"}


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], *, seed: int = 0) -> None:
    """Write float32 tensors of ``shapes`` with weight-like values, one at a time."""
    rng = np.random.default_rng(seed)
    header: dict[str, object] = {}
    at = 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for shape in shapes.values():
            out.write((rng.standard_normal(shape) * 0.02).astype("float32").tobytes())


def read_header(stream: object) -> tuple[int, dict[str, dict[str, object]]]:
    """The offset of the data and the header of a safetensors stream at its start."""
    read = stream.read  # type: ignore[attr-defined]
    (length,) = struct.unpack("<Q", read(8))
    return 8 + length, json.loads(read(length))


def dtype_name(code: str) -> str:
    return {v: k for k, v in _DTYPES.items()}[code]
