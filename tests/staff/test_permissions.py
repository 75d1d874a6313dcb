"""Every staff route refuses the anonymous, every wrong role, and (for forms) a missing or wrong CSRF token;
and a refused request changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.staff.auth import PERMISSIONS
from tests.staff.conftest import Staff, sign_in

ROLES = ("admin", "editor", "clinician")
ARTICLE = "makeup-after-treatment"

UI_PAGES = [
    ("/admin", "account"),
    ("/admin/account", "account"),
    ("/admin/kb", "view"),
    (f"/admin/kb/{ARTICLE}", "view"),
    (f"/admin/kb/{ARTICLE}/history", "view"),
    (f"/admin/kb/{ARTICLE}/review", "view"),
    ("/admin/kb/try", "view"),
    ("/admin/kb/export", "view"),
    ("/admin/kb/new", "edit"),
    (f"/admin/kb/{ARTICLE}/edit", "edit"),
    ("/admin/kb/import", "edit"),
    ("/admin/questions", "questions"),
    ("/admin/care/escalations", "care"),
    ("/admin/care/handoffs", "care"),
    ("/admin/care/conversations/api-unknown", "care"),
    ("/admin/audit", "audit"),
    ("/admin/users", "users"),
]
UI_FORMS = [
    ("/admin/logout", "account"),
    ("/admin/account/password", "account"),
    ("/admin/account/tokens", "account"),
    ("/admin/account/tokens/1/revoke", "account"),
    ("/admin/kb/try", "view"),
    ("/admin/kb/new", "edit"),
    ("/admin/kb/preview", "edit"),
    ("/admin/kb/import/document", "edit"),
    ("/admin/kb/import/articles", "edit"),
    (f"/admin/kb/{ARTICLE}/edit", "edit"),
    (f"/admin/kb/{ARTICLE}/submit", "edit"),
    (f"/admin/kb/{ARTICLE}/rollback", "edit"),
    (f"/admin/kb/{ARTICLE}/publish", "publish"),
    (f"/admin/kb/{ARTICLE}/send-back", "publish"),
    (f"/admin/kb/{ARTICLE}/retire", "publish"),
    ("/admin/questions/1/link", "questions"),
    ("/admin/care/escalations/1/acknowledge", "care"),
    ("/admin/care/conversations/api-unknown/reply", "care"),
    ("/admin/care/conversations/api-unknown/hand-back", "care"),
    ("/admin/users", "users"),
    ("/admin/users/1", "users"),
]
API = [
    ("get", "/admin/escalations", "care"),
    ("post", "/admin/escalations/1/acknowledge", "care"),
    ("get", "/admin/conversations/handed-off", "care"),
    ("get", "/admin/conversations/abc/messages", "care"),
    ("post", "/admin/conversations/abc/messages", "care"),
    ("post", "/admin/conversations/abc/hand-back", "care"),
    ("get", "/admin/triage-reviews", "care"),
    ("get", "/admin/outbox", "care"),
    ("get", "/admin/unanswered-questions", "questions"),
    ("get", "/admin/articles", "view"),
    ("post", "/admin/articles", "edit"),
    ("get", f"/admin/articles/{ARTICLE}", "view"),
    ("put", f"/admin/articles/{ARTICLE}", "edit"),
    ("post", f"/admin/articles/{ARTICLE}/submit", "edit"),
    ("get", f"/admin/articles/{ARTICLE}/review", "view"),
    ("post", f"/admin/articles/{ARTICLE}/publish", "publish"),
    ("post", f"/admin/articles/{ARTICLE}/send-back", "publish"),
    ("post", f"/admin/articles/{ARTICLE}/rollback", "edit"),
    ("post", f"/admin/articles/{ARTICLE}/retire", "publish"),
    ("get", f"/admin/articles/{ARTICLE}/versions", "view"),
    ("get", "/admin/articles-export", "view"),
    ("post", "/admin/articles-import", "edit"),
    ("get", "/admin/knowledge", "view"),
    ("post", "/admin/knowledge/try", "view"),
]


def wrong_roles(permission: str) -> list[str]:
    return [role for role in ROLES if role not in PERMISSIONS[permission]]


def cases(routes: list[tuple], who: str) -> list:
    if who == "wrong":
        return [
            pytest.param(*route, role, id=f"{route[-2]}-as-{role}")
            for route in routes
            for role in wrong_roles(route[-1])
        ]
    return [pytest.param(*route, id=route[-2]) for route in routes]


@pytest.fixture(scope="module")
def clients(shared_staff: Staff) -> Iterator[dict[str, TestClient]]:
    """One signed-in browser per role, plus an anonymous one."""
    made = {}
    for role in (*ROLES, "anonymous"):
        client = TestClient(shared_staff.client.app, base_url="https://testserver")
        if role != "anonymous":
            sign_in(client, shared_staff.users[role].username)
        made[role] = client
    yield made


def csrf_of(client: TestClient) -> str:
    from tests.staff.conftest import csrf_from

    return csrf_from(client.get("/admin/account").text)


# --- the admin UI --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "permission"), cases(UI_PAGES, "any"))
def test_anonymous_pages_go_to_the_sign_in(clients, path, permission) -> None:
    response = clients["anonymous"].get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login?next=")


@pytest.mark.parametrize(("path", "permission"), cases(UI_FORMS, "any"))
def test_anonymous_forms_go_to_the_sign_in_and_do_nothing(clients, shared_staff, path, permission) -> None:
    before = audit_size(shared_staff)
    response = clients["anonymous"].post(path, data={"csrf_token": "x"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/login")
    assert audit_size(shared_staff) == before


@pytest.mark.parametrize(("path", "permission", "role"), cases(UI_PAGES, "wrong"))
def test_pages_refuse_a_wrong_role(clients, path, permission, role) -> None:
    response = clients[role].get(path, follow_redirects=False)
    assert response.status_code == 403
    assert "Not allowed" in response.text


@pytest.mark.parametrize(("path", "permission", "role"), cases(UI_FORMS, "wrong"))
def test_forms_refuse_a_wrong_role_even_with_a_valid_csrf_token(
    clients, shared_staff, path, permission, role
):
    before = audit_size(shared_staff)
    response = clients[role].post(path, data={"csrf_token": csrf_of(clients[role])}, follow_redirects=False)
    assert response.status_code == 403
    assert audit_size(shared_staff) == before


@pytest.mark.parametrize(("path", "permission"), cases(UI_FORMS, "any"))
@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
def test_forms_refuse_a_missing_or_wrong_csrf_token(clients, shared_staff, path, permission, token) -> None:
    role = next(role for role in ("clinician", "editor", "admin") if role in PERMISSIONS[permission])
    other = next(r for r in ROLES if r != role)
    data = {
        "missing": {},
        "wrong": {"csrf_token": "0" * 64},
        "another session's": {"csrf_token": csrf_of(clients[other])},
    }[token]
    before = audit_size(shared_staff)
    response = clients[role].post(path, data={**data, "title": "x", "text": "x"}, follow_redirects=False)
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert audit_size(shared_staff) == before


def test_the_sign_in_form_needs_its_own_csrf_token(shared_staff) -> None:
    client = TestClient(shared_staff.client.app, base_url="https://testserver")
    client.get("/admin/login")
    user = shared_staff.users["editor"].username
    refused = client.post("/admin/login", data={"username": user, "password": "correct horse battery"})
    assert refused.status_code == 403 and "expired" in refused.text
    forged = client.post(
        "/admin/login", data={"username": user, "password": "correct horse battery", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert "assistant_staff" not in client.cookies


def test_a_refused_publish_publishes_nothing(clients, shared_staff) -> None:
    before = shared_staff.articles.state(ARTICLE)
    editor = clients["editor"]
    editor.post(f"/admin/kb/{ARTICLE}/publish", data={"csrf_token": csrf_of(editor), "version": "1"})
    clinician = clients["clinician"]
    clinician.post(f"/admin/kb/{ARTICLE}/publish", data={"version": "1", "review_by": "2099-01-01"})
    after = shared_staff.articles.state(ARTICLE)
    assert (after.status, after.head.version, after.published.version) == (
        before.status,
        before.head.version,
        before.published.version,
    )


# --- the JSON API --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "permission"), cases(API, "any"))
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer mna_forged"},
        {"Authorization": "Basic abc"},
    ],
    ids=["none", "bogus", "forged", "basic"],
)
def test_the_api_refuses_calls_without_a_valid_personal_token(
    shared_staff, method, path, permission, headers
):
    response = shared_staff.client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "permission"), cases(API, "any"))
def test_the_api_takes_no_browser_session(clients, method, path, permission) -> None:
    role = next(role for role in ("clinician", "editor", "admin") if role in PERMISSIONS[permission])
    response = clients[role].request(method, path, json={})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "permission", "role"), cases(API, "wrong"))
def test_the_api_refuses_a_wrong_role(shared_staff, method, path, permission, role) -> None:
    before = audit_size(shared_staff)
    response = shared_staff.client.request(method, path, headers=shared_staff.api(role), json={})
    assert response.status_code == 403
    assert audit_size(shared_staff) == before


def test_a_revoked_token_or_a_deactivated_user_opens_nothing(make_staff) -> None:
    staff = make_staff()
    admin = staff.users["admin"].actor
    extra = staff.accounts.create_token(staff.users["editor"].id, "laptop", admin)
    headers = {"Authorization": f"Bearer {extra}"}
    assert staff.client.get("/admin/articles", headers=headers).status_code == 200
    [token] = [t for t in staff.accounts.tokens(staff.users["editor"].id) if t.name == "laptop"]
    staff.accounts.revoke_token(token.id, admin)
    assert staff.client.get("/admin/articles", headers=headers).status_code == 401

    assert staff.client.get("/admin/articles", headers=staff.api("clinician")).status_code == 200
    staff.login("clinician")
    assert staff.client.get("/admin/kb").status_code == 200
    staff.accounts.update_user(staff.users["clinician"].id, admin, active=False)
    assert staff.client.get("/admin/articles", headers=staff.api("clinician")).status_code == 401
    assert staff.client.get("/admin/kb", follow_redirects=False).status_code == 303, "the session ended too"


def audit_size(staff: Staff) -> int:
    from sqlalchemy import func, select

    from bot.staff.models import AuditEntry

    with staff.services.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))
