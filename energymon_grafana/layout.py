"""Where each panel sits on a dashboard, drawn as a standalone SVG from the dashboard's JSON.

Grafana cannot run in the project's CI, so docs/dashboards.md shows these drawings instead of
screenshots: boxes at each panel's `gridPos`, with its title and type, no data. The grid is
Grafana's own (public/app/core/constants.ts: GRID_COLUMN_COUNT, GRID_CELL_HEIGHT,
GRID_CELL_VMARGIN, handed to react-grid-layout as `cols`, `rowHeight` and `margin`), and a
box's pixels follow react-grid-layout's: a unit plus a margin per step, the margins between
units inside a box.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from xml.sax.saxutils import escape, quoteattr

GRID_COLUMN_COUNT = 24
GRID_CELL_HEIGHT_PX = 30
GRID_CELL_VMARGIN_PX = 8
# A drawing choice, not Grafana's (its columns follow the window): narrow enough that GitHub
# shows the drawing near its own size, wide enough for a quarter-width panel's title.
COLUMN_WIDTH_PX = 32
PAD_PX = 16
TITLE_FONT_PX = 14
# Average advance of a sans-serif character, in ems, rounded up so a wrapped line fits.
CHAR_EM = 0.6
FILL = {"stat": "#e8f1fb", "timeseries": "#eaf6ec", "table": "#f4eefa"}
OTHER_FILL = "#fdf3e3"

GRID_WIDTH_PX = GRID_COLUMN_COUNT * COLUMN_WIDTH_PX + (GRID_COLUMN_COUNT - 1) * GRID_CELL_VMARGIN_PX
WIDTH_PX = GRID_WIDTH_PX + 2 * PAD_PX


@dataclass(frozen=True)
class Box:
    """One top-level panel of a dashboard, in grid units."""

    title: str
    type: str
    x: int
    y: int
    w: int
    h: int
    note: str = ""

    @property
    def past_grid(self) -> bool:
        return self.x < 0 or self.x + self.w > GRID_COLUMN_COUNT


def _row_note(panel: Mapping[str, Any]) -> str:
    notes = []
    if panel.get("repeat"):
        notes.append(f"repeated for each value of ${panel['repeat']}")
    if panel.get("collapsed"):
        inside = ", ".join(p["title"] for p in panel.get("panels", []))
        notes.append(f"collapsed, holds: {inside}" if inside else "collapsed, empty")
    return "; ".join(notes)


def boxes(board: Mapping[str, Any]) -> list[Box]:
    """The dashboard's top-level panels in the order of its JSON; a collapsed row's panels
    are named in its note, since Grafana places them only when the row is opened."""
    return [
        Box(
            title=p.get("title", ""),
            type=p["type"],
            x=p["gridPos"]["x"],
            y=p["gridPos"]["y"],
            w=p["gridPos"]["w"],
            h=p["gridPos"]["h"],
            note=_row_note(p) if p["type"] == "row" else "",
        )
        for p in board["panels"]
    ]


def _left_px(column: int) -> int:
    return PAD_PX + column * (COLUMN_WIDTH_PX + GRID_CELL_VMARGIN_PX)


def _top_px(row: int, header_px: int) -> int:
    return header_px + row * (GRID_CELL_HEIGHT_PX + GRID_CELL_VMARGIN_PX)


def _span_px(units: int, unit_px: int) -> int:
    return units * unit_px + max(0, units - 1) * GRID_CELL_VMARGIN_PX


def _wrap(text: str, width_px: int, font_px: int) -> list[str]:
    per_line = max(1, int(width_px / (font_px * CHAR_EM)))
    return textwrap.wrap(text, per_line, break_long_words=False, break_on_hyphens=False) or [""]


def _text(x: int, y: int, lines: list[str], font_px: int, css: str) -> str:
    spans = "".join(
        f'<tspan x="{x}" dy="{0 if i == 0 else font_px + 4}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text class="{css}" x="{x}" y="{y}">{spans}</text>'


def _row(box: Box, header_px: int) -> list[str]:
    top, left = _top_px(box.y, header_px), _left_px(0)
    bottom = top + GRID_CELL_HEIGHT_PX
    out = [
        f'<line x1="{left}" y1="{bottom}" x2="{left + GRID_WIDTH_PX}" y2="{bottom}" '
        'stroke="#8a8f98"/>',
        _text(left, top + 21, [box.title], 16, "title row"),
    ]
    if box.note:
        out.append(_text(left + GRID_WIDTH_PX, top + 21, [f"({box.note})"], 12, "note end"))
    return out


def _panel(box: Box, header_px: int) -> list[str]:
    # A box past the grid's edge is cut at it and marked, so the drawing stays readable.
    first = min(max(box.x, 0), GRID_COLUMN_COUNT - 1)
    last = max(first + 1, min(box.x + box.w, GRID_COLUMN_COUNT))
    left, top = _left_px(first), _top_px(box.y, header_px)
    width, height = _span_px(last - first, COLUMN_WIDTH_PX), _span_px(box.h, GRID_CELL_HEIGHT_PX)
    stroke = (
        'stroke="#c62828" stroke-width="2" stroke-dasharray="6 4"'
        if box.past_grid
        else 'stroke="#8a8f98"'
    )
    fill = FILL.get(box.type, OTHER_FILL)
    title = _wrap(box.title, width - 20, TITLE_FONT_PX)
    below = top + 24 + len(title) * (TITLE_FONT_PX + 4)
    out = [
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" rx="4" fill="{fill}" '
        f"{stroke}/>",
        _text(left + 10, top + 24, title, TITLE_FONT_PX, "title"),
        _text(left + 10, below, [f"{box.type} · w {box.w} · h {box.h}"], 12, "meta"),
    ]
    if box.past_grid:
        past = f"x {box.x} + w {box.w} = {box.x + box.w}: past Grafana's {GRID_COLUMN_COUNT} "
        past += "columns, drawn cut at the edge"
        out.append(_text(left + 10, below + 20, _wrap(past, width - 20, 12), 12, "past"))
    return out


def svg(board: Mapping[str, Any], source: str) -> str:
    """The drawing of `board`, read from the file `source` (named in the caption)."""
    drawn = boxes(board)
    caption = _wrap(
        f"Layout generated from {source} by `energymon grafana build`: each panel at its "
        f"gridPos on Grafana's {GRID_COLUMN_COUNT}-column grid, with its title and type. "
        "Not a screenshot: no data is drawn.",
        GRID_WIDTH_PX,
        12,
    )
    header_px = PAD_PX + 40 + 16 * len(caption)
    rows = max((b.y + b.h for b in drawn), default=0)
    height = _top_px(rows, header_px) + PAD_PX
    body = [
        f'<rect width="{WIDTH_PX}" height="{height}" fill="#ffffff"/>',
        _text(PAD_PX, PAD_PX + 18, [board["title"]], 20, "dashboard"),
        _text(PAD_PX, PAD_PX + 40, caption, 12, "caption"),
    ]
    for box in drawn:
        body += _row(box, header_px) if box.type == "row" else _panel(box, header_px)
    style = (
        "text{font-family:sans-serif;fill:#1f2328}.title{font-size:14px;font-weight:bold}"
        ".row{font-size:16px}.dashboard{font-size:20px;font-weight:bold}"
        ".caption,.meta,.note,.past{font-size:12px}.caption,.meta,.note{fill:#57606a}"
        ".past{fill:#c62828}.end{text-anchor:end}"
    )
    label = quoteattr(f"Layout of the Grafana dashboard {board['title']}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" '
        f'viewBox="0 0 {WIDTH_PX} {height}" role="img" aria-label={label}>\n'
        f"<style>{style}</style>\n" + "\n".join(body) + "\n</svg>\n"
    )


def image_name(dashboard_file: str) -> str:
    return f"dashboard-{PurePosixPath(dashboard_file).stem}.svg"


def drawings(dashboards: Mapping[str, str]) -> dict[str, str]:
    """Dashboard file name -> JSON text, to image file name -> its drawing."""
    return {
        image_name(name): svg(json.loads(text), f"grafana/dashboards/{name}")
        for name, text in dashboards.items()
    }
