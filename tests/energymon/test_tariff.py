"""Tariffs: the formats, the PLN default, and clear refusals naming the setting."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from energymon.errors import ConfigError
from energymon.settings import make_settings
from energymon.tariff import PLN_R1_1300VA_IDR_PER_KWH, load_tariff_file, parse_tariff


def test_default_is_pln_r1_1300va() -> None:
    tariff = make_settings().tariff_schedule()
    assert tariff.price_at(datetime(2026, 11, 30, 19, 0)) == PLN_R1_1300VA_IDR_PER_KWH == 1444.70


def test_dated_periods_keep_history() -> None:
    tariff = parse_tariff(
        '[{"from": "2026-07-01", "price_per_kwh": 1500},'
        ' {"from": "2017-01-01", "price_per_kwh": 1444.70}]'
    )
    assert tariff.price_at(datetime(2026, 6, 30, 23, 59)) == 1444.70
    assert tariff.price_at(datetime(2026, 7, 1, 0, 0)) == 1500.0


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "tariff.toml"
    path.write_text(
        "[[periods]]\nfrom = 2026-01-01\nprice_per_kwh = 1000\n"
        '[[periods.windows]]\nstart = "17:00"\nend = "22:00"\nprice_per_kwh = 2000\n'
    )
    tariff = load_tariff_file(path)
    assert tariff.price_at(datetime(2026, 2, 1, 17, 0)) == 2000.0
    assert tariff.price_at(datetime(2026, 2, 1, 22, 0)) == 1000.0
    assert make_settings(tariff_file=path).tariff_schedule() == tariff


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "non-empty list of periods"),
        ("{", "not valid JSON"),
        ('[{"from": "2026-13-01", "price_per_kwh": 1}]', "is not a date"),
        ('[{"from": "2026-01-01", "price_per_kwh": -1}]', ">= 0"),
        ('[{"from": "2026-01-01", "price_per_kwh": 1, "rate": 2}]', "unknown keys"),
        (
            '[{"from": "2026-01-01", "price_per_kwh": 1,'
            ' "windows": [{"start": "17:30:15", "end": "18:00", "price_per_kwh": 2}]}]',
            "HH:MM",
        ),
        (
            '[{"from": "2026-01-01", "price_per_kwh": 1},'
            ' {"from": "2026-01-01", "price_per_kwh": 2}]',
            "distinct dates",
        ),
    ],
)
def test_refusals_name_the_setting(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="ENERGYMON_TARIFF") as caught:
        make_settings(tariff=text)
    assert problem in str(caught.value)


def test_tariff_and_tariff_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('[{"from": "2026-01-01", "price_per_kwh": 1}]')
    with pytest.raises(ConfigError, match="not both"):
        make_settings(tariff='[{"from": "2026-01-01", "price_per_kwh": 1}]', tariff_file=path)


def test_time_zone_is_checked() -> None:
    with pytest.raises(ConfigError, match="ENERGYMON_TIMEZONE: 'Asia/Jakartaa' is not an IANA"):
        make_settings(timezone="Asia/Jakartaa")
