"""Fixtures for escalation tests live in tests/conftest.py (shared with the outbox and chat path tests)."""
