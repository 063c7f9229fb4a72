"""Small text charts for the terminal: sparklines and a line chart, as plain strings.

Pure functions, so the CLI can print them and tests can read them.
"""

from __future__ import annotations

import math

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values, log: bool = False) -> str:
    """One block character per value, scaled between the smallest and largest (log10 if log)."""
    points = [math.log10(v) if log and v > 0 else (v if not log else float("nan")) for v in values]
    finite = [p for p in points if math.isfinite(p)]
    if not finite:
        return " " * len(points)
    low, high = min(finite), max(finite)
    if high - low <= 1e-9 * max(1.0, abs(high)):  # flat up to round-off: draw it flat
        return "".join(" " if not math.isfinite(p) else BLOCKS[len(BLOCKS) // 2] for p in points)
    span = high - low
    return "".join(" " if not math.isfinite(p) else BLOCKS[round((p - low) / span * (len(BLOCKS) - 1))]
                   for p in points)


def line_chart(series: dict[str, list[float]], height: int = 10, marks: str = "•×+o") -> list[str]:
    """Series over a shared x axis (index), one mark each, with the y range on the left."""
    values = [v for ys in series.values() for v in ys if v is not None and math.isfinite(v)]
    if not values:
        return []
    low, high = min(values), max(values)
    span = high - low or 1.0
    width = max(len(ys) for ys in series.values())
    grid = [[" "] * width for _ in range(height)]
    for mark, ys in zip(marks, series.values()):
        for x, y in enumerate(ys):
            if y is not None and math.isfinite(y):
                grid[height - 1 - round((y - low) / span * (height - 1))][x] = mark
    labels = [f"{high:8.3f} ┤" if row == 0 else f"{low:8.3f} ┤" if row == height - 1 else "         │"
              for row in range(height)]
    legend = "  ".join(f"{mark} {name}" for mark, name in zip(marks, series))
    return [label + "".join(row) for label, row in zip(labels, grid)] + ["          " + legend]
