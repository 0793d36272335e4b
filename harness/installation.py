"""A whole installation on loopback: local and cloud influxd, the collector, the replicator and
fake devices, each a real process that can be started, stopped, killed and restarted.

Every process gets its settings from one `Settings` built here (`make_settings`), so a misspelt
setting fails in this process, before anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from energymon.errors import ConfigError
from energymon.influx import InfluxClient
from energymon.settings import make_settings
from harness.influxd import InfluxServer, free_port
from harness.proc import ManagedProcess, ServiceProcess, child_env, energymon_argv, started
from harness.relay import Relay

# The order in which the parts start; they stop in the reverse order.
SERVICES = ("local", "cloud", "collector", "replicator")


class Part(Protocol):
    def start(self, wait_s: float = ...) -> None: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...

    @property
    def running(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...


class Installation:
    """The parts are named `local`, `cloud`, `collector`, `replicator` and each device's name.

    `local` and `cloud` may be servers the caller owns (shared by many tests); they are then
    started and stopped only when named. With `relay`, the replicator reaches the cloud through
    a `Relay` that can be cut. `settings` are any other settings, by name (`home="demo"`).
    """

    def __init__(
        self,
        root: Path,
        *,
        device_keys: Mapping[str, str] | None = None,
        local: InfluxServer | None = None,
        cloud: InfluxServer | None = None,
        relay: bool = False,
        **settings: Any,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.local = local or InfluxServer(root / "influx-local")
        self.cloud = cloud or InfluxServer(root / "influx-cloud")
        self._owned = {"local": local is None, "cloud": cloud is None}
        self.relay = Relay(self.cloud.http_port) if relay else None
        self.device_keys = dict(device_keys or {})
        self.collector_port = free_port()
        self.replicator_port = free_port()
        try:
            self.settings = make_settings(
                **{
                    "data_dir": root / "data",
                    "influx_url": self.local.url,
                    "listen": f"127.0.0.1:{self.collector_port}",
                    "device_keys": ",".join(f"{d}={k}" for d, k in self.device_keys.items()),
                    "cloud_url": self.cloud.url if self.relay is None else self.relay.url,
                    "replicator_listen": f"127.0.0.1:{self.replicator_port}",
                    # The loopback cloud has no users: the replicator may make its database.
                    "cloud_create_database": True,
                }
                | settings
            )
        except ConfigError:
            if self.relay is not None:
                self.relay.close()
            raise
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.collector = ServiceProcess(
            ["collector"], self.settings, root / "collector.log", f"{self.collector_url}/health"
        )
        self.replicator = ServiceProcess(
            ["replicator", "run"],
            self.settings,
            root / "replicator.log",
            f"{self.replicator_url}/health",
        )
        self.devices: dict[str, ManagedProcess] = {}

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}"

    @property
    def replicator_url(self) -> str:
        return f"http://127.0.0.1:{self.replicator_port}"

    def env(self) -> dict[str, str]:
        """The environment of a child process of this installation (for a caller's own child)."""
        return child_env(self.settings)

    def add_device(self, name: str, *options: str) -> ManagedProcess:
        """A fake Arduino (`energymon simulate device`) posting to the collector with its key,
        keeping its boot counter in its own directory; `options` are more of its options."""
        argv = energymon_argv("simulate", "device", "--url", self.collector_url, "--device", name)
        argv += ["--key", self.device_keys[name], "--state-dir", str(self.root / name), *options]
        device = ManagedProcess(
            argv,
            log_path=self.root / f"{name}.log",
            ready=started,
            what=f"device {name}",
            env=self.env(),
        )
        self.devices[name] = device
        return device

    def part(self, name: str) -> Part:
        parts: dict[str, Part] = {
            "local": self.local,
            "cloud": self.cloud,
            "collector": self.collector,
            "replicator": self.replicator,
            **self.devices,
        }
        return parts[name]

    def _every_part(self) -> list[str]:
        return [n for n in (*SERVICES, *self.devices) if self._owned.get(n, True)]

    def start(self, *names: str) -> None:
        """Start these parts, in this order, each once it is ready; by default every part but
        the servers the caller owns."""
        for name in names or self._every_part():
            self.part(name).start()

    def stop(self, *names: str) -> None:
        """Stop these parts (SIGTERM), in this order; by default every part but the servers the
        caller owns, in the reverse order of starting."""
        for name in names or reversed(self._every_part()):
            self.part(name).stop()

    def kill(self, *names: str) -> None:
        for name in names:
            self.part(name).kill()

    def restart(self, *names: str) -> None:
        for name in names:
            self.part(name).restart()

    def close(self) -> None:
        """Stop everything this installation started, for good."""
        self.stop()
        if self.relay is not None:
            self.relay.close()

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def local_client(self, timeout_s: float = 10.0) -> InfluxClient:
        return InfluxClient(self.local.url, self.settings.influx_db, timeout_s=timeout_s)

    def cloud_client(self, timeout_s: float = 10.0) -> InfluxClient:
        """The cloud database itself, never through the relay."""
        return InfluxClient(self.cloud.url, self.settings.cloud_db, timeout_s=timeout_s)
