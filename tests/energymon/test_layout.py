"""The home's layout: roles of meters, unlisted meters as circuits, clear refusals."""

from __future__ import annotations

import pytest

from energymon.errors import ConfigError
from energymon.layout import Meter, parse_layout
from energymon.settings import make_settings


def test_roles_and_the_default() -> None:
    layout = make_settings(
        layout="mains=arduino-1/pzem1; submeter=arduino-1/pzem2,arduino-1/pzem3;circuit=pi/solar"
    ).home_layout()
    assert layout.role("arduino-1", "pzem1") == "mains"
    assert layout.role("arduino-1", "pzem3") == "submeter"
    assert layout.role("pi", "solar") == "circuit"
    assert layout.role("arduino-2", "pzem1") == "circuit"
    assert Meter("arduino-1", "pzem2") in layout.meters
    assert parse_layout("").meters == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("main=a/b", "is not role=device/sensor"),
        ("mains=ab", "is not device/sensor"),
        ("mains=a/b;submeter=a/b", "listed twice"),
        ("mains=a/b,c/d", "more than one mains"),
        ("mains=a/ b", "white space"),
    ],
)
def test_refusals(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="ENERGYMON_LAYOUT") as caught:
        make_settings(layout=text)
    assert problem in str(caught.value)
