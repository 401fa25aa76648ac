"""The live discovery table shown by ``%heros discover``: one row per HERO alive, each with a connect button."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .registry import Registry, format_table

__all__ = ["DiscoveryTable"]

_COLUMNS = (("name", "11em"), ("class", "16em"), ("tags", "14em"), ("alive", "9em"))


def _cell(text: str, width: str, css: str = "") -> w.HTML:
    cell = w.HTML(text, layout=w.Layout(width=width))
    if css:
        cell.add_class(css)
    return cell


def _close_row(row: w.HBox) -> None:
    for cell in row.children:
        cell.close()
    row.close()


class DiscoveryTable:
    """A table that follows ``registry.heroes`` (rows appear and disappear as HEROs join and leave).

    Parameters
    ----------
    registry
        The realm's live registry.
    connect
        ``connect(name, table)`` is called when a row's button is clicked; it should show the
        panel with ``table.show(panel)`` when it is ready (from the loop thread).
    tag
        Only list HEROs carrying this tag.
    """

    def __init__(self, registry: Registry, connect: Callable[[str, DiscoveryTable], None], tag: str | None = None) -> None:
        self.registry = registry
        self.tag = tag
        self._connect = connect
        self.rows: dict[str, w.HBox] = {}
        self.closed = False
        what = f" with tag <code>{html.escape(tag)}</code>" if tag else ""
        self.title = w.HTML()
        self.title.add_class("heros-discover-title")
        self._title_text = f"HEROs{what} in realm <code>{html.escape(registry.realm)}</code>"
        head = w.HBox([_cell(f"<b>{name}</b>", width) for name, width in _COLUMNS])
        self.grid = w.VBox([head])
        self.grid.add_class("heros-discover-rows")
        self.status = w.HTML()
        self.status.add_class("heros-status")
        self.panels = w.VBox()
        self.panels.add_class("heros-discover-panels")
        self.widget = w.VBox([self.title, self.grid, self.status, self.panels])
        self.widget.add_class("heros-discover")
        self._update(registry.snapshot())
        registry.observe(self._changed, names="heroes")

    def _changed(self, change: dict[str, Any]) -> None:
        """Loop thread: the registry's model changed."""
        if not self.closed:
            self._update(change["new"])

    def _update(self, heroes: dict[str, dict[str, Any]]) -> None:
        shown = {n: h for n, h in heroes.items() if self.tag is None or self.tag in h["tags"]}
        for name in [n for n in self.rows if n not in shown]:
            _close_row(self.rows.pop(name))
        for name, info in shown.items():
            if name not in self.rows:
                self.rows[name] = self._row(info)
        head = self.grid.children[0]
        self.grid.children = (head, *(self.rows[n] for n in sorted(self.rows)))
        self.title.value = f"{self._title_text}: {len(self.rows)} alive"

    def _row(self, info: dict[str, Any]) -> w.HBox:
        name = info["name"]
        button = w.Button(description="connect", tooltip=f"%heros connect {name}", layout=w.Layout(width="7em"))
        button.add_class("heros-connect")
        button.add_class(f"heros-connect-{name}")
        button.on_click(lambda _b: self._connect(name, self))
        cells = [
            _cell(f"<b>{html.escape(name)}</b>", _COLUMNS[0][1], "heros-row-name"),
            _cell(html.escape(info["class"]) + (" <small class='heros-upstream' title='served by upstream HEROS (CBOR): "
                  "attributes are polled, no units or limits'>upstream</small>" if info.get("upstream") else ""), _COLUMNS[1][1]),
            _cell(html.escape(", ".join(info["tags"]) or "-"), _COLUMNS[2][1]),
            _cell(f"● since {html.escape(info['since'])}", _COLUMNS[3][1], "heros-row-alive"),
            button,
        ]
        row = w.HBox(cells)
        row.add_class("heros-row")
        row.add_class(f"heros-row-{name}")
        return row

    def show(self, panel: Any) -> None:
        """Loop thread: show ``panel`` under the table (the last one connected)."""
        self.status.value = ""
        self.panels.children = (panel.widget,)

    def say(self, text: str, *, error: bool = False) -> None:
        """Loop thread: a line under the table."""
        self.status.value = f"<span style='color:#b00'>{html.escape(text)}</span>" if error else html.escape(text)

    def text(self) -> str:
        return format_table(self.registry.realm, self.registry.snapshot(), self.tag)

    def close(self) -> None:
        """Stop following the registry and close the widgets."""
        if self.closed:
            return
        self.closed = True
        self.registry.unobserve(self._changed, names="heroes")
        for row in self.rows.values():
            _close_row(row)
        for widget in (self.title, self.grid, self.status, self.panels, self.widget):
            widget.close()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        if self.closed:
            return {"text/plain": self.text()}
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        return bundle

    def __repr__(self) -> str:
        return f"<DiscoveryTable realm={self.registry.realm!r} rows={sorted(self.rows)}>"
