"""The loopback harness: a whole installation (local and cloud influxd, collector, replicator,
fake devices) as real processes on this machine, for the tests, the benchmarks and the demo.

It sits above the applications and knows how to start them; nothing below it imports it.
"""
