"""Issue 7's probes in-process: the real app (middleware, routes, pipeline, triage engine, SQLite database,
sessions, rate limits, outbox worker and the notification fakes on 127.0.0.1) around the stand-in Rasa of
tests/escalation/stubs. The same probes against both real processes are in tests/e2e."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from bot.db import Database
from bot.services import Services
from bot.settings import Settings
from knowledge.answers import Answerer, Decision
from knowledge.articles import load_articles
from knowledge.clinic import load_clinic_profile
from knowledge.index import PassageStore
from knowledge.live import LiveIndex
from knowledge.retriever import Retriever
from tests.escalation.stubs import running_app, stub_services
from tests.knowledge.conftest import FIXTURE_ARTICLES, KeywordEmbedder

# Short enough that a probe of a locked database takes a moment, long enough for a brief lock to pass.
BUSY_SECONDS = 0.3


@lru_cache(maxsize=1)
def small_answerer() -> Answerer:
    """A real knowledge base over the test articles and hand-made vectors (health reports its index)."""
    return small_knowledge().current.answerer


def small_knowledge() -> LiveIndex:
    """The same as a live index, as the staff side needs it (in memory)."""
    clinic = load_clinic_profile()
    live = LiveIndex(
        KeywordEmbedder(),
        lambda store, embedder: Answerer(Retriever(store, embedder), clinic, Decision(threshold=0.5)),
    )
    live.install(PassageStore.build(load_articles(FIXTURE_ARTICLES), live.embedder))
    return live


@pytest.fixture
def db_path(tmp_path: Path, migrated_template: Path) -> Path:
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_template, path)
    return path


@pytest.fixture
def db(db_path: Path) -> Database:
    """The app database with a short busy timeout, so that a locked database shows quickly."""
    return Database(f"sqlite:///{db_path}", busy_timeout_seconds=BUSY_SECONDS)


@pytest.fixture
def make_client(tmp_path: Path, db: Database) -> Iterator[Callable[..., TestClient]]:
    """The app around stub-Rasa services; `settings` (or test settings with `overrides`). Closed after."""
    opened = []

    def make(settings: Settings | None = None, **overrides) -> TestClient:
        if settings is None:
            settings = Settings(_env_file=None, environment="test", var_dir=tmp_path, **overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
        services = stub_services(settings, db)
        services.answerer = small_answerer()
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


# --- a database that fails in the ways a real one does ---------------------------------------------------


@contextmanager
def write_lock(path: Path, seconds: float | None = None) -> Iterator[None]:
    """Another connection holds the database's write lock (for `seconds`, or until the block ends)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            other.execute("ROLLBACK")
            other.close()

    timer = threading.Timer(seconds, release) if seconds is not None else None
    if timer:
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.join()
        release()


def make_read_only(db: Database) -> None:
    """Every connection of `db` may read but no longer write (what a read-only file system gives)."""
    db.engine.dispose()
    event.listen(db.engine, "connect", lambda connection, _record: connection.execute("PRAGMA query_only=ON"))


def remove_database(db: Database, path: Path) -> None:
    """The database file is gone (deleted, an unmounted volume): what reconnecting finds is empty."""
    db.engine.dispose()
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if leftover.exists():
            os.remove(leftover)
