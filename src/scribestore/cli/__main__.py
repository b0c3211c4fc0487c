"""``python -m scribestore.cli``."""

from __future__ import annotations

from scribestore.cli import main

raise SystemExit(main())
