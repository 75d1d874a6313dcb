"""The chat API and the widget's routes in-process: the real app, database, triage and sessions; Rasa is the
stand-in of tests/escalation/stubs (the real Rasa is in tests/e2e and tests/browser)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.db import Database
from bot.services import Services
from bot.settings import Settings
from tests.escalation.stubs import running_app, stub_services


class Clock:
    """Seconds since the epoch, moved by hand: session tokens are stamped and aged with it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_client(tmp_path: Path, db: Database) -> Iterator[Callable[..., TestClient]]:
    """An app with the given settings (and optionally ready-made services); closed after the test."""
    opened = []

    def make(settings: Settings | None = None, **overrides) -> TestClient:
        settings = settings or Settings(_env_file=None, environment="test", var_dir=tmp_path, **overrides)
        services = stub_services(settings, db)
        context = running_app(services)
        client = context.__enter__()
        client.services = services  # type: ignore[attr-defined]
        opened.append(context)
        return client

    yield make
    for context in reversed(opened):
        context.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def services(client) -> Services:
    return client.services
