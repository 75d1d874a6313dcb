"""Schemathesis against the app's own OpenAPI schema, in-process (ASGI): every documented operation gets
generated requests, valid and invalid, and every built-in check (no server error, status codes, content
types, headers and bodies as documented, invalid data refused, valid data accepted); 0 failures (issue 7,
"Fuzzing in make test"). The real app, database, triage, sessions, limits and outbox; the stand-in Rasa.

Bounded for `make test` (about a minute on a shared 2-core machine). To run it longer, raise the number of
examples per operation and mode (default 40):

    ASSISTANT_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/hardening/test_fuzz_api.py

Two deliberate allowances, both in `CONFIG`: a request with parameters the schema does not declare is not
generated (the API ignores unknown query parameters, as HTTP APIs do); and `POST /api/chat` may answer a
schema-valid request with 422, for rules JSON Schema cannot state (a text that is empty once cleaned or
longer than ASSISTANT_MAX_MESSAGE_CHARS once normalised; a treatment date in the future or more than ten
years back), always in the error schema with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from bot.db import Database
from bot.main import create_app
from bot.settings import Settings
from tests.escalation.stubs import URGENT_TEXT, running_app, stub_services
from tests.hardening.conftest import small_knowledge
from tests.staff_users import api_token

EXAMPLES = int(os.environ.get("ASSISTANT_FUZZ_EXAMPLES", "40"))
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = {
    "generation": {"allow-extra-parameters": False},
    # A body over the size limit is refused too (413); a server error never counts as a refusal.
    "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
    "operations": [
        {
            "include-name": "POST /api/chat",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "422", "429"]}},
        }
    ],
}


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory, migrated_template: Path) -> Iterator:
    """One running app for every generated request: limits lifted so that fuzzing meets the code, not 429."""
    var_dir = tmp_path_factory.mktemp("fuzz")
    database = var_dir / "app.db"
    database.write_bytes(migrated_template.read_bytes())
    settings = Settings(
        _env_file=None,
        environment="test",
        var_dir=var_dir,
        rate_limit_per_client="1000000/minute",
        rate_limit_per_conversation="1000000/minute",
        rate_limit_global="1000000/minute",
        rate_limit_new_sessions="1000000/hour",
        rate_limit_reads_per_client="1000000/minute",
    )
    services = stub_services(settings, Database(f"sqlite:///{database}"))
    services.knowledge = small_knowledge()
    services.answerer = services.knowledge.current.answerer
    with running_app(services) as client:
        # Something for the staff routes to find: a conversation with an escalation.
        assert client.post("/api/chat", json={"text": URGENT_TEXT}).status_code == 200
        client.app.state.fuzzing_token = api_token(
            services.db, "admin"
        )  # care routes; content routes refuse (403)
        yield client.app


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_asgi(
        "/openapi.json", fuzzed_app, config=SchemathesisConfig.from_dict(CONFIG)
    )


def documented_operations() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) for every operation the schema documents (read without starting the app):
    valid requests for each, invalid ones for each that takes parameters or a body."""
    document = create_app(Settings(_env_file=None, environment="test")).openapi()
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operations.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                operations.append((method.upper(), path, GenerationMode.NEGATIVE))
    return operations


@pytest.mark.parametrize(("method", "path", "mode"), documented_operations())
def test_no_server_error_and_no_response_outside_the_schema(
    fuzzed_app, api_schema, method, path, mode
) -> None:
    staff = {"Authorization": f"Bearer {fuzzed_app.state.fuzzing_token}"}
    operation = api_schema[path][method]

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case) -> None:
        case.call_and_validate(headers=staff)

    call()
