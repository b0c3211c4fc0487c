"""Run moto's S3 server with requests handled atomically, as S3 handles them.

moto's threaded server handles requests concurrently over shared in-memory
state without locks. Two consequences broke the concurrency tests under load:
a PUT checks ``If-Match`` / ``If-None-Match`` and then writes in two steps, so
two writers conditional on the same ETag could both pass the check and one
write was silently lost (8 processes saving to one manifest lost versions);
and an object's ETag and content are read through one shared file position,
so concurrent GETs of one key can interfere. Real S3 evaluates a condition
and its write atomically. Running moto's handling of each key or bucket
request under one lock restores that; request bodies are received and
responses sent outside the lock.

Usage: ``python moto_atomic.py -H 127.0.0.1 -p PORT`` (the arguments of
``python -m moto.server``).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto.s3.responses import S3Response
from moto.server import main

# Every key request (GET, PUT, HEAD, DELETE, POST) and bucket request (listing,
# multi-object delete, ...) goes through one of these after its body is read.
_HANDLERS = ("_key_response", "_bucket_response")
_LOCK = threading.RLock()


def _atomic(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return handler(*args, **kwargs)

    return locked


def patch() -> None:
    """Wrap moto's request handlers in one lock (fails loudly if moto renamed them)."""
    for name in _HANDLERS:
        handler = getattr(S3Response, name)  # AttributeError: moto changed; update the list
        setattr(S3Response, name, _atomic(handler))


if __name__ == "__main__":
    patch()
    main(sys.argv[1:])
