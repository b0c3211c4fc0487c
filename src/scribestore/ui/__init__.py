"""``scribestore ui``: a read-only web view of a store's repositories and projects.

:func:`create_app` builds the Starlette app over a :class:`Catalog`; the
CLI serves it with uvicorn on 127.0.0.1. Needs the ``ui`` extra
(``pip install 'scribestore[ui]'``: starlette, jinja2, uvicorn).
"""

from __future__ import annotations

from scribestore.ui.catalog import Catalog, ManifestEntry

__all__ = ["Catalog", "ManifestEntry"]
