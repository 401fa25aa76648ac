"""2-D numeric arrays as pictures: colour-mapped (viridis) with a colour bar naming min and max.

Results become static display data (an ``<img>`` and the bar, nothing to close later); image
events get an ``ImageView`` whose frames arrive on any thread and are drawn on the loop thread at
the bridge's rate (a camera streaming at 100 Hz costs the frontend ``update_rate`` frames per
second). Only core ipywidgets and numpy: no JavaScript, so it shows in every frontend.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import zlib
from typing import Any

import ipywidgets as w
import numpy as np

from ._bridge import LoopBridge
from .widgets import format_value

__all__ = ["ImageView", "colorbar_html", "image_html", "is_image", "png_rgb"]

#: Longest side of a drawn frame; larger arrays are shown with a stride (every n-th pixel).
MAX_SIDE = 512

# viridis as a degree-6 polynomial per channel (a published fit, within 1/255 of matplotlib's table)
_VIRIDIS = np.array([
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
])


def _lut() -> np.ndarray:
    t = np.linspace(0.0, 1.0, 256)[:, None]
    rgb = np.zeros((256, 3))
    for coefficient in _VIRIDIS[::-1]:  # Horner
        rgb = rgb * t + coefficient
    out: np.ndarray = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out


LUT = _lut()


def is_image(value: Any) -> bool:
    """Whether ``value`` is shown as a picture: a non-empty 2-D array of numbers."""
    return isinstance(value, np.ndarray) and value.ndim == 2 and value.size > 0 and value.dtype.kind in "biuf"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_rgb(array: np.ndarray) -> tuple[bytes, float, float]:
    """A viridis PNG of a 2-D numeric array scaled to its finite min..max, with that min and max
    (NaN and infinities are drawn black)."""
    data = np.asarray(array, dtype=float)
    stride = max(1, math.ceil(max(data.shape) / MAX_SIDE))
    data = data[::stride, ::stride]
    finite = np.isfinite(data)
    lo, hi = (float(data[finite].min()), float(data[finite].max())) if finite.any() else (0.0, 0.0)
    index = np.where(finite, (data - lo) / ((hi - lo) or 1.0) * 255.0, 0.0).astype(np.uint8)
    rgb = LUT[index]
    rgb[~finite] = 0
    height, width = index.shape
    rows = b"".join(b"\x00" + row.tobytes() for row in rgb)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 6)) + _chunk(b"IEND", b"")
    return png, lo, hi


def colorbar_html(lo: float, hi: float, unit: str = "", height: int = 160) -> str:
    """A vertical colour bar, its top labelled with ``hi`` and its bottom with ``lo``."""
    stops = ", ".join(f"rgb({r},{g},{b}) {i / 7 * 100:.0f}%" for i, (r, g, b) in enumerate(LUT[np.linspace(0, 255, 8).astype(int)]))
    return (
        f"<div class='heros-colorbar' style='display:flex;align-items:stretch;gap:4px;height:{height}px'>"
        f"<div style='width:14px;background:linear-gradient(to top, {stops});border:1px solid #999'></div>"
        "<div style='display:flex;flex-direction:column;justify-content:space-between;font-size:11px'>"
        f"<span class='heros-colorbar-max'>{html.escape(format_value(hi, unit))}</span>"
        f"<span class='heros-colorbar-min'>{html.escape(format_value(lo, unit))}</span></div></div>"
    )


def _display_width(shape: tuple[int, ...]) -> int:
    """Small frames are shown enlarged (a 96 x 128 camera is 256 pixels wide), large ones as drawn."""
    width = min(shape[1], MAX_SIDE)
    return width * max(1, 256 // max(width, 1))


def image_html(array: np.ndarray, unit: str = "") -> str:
    """A result as static HTML: the picture beside its colour bar, and the array's summary under them."""
    png, lo, hi = png_rgb(array)
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        "<div class='heros-image' style='display:flex;gap:8px;align-items:flex-start'>"
        f"<img src='{src}' style='width:{_display_width(array.shape)}px;image-rendering:pixelated'/>"
        f"{colorbar_html(lo, hi, unit)}</div>"
        f"<div class='heros-image-summary'><code>{html.escape(format_value(array))}</code></div>"
    )


class ImageView:
    """A live picture of an image event: the latest frame, its colour bar and its summary.

    Parameters
    ----------
    bridge
        Frames are drawn on its loop thread, coalesced to its rate.
    unit
        The unit of the pixel values, shown on the colour bar.
    """

    def __init__(self, bridge: LoopBridge, unit: str = "") -> None:
        self._bridge = bridge
        self.unit = unit
        self.frames = 0
        self.drawn = 0
        self.image = w.Image(format="png", layout=w.Layout(width="256px", flex="0 0 auto"))
        self.image.add_class("heros-image-frame")
        self.colorbar = w.HTML(colorbar_html(0.0, 0.0, unit))
        self.summary = w.HTML()
        self.summary.add_class("heros-image-summary")
        self.widget = w.VBox([w.HBox([self.image, self.colorbar]), self.summary])
        self.widget.add_class("heros-image")
        self.lo = self.hi = math.nan

    def update(self, frame: np.ndarray) -> None:
        """Any thread: a new frame; the latest one is drawn at the next flush."""
        self.frames += 1
        self._bridge.post(("image", id(self)), self._draw, frame)

    def _draw(self, frame: np.ndarray) -> None:
        png, self.lo, self.hi = png_rgb(frame)
        width = f"{_display_width(frame.shape)}px"
        if self.image.layout.width != width:
            self.image.layout.width = width
        self.image.value = png
        self.colorbar.value = colorbar_html(self.lo, self.hi, self.unit)
        self.summary.value = f"<code>{html.escape(format_value(frame))}</code> · frame {self.frames}"
        self.drawn += 1

    def close(self) -> None:
        for widget in (self.image, self.colorbar, self.summary, self.widget):
            widget.close()
