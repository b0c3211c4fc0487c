"""Run moto's S3 server with conditional writes made atomic, as S3 makes them.

moto checks ``If-Match`` / ``If-None-Match`` and then writes, in two steps,
while its threaded server handles requests concurrently: two writers whose
PUTs are conditional on the same ETag can both pass the check, and one write
is silently lost. (Seen in practice: 8 processes saving to one manifest lost
versions under load.) Real S3 evaluates the condition and the write
atomically. Serializing moto's handlers of key writes (PUT, POST, DELETE on a
key) with one lock restores that; reads stay concurrent.

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

_WRITE_HANDLERS = ("_key_response_put", "_key_response_post", "_key_response_delete")
_LOCK = threading.Lock()


def _atomic(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return handler(*args, **kwargs)

    return locked


def patch() -> None:
    """Wrap moto's key-write handlers in one lock (fails loudly if moto renamed them)."""
    for name in _WRITE_HANDLERS:
        handler = getattr(S3Response, name)  # AttributeError: moto changed; update the list
        setattr(S3Response, name, _atomic(handler))


if __name__ == "__main__":
    patch()
    main(sys.argv[1:])
