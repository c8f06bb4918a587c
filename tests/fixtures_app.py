"""Fixtures for app tests (owned by the dashboard work)."""
