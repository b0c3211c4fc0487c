"""What each step of logging and loading a large file costs on this machine.

``python benchmarks/run.py --only stages`` runs :func:`bench_stages`: every
step alone, single-threaded unless it says otherwise, on float32 weights in
memory, as seconds per GiB (best of ``repeat``). Their sum over the cores is
the floor that a pipeline of these steps cannot beat, whatever its threads.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import blake3

from timing import times


def _best(fn: Callable[[], object], repeat: int) -> float:
    return min(times(fn, repeat))


def bench_stages(src: Path, repeat: int) -> dict[str, Any]:
    """Seconds per GiB of each step, on the float32 weights in ``src``."""
    from scribestore.store import planes
    from scribestore.store.blobcodec import (
        ChunkCodec,
        compress_all,
        compressors,
        decode_chunks,
        decode_run,
        encode_chunks,
    )
    from scribestore.store.chunks import Batch, new_chunker, store_packed
    from scribestore.store.hashing import hash_file

    data = memoryview(src.read_bytes())
    scale = (1 << 30) / len(data)
    cuts = [(c.offset, c.length) for c in new_chunker().cut_buf(data)]
    batches = [cuts[i : i + 64] for i in range(0, len(cuts), 64)]

    def encode(codec: ChunkCodec) -> list[tuple[list[memoryview], list[int], int, int]]:
        out = []
        for batch in batches:
            start, end = batch[0][0], batch[-1][0] + batch[-1][1]
            sizes = [n for _, n in batch]
            blobs = encode_chunks(data[start:end], start, sizes, codec, [True] * len(sizes))
            out.append(([memoryview(b"".join(p or [])) for p in blobs], sizes, start, end))
        return out

    packed, grouped = encode(ChunkCodec.PACKED4), encode(ChunkCodec.GROUP4)
    out = bytearray(max(end - start for _, _, start, end in packed))

    # The packed blobs of each batch laid out as in a pack, for decode_run.
    runs = []
    for blobs, sizes, start, end in packed:
        spans, at = [], 0
        for blob, size in zip(blobs, sizes, strict=True):
            spans.append((at, len(blob), size))
            at += len(blob)
        runs.append((memoryview(b"".join(blobs)), spans, end - start))

    def decode_runs() -> None:
        for run, spans, length in runs:
            decode_run(run, spans, memoryview(out)[:length])

    def decode(encoded: list[tuple[list[memoryview], list[int], int, int]]) -> None:
        for blobs, sizes, start, end in encoded:
            decode_chunks(blobs, sizes, memoryview(out)[: end - start])

    def split_planes() -> None:
        for batch in batches:
            start, end = batch[0][0], batch[-1][0] + batch[-1][1]
            planes.split(data[start : start + (end - start) // 4 * 4], 4)

    def top_plane(offset: int, size: int) -> memoryview:
        head = (-offset) % 4
        return planes.split(data[offset + head : offset + head + (size - head) // 4 * 4], 4)[0]

    tops = [top_plane(o, n) for o, n in cuts]
    copy = bytearray(len(data))

    def zstd_tops() -> None:
        for i in range(0, len(tops), 64):
            compress_all(compressors()[1], list(tops[i : i + 64]))

    def memcpy() -> None:
        memoryview(copy)[:] = data

    sink = _PackSink(len(data) + len(cuts))  # one buffer: its page faults are not encoding

    def encode_in_place() -> None:
        sink.reset()
        for batch in batches:
            start, end = batch[0][0], batch[-1][0] + batch[-1][1]
            sizes = [n for _, n in batch]
            keep = [True] * len(sizes)
            digests = [bytes(32)] * len(sizes)
            store_packed(
                sink, Batch(data[start:end], start, sizes, keep, digests), ChunkCodec.PACKED4
            )

    steps: dict[str, Callable[[], object]] = {
        "BLAKE3, 1 thread": lambda: blake3.blake3(data).digest(),
        "BLAKE3, all cores (hash_file)": lambda: hash_file(src),
        "FastCDC cut": lambda: sum(1 for _ in new_chunker().cut_buf(data)),
        "BLAKE3 of each chunk": lambda: [blake3.blake3(data[o : o + n]).digest() for o, n in cuts],
        "byte planes split (C or numpy)": split_planes,
        "top bytes packed (4-bit codes)": lambda: [planes.pack_top(t) for t in tops],
        "top bytes zstd (codec 3)": zstd_tops,
        "decode packed chunks (codec 4)": lambda: decode(packed),
        "decode runs of packed chunks (as readers do)": decode_runs,
        "decode zstd chunks (codec 3)": lambda: decode(grouped),
        "copy (memcpy)": memcpy,
    }
    if planes.NATIVE:  # what the writer does with the C accelerator, in place of the two above
        steps["encode packed chunks into a pack buffer (C)"] = encode_in_place
    result = {name: round(_best(fn, repeat) * scale, 3) for name, fn in steps.items()}
    result["write + fsync in 32 MiB files"] = round(_write_packs(data, repeat) * scale, 3)
    result["native_planes"] = planes.NATIVE
    return result


class _PackSink:
    """The part of a PackWriter that the in-place encoder uses, without publishing."""

    def __init__(self, capacity: int) -> None:
        self._view = memoryview(bytearray(capacity))
        self._used = 0

    def reset(self) -> None:
        self._used = 0

    def room(self) -> memoryview:
        return self._view[self._used :]

    def added(self, blobs: Iterable[tuple[bytes, int, int]]) -> None:
        self._used += sum(length for _, length, _ in blobs)

    def seal(self) -> None:
        raise AssertionError("the sink holds the whole file")

    def add(
        self, digest: bytes, parts: Iterable[bytes | bytearray | memoryview], size: int
    ) -> None:
        self._used += sum(len(p) for p in parts)


def _write_packs(data: memoryview, repeat: int) -> float:
    def run() -> None:
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            for i, start in enumerate(range(0, len(data), 32 << 20)):
                fd = os.open(Path(tmp) / f"{i}.pack", os.O_WRONLY | os.O_CREAT)
                try:
                    piece = data[start : start + (32 << 20)]
                    for o in range(0, len(piece), 1 << 20):
                        os.write(fd, piece[o : o + (1 << 20)])
                    os.fsync(fd)
                finally:
                    os.close(fd)

    return _best(run, repeat)
