"""InfluxDB clients as the settings describe them: the local server and the cloud."""

from __future__ import annotations

from energymon.influx import InfluxClient
from energymon.settings import Settings


def local_influx(
    settings: Settings, *, timeout_s: float | None = None, compress_responses: bool = True
) -> InfluxClient:
    return InfluxClient(
        settings.influx_url,
        settings.influx_db,
        username=settings.influx_username,
        password=settings.influx_password.get_secret_value(),
        token=settings.influx_token.get_secret_value(),
        timeout_s=settings.influx_timeout_s if timeout_s is None else timeout_s,
        compress_responses=compress_responses,
        # The local InfluxDB is on this machine or its LAN by design.
        allow_http_credentials=True,
    )


def cloud_influx(settings: Settings) -> InfluxClient:
    return InfluxClient(
        settings.cloud_url,
        settings.cloud_db,
        username=settings.cloud_username,
        password=settings.cloud_password.get_secret_value(),
        token=settings.cloud_token.get_secret_value(),
        timeout_s=settings.cloud_timeout_s,
        ca_file=settings.cloud_ca_file,
        allow_http_credentials=settings.cloud_allow_http_credentials,
        create_database=settings.cloud_create_database,
    )
