"""The app database: engine, sessions and schema migrations (Alembic, run at start-up)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
# How long SQLite keeps retrying a statement that finds the database locked by another connection
# (ASSISTANT_DATABASE_BUSY_TIMEOUT_SECONDS). Writes here take milliseconds, so a lock held longer means
# something is wrong: the patient then gets the triage reply and the clinic's phone after this wait.
BUSY_TIMEOUT_SECONDS = 10.0


def make_engine(url: str, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so the app and its jobs can share the file."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_seconds},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # "database is locked": SQLite waits and retries for this long before giving up.
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
            cursor.close()
            # SQLAlchemy, not the sqlite3 module, decides when a transaction begins (see below).
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection) -> None:  # type: ignore[no-untyped-def]
            # Take the write lock at the start: two transactions that both read and then write would
            # otherwise deadlock, and SQLite answers one of them "database is locked" at once instead of
            # waiting its busy timeout. With it, writers simply queue (WAL keeps readers of other
            # connections unblocked).
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def migrate(url: str) -> None:
    """Bring the schema at `url` up to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")


class Database:
    """Engine plus session factory; `with db.session() as s:` commits on success, rolls back on error."""

    def __init__(self, url: str, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_seconds)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._factory() as session, session.begin():
            yield session
