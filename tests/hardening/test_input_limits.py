"""Bad input of any kind gets a clear error in the declared schema, before any work is done (issue 7, "Bodies
are read and parsed before any limit or token check" and "Smaller"): body size before parsing, tokens before
bodies and only in headers, integers and dates bounded."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.models import Conversation
from bot.schemas import ErrorResponse
from tests.escalation.stubs import EMERGENCY_TEXT
from tests.patient import Patient
from tests.staff_users import api_token

LIMIT = 16_384
WEBHOOK_LIMIT = 4_000_000
ROUTES = [
    ("POST", "/api/chat", LIMIT),
    ("GET", "/api/health", LIMIT),
    ("GET", "/api/conversations/api-0/messages", LIMIT),
    ("DELETE", "/api/conversations/api-0", LIMIT),
    ("POST", "/admin/conversations/api-0/messages", LIMIT),
    ("POST", "/admin/escalations/1/acknowledge", LIMIT),
    ("GET", "/admin/escalations", LIMIT),
    ("GET", "/widget/config", LIMIT),
    ("GET", "/", LIMIT),
    ("POST", "/webhook", WEBHOOK_LIMIT),
]


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    ErrorResponse.model_validate(body)
    assert set(body) == {"detail", "problems"}, "the declared error schema, nothing else"
    assert "Traceback" not in response.text
    return body


def conversations(services) -> int:
    with services.db.session() as session:
        return session.query(Conversation).count()


# --- body size, before anything parses -------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "limit"), ROUTES)
def test_a_body_over_the_limit_is_refused_before_it_is_read(client, services, method, path, limit) -> None:
    declared = client.request(
        method, path, content=b"{" + b" " * limit + b"}", headers={"content-type": "application/json"}
    )
    assert_error(declared, 413)
    assert declared.headers["x-content-type-options"] == "nosniff", "refusals carry the headers too"

    def streamed():  # chunked: no Content-Length to judge by, so it is counted as it arrives
        for _ in range(limit // 4096 + 2):
            yield b" " * 4096

    assert_error(client.request(method, path, content=streamed()), 413)
    assert conversations(services) == 0


def test_a_body_just_under_the_limit_is_read(client) -> None:
    body = '{"text": "can I wear makeup?"' + " " * (LIMIT - 40) + "}"
    assert (
        client.post("/api/chat", content=body, headers={"content-type": "application/json"}).status_code
        == 200
    )


def test_a_message_longer_than_allowed_is_refused_with_the_reply_that_says_why(client, services) -> None:
    for length in (2001, 7999, 8001):
        body = assert_error(client.post("/api/chat", json={"text": "a" * length}), 422)
        assert body["problems"][0]["field"] == "text"
    assert conversations(services) == 0


# --- who is calling, before the body ---------------------------------------------------------------------

BAD_BODIES = [b"{not json", b"\xff\xfe\x00", b"[]", b'{"next_action": 1}', b""]
BAD_TOKENS = [None, b"Bearer wrong", b"Bearer \xc3\xa9\xe2\x82\xac", b"Bearer ", b"Basic abc", b"\xff\xff"]


@pytest.mark.parametrize("authorization", BAD_TOKENS)
@pytest.mark.parametrize(
    "path", ["/webhook", "/admin/conversations/api-0/messages", "/admin/escalations/1/acknowledge"]
)
def test_a_bad_or_missing_token_is_refused_before_the_body_is_parsed(client, path, authorization) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization  # type: ignore[assignment] - raw bytes, like a client may send
    for body in BAD_BODIES:
        assert_error(client.post(path, content=body, headers=headers), 401)


def test_tokens_in_the_query_string_or_a_cookie_open_nothing(client, services) -> None:
    patient = Patient(client)
    patient.says("hello")
    messages = f"/api/conversations/{patient.session_id}/messages"
    for name in ("token", "session_token", "X-Session-Token", "x-session-token"):
        assert_error(client.get(messages, params={name: patient.token}), 401)
    client.cookies.set("X-Session-Token", patient.token)
    assert_error(client.get(messages), 401)
    client.cookies.clear()

    staff, action = api_token(services.db), services.settings.action_token
    for name, value in (("token", staff), ("access_token", staff), ("authorization", f"Bearer {staff}")):
        assert_error(client.get("/admin/escalations", params={name: value}), 401)
    assert_error(client.post("/webhook", params={"token": action}, json={"next_action": "x"}), 401)


# --- integers and dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("after", [-1, 2**31, 2**63, 2**64 + 1, 10**30, "1e3", "nan"])
def test_after_beyond_what_a_message_id_can_be_is_a_422(client, after) -> None:
    patient = Patient(client)
    patient.says("hello")
    body = assert_error(
        client.get(
            f"/api/conversations/{patient.session_id}/messages",
            params={"after": after},
            headers=patient.headers(),
        ),
        422,
    )
    assert body["problems"][0]["field"] == "after"


@pytest.mark.parametrize("escalation_id", [0, -1, 2**63, 2**64 + 1, 10**30])
def test_an_escalation_id_beyond_what_the_database_holds_is_a_422(client, services, escalation_id) -> None:
    staff = {"Authorization": f"Bearer {api_token(services.db)}"}
    body = assert_error(client.post(f"/admin/escalations/{escalation_id}/acknowledge", headers=staff), 422)
    assert body["problems"][0]["field"] == "escalation_id"


def test_the_largest_escalation_id_is_simply_not_found(client, services) -> None:
    staff = {"Authorization": f"Bearer {api_token(services.db)}"}
    assert_error(client.post(f"/admin/escalations/{2**63 - 1}/acknowledge", headers=staff), 404)


@pytest.mark.parametrize(
    "treatment_date",
    ["0001-01-01", "1900-06-15", (date.today() + timedelta(days=2)).isoformat(), "9999-12-31", "2024-02-30",
     "2024-13-01", "yesterday", "2024/02/01", "20240201"],
)  # fmt: skip
def test_a_treatment_date_that_cannot_be_true_is_a_422_naming_the_format(
    client, services, treatment_date
) -> None:
    body = assert_error(
        client.post("/api/chat", json={"text": "hello", "treatment_date": treatment_date}), 422
    )
    [problem] = body["problems"]
    assert problem["field"] == "treatment_date" and "YYYY-MM-DD" in problem["problem"]
    assert conversations(services) == 0


@pytest.mark.parametrize("treatment_date", ["0001-01-01", "2024-13-01", "yesterday", "9999-12-31"])
def test_a_red_flag_with_a_date_that_cannot_be_true_still_gets_its_triage_reply(
    client, services, treatment_date
) -> None:
    response = client.post("/api/chat", json={"text": EMERGENCY_TEXT, "treatment_date": treatment_date})

    assert response.status_code == 200, response.text
    [first, *_] = response.json()["messages"]
    assert first["triage"] == "emergency" and services.clinic.emergency_number in first["text"]
    [escalation] = services.escalations.recent()
    assert escalation.severity == "emergency"
    with services.db.session() as session:
        assert session.query(Conversation).one().treatment_date is None, "the impossible date is ignored"


def test_a_real_treatment_date_is_taken(client) -> None:
    last_week = (date.today() - timedelta(days=7)).isoformat()
    assert client.post("/api/chat", json={"text": "hello", "treatment_date": last_week}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"text"',
        b'{"text": 3}',
        b'{"text": null}',
        b'{"session_id": "x y", "text": "hi"}',
        b'{"text": "hi", "treatment_date": 20240101}',
        b'{"text": "hi"',
    ],
)
def test_a_malformed_chat_request_is_a_422_in_the_error_schema(client, body) -> None:
    assert_error(client.post("/api/chat", content=body, headers={"content-type": "application/json"}), 422)


@pytest.mark.parametrize("body", [b"\xff", b"\xff\xfe", b"\xc3(", b"\x00\x00\x00"])
def test_a_body_that_is_not_even_text_is_a_clear_error_in_the_schema(client, body) -> None:
    response = client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert_error(response, response.status_code)
    assert response.status_code in (400, 422)
