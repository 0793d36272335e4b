"""Replication of this home's data from the local InfluxDB to a cloud InfluxDB (and back)."""
