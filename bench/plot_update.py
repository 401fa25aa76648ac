"""What one live-plot update costs the kernel, for the plotting libraries a panel could use.

    python bench/plot_update.py [--updates 200] [--points 600] [--json PATH]

For each library that is installed (bqplot, plotly's FigureWidget, ipympl, anywidget with a tiny
canvas plot) it builds the plot a panel shows for an event stream (three traces, a window of
``--points`` samples: a minute at 10 Hz) and an image view (a 96 x 128 camera frame with a colour
scale), then times ``--updates`` updates: the window slides by one sample on every trace, or a new
frame replaces the image. No frontend is attached; every widget gets a comm that records what it
would send, so the figures are the kernel's CPU time per update and the bytes per update put on
the wire (JSON plus binary buffers). At 10 Hz, 10 ms per update is 10 % of one core.

Install the candidates first (they are not dependencies of the project)::

    pip install bqplot "plotly>=6" anywidget ipympl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

SENT: list[int] = []


class CountingComm:
    """Stands in for a frontend's comm: counts the bytes each message would carry."""

    kernel = "bench"

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        size = len(json.dumps(data, default=str))
        size += sum(memoryview(b).nbytes for b in buffers or ())
        SENT.append(size)

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def _series(points: int) -> tuple[np.ndarray, list[np.ndarray]]:
    t = np.arange(points, dtype=float) / 10.0
    return t, [np.sin(t / (3 + k)) + k for k in range(3)]


def bqplot_lines(points: int) -> Callable[[int], None]:
    import bqplot as bq

    t, ys = _series(points)
    x_scale, y_scale = bq.LinearScale(), bq.LinearScale()
    lines = [bq.Lines(x=t, y=y, scales={"x": x_scale, "y": y_scale}) for y in ys]
    bq.Figure(marks=lines, axes=[bq.Axis(scale=x_scale, label="s"), bq.Axis(scale=y_scale, orientation="vertical", label="K")])

    def update(i: int) -> None:
        now = (points + i) / 10.0
        for k, line in enumerate(lines):
            with line.hold_sync():
                line.x = np.append(line.x[1:], now)
                line.y = np.append(line.y[1:], np.sin(now / (3 + k)) + k)

    return update


def bqplot_image(_: int) -> Callable[[int], None]:
    import bqplot as bq

    rng = np.random.default_rng(0)
    scales = {"x": bq.LinearScale(), "y": bq.LinearScale(), "color": bq.ColorScale(scheme="viridis")}
    heat = bq.HeatMap(color=rng.random((96, 128)), scales=scales)
    bq.Figure(marks=[heat], axes=[bq.ColorAxis(scale=scales["color"])])

    def update(i: int) -> None:
        heat.color = rng.random((96, 128)) * 4095

    return update


def plotly_lines(points: int) -> Callable[[int], None]:
    import plotly.graph_objects as go

    t, ys = _series(points)
    fig = go.FigureWidget([go.Scatter(x=t, y=y, mode="lines") for y in ys])

    def update(i: int) -> None:
        now = (points + i) / 10.0
        with fig.batch_update():
            for k, trace in enumerate(fig.data):
                trace.x = np.append(np.asarray(trace.x)[1:], now)
                trace.y = np.append(np.asarray(trace.y)[1:], np.sin(now / (3 + k)) + k)

    return update


def plotly_image(_: int) -> Callable[[int], None]:
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    fig = go.FigureWidget([go.Heatmap(z=rng.random((96, 128)), colorscale="Viridis")])

    def update(i: int) -> None:
        fig.data[0].z = rng.random((96, 128)) * 4095

    return update


def ipympl_lines(points: int) -> Callable[[int], None]:
    import matplotlib

    matplotlib.use("module://ipympl.backend_nbagg")
    import matplotlib.pyplot as plt

    t, ys = _series(points)
    fig, ax = plt.subplots(figsize=(6, 3))
    lines = [ax.plot(t, y)[0] for y in ys]

    def update(i: int) -> None:
        now = (points + i) / 10.0
        for k, line in enumerate(lines):
            x, y = line.get_data()
            line.set_data(np.append(np.asarray(x)[1:], now), np.append(np.asarray(y)[1:], np.sin(now / (3 + k)) + k))
        ax.relim()
        ax.autoscale_view()
        fig.canvas.draw()  # what a frontend's draw request makes the kernel do, then send the PNG diff
        fig.canvas.send_binary(fig.canvas.get_diff_image())

    return update


