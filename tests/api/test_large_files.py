"""Large files through the Repository: bounded memory both ways."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import blake3
import pytest

from support.helpers import PEAK_RSS, run_child

_CHILD = (
    PEAK_RSS
    + """
import json, sys
from pathlib import Path
from scribestore import Repository
src, store, dest = (json.loads(a) for a in sys.argv[1:])
base = peak_rss()
repo = Repository(Path(store) / "repository.json", mode="w")
repo.log_artifact("model", Path(src), "file")
repo.save()
after_log = peak_rss()
repo = Repository(Path(store) / "repository.json", mode="r")
out = repo.load_artifact("model", dest=dest)
after_load = peak_rss()
print(json.dumps({"base": base, "log": after_log, "load": after_load, "out": str(out),
                  "hash": repo.get_artifact_metadata("model")["hash"]}))
"""
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS comes from Linux /proc")
def test_log_and_load_1gib_file_keeps_rss_bounded(tmp_path: Path) -> None:
    import numpy as np

    src = tmp_path / "weights.bin"
    rng = np.random.default_rng(0)
    expected = blake3.blake3()
    with src.open("wb") as f:
        for _ in range(16):  # 16 x 64 MiB of float32 weights
            block = (rng.standard_normal(1 << 24) * 0.02).astype("float32").tobytes()
            expected.update(block)
            f.write(block)
    dest = tmp_path / "restored.bin"
    result = json.loads(run_child(_CHILD, str(src), str(tmp_path / "store"), str(dest)))
    grew_log = (result["log"] - result["base"]) >> 10
    grew_load = (result["load"] - result["base"]) >> 10
    assert grew_log < 200, f"log+save grew peak RSS by {grew_log} MiB"
    assert grew_load < 200, f"load grew peak RSS by {grew_load} MiB"
    assert result["hash"] == expected.hexdigest()
    restored = blake3.blake3(max_threads=blake3.blake3.AUTO)
    restored.update_mmap(dest)
    assert restored.hexdigest() == expected.hexdigest()
    assert os.path.getsize(dest) == 1 << 30


_NUMPY_CHILD = (
    PEAK_RSS
    + """
import json, sys
from pathlib import Path
import numpy as np
from scribestore import Repository
store, step, mib = (json.loads(a) for a in sys.argv[1:])
fpath = Path(store) / "repository.json"
if step == "save":
    array = np.random.default_rng(0).standard_normal((mib << 20) // 8)
    base = peak_rss()
    repo = Repository(fpath, mode="w")
    repo.log_artifact("weights", array, "numpy")
    repo.save()
    checksum = float(array[::4096].sum())
else:
    base = peak_rss()
    array = Repository(fpath, mode="r").load_artifact("weights")
    checksum = float(array[::4096].sum())
print(json.dumps({"grew_kib": peak_rss() - base, "checksum": checksum}))
"""
)


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS comes from Linux /proc")
def test_numpy_arrays_are_streamed_both_ways(tmp_path: Path) -> None:
    mib = 512
    store = str(tmp_path / "store")
    saved = json.loads(run_child(_NUMPY_CHILD, store, "save", mib))
    loaded = json.loads(run_child(_NUMPY_CHILD, store, "load", mib))
    assert loaded["checksum"] == saved["checksum"]
    # The bound of the file handler (test above): serializing into memory
    # would add a whole copy of the array (512 MiB) instead.
    assert saved["grew_kib"] >> 10 < 200, saved
    # The array itself plus that bound; decoding from whole bytes would hold
    # the bytes and the array at once (2 x 512 MiB).
    assert loaded["grew_kib"] >> 10 < mib + 200, loaded
