from __future__ import annotations

from pathlib import Path

import pytest

from energymon.errors import ConfigError
from energymon.settings import Settings, load_settings, settings_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_lists_every_setting() -> None:
    assert settings_markdown() in DOCS.read_text(encoding="utf-8"), (
        "docs/configuration.md is out of date: paste the output of `energymon config docs`"
    )


def test_every_setting_has_help_text() -> None:
    for name, info in Settings.model_fields.items():
        assert info.description, name


def test_environment_and_keys_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# devices\nmega-02 = k2\n\nmega-03=k3  # garage\n")
    monkeypatch.setenv("ENERGYMON_DEVICE_KEYS", "mega-01=k1")
    monkeypatch.setenv("ENERGYMON_DEVICE_KEYS_FILE", str(keys))
    monkeypatch.setenv("ENERGYMON_LISTEN", "[::1]:9000")
    settings = load_settings()
    assert settings.device_key_table() == {"mega-01": "k1", "mega-02": "k2", "mega-03": "k3"}
    assert (settings.listen_host, settings.listen_port) == ("::1", 9000)


def test_env_file(tmp_path: Path) -> None:
    env = tmp_path / "energymon.env"
    env.write_text("ENERGYMON_HOME=cottage\nENERGYMON_INFLUX_DB=meters\n")
    settings = load_settings(env)
    assert (settings.home, settings.influx_db) == ("cottage", "meters")


def test_bad_settings_are_clear_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENERGYMON_DEVICE_KEYS", "mega-01")
    with pytest.raises(ConfigError, match="device=key"):
        load_settings().device_key_table()
    monkeypatch.setenv("ENERGYMON_HOME", "a\\b")
    with pytest.raises(ConfigError, match="home"):
        load_settings()
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.env")


def test_keys_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_DEVICE_KEYS", "mega-01=supersecret")
    assert "supersecret" not in repr(load_settings())
    assert "supersecret" not in str(load_settings().model_dump())


def test_a_mistyped_variable_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_INFLUX_ULR", "http://elsewhere:8086")
    with pytest.raises(ConfigError, match="did you mean ENERGYMON_INFLUX_URL"):
        load_settings()