def ipympl_image(_: int) -> Callable[[int], None]:
    import matplotlib

    matplotlib.use("module://ipympl.backend_nbagg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(rng.random((96, 128)), cmap="viridis")
    fig.colorbar(im)

    def update(i: int) -> None:
        frame = rng.random((96, 128)) * 4095
        im.set_data(frame)
        im.set_clim(frame.min(), frame.max())
        fig.canvas.draw()
        fig.canvas.send_binary(fig.canvas.get_diff_image())

    return update


def anywidget_lines(points: int) -> Callable[[int], None]:
    import anywidget
    import traitlets

    class Plot(anywidget.AnyWidget):  # type: ignore[misc]
        _esm = "export default { render({ model, el }) { el.innerText = model.get('y').byteLength; } }"
        x = traitlets.Any().tag(sync=True)
        y = traitlets.Any().tag(sync=True)

    t, ys = _series(points)
    plot = Plot(x=memoryview(t.tobytes()), y=memoryview(np.stack(ys).tobytes()))

    def update(i: int) -> None:
        nonlocal t, ys
        now = (points + i) / 10.0
        t = np.append(t[1:], now)
        ys = [np.append(y[1:], np.sin(now / (3 + k)) + k) for k, y in enumerate(ys)]
        with plot.hold_sync():
            plot.x = memoryview(t.tobytes())
            plot.y = memoryview(np.stack(ys).tobytes())

    return update


Builder = Callable[[int], Callable[[int], None]]
#: label -> (the modules a panel would import, the line plot, the image view)
CANDIDATES: dict[str, tuple[tuple[str, ...], Builder, Builder | None]] = {
    "bqplot": (("bqplot",), bqplot_lines, bqplot_image),
    "plotly FigureWidget": (("plotly.graph_objects", "anywidget"), plotly_lines, plotly_image),
    "ipympl (matplotlib)": (("matplotlib.pyplot", "ipympl.backend_nbagg"), ipympl_lines, ipympl_image),
    "anywidget (bare canvas)": (("anywidget",), anywidget_lines, None),
}


def measure(build: Builder, points: int, updates: int) -> dict[str, float]:
    update = build(points)
    for i in range(5):  # warm up: first-time imports and caches
        update(i)
    SENT.clear()
    cpu: list[float] = []
    for i in range(updates):
        t0 = time.process_time()
        update(i + 5)
        cpu.append(time.process_time() - t0)
    return {"cpu_ms_median": statistics.median(cpu) * 1e3, "cpu_ms_p90": sorted(cpu)[int(len(cpu) * 0.9)] * 1e3,
            "kib_per_update": sum(SENT) / updates / 1024, "messages_per_update": len(SENT) / updates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--points", type=int, default=600)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    import comm

    comm.create_comm = lambda **kwargs: CountingComm(**kwargs)
    results: dict[str, Any] = {}
    for label, (modules, lines, image) in CANDIDATES.items():
        if any(importlib.util.find_spec(m.partition(".")[0]) is None for m in modules):
            print(f"{label}: not installed, skipped")
            continue
        t0 = time.perf_counter()
        for module in modules:
            importlib.import_module(module)
        row: dict[str, Any] = {"import_s": round(time.perf_counter() - t0, 2), "lines": measure(lines, args.points, args.updates)}
        if image is not None:
            row["image"] = measure(image, args.points, args.updates)
        results[label] = row
    print(f"{args.updates} updates; lines: 3 traces x {args.points} points, the window sliding by one; image: 96 x 128 frame")
    print("| library | import s | lines: CPU ms (median/p90) | lines: KiB/update | image: CPU ms (median/p90) | image: KiB/update |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, row in results.items():
        lines_row, image_row = row["lines"], row.get("image")
        image_text = (f"{image_row['cpu_ms_median']:.2f} / {image_row['cpu_ms_p90']:.2f} | {image_row['kib_per_update']:.1f}"
                      if image_row else "– | –")
        print(f"| {label} | {row['import_s']} | {lines_row['cpu_ms_median']:.2f} / {lines_row['cpu_ms_p90']:.2f} | "
              f"{lines_row['kib_per_update']:.1f} | {image_text} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
