"""S3 (and S3-compatible) storage: direct create-only uploads, no renames."""

from __future__ import annotations

from scribestore._storage.fsspec import FsspecStorage

__all__ = ["S3Storage"]


class S3Storage(FsspecStorage):
    """Objects under ``s3://bucket/prefix`` through s3fs."""
