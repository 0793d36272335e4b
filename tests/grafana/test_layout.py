"""The layout drawings of docs/dashboards.md: generated with the dashboards, naming every panel
where its gridPos puts it, and the dashboards' grids themselves without overlaps or panels
past Grafana's columns."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from energymon_cli.main import main
from energymon_grafana.files import differing
from energymon_grafana.layout import GRID_COLUMN_COUNT, GRID_WIDTH_PX, PAD_PX, drawings, svg
from energymon_grafana.render import Options, generated
from tests.grafana.grafana_files import DASHBOARDS, ROOT, load_dashboard

IMAGES = ROOT / "docs" / "images"
SVG = "{http://www.w3.org/2000/svg}"

Rect = tuple[int, int, int, int]


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root: ET.Element, css: str) -> list[str]:
    """The text of every <text> of class `css`, its wrapped lines joined again."""
    return [
        " ".join(span.text or "" for span in text.iter(f"{SVG}tspan"))
        for text in root.iter(f"{SVG}text")
        if css in text.get("class", "").split()
    ]


def _overlapping(rects: list[tuple[str, Rect]]) -> list[tuple[str, str]]:
    """Pairs of (left, top, width, height) rectangles sharing some area."""
    return [
        (a, b)
        for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in itertools.combinations(rects, 2)
        if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
    ]


def _boxes(root: ET.Element) -> list[ET.Element]:
    """The panels' rectangles (the background has no position)."""
    return [r for r in root.iter(f"{SVG}rect") if r.get("x") is not None]


def _rect(element: ET.Element) -> Rect:
    x, y, w, h = (int(element.get(k, "0")) for k in ("x", "y", "width", "height"))
    return x, y, w, h


def _drawing(path: Path) -> ET.Element:
    return _parse((IMAGES / f"dashboard-{path.stem}.svg").read_text(encoding="utf-8"))


def test_the_committed_drawings_are_the_generated_ones() -> None:
    expected = drawings(generated(Options()))
    assert differing(IMAGES, expected) == []
    assert {p.name for p in IMAGES.glob("dashboard-*.svg")} == set(expected)
    assert set(expected) == {f"dashboard-{p.stem}.svg" for p in DASHBOARDS}


def test_build_check_notices_a_stale_drawing(tmp_path: Path) -> None:
    dirs = ["--out", str(tmp_path / "json"), "--alerting", str(tmp_path / "alerting")]
    dirs += ["--images", str(tmp_path / "images")]
    assert main(["grafana", "build", *dirs]) == 0
    assert main(["grafana", "build", *dirs, "--check"]) == 0
    path = tmp_path / "images" / "dashboard-home-energy.svg"
    path.write_text(path.read_text().replace("Power now", "Power"))
    assert main(["grafana", "build", *dirs, "--check"]) == 1
    assert main(["grafana", "build", *dirs]) == 0
    assert main(["grafana", "build", *dirs, "--check"]) == 0


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_title_is_drawn_with_the_caption(path: Path) -> None:
    board = load_dashboard(path)
    root = _drawing(path)
    assert sorted(_texts(root, "title")) == sorted(p["title"] for p in board["panels"])
    [caption] = _texts(root, "caption")
    assert f"grafana/dashboards/{path.name}" in caption and "Not a screenshot" in caption


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_drawn_boxes_do_not_overlap_and_fit_the_drawing(path: Path) -> None:
    root = _drawing(path)
    rects = [(str(i), _rect(r)) for i, r in enumerate(_boxes(root))]
    assert rects
    assert _overlapping(rects) == []
    for _, (x, _y, w, _h) in rects:
        assert x >= PAD_PX and x + w <= PAD_PX + GRID_WIDTH_PX


def _grid(board: dict[str, Any]) -> list[tuple[str, Rect]]:
    return [
        (p["title"], (p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]))
        for p in board["panels"]
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_dashboards_panels_do_not_overlap(path: Path) -> None:
    assert _overlapping(_grid(load_dashboard(path))) == []


@pytest.mark.parametrize(
    "path",
    DASHBOARDS,
    ids=lambda p: p.name,
)
def test_the_dashboards_panels_fit_grafanas_columns(path: Path) -> None:
    past = [
        title
        for title, (x, _y, w, _h) in _grid(load_dashboard(path))
        if x < 0 or x + w > GRID_COLUMN_COUNT
    ]
    assert past == []


def _board(*panels: dict[str, Any]) -> dict[str, Any]:
    return {"title": "T & <b>", "panels": list(panels)}


def _panel(title: str, kind: str, grid: Rect, **extra: Any) -> dict[str, Any]:
    x, y, w, h = grid
    return {"title": title, "type": kind, "gridPos": {"x": x, "y": y, "w": w, "h": h}, **extra}


def test_a_panel_past_the_grid_is_cut_at_its_edge_and_marked() -> None:
    root = _parse(
        svg(_board(_panel("Wide <table>", "table", (16, 0, 24, 8))), "grafana/dashboards/t.json")
    )
    [rect] = _boxes(root)
    x, _y, w, _h = _rect(rect)
    assert x + w == PAD_PX + GRID_WIDTH_PX
    assert rect.get("stroke-dasharray")
    assert _texts(root, "title") == ["Wide <table>"]
    [past] = _texts(root, "past")
    assert "x 16 + w 24 = 40" in past


def test_rows_name_their_repeat_and_a_collapsed_rows_panels() -> None:
    hidden = _panel("Hidden graph", "timeseries", (0, 2, 12, 8))
    root = _parse(
        svg(
            _board(
                _panel("$home", "row", (0, 0, 24, 1), repeat="home"),
                _panel("Closed", "row", (0, 1, 24, 1), collapsed=True, panels=[hidden]),
            ),
            "grafana/dashboards/t.json",
        )
    )
    assert _texts(root, "title") == ["$home", "Closed"]
    assert _texts(root, "note") == [
        "(repeated for each value of $home)",
        "(collapsed, holds: Hidden graph)",
    ]
