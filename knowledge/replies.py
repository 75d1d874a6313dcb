"""The assistant's fixed replies (`replies.yml`): one place for every sentence that is not an article."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge.clinic import ClinicProfile

DEFAULT_REPLIES = Path(__file__).with_name("replies.yml")


class _KeepUnknown(dict):
    """Placeholders a reply does not get stay as they are (never a KeyError in front of a patient)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Replies:
    texts: dict[str, dict[str, Any]]  # reply -> language -> text (or a list of texts: button titles)
    clinic: ClinicProfile

    def text(self, name: str, language: str = "en", **values: object) -> str:
        """The reply in `language` when it has one, else in English, with clinic facts and `values` filled."""
        versions = self.texts[name]
        template = versions.get(language) or versions["en"]
        return str(template).format_map(_KeepUnknown(self._facts(), **{k: str(v) for k, v in values.items()}))

    def options(self, name: str, language: str = "en") -> list[str]:
        """A list reply (button titles)."""
        versions = self.texts[name]
        return [str(item) for item in (versions.get(language) or versions["en"])]

    def has(self, name: str, language: str) -> bool:
        return language in self.texts.get(name, {})

    def _facts(self) -> dict[str, str]:
        clinic = self.clinic
        return {
            "clinic_name": clinic.name,
            "clinic_phone": clinic.phone,
            "clinic_hours": clinic.hours,
            "emergency_number": clinic.emergency_number,
            "booking_url": clinic.booking_url,
            "clinic_email": clinic.email,
        }


@lru_cache(maxsize=4)
def _read(path: Path) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for name, versions in data.items():
        if not isinstance(versions, dict) or "en" not in versions:
            raise ValueError(f"{path}: reply {name!r} needs an English (`en`) text")
        for language, text in versions.items():
            if isinstance(text, str):
                versions[language] = " ".join(text.split())
    return data


def load_replies(clinic: ClinicProfile, path: Path | None = None) -> Replies:
    return Replies(_read(path or DEFAULT_REPLIES), clinic)
