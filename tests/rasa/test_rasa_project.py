"""The Rasa project itself, checked with Rasa's own command line in the Rasa environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, rasa_model

pytestmark = pytest.mark.rasa

RASA = Path(os.environ.get("ASSISTANT_RASA_VENV", ROOT / ".venv-rasa")) / "bin" / "rasa"


def rasa(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", SQLALCHEMY_SILENCE_UBER_WARNING="1")
    return subprocess.run(
        [str(RASA), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_training_data_is_valid() -> None:
    result = rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_conversation_stories_are_predicted_without_errors(tmp_path: Path) -> None:
    result = rasa(
        "test",
        "core",
        "--model",
        str(rasa_model()),
        "--stories",
        "tests/rasa/test_stories.yml",
        "--e2e",
        "--fail-on-prediction-errors",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
