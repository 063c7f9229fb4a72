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


SHADES = " .:-=+*#%@"


def heat_map(values, rows: list[str], columns: tuple[str, str], mark: tuple[int, int] | None = None,
             log: bool = True) -> list[str]:
    """A grid of values as shades, darkest for the largest (log10 if log), one character per
    cell, each row labelled on the left; `columns` labels the first and last column; the cell at
    `mark` (row, column) shows X. Non-finite cells show as '!'."""
    grid = [[math.log10(v) if log and v > 0 else (v if not log else -math.inf) for v in row] for row in values]
    finite = [v for row in grid for v in row if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = high - low or 1.0
    width = max(len(label) for label in rows)
    lines = []
    for r, (label, row) in enumerate(zip(rows, grid)):
        cells = "".join("X" if mark == (r, c) else SHADES[round((v - low) / span * (len(SHADES) - 1))]
                        if math.isfinite(v) else "!" for c, v in enumerate(row))
        lines.append(f"{label:>{width}} │{cells}│")
    ncols = len(grid[0]) if grid else 0
    lines.append(" " * width + " └" + "─" * ncols + "┘")
    lines.append(" " * (width + 2) + columns[0] + " " * max(1, ncols - len(columns[0]) - len(columns[1])) + columns[1])
    return lines
