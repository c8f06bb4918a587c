"""Fixtures for exporter and demo-source tests (owned by the exporter work)."""
