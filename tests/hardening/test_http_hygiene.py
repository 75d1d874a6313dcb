"""The smaller items of issue 7: security headers on every response, /docs off in production, `.env` kept out
of git, SQLite's "database is locked" waited out, triage off the event loop, and an unexpected error that
says nothing it should not."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time

import pytest

from bot.models import Conversation
from bot.settings import Settings
from tests.conftest import ROOT
from tests.escalation.stubs import URGENT_TEXT, running_app, stub_services
from tests.hardening.conftest import small_answerer, write_lock
from tests.hardening.test_promises import REAL_SECRETS, REAL_SMS
from tests.patient import Patient
from tests.staff_users import api_token


def directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


def assert_hardened(response, patient_data: bool, name: str = "") -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", name
    policy = directives(headers["content-security-policy"])
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    if patient_data:
        assert headers["cache-control"] == "no-store"


def test_every_kind_of_response_carries_the_security_headers(client, services) -> None:
    patient = Patient(client)
    reply = client.post("/api/chat", json={"text": "hello"})
    patient.session_id, patient.token = reply.json()["session_id"], reply.json()["session_token"]
    staff = {"Authorization": f"Bearer {api_token(services.db)}"}
    responses = {
        "chat": reply,
        "messages": client.get(
            f"/api/conversations/{patient.session_id}/messages", headers=patient.headers()
        ),
        "health": client.get("/api/health"),
        "staff": client.get("/admin/escalations", headers=staff),
        "401": client.get(f"/api/conversations/{patient.session_id}/messages"),
        "422": client.post("/api/chat", json={"text": 3}),
        "413": client.post("/api/chat", content=b"x" * 20_000),
        "404": client.get("/api/nothing-here"),
        "405": client.put("/api/chat"),
    }
    for name, response in responses.items():
        assert_hardened(response, patient_data=True, name=name)
    assert_hardened(client.get("/"), patient_data=False)
    assert_hardened(client.get("/widget/widget.js"), patient_data=False)


def test_an_unexpected_error_is_a_500_in_the_schema_that_logs_its_class_and_place_only(
    client, services, monkeypatch, caplog
) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("patient Zed Quill, +1 617 555 0199, said his throat is closing")

    monkeypatch.setattr(services.escalations, "recent", broken)
    staff = {"Authorization": f"Bearer {api_token(services.db)}"}
    response = client.get("/admin/escalations", headers=staff)

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; please call the clinic", "problems": []}
    assert_hardened(response, patient_data=True)
    logged = "\n".join(
        record.getMessage() + (record.exc_text or "") + str(record.exc_info or "")
        for record in caplog.records
    )
    assert (
        "unexpected error on /admin/escalations: RuntimeError at tests/hardening/test_http_hygiene.py"
        in logged
    )
    assert "Zed" not in logged and "555" not in logged and "Traceback" not in logged


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"])
def test_the_api_documentation_is_off_in_production(db, tmp_path, path) -> None:
    settings = Settings(
        _env_file=None, environment="production", var_dir=tmp_path, **REAL_SECRETS, **REAL_SMS
    )
    services = stub_services(settings, db)
    services.answerer = small_answerer()
    with running_app(services) as client:
        assert client.get(path).status_code == 404
        assert client.get("/api/health").status_code == 200, "the app itself runs"


def test_the_api_documentation_is_on_in_development(client) -> None:
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_the_env_file_with_the_secrets_is_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        assert ".env" in (ROOT / ".gitignore").read_text().split()
        return
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"
    tracked = subprocess.run(["git", "ls-files", ".env", "*.env"], cwd=ROOT, capture_output=True, text=True)
    assert tracked.stdout == ""


def test_a_write_lock_held_briefly_by_another_connection_is_waited_out(client, services, db_path) -> None:
    with write_lock(db_path, seconds=0.15):  # shorter than the busy timeout (0.3 s in these tests)
        started = time.perf_counter()
        reply = client.post("/api/chat", json={"text": "can I wear makeup?"})
        waited = time.perf_counter() - started

    assert reply.status_code == 200
    assert reply.json()["session_token"], "the conversation was opened, not given up on"
    assert waited >= 0.1, "it really met the lock"
    with services.db.session() as session:
        assert session.get(Conversation, reply.json()["session_id"]) is not None


def test_the_app_answers_other_requests_while_a_slow_triage_runs(client, services, monkeypatch) -> None:
    engine = services.triage
    started, release = threading.Event(), threading.Event()
    original = engine.assess

    def slow_assess(text, day=None):
        started.set()
        release.wait(5)  # a triage that takes long (a huge message, a slow learned layer)
        return original(text, day)

    monkeypatch.setattr(engine, "assess", slow_assess)
    replies = []
    sender = threading.Thread(
        target=lambda: replies.append(client.post("/api/chat", json={"text": URGENT_TEXT}))
    )
    sender.start()
    assert started.wait(5)

    before = time.perf_counter()
    health = client.get("/api/health")
    elapsed = time.perf_counter() - before
    still_triaging = not release.is_set() and sender.is_alive()
    release.set()
    sender.join(10)

    assert health.status_code == 200 and still_triaging
    assert elapsed < 1.0, f"health waited {elapsed:.2f} s for the triage"
    assert replies[0].status_code == 200 and replies[0].json()["messages"][0]["triage"] == "urgent"


def test_logs_never_carry_the_message_text(client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    Patient(client).says("Quentin Zebrowski here, my lips are swelling, call 617-555-0143 or qz@mail.example")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for canary in ("Quentin", "Zebrowski", "617-555-0143", "qz@mail.example", "swelling"):
        assert canary not in logged


def test_a_query_parameter_given_twice_is_refused_in_the_error_schema(client) -> None:
    """No parameter of the API takes a list: `?after=1&after=5` does not say which one is meant."""
    response = client.get("/api/conversations/some-session/messages?after=1&after=5")
    assert response.status_code == 422
    assert response.json() == {"detail": "query parameter given more than once: after", "problems": []}
    assert response.headers["x-content-type-options"] == "nosniff"
