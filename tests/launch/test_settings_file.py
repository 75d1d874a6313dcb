"""Settings come from the environment, then a `.env` file, and `make run`'s launcher uses them as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.launcher import Product
from bot.settings import Settings

IN_THE_FILE = ("ASSISTANT_PORT", "ASSISTANT_RASA_PORT", "ASSISTANT_RASA_SESSION_TURNS", "ASSISTANT_VAR_DIR")


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch) -> Path:
    for name in IN_THE_FILE:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / ".env"
    path.write_text(
        "ASSISTANT_PORT=8123\nASSISTANT_RASA_PORT=5123\nASSISTANT_RASA_SESSION_TURNS=7\n"
        f"ASSISTANT_VAR_DIR={tmp_path / 'var'}\n",
        encoding="utf-8",
    )
    return path


def test_the_env_file_is_read(env_file: Path) -> None:
    settings = Settings(_env_file=env_file)
    assert (settings.port, settings.rasa_port, settings.rasa_session_turns) == (8123, 5123, 7)


def test_the_environment_wins_over_the_env_file(env_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_PORT", "8456")
    assert Settings(_env_file=env_file).port == 8456


def test_the_launcher_passes_the_settings_on_to_both_processes(env_file: Path) -> None:
    settings = Settings(_env_file=env_file)
    product = Product(model=Path("model.tar.gz"), settings=settings)
    env = product.environment()
    assert env["ASSISTANT_PORT"] == "8123"
    assert env["ASSISTANT_RASA_URL"].endswith(":5123")
    assert env["ASSISTANT_VAR_DIR"] == str(env_file.parent / "var")
    assert product.url.endswith(":8123")
