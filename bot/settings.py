"""One settings object for the clinic app, read from the environment (prefix `ASSISTANT_`) or `.env`."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "change-me"


class Settings(BaseSettings):
    """Everything that differs between a laptop, CI and a clinic's server."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = ROOT / "var"
    database_url: str = ""  # empty: SQLite file var/app.db

    # Rasa server (loopback only) and the shared secret it presents when calling our action endpoint.
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 5.0
    action_token: str = ""

    # Knowledge base.
    articles_dir: Path = ROOT / "knowledge" / "articles"
    clinic_profile: Path = ROOT / "knowledge" / "clinic.yml"
    index_dir: Path = Path()  # empty: var/index
    embedding_model: str = ""  # empty: the bundled all-MiniLM-L6-v2 weights

    # Input limits for every channel.
    max_message_chars: int = 2000

    # Staff API (admin) bearer token.
    staff_token: str = ""

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'app.db'}"
        if self.index_dir == Path():
            self.index_dir = self.var_dir / "index"
        for name in ("action_token", "staff_token"):
            value = getattr(self, name)
            if self.environment == "production" and value in ("", PLACEHOLDER):
                raise ValueError(f"ASSISTANT_{name.upper()} must be set to a real secret in production")
            if not value:
                # Development and tests: a random secret per process is safe and needs no set-up.
                setattr(self, name, secrets.token_urlsafe(24))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests override with `app.dependency_overrides` or `create_app(settings)`)."""
    return Settings()
