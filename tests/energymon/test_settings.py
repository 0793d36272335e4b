from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energymon.errors import ConfigError
from energymon.settings import (
    ENV_PREFIX,
    MAX_PORT,
    Settings,
    load_settings,
    make_settings,
    parse_host_port,
    settings_markdown,
)

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


hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
)


@given(hosts, st.integers(min_value=1, max_value=MAX_PORT))
def test_host_port_is_read_back_as_written(host: str, port: int) -> None:
    assert parse_host_port(f"{host}:{port}", "X", default_host="d") == (host.strip("[]"), port)
    assert parse_host_port(f":{port}", "X", default_host="d") == ("d", port)


@given(
    hosts,
    st.one_of(
        st.integers(min_value=MAX_PORT + 1).map(str),
        st.just("0"),
        st.just(""),
        st.just("-1"),
        st.just("http"),
        st.just("٨٠"),
    ),
)
def test_host_port_without_a_port_is_a_config_error_naming_the_setting(
    host: str, port: str
) -> None:
    with pytest.raises(ConfigError, match=r"ENERGYMON_X .* is not host:port"):
        parse_host_port(f"{host}:{port}", "ENERGYMON_X", default_host="d")
    with pytest.raises(ConfigError, match="ENERGYMON_X"):
        parse_host_port(host.replace(":", ""), "ENERGYMON_X", default_host="d")


def test_both_listen_settings_use_one_parser() -> None:
    settings = Settings(listen=":9000", replicator_listen="[::1]:8081")
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 9000)
    assert settings.replicator_listen_address == ("::1", 8081)
    assert Settings(replicator_listen=":8081").replicator_listen_address == ("127.0.0.1", 8081)
    assert Settings(replicator_listen="").replicator_listen_address is None
    with pytest.raises(ConfigError, match="ENERGYMON_REPLICATOR_LISTEN"):
        _ = Settings(replicator_listen="localhost").replicator_listen_address
    with pytest.raises(ConfigError, match="ENERGYMON_LISTEN"):
        _ = Settings(listen="localhost:99999").listen_port


def test_to_env_gives_a_child_process_exactly_these_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = make_settings(
        home="cottage",
        data_dir=tmp_path,
        influx_timeout_s=0.25,
        max_readings_per_request=7,
        cloud_password="pa ss=word",
        cloud_ca_file=tmp_path / "ca.pem",
        replicator_verify_repair=False,
    )
    env = settings.to_env()
    # The child gets the secret itself, not the mask a terminal would show.
    assert env["ENERGYMON_CLOUD_PASSWORD"] == "pa ss=word"
    assert "ENERGYMON_DEVICE_KEYS_FILE" not in env  # None: the child's default
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings


def test_settings_for_a_child_ignore_this_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENERGYMON_HOME", "elsewhere")
    assert make_settings().home == "home"


def test_a_misspelt_setting_fails_in_the_parent() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting influx_ulr .*did you mean influx_url"):
        make_settings(influx_ulr="http://elsewhere:8086")
    with pytest.raises(ConfigError, match="ENERGYMON_INFLUX_TIMEOUT_S"):
        make_settings(influx_timeout_s=0)
