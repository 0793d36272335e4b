"""Build every dashboard and write (or compare) the JSON files Grafana provisions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from energymon_grafana import DEFAULT_CURRENCY, fleet, health, home
from energymon_grafana.files import differing, write_changed


@dataclass(frozen=True)
class Options:
    """What the generated files depend on beyond the code; the committed files use the
    defaults, so they do not depend on the machine that generated them."""

    currency: str = DEFAULT_CURRENCY


DASHBOARDS: dict[str, Callable[[Options], dashboard_builders.Dashboard]] = {
    "home-energy.json": lambda o: home.build(o.currency),
    "system-health.json": lambda o: health.build(),
    "fleet.json": lambda o: fleet.build(o.currency),
}


def _number_panels(board: dict[str, Any]) -> dict[str, Any]:
    """Panel ids in layout order: the SDK leaves them at zero, Grafana wants them unique."""
    for number, panel in enumerate(board["panels"], start=1):
        panel["id"] = number
    return board


def as_dict(builder: dashboard_builders.Dashboard) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return _number_panels(board)


def render(builder: dashboard_builders.Dashboard) -> str:
    return json.dumps(as_dict(builder), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated(options: Options) -> dict[str, str]:
    """File name -> the dashboard's JSON text."""
    return {name: render(make(options)) for name, make in DASHBOARDS.items()}


def write(directory: Path, options: Options) -> list[Path]:
    return write_changed(directory, generated(options))


def stale(directory: Path, options: Options) -> list[str]:
    """Files in `directory` that differ from what the code generates (or are missing, or are
    not generated at all)."""
    expected = generated(options)
    present = {p.name for p in directory.glob("*.json")}
    return sorted(present - set(expected)) + differing(directory, expected)
