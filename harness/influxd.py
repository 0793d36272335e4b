"""Run a private `influxd` (InfluxDB 1.x) in a directory on free loopback ports.

Tests, benchmarks and the demo use it; it is never used against a user's own server.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from energymon.errors import ConfigError, EnergymonError, InfluxError, InfluxUnavailableError
from energymon.influx import InfluxClient, quote_ident, quote_string
from harness.proc import ManagedProcess, answers

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
{tls}  auth-enabled = {auth_enabled}
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a server certificate, its key and the CA that signed it."""

    certificate: Path
    private_key: Path
    ca: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def influxd_binary() -> str:
    path = shutil.which("influxd")
    if path is None:
        raise ConfigError(
            "influxd is not on the PATH: install InfluxDB 1.x (Debian: apt-get install influxdb, "
            "or ./scripts/quickstart, which does)"
        )
    return path


class InfluxServer:
    """One influxd process; can be stopped, killed and started again on the same port and data.

    With `tls`, it serves https with those files. With `admin`, authentication is on and that
    (user, password) is made the first admin user at the first start (InfluxDB 1.x lets anyone
    create the first user, and only that one)."""

    def __init__(
        self,
        root: Path,
        http_port: int | None = None,
        *,
        tls: TLSFiles | None = None,
        admin: tuple[str, str] | None = None,
    ) -> None:
        self.root = root
        self.tls = tls
        self.admin = admin
        self.http_port = http_port or free_port()
        self.rpc_port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "influxdb.conf"
        self.log_path = root / "influxd.log"
        self._process = ManagedProcess(
            [influxd_binary(), "run", "-config", str(self.config_path)],
            log_path=self.log_path,
            ready=answers(self.url + "/ping", 204, verify=str(tls.ca) if tls else True),
            what="influxd",
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def start(self, wait_s: float = 30.0) -> None:
        tls = ""
        if self.tls is not None:
            tls = (
                f'  https-enabled = true\n  https-certificate = "{self.tls.certificate}"\n'
                f'  https-private-key = "{self.tls.private_key}"\n'
            )
        self.config_path.write_text(
            _CONFIG.format(
                root=self.root, http_port=self.http_port, rpc_port=self.rpc_port, tls=tls,
                auth_enabled=str(self.admin is not None).lower(),
            )
        )  # fmt: skip
        try:
            self._process.start(wait_s)
        except EnergymonError as exc:
            raise InfluxUnavailableError(str(exc)) from exc
        if self.admin is not None:
            self._create_admin(*self.admin)

    def _create_admin(self, user: str, password: str) -> None:
        admin = InfluxClient(self.url, "", username=user, password=password)
        try:
            if not any(row[0] == user for s in admin.query("SHOW USERS") for row in s.values):
                raise InfluxUnavailableError(f"{user} is not a user")
        except InfluxError:
            # No user yet: the first one may be created without credentials.
            InfluxClient(self.url, "").query(
                f"CREATE USER {quote_ident(user)} WITH PASSWORD {quote_string(password)} "
                "WITH ALL PRIVILEGES", database=None, method="POST",
            )  # fmt: skip
        finally:
            admin.close()

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def __enter__(self) -> InfluxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
