"""The Installation's settings are built and checked here, in the parent process."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from energymon.errors import ConfigError
from energymon.settings import load_settings
from harness.installation import Installation


def test_a_misspelt_setting_fails_before_any_process_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean replicator_backoff_cap_s"):
        Installation(tmp_path, replicator_backof_cap_s=1)


def test_children_get_the_installation_settings_and_nothing_inherited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENERGYMON_CONFIG", str(tmp_path / "missing.env"))
    monkeypatch.setenv("ENERGYMON_LISTEN", "0.0.0.0:80")
    installation = Installation(tmp_path, device_keys={"mega-01": "k1"}, home="cottage")
    env = installation.env()
    assert "ENERGYMON_CONFIG" not in env
    for name in [n for n in env if n.startswith("ENERGYMON_")]:
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("ENERGYMON_CONFIG")
    settings = load_settings()
    assert settings == installation.settings
    assert settings.listen == f"127.0.0.1:{installation.collector_port}"
    assert settings.device_key_table() == {"mega-01": "k1"}
    assert settings.cloud_url == installation.cloud.url


def test_parts_restart_in_place(tmp_path: Path) -> None:
    with Installation(tmp_path) as installation:
        installation.start("local", "collector")
        before = {name: installation.part(name).pid for name in ("local", "collector")}
        installation.restart("local", "collector")
        for name, pid in before.items():
            assert installation.part(name).running, name
            assert installation.part(name).pid != pid, name
        assert requests.get(f"{installation.collector_url}/health", timeout=5).status_code == 200
        assert installation.local_client().ping()
