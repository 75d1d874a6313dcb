"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.db import Database, migrate

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rasa_model() -> Path:
    """The trained Rasa model `make test` prepared (trained once per change of the training data)."""
    model = Path(os.environ.get("ASSISTANT_RASA_MODEL", ""))
    if not model.is_file():
        pytest.fail("no trained Rasa model: run the tests with `make test` (it trains the model once)")
    return model


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrations run once; each test gets a copy of the result."""
    path = tmp_path_factory.mktemp("template") / "app.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(tmp_path: Path, migrated_template: Path) -> Database:
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_template, path)
    return Database(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The real product: Rasa server and clinic app as two processes on free loopback ports."""
    from bot.launcher import Product

    var_dir = tmp_path_factory.mktemp("var")
    running = Product(
        model=rasa_model(),
        port=free_port(),
        rasa_port=free_port(),
        var_dir=var_dir,
        # A new Rasa session every 3 turns, so multi-turn tests cross a session boundary.
        extra_env={"ASSISTANT_ENVIRONMENT": "test", "ASSISTANT_RASA_SESSION_TURNS": "3"},
    )
    try:
        running.start(log_dir=var_dir)
    except Exception:
        running.stop()
        for log in sorted(var_dir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    yield running
    running.stop()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio, like the app."""
    return "asyncio"
