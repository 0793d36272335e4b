"""What a new user sees when the first run goes wrong: one clear line naming the setting or the
missing piece, exit status 2, never a traceback. Each case runs the real command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from energymon import __version__

ENTRY = [sys.executable, "-m", "energymon_cli"]


def energymon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYMON_")}
    return subprocess.run(
        [*ENTRY, *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("energymon: "), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_an_influx_url_that_is_no_url_is_refused(tmp_path: Path) -> None:
    env = {"ENERGYMON_INFLUX_URL": "notaurl", "ENERGYMON_DATA_DIR": str(tmp_path)}
    assert_one_clear_line(energymon("collector", env=env), "ENERGYMON_INFLUX_URL", "notaurl")


def test_a_data_directory_that_cannot_be_made_is_named() -> None:
    env = {"ENERGYMON_DATA_DIR": "/proc/energymon/data"}
    assert_one_clear_line(energymon("collector", env=env), "ENERGYMON_DATA_DIR", "/proc/energymon")


def test_a_port_in_use_is_named_before_anything_says_listening(
    tmp_path: Path, taken_port: int
) -> None:
    env = {"ENERGYMON_LISTEN": f"127.0.0.1:{taken_port}", "ENERGYMON_DATA_DIR": str(tmp_path)}
    result = energymon("collector", env=env)
    assert_one_clear_line(result, "ENERGYMON_LISTEN", "in use")
    assert "listening" not in result.stdout + result.stderr


def test_the_demo_without_influxd_says_what_to_install(tmp_path: Path) -> None:
    result = energymon("demo", env={"PATH": str(tmp_path)})
    assert_one_clear_line(result, "influxd", "apt-get install influxdb")


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYMON_")}
    with subprocess.Popen(
        [*ENTRY, "config", "docs"],
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as reader:
        assert reader.stdout is not None and reader.stderr is not None
        reader.stdout.readline()
        reader.stdout.close()  # as `| head -1` does
        errors = reader.stderr.read()
        reader.wait(timeout=30)
    assert "Traceback" not in errors and "BrokenPipe" not in errors


def test_version_and_where_settings_come_from() -> None:
    assert energymon("--version").stdout.strip() == f"energymon {__version__}"
    helped = " ".join(energymon("collector", "--help").stdout.split())
    assert "ENERGYMON_" in helped and "--config" in helped and "config docs" in helped


def test_config_may_follow_the_command(tmp_path: Path) -> None:
    settings = tmp_path / "energymon.env"
    settings.write_text("ENERGYMON_HOME=cabin\n", encoding="utf-8")
    after = energymon("config", "show", "--config", str(settings))
    before = energymon("--config", str(settings), "config", "show")
    assert after.returncode == before.returncode == 0, after.stderr
    assert "ENERGYMON_HOME=cabin" in after.stdout and after.stdout == before.stdout
