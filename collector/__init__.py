"""The collector: takes readings from devices and local serial meters and makes them durable
in the local InfluxDB, or in its on-disk spool while InfluxDB is away."""
