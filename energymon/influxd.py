"""Run a private `influxd` (InfluxDB 1.x) in a directory on free loopback ports.

Tests, benchmarks and the demo use it; it is never used against a user's own server.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from energymon.errors import InfluxUnavailableError

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def influxd_binary() -> str:
    path = shutil.which("influxd")
    if path is None:
        raise FileNotFoundError(
            "influxd is not on the PATH: install InfluxDB 1.x (Debian: apt-get install influxdb)"
        )
    return path


class InfluxServer:
    """One influxd process; can be stopped, killed and started again on the same port and data."""

    def __init__(self, root: Path, http_port: int | None = None) -> None:
        self.root = root
        self.http_port = http_port or free_port()
        self.rpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "influxdb.conf"
        self.log_path = root / "influxd.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, wait_s: float = 30.0) -> None:
        self.config_path.write_text(
            _CONFIG.format(root=self.root, http_port=self.http_port, rpc_port=self.rpc_port)
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [influxd_binary(), "run", "-config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InfluxUnavailableError(
                    f"influxd exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                if requests.get(self.url + "/ping", timeout=0.5).status_code == 204:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise InfluxUnavailableError(
            f"influxd did not answer within {wait_s} s; see {self.log_path}"
        )

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
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

    def __enter__(self) -> InfluxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
