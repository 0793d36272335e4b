"""One typed settings model for every process, read from `ENERGYMON_*` environment variables
and, optionally, an env file (`--config FILE` or `ENERGYMON_CONFIG`).

Every setting has a default and help text; `docs/configuration.md` lists them all and a test
keeps that list in sync with this model.
"""

from __future__ import annotations

import difflib
import hmac
import os
import socket
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from energymon.errors import ConfigError
from energymon.layout import Layout, parse_layout
from energymon.lineproto import name_problem
from energymon.tariff import Tariff, load_tariff_file, parse_tariff, pln_r1_default
from energymon.urls import has_credentials, is_http_url, mask_url

ENV_PREFIX = "ENERGYMON_"
CONFIG_VARIABLE = "ENERGYMON_CONFIG"
MAX_PORT = 65535


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # --- shared -------------------------------------------------------------------------
    home: str = Field("home", description="Name of this household; the `home` tag of every point.")
    data_dir: Path = Field(
        Path("/var/lib/energymon"),
        description="Directory for the collector's durable state: spool, time anchors, "
        "sequence ledger. Put it on the same disk as InfluxDB's data.",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    influx_url: str = Field(
        "http://127.0.0.1:8086", description="URL of the local InfluxDB (v1 HTTP API)."
    )
    influx_db: str = Field("energymon", description="Local InfluxDB database; created if missing.")
    influx_username: str = Field("", description="Local InfluxDB user (1.x authentication).")
    influx_password: SecretStr = Field(
        SecretStr(""), description="Local InfluxDB password (1.x authentication)."
    )
    influx_token: SecretStr = Field(
        SecretStr(""), description="Local InfluxDB token (2.x/3.x); used instead of user/password."
    )
    influx_timeout_s: float = Field(
        2.0,
        gt=0,
        description="How long a local write may take before the collector spools it instead.",
    )

    # --- collector ----------------------------------------------------------------------
    listen: str = Field(
        "0.0.0.0:8080", description="host:port the collector's HTTP API listens on."
    )
    device_keys: SecretStr = Field(
        SecretStr(""),
        description="Devices allowed to post and their keys: `device=key,device=key`.",
    )
    device_keys_file: Path | None = Field(
        None,
        description="File with one `device=key` per line (# comments allowed), read in "
        "addition to ENERGYMON_DEVICE_KEYS.",
    )
    max_body_bytes: int = Field(
        262_144, gt=0, description="Largest accepted request body, in bytes (413 above)."
    )
    max_readings_per_request: int = Field(
        1000, gt=0, description="Most readings one request may carry (413 above)."
    )
    max_inflight_bytes: int = Field(
        524_288,
        gt=0,
        description="Most request-body bytes being handled at once; a request that would go "
        "over is answered 503 `busy` with a short Retry-After (devices keep their readings). "
        "Bounds the collector's memory in a burst; one request is always admitted.",
    )
    inflight_device_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Fraction of ENERGYMON_MAX_INFLIGHT_BYTES one device (one key) may hold at "
        "once, so one device cannot take the whole budget; its next request is answered 503 "
        "`busy`. A device's first request is admitted whenever the total allows it.",
    )
    body_read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a request body may take to arrive once the request is admitted; "
        "a slower body is cut off with 408 and its share of the in-flight budget returned.",
    )
    spool_max_bytes: int = Field(
        536_870_912,
        gt=0,
        description="Bound of the on-disk spool used while InfluxDB is down or slow. When "
        "reached, new readings are refused with 503 (devices keep them) rather than dropped.",
    )
    commit_max_lines: int = Field(
        10_000, gt=0, description="Most points the collector writes to InfluxDB in one request."
    )
    journal_retention_days: float = Field(
        30.0,
        gt=0,
        description="Days the write journal (which the replicator follows for late data) "
        "is kept; a replicator stopped for longer re-verifies the gap.",
    )
    health_interval_s: float = Field(
        60.0, gt=0, description="Seconds between health records written to `energymon_health`."
    )

    # --- the home: time zone, tariff, layout, limits ------------------------------------
    timezone: str = Field(
        "Asia/Jakarta",
        description="The home's IANA time zone: calendar days and months of the rollups, and "
        "the local times of the tariff.",
    )
    currency: str = Field(
        "IDR", description="Currency of the tariff's prices and of every `cost` field."
    )
    tariff: str = Field(
        "",
        description="Dated tariff as JSON: periods effective from a local date, each a flat "
        "price per kWh with optional time-of-use windows (docs/rollups.md). Empty (and no "
        "ENERGYMON_TARIFF_FILE): PLN R-1/TR 1,300 VA, 1444.70 per kWh.",
    )
    tariff_file: Path | None = Field(
        None,
        description="JSON or TOML file holding the tariff, instead of ENERGYMON_TARIFF.",
    )
    layout: str = Field(
        "",
        description="Which meter is what: `mains=device/sensor;submeter=device/sensor,...;"
        "circuit=...`. Unlisted meters are circuits (added to the home total).",
    )
    contracted_va: float = Field(
        1300.0,
        gt=0,
        description="The home's contracted apparent power in VA (PLN classes 450, 900, 1300, "
        "2200, 3500, 5500, ...).",
    )
    nominal_voltage_v: float = Field(220.0, gt=0, description="Nominal supply voltage in V.")
    voltage_tolerance_pct: float = Field(
        10.0,
        gt=0,
        lt=100,
        description="Band around the nominal voltage, in percent, outside which voltage alerts.",
    )
    min_power_factor: float = Field(
        0.85, ge=0, le=1, description="Power factor below which the low power factor rule fires."
    )
    daily_budget_kwh: float = Field(
        0.0, ge=0, description="Daily energy budget of the home in kWh; 0 turns the rule off."
    )
    daily_budget_cost: float = Field(
        0.0,
        ge=0,
        description="Daily cost budget in ENERGYMON_CURRENCY; 0 turns the rule off.",
    )
    meter_expected_interval_s: float = Field(
        10.0,
        gt=0,
        description="Longest normal time between two stored readings of a meter (its post "
        "interval); a meter is `online` while its newest reading is under three of these old.",
    )
    rollup_interval_s: float = Field(
        5.0,
        gt=0,
        description="Seconds between two steps of the collector's rollup worker: the current "
        "minute's rollups lag the readings by about this plus ENERGYMON_INFLUX_TIMEOUT_S.",
    )

    # --- meters on the collector's own serial ports ----------------------------------------
    serial_meters: str = Field(
        "",
        description="PZEM-004T meters on local serial ports: `port:address=sensor,...`, "
        "for example `/dev/ttyUSB0:1=mains,/dev/ttyUSB0:2=heatpump`. Empty: none.",
    )
    serial_device: str = Field(
        "",
        description="The `device` tag of readings from local serial meters; empty means "
        "this machine's host name.",
    )
    serial_poll_interval_s: float = Field(
        1.0, gt=0, description="Seconds between two polls of each local serial meter."
    )
    serial_timeout_s: float = Field(
        0.2, gt=0, description="How long to wait for a meter's reply before calling it missing."
    )

    # --- replicator (local InfluxDB to cloud InfluxDB) -----------------------------------
    cloud_url: str = Field(
        "",
        description="URL of the cloud InfluxDB's v1 HTTP API (InfluxDB 1.x, 2.x, 3.x or a "
        "hosted service); empty disables replication.",
    )
    cloud_db: str = Field(
        "energymon",
        description="This home's own cloud database, never shared with another home (as "
        "printed by `energymon cloud add-home`; 2.x/3.x: the database or DBRP-mapped bucket).",
    )
    cloud_username: str = Field("", description="Cloud user of this home (1.x, or 2.x v1 auth).")
    cloud_password: SecretStr = Field(
        SecretStr(""), description="Password of ENERGYMON_CLOUD_USERNAME."
    )
    cloud_token: SecretStr = Field(
        SecretStr(""),
        description="Cloud token of this home (2.x/3.x); used instead of user/password.",
    )
    cloud_ca_file: Path | None = Field(
        None,
        description="PEM file of the certificate authority that signed the cloud's TLS "
        "certificate; empty: the system's CAs. Certificates are always verified.",
    )
    cloud_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Overall deadline of one request to the cloud (a streamed answer: of each "
        "piece of it), however slowly the answer trickles in.",
    )
    cloud_allow_http_credentials: bool = Field(
        False,
        description="Send the cloud password or token over a plain http:// URL to another "
        "machine (only over a network you trust, such as a VPN); refused otherwise.",
    )
    replicator_batch_size: int = Field(
        5000, gt=0, description="Points per write to the cloud; also the most held in memory."
    )
    replicator_window_s: float = Field(
        21600.0, gt=0, description="Longest time range copied (and acknowledged) in one step."
    )
    replicator_settle_s: float = Field(
        1.0,
        ge=0,
        description="The newest points copied are this many seconds old; writes still in "
        "flight behind it are found through the collector's journal.",
    )
    replicator_journal_settle_s: float = Field(
        10.0,
        gt=0,
        description="A journal entry is followed once it is this old, so that its write has "
        "landed; keep it well above ENERGYMON_INFLUX_TIMEOUT_S.",
    )
    replicator_poll_interval_s: float = Field(
        0.5, gt=0, description="Seconds between two replication steps when caught up."
    )
    replicator_backoff_base_s: float = Field(
        1.0, gt=0, description="First retry delay after a failure; doubles per failure."
    )
    replicator_backoff_cap_s: float = Field(
        300.0, gt=0, description="Longest retry delay (a Retry-After from the cloud may exceed it)."
    )
    replicator_verify_interval_s: float = Field(
        86400.0, gt=0, description="Seconds between automatic verifications of local against cloud."
    )
    replicator_verify_days: int = Field(
        3,
        gt=0,
        description="Days up to the watermark checked point by point by the daily recent check "
        "(and by `verify` without --since); the whole history is covered by the other checks.",
    )
    replicator_verify_repair: bool = Field(
        True, description="Re-copy the mismatched hours an automatic verification finds."
    )
    replicator_history_check_interval_s: float = Field(
        86400.0,
        gt=0,
        description="Seconds between two cheap checks of the whole history (per series and "
        "day: count, min and max of every field); a day that differs is checked point by point.",
    )
    replicator_cloud_check_interval_s: float = Field(
        300.0,
        gt=0,
        description="Seconds between two counts of the cloud's points: fewer than the last "
        "whole-history check saw (database dropped, data deleted) re-copies the whole history.",
    )
    replicator_exact_cycle_s: float = Field(
        604800.0,
        gt=0,
        description="The point-by-point check of the whole history is paced to finish once in "
        "this many seconds, so that a loss anywhere is found and re-copied within it.",
    )
    cloud_create_database: bool = Field(
        False,
        description="Let the replicator create the cloud database (`CREATE DATABASE` needs an "
        "admin on InfluxDB 1.x). Off: the database is made by `energymon cloud add-home`.",
    )
    cloud_admin_username: str = Field(
        "", description="Cloud admin user for `energymon cloud add-home`; never the replicator's."
    )
    cloud_admin_password: SecretStr = Field(
        SecretStr(""), description="Password of ENERGYMON_CLOUD_ADMIN_USERNAME."
    )
    replicator_listen: str = Field(
        "127.0.0.1:8081", description="host:port of the replicator's `GET /health`; empty: none."
    )

    @field_validator("home")
    @classmethod
    def _valid_home(cls, value: str) -> str:
        problem = name_problem(value)
        if problem:
            raise ValueError(f"home {problem}")
        return value

    @field_validator("influx_url", "cloud_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str, info: ValidationInfo) -> str:
        if value and not is_http_url(value):
            # Taken for an outage, a typo would only show as readings piling up in the spool.
            raise ValueError(
                f"{mask_url(value)} is not an http:// or https:// URL with a host, such as "
                "http://127.0.0.1:8086"
            )
        if info.field_name == "influx_url" and not value:
            raise ValueError("the local InfluxDB's URL is required, such as http://127.0.0.1:8086")
        if has_credentials(value):
            # Masked: the message reaches terminals and logs.
            raise ValueError(
                f"{mask_url(value)} carries credentials; give them as the USERNAME and "
                "PASSWORD (or TOKEN) settings instead"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone name, such as Asia/Jakarta"
            ) from exc
        return value

    @field_validator("layout")
    @classmethod
    def _valid_layout(cls, value: str) -> str:
        try:
            parse_layout(value, source="layout")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("layout: ")) from exc
        return value

    @model_validator(mode="after")
    def _valid_tariff(self) -> Settings:
        if self.tariff and self.tariff_file is not None:
            raise ValueError("give ENERGYMON_TARIFF or ENERGYMON_TARIFF_FILE, not both")
        try:
            self.tariff_schedule()
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @field_validator("log_level")
    @classmethod
    def _valid_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def listen_host(self) -> str:
        return parse_host_port(self.listen, "ENERGYMON_LISTEN", default_host="0.0.0.0")[0]

    @property
    def listen_port(self) -> int:
        return parse_host_port(self.listen, "ENERGYMON_LISTEN", default_host="0.0.0.0")[1]

    @property
    def replicator_listen_address(self) -> tuple[str, int] | None:
        """Where the replicator answers `GET /health`; None: nowhere."""
        if not self.replicator_listen:
            return None
        return parse_host_port(
            self.replicator_listen, "ENERGYMON_REPLICATOR_LISTEN", default_host="127.0.0.1"
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def tariff_schedule(self) -> Tariff:
        """The tariff the settings describe (PLN R-1 1,300 VA when none is given)."""
        if self.tariff_file is not None:
            return load_tariff_file(self.tariff_file)
        if self.tariff:
            return parse_tariff(self.tariff)
        return pln_r1_default()

    def home_layout(self) -> Layout:
        return parse_layout(self.layout)

    @property
    def serial_device_name(self) -> str:
        return self.serial_device or socket.gethostname()

    def device_key_table(self) -> dict[str, str]:
        """device name -> key, from the setting and the keys file."""
        table = _parse_pairs(self.device_keys.get_secret_value(), "ENERGYMON_DEVICE_KEYS", ",")
        if self.device_keys_file is not None:
            try:
                text = self.device_keys_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read device keys file: {exc}") from exc
            lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
            table.update(_parse_pairs("\n".join(lines), str(self.device_keys_file), "\n"))
        return table

    def to_env(self) -> dict[str, str]:
        """The `ENERGYMON_*` environment that gives a child process exactly these settings.

        Secrets are written out in clear: the environment is for a child process, never for a
        terminal or a log. An optional setting that is None (its default) is left out.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
        return env


class _GivenValues(Settings):
    """Settings from the values given and the defaults alone, never from the environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def make_settings(**values: Any) -> Settings:
    """Settings built in this process for another one (`Settings.to_env`): names and values are
    checked here, so a misspelt setting fails in the parent rather than inside the child."""
    known = set(Settings.model_fields)
    for name in sorted(set(values) - known):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown setting {name} ({ENV_PREFIX}{name.upper()}){hint}")
    try:
        checked = _GivenValues(**values)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    return Settings.model_construct(**{name: getattr(checked, name) for name in known})


def parse_host_port(value: str, setting: str, *, default_host: str) -> tuple[str, int]:
    """`host:port`, `[v6 address]:port`, or `:port` for `default_host`.

    Raises `ConfigError` naming `setting` when there is no port from 1 to `MAX_PORT`.
    """
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
        raise ConfigError(f"{setting} {value!r} is not host:port (for example 127.0.0.1:8080)")
    return host.strip("[]") or default_host, int(port)


def _parse_pairs(text: str, source: str, separator: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for raw in text.split(separator):
        item = raw.strip()
        if not item:
            continue
        name, sep, key = item.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            # The item may be a key: never echo it.
            raise ConfigError(f"{source}: every entry must be device=key")
        problem = name_problem(name)
        if problem:
            raise ConfigError(f"{source}: device name {name!r} {problem}")
        table[name] = key
    return table


def keys_match(expected: str, given: str) -> bool:
    """Constant-time comparison, so a key cannot be guessed byte by byte from timings."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, the env file (argument or ENERGYMON_CONFIG) and overrides."""
    _refuse_unknown_variables()
    path = config_file or (
        Path(os.environ[CONFIG_VARIABLE]) if os.environ.get(CONFIG_VARIABLE) else None
    )
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return Settings(_env_file=path, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> ConfigError:
    # A check of several settings together (the tariff) has no single location.
    problems = "; ".join(
        (f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
        + e["msg"].removeprefix("Value error, ")
        for e in exc.errors()
    )
    return ConfigError(f"invalid settings: {problems}")


def _refuse_unknown_variables() -> None:
    """A mistyped variable would otherwise be ignored without a word, and its default used."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | {CONFIG_VARIABLE}
    for variable in sorted(os.environ):
        if variable.startswith(ENV_PREFIX) and variable not in known:
            close = difflib.get_close_matches(variable, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown setting {variable}{hint}; see docs/configuration.md")


def settings_markdown() -> str:
    """The table of every setting, as `docs/configuration.md` shows it."""
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        shown = "(empty)" if default in ("", None) else f"`{default}`"
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows) + "\n"
