"""The compose files are valid and locked down (`docker-compose config` needs no Docker engine).

Each file is rendered with an env file made the way an operator makes it: docker/init-secrets.sh
(the generated passwords) plus the uncommented lines of docker/.env.example.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE_FILES = sorted(DOCKER.glob("docker-compose.*.yml"))
INIT_SECRETS = DOCKER / "init-secrets.sh"
# The Pi's replicator is in the `cloud` profile; the cloud file has no profiles.
PROFILE = ("--profile", "cloud")
GENERATED = ("GRAFANA_ADMIN_PASSWORD", "CLOUD_INFLUX_ADMIN_PASSWORD")


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (Debian package docker-compose)")
        pytest.skip("docker-compose is not installed (Debian package docker-compose); CI unset")
    return path


def clean_env() -> dict[str, str]:
    """No variable of the caller's shell may stand in for the env file."""
    return {"PATH": os.environ["PATH"]}


def init_secrets(env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INIT_SECRETS), str(env_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean_env(),
    )


def parse_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / ".env"
    result = init_secrets(path)
    assert result.returncode == 0, result.stderr
    example = [
        line
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    with path.open("a") as f:
        f.write("\n".join(example) + "\n")
    return path


def run_config(path: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_compose(), "-f", str(path), "--env-file", str(env_file), *PROFILE, "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )


def config(path: Path, env_file: Path) -> dict[str, Any]:
    result = run_config(path, env_file)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


def services_of(path: Path, env_file: Path) -> dict[str, dict[str, Any]]:
    services = config(path, env_file)["services"]
    assert isinstance(services, dict)
    return services


def volumes(service: dict[str, Any]) -> dict[str, str]:
    """Target -> source; docker-compose v1 prints the short form, v2 the long one."""
    out = {}
    for v in service["volumes"]:
        if isinstance(v, str):
            source, target, *_ = v.split(":")
            out[target] = source
        else:
            out[v["target"]] = v["source"]
    return out


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, host port) of each published port; "" is every interface."""
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.append((p.get("host_ip", ""), int(p["published"])))
        else:
            parts = str(p).split("/")[0].split(":")
            host = parts[0] if len(parts) == 3 else ""
            out.append((host, int(parts[-2])))
    return out


def test_both_compose_files_exist() -> None:
    assert [p.name for p in COMPOSE_FILES] == ["docker-compose.cloud.yml", "docker-compose.pi.yml"]


def test_init_secrets_writes_random_private_passwords_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    for path in (first, second):
        assert init_secrets(path).returncode == 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    a, b = parse_env(first), parse_env(second)
    for key in GENERATED:
        assert len(a[key]) >= 32, key
        assert a[key] != b[key], key
    assert len({a[key] for key in GENERATED}) == len(GENERATED)
    before = first.read_bytes()
    again = init_secrets(first)
    assert again.returncode == 0
    assert "unchanged" in again.stderr
    assert first.read_bytes() == before


def test_init_secrets_passes_shellcheck() -> None:
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    shellcheck = shutil.which("shellcheck", path=search)
    if shellcheck is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is not installed (pip install -e '.[dev]' installs it)")
        pytest.skip("shellcheck is not installed; CI unset")
    result = subprocess.run(
        [shellcheck, str(INIT_SECRETS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout


def test_docker_env_is_never_committed() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(DOCKER / ".env")],
        cwd=DOCKER,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_is_valid(path: Path, env_file: Path) -> None:
    services = services_of(path, env_file)
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
    assert "GRAFANA_INFLUX_URL" in services["grafana"]["environment"]
    assert services["influxdb"]["image"] == "influxdb:1.8"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_refuses_to_start_without_the_env_file(path: Path, tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = run_config(path, empty)
    assert result.returncode != 0
    assert "init-secrets.sh" in result.stderr


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_grafana_uses_the_generated_password_and_no_anonymous_access(
    path: Path, env_file: Path
) -> None:
    env = services_of(path, env_file)["grafana"]["environment"]
    assert isinstance(env, dict)
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == parse_env(env_file)["GRAFANA_ADMIN_PASSWORD"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "admin}" not in path.read_text()


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_service_has_a_health_check(path: Path, env_file: Path) -> None:
    for name, service in services_of(path, env_file).items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", name
        assert "http://127.0.0.1:" in test[-1], name


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_state_is_on_named_volumes(path: Path, env_file: Path) -> None:
    data = config(path, env_file)
    named = set(data["volumes"])
    state = {
        "influxdb": ["/var/lib/influxdb"],
        "grafana": ["/var/lib/grafana"],
        "caddy": ["/data", "/config"],
        "collector": ["/var/lib/energymon"],
        "replicator": ["/var/lib/energymon"],
    }
    services = data["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        mounts = volumes(service)
        for target in state[name]:
            assert mounts[target] in named, (name, target)


def test_cloud_publishes_only_caddy_on_80_and_443(env_file: Path) -> None:
    services = services_of(DOCKER / "docker-compose.cloud.yml", env_file)
    assert set(services) == {"influxdb", "grafana", "caddy"}
    ports = {name: published(service) for name, service in services.items()}
    assert ports == {"influxdb": [], "grafana": [], "caddy": [("", 80), ("", 443)]}
    env = services["influxdb"]["environment"]
    assert isinstance(env, dict)
    assert env["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"


def test_pi_grafana_provisions_the_local_data_source_dashboards_and_alerting(
    env_file: Path,
) -> None:
    grafana = services_of(DOCKER / "docker-compose.pi.yml", env_file)["grafana"]
    mounts = volumes(grafana)
    assert Path(mounts["/etc/grafana/provisioning"]) == DOCKER.parent / "grafana" / "provisioning"
    assert Path(mounts["/var/lib/grafana/dashboards"]) == DOCKER.parent / "grafana" / "dashboards"
    assert {
        "GRAFANA_INFLUX_DB",
        "GRAFANA_INFLUX_USER",
        "GRAFANA_INFLUX_PASSWORD",
    } <= set(grafana["environment"])


def _committed_yaml(source: Path) -> list[Path]:
    """The provisioning files git holds at or under a mount's source."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--", str(source)],
        cwd=DOCKER.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    names = [n for n in result.stdout.split("\0") if n.endswith((".yaml", ".yml"))]
    return [DOCKER.parent / n for n in names]


def test_cloud_grafana_provisions_no_home_into_the_operators_organisation(
    env_file: Path,
) -> None:
    """Organisation 1 holds the Fleet dashboard and one data source per home, all by the push
    and the operator's own files: no data source `energymon` on one home's database, no rules
    reading it, no dashboards the push would then find provisioned."""
    grafana = services_of(DOCKER / "docker-compose.cloud.yml", env_file)["grafana"]
    mounts = volumes(grafana)
    provisioning = {t: Path(s) for t, s in mounts.items() if t.startswith("/etc/grafana/")}
    assert provisioning == {
        "/etc/grafana/provisioning/datasources": DOCKER / "grafana-cloud" / "datasources"
    }
    assert not any(Path(s).is_relative_to(DOCKER.parent / "grafana") for s in mounts.values())
    assert "/var/lib/grafana/dashboards" not in mounts
    # Only the operator's own, never committed, data source files are read from there.
    assert _committed_yaml(DOCKER / "grafana-cloud") == []
    assert (DOCKER / "grafana-cloud" / "datasources" / ".gitignore").read_text().splitlines()[
        -2:
    ] == ["*", "!.gitignore"]
    env = set(grafana["environment"])
    assert not {"GRAFANA_INFLUX_DB", "GRAFANA_INFLUX_USER", "GRAFANA_INFLUX_PASSWORD"} & env
    # No file-provisioned contact point reads these: the push writes each organisation's own.
    assert not {"GRAFANA_ALERT_EMAIL", "GRAFANA_TELEGRAM_BOT_TOKEN"} & env
    assert "GF_SMTP_HOST" in env


def test_env_files_name_no_shared_grafana_database() -> None:
    for path in (DOCKER / ".env.example", INIT_SECRETS):
        text = path.read_text()
        assert "GRAFANA_INFLUX_DB" not in text, path
        assert "CLOUD_INFLUX_GRAFANA" not in text, path


def test_caddy_proxies_influxdb_and_grafana_by_host_name() -> None:
    caddyfile = (DOCKER / "caddy" / "Caddyfile").read_text()
    assert "{$CLOUD_INFLUX_HOST} {\n\treverse_proxy influxdb:8086\n}" in caddyfile
    assert "{$CLOUD_GRAFANA_HOST} {\n\treverse_proxy grafana:3000\n}" in caddyfile


def test_pi_publishes_beyond_loopback_only_ingest_and_grafana(env_file: Path) -> None:
    services = services_of(DOCKER / "docker-compose.pi.yml", env_file)
    ports = {name: published(service) for name, service in services.items()}
    assert ports == {
        "influxdb": [("127.0.0.1", 8086)],
        "collector": [("", 8080)],
        "replicator": [],
        "grafana": [("", 3000)],
    }
    env = services["replicator"]["environment"]
    assert isinstance(env, dict)
    assert env["ENERGYMON_REPLICATOR_LISTEN"].startswith("127.0.0.1:")


def test_pi_runs_collector_and_replicator_from_this_project(env_file: Path) -> None:
    services = services_of(DOCKER / "docker-compose.pi.yml", env_file)
    for name in ("collector", "replicator"):
        build = services[name]["build"]
        assert isinstance(build, dict)
        assert Path(build["context"]) == DOCKER.parent
        assert build["dockerfile"] == "docker/Dockerfile"
        # Both use the same data volume: the replicator follows the collector's journal.
        assert volumes(services[name]) == {"/var/lib/energymon": "energymon-data"}
        assert all(k.startswith("ENERGYMON_") for k in services[name]["environment"])
