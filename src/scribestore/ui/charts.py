"""A metric across experiments as the geometry of an SVG line chart.

The page draws what this computes (points, the line through them, axis
ticks), so the chart is plain SVG in the page with no script and no chart
library to fetch, and its geometry is tested as numbers.
"""

from __future__ import annotations

import math
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
    """The chart of ``values`` (label, value) in the order given, left to right.

    Higher values are drawn higher; a single value or equal values sit on
    the middle line.
    """
    low = min((v for _, v in values), default=0.0)
    high = max((v for _, v in values), default=0.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    # A margin, so the highest and lowest points are not drawn on the frame.
    margin = (high - low) * 0.08
    low, high = low - margin, high + margin
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(values) - 1, 1)

    def height(value: float) -> float:
        return TOP + inner_h * (high - value) / (high - low)

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


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values from ``low`` to ``high``, about ``count`` of them."""
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks
