"""Start and stop the project's own services as child processes (tests, benchmarks, the demo)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

from energymon.errors import EnergymonError


class ManagedProcess:
    """A child process in its own session, ready once `ready()` says so; stop, kill, start again."""

    def __init__(
        self,
        argv: list[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        what: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self.ready = ready
        self.what = what
        self.env = None if env is None else {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
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
                    f"{self.what} exited with {self.process.returncode}; see {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.05)
        raise EnergymonError(f"{self.what} was not ready within {wait_s} s; see {self.log_path}")

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
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


def answers(url: str, status: int) -> Callable[[], bool]:
    """A readiness probe: `url` answers with `status`."""

    def probe() -> bool:
        try:
            return requests.get(url, timeout=1.0).status_code == status
        except requests.RequestException:
            return False

    return probe


class ServiceProcess(ManagedProcess):
    """`energymon <args>` in a child process, ready once its health URL answers."""

    def __init__(
        self, args: list[str], env: Mapping[str, str], log_path: Path, health_url: str
    ) -> None:
        super().__init__(
            [sys.executable, "-m", "energymon.cli", *args],
            log_path=log_path,
            ready=answers(health_url, 200),
            what=f"energymon {' '.join(args)}",
            env=env,
        )


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
