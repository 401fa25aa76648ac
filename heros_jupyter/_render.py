"""Small pictures without a plotting library: an SVG sparkline for number streams, a PNG for 2-D arrays."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["png_from_array", "sparkline_svg"]


def sparkline_svg(values: Sequence[float], width: int = 160, height: int = 28) -> str:
    """An inline SVG polyline of ``values`` (empty text for fewer than two finite values)."""
    points = [v for v in values if math.isfinite(v)]
    if len(points) < 2:
        return ""
    lo, hi = min(points), max(points)
    span = hi - lo or 1.0
    step = (width - 2) / (len(points) - 1)
    coords = " ".join(f"{1 + i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(points))
    return (
        f"<svg class='heros-sparkline' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        "style='vertical-align:middle'>"
        f"<polyline fill='none' stroke='#1f77b4' stroke-width='1.2' points='{coords}'/></svg>"
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_from_array(array: Any, max_side: int = 512) -> bytes | None:
    """A grayscale PNG of a 2-D numeric array, scaled to its min..max; None for anything else."""
    import numpy as np

    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.size == 0 or array.dtype.kind not in "biuf":
        return None
    data = array.astype(float)
    stride = max(1, math.ceil(max(data.shape) / max_side))
    data = data[::stride, ::stride]
    finite = np.isfinite(data)
    if not finite.any():
        return None
    lo, hi = float(data[finite].min()), float(data[finite].max())
    scaled = np.where(finite, (data - lo) / ((hi - lo) or 1.0) * 255.0, 0.0).astype(np.uint8)
    rows = b"".join(b"\x00" + row.tobytes() for row in scaled)
    height, width = scaled.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 6)) + _chunk(b"IEND", b"")
