"""Simulators for tests, benchmarks and demos: a PZEM-004T on a pty, and a fake Arduino."""
