"""``python -m scribestore.demo STORE``: the main job on a local store.

Puts a few objects of different kinds into the object store under ``STORE``,
puts one again to show deduplication, reads everything back verified, and
prints what was stored.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

from scribestore.objects import ObjectStore


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "demo-store")
    store = ObjectStore(root / "objects")
    samples: dict[str, bytes] = {
        "metrics.json": json.dumps(
            [{"epoch": i, "loss": 1 / (i + 1), "auc": 0.5 + i / 200} for i in range(2000)]
        ).encode(),
        "weights.bin": random.Random(0).randbytes(8 << 20),
        "zeros.bin": bytes(8 << 20),
    }
    print(f"object store: {store.url}")
    digests: dict[str, str] = {}
    for name, data in samples.items():
        digests[name] = store.put(data)
    with tempfile.TemporaryDirectory() as tmp:
        again = Path(tmp) / "weights-copy.bin"
        again.write_bytes(samples["weights.bin"])
        assert store.put(again) == digests["weights.bin"], "same bytes, same digest"
    print(f"{'name':<14} {'blake3':<18} {'size':>10} {'stored':>10}  codec")
    for name, digest in digests.items():
        info = store.stat(digest)
        assert store.get(digest) == samples[name]
        print(
            f"{name:<14} {digest[:16]}.. {_human(info.size):>10} "
            f"{_human(info.stored_size):>10}  {info.codec.name.lower()}"
        )
    stats = store.stats()
    print(
        f"{stats.objects} objects, {_human(stats.logical_size)} logical, "
        f"{_human(stats.stored_size)} stored; weights.bin put twice, stored once; "
        "every read verified"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
