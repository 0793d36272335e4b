"""Child processes of the harness: started in their own session, ready once a probe says so,
stopped, killed and started again."""

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
from energymon.settings import ENV_PREFIX, Settings

# The `energymon` command, run by module so the child uses this interpreter and this checkout.
ENTRY_MODULE = "energymon_cli"


def energymon_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", ENTRY_MODULE, *args]


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment with its own `ENERGYMON_*` variables replaced by `settings`,
    so the child sees exactly these settings and nothing inherited by accident."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return inherited | settings.to_env()


def started() -> bool:
    """The readiness probe of a process that answers nothing: running is ready."""
    return True


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
        self.env = None if env is None else dict(env)
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

    def restart(self) -> None:
        self.stop()
        self.start()

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


def answers(url: str, status: int, verify: bool | str = True) -> Callable[[], bool]:
    """A readiness probe: `url` answers with `status` (over TLS, checked with `verify`)."""

    def probe() -> bool:
        try:
            return requests.get(url, timeout=1.0, verify=verify).status_code == status
        except requests.RequestException:
            return False

    return probe


class ServiceProcess(ManagedProcess):
    """`energymon <args>` with `settings` in a child process, ready once its health URL answers."""

    def __init__(
        self, args: list[str], settings: Settings, log_path: Path, health_url: str
    ) -> None:
        super().__init__(
            energymon_argv(*args),
            log_path=log_path,
            ready=answers(health_url, 200),
            what=f"energymon {' '.join(args)}",
            env=child_env(settings),
        )
