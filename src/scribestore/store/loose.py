"""The on-disk encoding of one object: a 16-byte header, then the payload.

Pure functions and constants only; no I/O. See docs/FORMAT.md, "Object encoding".

    offset size  field
    0      4     magic b"SSOB"
    4      1     object format version (1)
    5      1     codec: 0 raw, 1 zstd, 2 chunked (a recipe of chunks in packs)
    6      2     reserved, zero
    8      8     logical size, unsigned little-endian
"""

from __future__ import annotations

import enum
import struct

import msgspec
import zstandard

from scribestore.exception import CorruptObjectError, UnsupportedFormatError

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "OBJECT_FORMAT_VERSION",
    "Codec",
    "ObjectHeader",
    "choose_codec",
    "decode_header",
    "encode_header",
    "make_compressor",
]

MAGIC = b"SSOB"
OBJECT_FORMAT_VERSION = 1
#: Object format versions a reader may meet: this one and later ones. Later
#: versions are chosen at least two bits away from every earlier one (FORMAT
#: 3.1), so a version byte one bit away from a known version is damage.
_KNOWN_VERSIONS = (1,)
#: Loose (raw and zstd) objects written now hold less than this (larger
#: content is chunked); readers verify such objects whole before returning a byte.
LOOSE_LIMIT = 4 << 20
_HEADER = struct.Struct("<4sBBHQ")
HEADER_SIZE = _HEADER.size  # 16

# The probe compresses this much of the start of the content to decide whether
# zstd pays for the whole object.
PROBE_SIZE = 256 << 10
# zstd is kept only if the probe shrinks to at most this fraction; float weights
# (~0.93 with plain zstd) stay raw, where decompression would cost more than
# the few percent of disk it saves.
COMPRESS_RATIO_MAX = 0.90
# Content this small is stored raw: the zstd frame overhead eats the gain.
COMPRESS_MIN_SIZE = 64
ZSTD_LEVEL = 3


class Codec(enum.IntEnum):
    """How an object's payload encodes its logical content."""

    RAW = 0
    ZSTD = 1
    CHUNKED = 2


class ObjectHeader(msgspec.Struct, frozen=True):
    """The decoded header of one object."""

    codec: Codec
    size: int


def encode_header(codec: Codec, size: int) -> bytes:
    """The 16 header bytes for an object of ``size`` logical bytes."""
    return _HEADER.pack(MAGIC, OBJECT_FORMAT_VERSION, int(codec), 0, size)


def decode_header(buf: bytes, *, digest: str, path: str | None = None) -> ObjectHeader:
    """Parse the first :data:`HEADER_SIZE` bytes of an object.

    Raises:
        CorruptObjectError: too short, wrong magic, or an unknown codec byte in a
            version this reader knows.
        UnsupportedFormatError: the object was written by a newer format version.
    """
    if len(buf) < HEADER_SIZE:
        raise CorruptObjectError(
            digest, "truncated", path=path, detail=f"header is {len(buf)} of {HEADER_SIZE} bytes"
        )
    magic, version, codec, _reserved, size = _HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise CorruptObjectError(digest, "not an object", path=path, detail=f"bad magic {magic!r}")
    if version not in _KNOWN_VERSIONS and (
        version == 0 or any(bin(version ^ k).count("1") == 1 for k in _KNOWN_VERSIONS)
    ):
        raise CorruptObjectError(
            digest, "damaged header", path=path, detail=f"format version byte {version}"
        )
    if version > OBJECT_FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"object {digest} uses object format version {version}, newer than the "
            f"{OBJECT_FORMAT_VERSION} this scribestore reads; upgrade scribestore"
        )
    try:
        header = ObjectHeader(Codec(codec), size)
    except ValueError:
        raise CorruptObjectError(
            digest, "not an object", path=path, detail=f"unknown codec byte {codec}"
        ) from None
    return header


def decompress(payload: bytes | memoryview, size: int) -> bytes:
    """The content of a zstd payload that must decode to exactly ``size`` bytes.

    Nothing larger than ``size`` + 1 bytes is ever allocated, whatever the
    frame claims.

    Raises:
        zstandard.ZstdError: the payload is damaged or decodes to another size.
    """
    if zstandard.frame_content_size(payload) not in (size, -1):
        raise zstandard.ZstdError("frame content size disagrees with the object header")
    dctx = zstandard.ZstdDecompressor()
    out = (
        dctx.decompressobj().decompress(payload)
        if size == 0
        else dctx.decompress(payload, max_output_size=size + 1)
    )
    return bytes(out)


def stored_bound(size: int) -> int:
    """The most bytes a loose payload of ``size`` content bytes can take (zstd's bound)."""
    return size + (size >> 8) + 1024


def choose_codec(probe: bytes, total_size: int) -> Codec:
    """Decide raw vs zstd from the first bytes of the content.

    Deterministic: the same content always gets the same codec.
    """
    if total_size < COMPRESS_MIN_SIZE or not probe:
        return Codec.RAW
    compressed = zstandard.ZstdCompressor(level=1).compress(probe[:PROBE_SIZE])
    if len(compressed) <= COMPRESS_RATIO_MAX * min(len(probe), PROBE_SIZE):
        return Codec.ZSTD
    return Codec.RAW


def make_compressor() -> zstandard.ZstdCompressor:
    """The zstd compressor for loose objects (all under the chunking threshold,
    so zstd's worker threads would not pay)."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False)
