"""Fuzzing the manifest decoders (and version parsing) with Hypothesis.

Whatever the bytes, ``decode_repository`` and ``decode_project`` either return a
manifest that can be written back unchanged, or raise CorruptManifestError /
UnsupportedFormatError: no other exception may come out.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scribestore import (
    CorruptManifestError,
    InvalidNameError,
    InvalidVersionError,
    Repository,
    UnsupportedFormatError,
    VersionNotFoundError,
)
from scribestore.manifest.schema import (
    ProjectManifest,
    RepositoryManifest,
    decode_project,
    decode_repository,
    encode_manifest,
    validate_name,
)

OURS = (CorruptManifestError, UnsupportedFormatError)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hexdigest = st.text("0123456789abcdef", min_size=64, max_size=64)
timestamps = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=dt.timezone.utc).isoformat().replace("+00:00", "Z")
)


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidNameError:
        return False
    return True


names = st.text(min_size=1, max_size=12).filter(_valid_name)
params = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=2)


# Export file names are relative paths of plain components (anything else is refused).
plain_component = st.text(
    st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=10,
).filter(lambda f: f not in (".", ".."))
plain_fnames = st.lists(plain_component, min_size=1, max_size=3).map("/".join)


@st.composite
def version_entry(draw: st.DrawFn, version: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "version": version,
        "hash": draw(hexdigest),
        "size": draw(st.integers(0, 2**40)),
        "created_at": draw(timestamps),
        "handler": draw(st.sampled_from(["json", "pickle", "bytes"])),
        "fname": draw(plain_fnames),
    }
    if draw(st.booleans()):
        entry["expiry"] = draw(st.none() | timestamps)
    if draw(st.booleans()):
        entry["params"] = draw(params)
    if draw(st.booleans()):
        entry["environment"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
    return entry


@st.composite
def repository_doc(draw: st.DrawFn) -> dict[str, Any]:
    artifacts = {}
    for name in draw(st.lists(names, max_size=3, unique=True)):
        count = draw(st.integers(0, 3))
        artifacts[name] = [draw(version_entry(i)) for i in range(count)]
    return {"format": "scribestore.repository", "format_version": 1, "artifacts": artifacts}


@st.composite
def artifact_record(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "name": draw(names),
        "hash": draw(hexdigest),
        "size": draw(st.integers(0, 2**40)),
        "created_at": draw(timestamps),
        "handler": "json",
        "fname": "x.json",
        "params": draw(params),
    }


@st.composite
def project_doc(draw: st.DrawFn) -> dict[str, Any]:
    experiments = []
    for exp_id in draw(
        st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=3, unique=True)
    ):
        experiments.append(
            {
                "id": exp_id,
                "name": draw(names),
                "slug": draw(st.text(max_size=10)),
                "short_slug": draw(st.text(max_size=10)),
                "author": "ada",
                "last_updated_by": "ada",
                "created_at": draw(timestamps),
                "last_updated": draw(timestamps),
                "metrics": draw(
                    st.dictionaries(
                        st.text(max_size=4),
                        st.floats(allow_nan=False, allow_infinity=False),
                        max_size=2,
                    )
                ),
                "tags": draw(st.lists(st.text(max_size=4), max_size=2)),
                "artifacts": draw(st.lists(artifact_record(), max_size=2)),
                "tests": [
                    {
                        "name": draw(st.text(max_size=5)),
                        "artifacts": draw(st.lists(artifact_record(), max_size=1)),
                    }
                    for _ in range(draw(st.integers(0, 1)))
                ],
            }
        )
    return {"format": "scribestore.project", "format_version": 1, "experiments": experiments}


# Values a mutation puts in place of another: wrong types, extremes, bad formats.
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-1, 2**31, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63) - 1, 10**400])
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "scribestore.repository",
            "scribestore.project",
            "",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "9999-12-31T23:59:59.999999-23:59",
            "0001-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "A" * 64,
            "0" * 63,
            "g" * 64,
            "../x",
            "/abs",
            "..",
            "a\x00b",
            "\ud800",
        ]
    )
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(data: st.DataObject, doc: dict[str, Any]) -> Any:
    root: Any = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(root)
        path = data.draw(st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["drop", "replace", "add"]), label="action")
        if not path:
            root = data.draw(json_value, label="root") if action == "replace" else root
            continue
        parent = root
        for key in path[:-1]:
            parent = parent[key]
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(json_value, label="value")
        elif isinstance(parent[path[-1]], dict):
            key = data.draw(st.text(max_size=8), label="key")
            parent[path[-1]][key] = data.draw(json_value, label="value")
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(data.draw(json_value, label="value"))
    return root


def _serialize(data: st.DataObject, doc: Any) -> bytes:
    text = json.dumps(doc, ensure_ascii=data.draw(st.booleans(), label="ascii"))
    raw = text.encode("utf-8", "surrogatepass")
    if data.draw(st.booleans(), label="splice"):
        # Byte-level damage: invalid UTF-8 inside strings, stray bytes between tokens.
        at = data.draw(st.integers(0, len(raw)), label="at")
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=4), label="bytes") + raw[at:]
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw)), label="cut")]
    return raw


def _check(decode: Any, raw: bytes) -> None:
    try:
        manifest = decode(raw, where="fuzz.json")
    except OURS:
        return
    # Anything accepted can be written back (in the current format version,
    # sealed) and reads back the same.
    again = decode(encode_manifest(manifest), where="fuzz.json")
    assert _content(again) == _content(manifest)


def _content(manifest: Any) -> Any:
    return msgspec.structs.replace(manifest, format_version=0, checksum="")


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    _check(decode_repository, raw)
    _check(decode_project, raw)


@FUZZ
@given(json_value)
def test_arbitrary_json(doc: Any) -> None:
    raw = json.dumps(doc).encode("utf-8", "surrogatepass")
    _check(decode_repository, raw)
    _check(decode_project, raw)


@FUZZ
@given(repository_doc(), st.data())
def test_mutated_repository_documents(doc: dict[str, Any], data: st.DataObject) -> None:
    # The unmutated document is valid: the generator is right.
    assert decode_repository(json.dumps(doc).encode(), where="fuzz.json") is not None
    _check(decode_repository, _serialize(data, _mutate(data, doc)))


@FUZZ
@given(project_doc(), st.data())
def test_mutated_project_documents(doc: dict[str, Any], data: st.DataObject) -> None:
    assert decode_project(json.dumps(doc).encode(), where="fuzz.json") is not None
    _check(decode_project, _serialize(data, _mutate(data, doc)))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (
            b'{"format": "scribestore.repository", "format_version": 1, "artifacts": {"'
            + b"\\ud800"
            + b'": []}}',
            None,
        ),
        (
            b'{"format": "scribestore.repository", "format_version": 1, '
            b'"artifacts": {"\xed\xa0\x80": []}}',
            CorruptManifestError,
        ),
        (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", CorruptManifestError),
        (
            b'{"format": "scribestore.repository", "format_version": ' + b"9" * 500 + b"}",
            UnsupportedFormatError,
        ),
        (b'{"format": "scribestore.repository", "format_version": -5}', CorruptManifestError),
    ],
)
def test_regressions(raw: bytes, error: type[Exception] | None) -> None:
    if error is None:
        _check(decode_repository, raw)
    else:
        with pytest.raises(error):
            decode_repository(raw, where="fuzz.json")


# --- version selectors from users ------------------------------------------------------


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "repository.json"
    repo = Repository(path, mode="w")
    for i in range(3):
        repo.log_artifact("a", i, "json")
    repo.save()
    return Repository(path, mode="r")


selectors = (
    st.text(max_size=40)
    | st.from_regex(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:?\d{2})?", fullmatch=True
    )
    | st.datetimes()
    | st.datetimes(
        timezones=st.builds(
            dt.timezone,
            st.timedeltas(
                min_value=-dt.timedelta(hours=23, minutes=59),
                max_value=dt.timedelta(hours=23, minutes=59),
            ),
        )
    )
    | st.integers()
    | st.floats()
    | st.none()
)


@FUZZ
@given(version=selectors, match=st.sampled_from(["exact", "asof"]) | st.text(max_size=5))
def test_any_version_selector_gives_our_errors(
    small_repo: Repository, version: Any, match: str
) -> None:
    # Anything but these two (a TypeError, an OverflowError, ...) fails the test.
    with contextlib.suppress(InvalidVersionError, VersionNotFoundError):
        small_repo.get_artifact_metadata("a", version=version, match=match)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fname", ["", ".", "..", "../x", "/etc/passwd", "a/../../b", "a//b", "a/", "a\\b", "a\x00"]
)
def test_fname_that_could_escape_is_refused(fname: str) -> None:
    doc = {
        "format": "scribestore.repository",
        "format_version": 1,
        "artifacts": {
            "a": [
                {
                    "version": 0,
                    "hash": "0" * 64,
                    "size": 1,
                    "created_at": "2026-01-01T00:00:00Z",
                    "handler": "json",
                    "fname": fname,
                }
            ]
        },
    }
    with pytest.raises(CorruptManifestError, match="fname"):
        decode_repository(json.dumps(doc).encode(), where="crafted.json")


def test_digest_with_a_trailing_newline_is_refused() -> None:
    doc = {
        "format": "scribestore.repository",
        "format_version": 1,
        "artifacts": {
            "a": [
                {
                    "version": 0,
                    "hash": "0" * 64 + "\n",
                    "size": 1,
                    "created_at": "2026-01-01T00:00:00Z",
                    "handler": "json",
                    "fname": "a.json",
                }
            ]
        },
    }
    with pytest.raises(CorruptManifestError, match="hash"):
        decode_repository(json.dumps(doc).encode(), where="crafted.json")


@pytest.mark.parametrize("kind", ["repository", "project"])
def test_single_bit_flips_never_change_what_is_read(tmp_path: Path, kind: str) -> None:
    from scribestore import Project, Repository

    if kind == "repository":
        repo = Repository(tmp_path / "repository.json", mode="w")
        for i in range(3):
            repo.log_artifact("model", [i, i * 2.5], "json", indent=i)
        repo.save()
        decode: Any = decode_repository
    else:
        project = Project(tmp_path / "project.json", mode="w", author="ada")
        with project.log("exp") as exp:
            exp.log_metric("auc", 0.91)
            exp.log_parameter("lr", 0.1)
            exp.tag("baseline")
            exp.log_artifact("preds", [1, 2, 3], "json")
        project.save()
        decode = decode_project
    raw = (tmp_path / f"{kind}.json").read_bytes()
    original = _content(decode(raw, where="orig"))
    rng = random.Random(kind)
    silently_changed = 0
    for _ in range(300):
        bit = rng.randrange(len(raw) * 8)
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            got = decode(bytes(flipped), where="flipped")
        except OURS:
            continue
        silently_changed += _content(got) != original
    assert silently_changed == 0


@pytest.mark.parametrize("kind", ["repository", "project"])
def test_a_sealed_manifest_with_a_repeated_key_is_refused(tmp_path: Path, kind: str) -> None:
    """A repeated key made on purpose (checksum valid) is refused, not silently collapsed."""
    from scribestore import Project, Repository
    from support.helpers import seal

    if kind == "repository":
        repo = Repository(tmp_path / "repository.json", mode="w")
        repo.log_artifact("a", [1], "json")
        repo.log_artifact("b", [2], "json")
        repo.save()
        decode: Any = decode_repository
    else:
        project = Project(tmp_path / "project.json", mode="w")
        for name in ("a", "b"):
            with project.log(name) as exp:
                exp.log_metric("auc", 0.5)
        project.save()
        decode = decode_project
    path = tmp_path / f"{kind}.json"
    sealed = seal(json.loads(path.read_bytes()))
    decode(sealed, where="resealed")  # re-formatted but faithful: accepted
    # The second key "b" renamed to "a": a decoder keeping the last would drop "a".
    field = '"artifacts": {' if kind == "repository" else '"experiments": ['
    head, _, tail = sealed.decode().partition(field)
    if kind == "repository":
        tail = tail.replace('"b":', '"a":', 1)
    else:
        tail = tail.replace('"name": "b"', '"name": "b", "name": "a"', 1)
    crafted = (head + field + tail).encode()
    # Sealed as an attacker would: the checksum of what a decoder keeps.
    kind_type = RepositoryManifest if kind == "repository" else ProjectManifest
    kept = msgspec.json.decode(crafted, type=kind_type)
    old = json.loads(sealed)["checksum"]
    crafted = crafted.replace(old.encode(), json.loads(encode_manifest(kept))["checksum"].encode())
    with pytest.raises(CorruptManifestError, match="twice"):
        decode(crafted, where="crafted")
