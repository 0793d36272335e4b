"""Shared pieces of the energy monitor: settings, reading schema, line protocol, InfluxDB client."""

__version__ = "0.1.0"
