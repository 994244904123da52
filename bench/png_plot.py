"""A line chart as a PNG with no dependency beyond the standard library (zlib, struct): enough for a
benchmark's curves, an axis box, tick marks and a colour legend. No text: the table beside it names
the series in the same colour order."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (220, 220, 220)
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, pixels: list[list[tuple[int, int, int]]]) -> None:
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )


def line_chart(
    path: Path, series: Sequence[Sequence[float]], y_range: tuple[float, float] = (0.0, 1.0), size=(640, 400)
) -> None:
    """Each series (y values over x = 0..n-1) in COLOURS order; a grey grid line every 0.1 of y."""
    width, height = size
    margin = 30
    pixels = [[WHITE] * width for _ in range(height)]
    low, high = y_range
    plot_w, plot_h = width - 2 * margin, height - 2 * margin
    longest = max(len(s) for s in series)

    def at(i: int, y: float) -> tuple[int, int]:
        x = margin + round(i * (plot_w - 1) / max(longest - 1, 1))
        return x, margin + plot_h - 1 - round((min(max(y, low), high) - low) * (plot_h - 1) / (high - low))

    def dot(x: int, y: int, colour: tuple[int, int, int], radius: int = 1) -> None:
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if 0 <= y + dy < height and 0 <= x + dx < width:
                    pixels[y + dy][x + dx] = colour

    for tick in range(11):
        _, y = at(0, low + (high - low) * tick / 10)
        for x in range(margin, margin + plot_w):
            pixels[y][x] = GREY
        for x in range(margin - 6, margin):
            pixels[y][x] = BLACK
    for x in range(margin, margin + plot_w):
        pixels[margin][x] = pixels[margin + plot_h - 1][x] = BLACK
    for y in range(margin, margin + plot_h):
        pixels[y][margin] = pixels[y][margin + plot_w - 1] = BLACK
    for number, values in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        previous = None
        for i, value in enumerate(values):
            point = at(i, value)
            if previous is not None:  # a straight segment, one dot per step of the longer axis
                steps = max(abs(point[0] - previous[0]), abs(point[1] - previous[1]), 1)
                for s in range(steps + 1):
                    dot(previous[0] + round((point[0] - previous[0]) * s / steps),
                        previous[1] + round((point[1] - previous[1]) * s / steps), colour)  # fmt: skip
            previous = point
        for dx in range(20):  # the legend: a swatch per series, bottom right, first lowest
            dot(width - margin - 40 + dx, margin + plot_h - 20 - 12 * number, colour)
    write_png(path, pixels)
