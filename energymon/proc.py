"""Start and stop the project's own services as child processes (tests, benchmarks, the demo)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from energymon.errors import EnergymonError


class ServiceProcess:
    """`energymon <args>` in a child process, ready once its health URL answers."""

    def __init__(
        self, args: list[str], env: Mapping[str, str], log_path: Path, health_url: str
    ) -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.health_url = health_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "energymon.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EnergymonError(
                    f"energymon {' '.join(self.args)} exited with {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            try:
                if requests.get(self.health_url, timeout=1.0).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise EnergymonError(f"{self.health_url} did not answer within {wait_s} s")

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


def collector_process(
    *,
    data_dir: Path,
    influx_url: str,
    port: int,
    device_keys: str,
    home: str = "home",
    influx_db: str = "energymon",
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    env = {
        "ENERGYMON_DATA_DIR": str(data_dir),
        "ENERGYMON_INFLUX_URL": influx_url,
        "ENERGYMON_INFLUX_DB": influx_db,
        "ENERGYMON_LISTEN": f"127.0.0.1:{port}",
        "ENERGYMON_DEVICE_KEYS": device_keys,
        "ENERGYMON_HOME": home,
        **(extra_env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    return ServiceProcess(
        ["collector"], env, data_dir / "collector.log", f"http://127.0.0.1:{port}/health"
    )
