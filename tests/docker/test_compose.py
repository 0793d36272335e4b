"""The compose files are valid (`docker-compose config` needs no Docker engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE_FILES = sorted(DOCKER.glob("docker-compose.*.yml"))


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (Debian package docker-compose)")
        pytest.skip("docker-compose is not installed (Debian package docker-compose); CI unset")
    return path


def config(path: Path) -> dict[str, object]:
    result = subprocess.run(
        [docker_compose(), "-f", str(path), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


def volumes(service: dict[str, object]) -> dict[str, str]:
    """Target -> source; docker-compose v1 prints the short form, v2 the long one."""
    out = {}
    for v in service["volumes"]:  # type: ignore[attr-defined]
        if isinstance(v, str):
            source, target, *_ = v.split(":")
            out[target] = source
        else:
            out[v["target"]] = v["source"]
    return out


def test_both_compose_files_exist() -> None:
    assert [p.name for p in COMPOSE_FILES] == ["docker-compose.cloud.yml", "docker-compose.pi.yml"]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_is_valid(path: Path) -> None:
    services = config(path)["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
    mounts = volumes(services["grafana"])
    assert Path(mounts["/etc/grafana/provisioning"]) == DOCKER.parent / "grafana" / "provisioning"
    assert Path(mounts["/var/lib/grafana/dashboards"]) == DOCKER.parent / "grafana" / "dashboards"
    env = services["grafana"]["environment"]
    assert {
        "GRAFANA_INFLUX_URL",
        "GRAFANA_INFLUX_DB",
        "GRAFANA_INFLUX_USER",
        "GRAFANA_INFLUX_PASSWORD",
    } <= set(env)
    assert services["influxdb"]["image"] == "influxdb:1.8"


def test_pi_runs_collector_and_replicator_from_this_project() -> None:
    services = config(DOCKER / "docker-compose.pi.yml")["services"]
    assert isinstance(services, dict)
    for name in ("collector", "replicator"):
        build = services[name]["build"]
        assert Path(build["context"]) == DOCKER.parent
        assert build["dockerfile"] == "docker/Dockerfile"
        # Both use the same data volume: the replicator follows the collector's journal.
        assert volumes(services[name]) == {"/var/lib/energymon": "energymon-data"}
        assert all(k.startswith("ENERGYMON_") for k in services[name]["environment"])
