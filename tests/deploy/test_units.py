"""The systemd units of deploy/pi pass `systemd-analyze verify` and carry their hardening."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PI = Path(__file__).resolve().parents[2] / "deploy" / "pi"
UNITS = ("energymon-collector.service", "energymon-replicator.service")
BINARY = "/opt/energymon/bin/energymon"

HARDENING = {
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/energymon",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "Restart": "on-failure",
    "User": "energymon",
    "EnvironmentFile": "/etc/energymon/energymon.env",
}


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (Debian package systemd)")
        pytest.skip("systemd-analyze is not installed (Debian package systemd); CI unset")
    return path


def entries(unit: str) -> dict[str, list[str]]:
    """key -> values of a unit file (systemd allows a key more than once)."""
    out: dict[str, list[str]] = {}
    for line in (PI / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies(unit: str, tmp_path: Path) -> None:
    """`verify` needs ExecStart's binary to exist: the unit is checked with the path of a stub.
    It exits 0 even for an unknown key or a bad value, so any output is a failure too."""
    stub = tmp_path / "energymon"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = (PI / unit).read_text()
    assert BINARY in text
    (tmp_path / unit).write_text(text.replace(BINARY, str(stub)))
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_hardened(unit: str) -> None:
    found = entries(unit)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], (key, found.get(key))
    assert found["ExecStart"][0].startswith(BINARY + " ")
    for key in ("After", "Wants"):
        assert {"influxdb.service", "network-online.target"} <= set(" ".join(found[key]).split())
    assert "StartLimitBurst" in found and "RestartSec" in found


def test_collector_may_open_serial_ports() -> None:
    assert entries(UNITS[0])["SupplementaryGroups"] == ["dialout"]
    assert "PrivateDevices" not in entries(UNITS[0])
