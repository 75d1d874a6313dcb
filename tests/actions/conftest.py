"""Action tests run without a Rasa server: a tracker from JSON, a CollectingDispatcher, the real services."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker

from bot import services as services_module
from bot.services import Services, build_services
from bot.settings import Settings

TRACKERS = Path(__file__).parent / "trackers"


@pytest.fixture(scope="session")
def app_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The real knowledge base, red-flag detector and a throwaway database."""
    settings = Settings(environment="test", var_dir=tmp_path_factory.mktemp("var"))
    ready = build_services(settings)
    services_module.install(ready)
    yield ready


@pytest.fixture
def tracker_for():
    """Build a tracker for one patient message from the JSON template."""

    def build(
        text: str,
        intent: str,
        metadata: dict[str, Any] | None = None,
        previous: str | None = None,
        **slots: Any,
    ) -> Tracker:
        """`previous`: what the patient wrote before, answered by `action_answer_question`."""
        data = copy.deepcopy(json.loads((TRACKERS / "question.json").read_text()))
        data["latest_message"].update(
            text=text, intent={"name": intent, "confidence": 0.9}, metadata=metadata or {}
        )
        if previous is not None:
            data["events"] += [
                {"event": "user", "text": previous},
                {"event": "action", "name": "action_answer_question"},
                {"event": "action", "name": "action_listen"},
            ]
        data["events"].append({"event": "user", "text": text})
        data["slots"].update(slots)
        return Tracker.from_dict(data)

    return build
