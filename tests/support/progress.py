"""A Progress that remembers every call, for tests of what is reported."""

from __future__ import annotations


class Recorder:
    """A Progress that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def start(self, total: int | None, desc: str) -> None:
        self.calls.append(("start", (total, desc)))

    def advance(self, n: int) -> None:
        self.calls.append(("advance", n))

    def close(self) -> None:
        self.calls.append(("close", None))

    @property
    def advanced(self) -> int:
        return sum(int(n) for kind, n in self.calls if kind == "advance")  # type: ignore[call-overload]

    @property
    def starts(self) -> list[object]:
        return [arg for kind, arg in self.calls if kind == "start"]

    @property
    def closed(self) -> bool:
        return bool(self.calls) and self.calls[-1][0] == "close"
