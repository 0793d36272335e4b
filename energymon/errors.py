"""The project's exception tree.

Every error the code raises on purpose derives from `EnergymonError`, so a boundary (the HTTP
app, the CLI) can map the whole family to a clear response in one place. The classes of this
module (a test keeps the drawing true):

    EnergymonError
      ConfigError
      LineProtocolError
      InfluxError
        InfluxUnavailableError
        InfluxRejectedError
        InfluxAuthError
        InfluxConfigError
      PayloadError
        MalformedJsonError
      AuthError
      BodyTooLargeError
      BodyTimeoutError
      BusyError
      SpoolFullError
      StoreError
      ModbusError
        MeterTimeoutError
      ReplicationError
      GrafanaApiError

A module that needs a narrower error derives it from one of these, beside the code that raises
it (the Modbus framing's reply errors, the simulator's transport and encoding errors).
"""

from __future__ import annotations


class EnergymonError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(EnergymonError):
    """A setting is missing or malformed."""


class LineProtocolError(EnergymonError):
    """A value cannot be written as line protocol without changing its meaning."""


class InfluxError(EnergymonError):
    """InfluxDB could not be reached or did not accept a request."""


class InfluxUnavailableError(InfluxError):
    """Transient: the server is down, slow or overloaded, or something between us answered in
    its place; the same request may succeed later."""

    retry_after_s: float | None = None
    # The HTTP status that was answered, if any.
    status: int | None = None
    # No usable answer to a request at all (reset, timeout, body too large): a smaller request
    # may get through where this one did not.
    transport: bool = False


class InfluxRejectedError(InfluxError):
    """Permanent: InfluxDB itself understood the request and refused it (unparseable data, a
    type conflict, a bad query)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB refused the request ({status}): {message}")
        self.status = status
        self.message = message


class InfluxAuthError(InfluxError):
    """The server refused the credentials."""


class InfluxConfigError(InfluxError):
    """The server cannot be used as configured: a redirect, a certificate that is not trusted,
    credentials that would cross the network in clear text. Retried like a transient error (a
    proxy may be fixed while we wait), but it takes an operator to fix."""


class PayloadError(EnergymonError):
    """A request body is malformed or misses required fields: nothing of it is stored."""


class MalformedJsonError(PayloadError):
    """A request body is not JSON at all."""


class AuthError(EnergymonError):
    """Unknown device or wrong device key."""


class BodyTooLargeError(EnergymonError):
    """A request body exceeds the configured limit."""


class BodyTimeoutError(EnergymonError):
    """A request body did not arrive within its deadline (a stalled or trickling client)."""


class BusyError(EnergymonError):
    """Too many requests are in flight; the client should retry shortly."""


class SpoolFullError(EnergymonError):
    """The durable spool reached its bound: new readings cannot be made durable right now."""


class StoreError(EnergymonError):
    """A local SQLite database (the collector's state, the dead letters) failed."""


class ModbusError(EnergymonError):
    """A Modbus frame is invalid, or a meter answered with an exception."""


class MeterTimeoutError(ModbusError):
    """A meter did not answer in time (no mains, wrong address, broken wire)."""


class ReplicationError(EnergymonError):
    """Replication could not make progress."""


class GrafanaApiError(EnergymonError):
    """A Grafana HTTP API refused or failed a request of `energymon grafana push`."""
