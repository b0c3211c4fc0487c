"""A metric across experiments as the geometry of an SVG line chart.

The page draws what this computes (points, the line through them, axis
ticks), so the chart is plain SVG in the page with no script and no chart
library to fetch, and its geometry is tested as numbers.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import msgspec

__all__ = ["Chart", "Point", "Tick", "line_chart"]

WIDTH = 720
HEIGHT = 260
#: Room for the value ticks on the left and the labels below.
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment's value, placed on the chart."""

    x: float
    y: float
    label: str
    value: float


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """A value-axis tick: its height on the chart and its text."""

    y: float
    text: str


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """A line chart of one metric: empty when no experiment has a number for it."""

    metric: str
    width: int
    height: int
    left: int
    bottom: float
    points: tuple[Point, ...]
    ticks: tuple[Tick, ...]

    @property
    def path(self) -> str:
        """The SVG path through the points, in order."""
        return " ".join(
            f"{'M' if i == 0 else 'L'}{p.x:.1f},{p.y:.1f}" for i, p in enumerate(self.points)
        )


def line_chart(metric: str, values: Sequence[tuple[str, float]]) -> Chart:
    """The chart of ``values`` (label, finite value) in the order given, left to right.

    Higher values are drawn higher. Values too close to tell apart at the
    chart's height (equal ones, a single one) sit on the middle line; any
    finite values, however large or small, give a chart.
    """
    low, high = _padded(
        min((v for _, v in values), default=0.0), max((v for _, v in values), default=0.0)
    )
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(values) - 1, 1)

    def height(value: float) -> float:
        # Halves, so that the span of two extreme floats does not overflow.
        return TOP + inner_h * ((high / 2 - value / 2) / (high / 2 - low / 2))

    points = tuple(
        Point(
            x=LEFT + (step * i if len(values) > 1 else inner_w / 2),
            y=height(value),
            label=label,
            value=value,
        )
        for i, (label, value) in enumerate(values)
    )
    ticks = tuple(Tick(y=height(v), text=f"{v:.4g}") for v in _nice_ticks(low, high))
    return Chart(
        metric=metric,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        bottom=float(HEIGHT - BOTTOM),
        points=points,
        ticks=ticks,
    )


def _padded(low: float, high: float) -> tuple[float, float]:
    """The value range drawn: ``low`` to ``high`` with a margin, so the extreme
    points are not on the frame; a range too narrow to draw is widened around
    its middle."""
    middle = low / 2 + high / 2
    half = high / 2 - low / 2
    if half <= abs(middle) * 1e-9 or half == 0:
        half = abs(middle) * 0.05 or 1.0
    else:
        half *= 1.08
    return _finite(middle - half), _finite(middle + half)


def _finite(value: float) -> float:
    return max(-sys.float_info.max, min(sys.float_info.max, value))


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values from ``low`` to ``high``, about ``count`` of them (none when
    the range has no round step in floating point)."""
    raw = (high / 2 - low / 2) / (count - 1) * 2
    if not (math.isfinite(raw) and raw > 0):
        return []
    magnitude = math.pow(10.0, math.floor(math.log10(raw)))
    if magnitude == 0.0 or not math.isfinite(magnitude):
        return []
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    # Each tick from its index, not by adding steps: a bounded loop whatever
    # the precision, and no drift.
    # A tick that should be 0 but carries rounding error is shown as 0.
    ticks = [
        (t if abs(t) > step * 1e-9 else 0.0) for t in (first + i * step for i in range(count + 2))
    ]
    return sorted({t for t in ticks if low <= t <= high})
