"""One sample store per module, and its web view served for the page tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scribestore.ui.catalog import Catalog
from support.webview import sample_store, serving


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_store(tmp_path_factory.mktemp("webview"))


@pytest.fixture(scope="module")
def catalog(store: Path) -> Catalog:
    return Catalog(str(store), storage_options={})


@pytest.fixture(scope="module")
def base_url(catalog: Catalog) -> Iterator[str]:
    with serving(catalog) as url:
        yield url
