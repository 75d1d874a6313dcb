"""Accounts: argon2id hashes, a safe sign-in cookie, lock-out, rate limit, sign-out, the first-admin CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import Type
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.staff import accounts as accounts_module
from bot.staff.accounts import AccountError
from bot.staff.audit import Actor, entries
from bot.staff.models import StaffSession, StaffUser
from tests.staff.conftest import PASSWORD, csrf_from, sign_in

ROOT = Path(__file__).resolve().parents[2]


def attempt(client: TestClient, username: str, password: str, **extra) -> object:
    token = csrf_from(client.get("/admin/login").text)
    return client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token, **extra},
        follow_redirects=False,
    )


def test_passwords_are_stored_as_argon2id_hashes_with_the_library_defaults(staff) -> None:
    with staff.services.db.session() as session:
        stored = session.scalars(select(StaffUser.password_hash)).all()
    assert stored and all(h.startswith("$argon2id$") and PASSWORD not in h for h in stored)
    production = accounts_module.PRODUCTION_HASHER  # tests use cheaper costs; the app uses these
    assert production.type is Type.ID
    assert (production.time_cost, production.memory_cost) >= (3, 65536)


def test_signing_in_sets_an_httponly_samesite_secure_cookie_and_starts_a_new_session(staff) -> None:
    user = staff.users["editor"].username
    response = attempt(staff.client, user, PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("assistant_staff="))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert {"httponly", "secure", "samesite=lax", "path=/admin"} <= set(attributes)
    first = staff.client.cookies.get("assistant_staff")
    sign_in(staff.client, user)
    assert staff.client.cookies.get("assistant_staff") != first, "every sign-in is a new session"
    with staff.services.db.session() as session:
        kept = session.scalars(select(StaffSession.id)).all()
    assert first not in kept, "only hashes of session secrets are stored"


def test_in_development_the_cookie_is_not_secure_so_plain_http_works(make_staff) -> None:
    staff = make_staff(environment="development")
    response = attempt(staff.client, staff.users["editor"].username, PASSWORD)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("assistant_staff="))
    assert "secure" not in cookie.lower() and "httponly" in cookie.lower()


def test_a_wrong_password_or_an_unknown_name_gets_the_same_answer(staff) -> None:
    wrong = attempt(staff.client, staff.users["editor"].username, "not the password")
    unknown = attempt(staff.client, "nobody-here", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "not right" in wrong.text and "not right" in unknown.text


def test_repeated_wrong_passwords_lock_the_account_even_against_the_right_one(staff) -> None:
    name = staff.users["editor"].username
    for _ in range(staff.services.settings.staff_max_failed_logins - 1):
        assert attempt(staff.client, name, "guess").status_code == 401
    locked = attempt(staff.client, name, "guess")
    assert locked.status_code == 403 and "locked" in locked.text
    assert attempt(staff.client, name, PASSWORD).status_code == 403, "locked means locked"
    assert [e.target_id for e in entries(staff.services.db, action="user_locked")] == [name]

    staff.accounts.unlock(staff.users["editor"].id, staff.users["admin"].actor)
    assert attempt(staff.client, name, PASSWORD).status_code == 303


def test_sign_in_attempts_are_rate_limited_per_client(make_staff) -> None:
    staff = make_staff(staff_login_rate="3/minute")
    name = staff.users["clinician"].username
    codes = [attempt(staff.client, name, "guess").status_code for _ in range(3)]
    limited = attempt(staff.client, name, PASSWORD)
    assert codes == [401, 401, 401]
    assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text


def test_signing_out_ends_the_session_on_the_server(staff) -> None:
    csrf = staff.login("clinician")
    cookie = staff.client.cookies.get("assistant_staff")
    assert (
        staff.client.post("/admin/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code
        == 303
    )
    replayed = TestClient(
        staff.client.app, base_url="https://testserver", cookies={"assistant_staff": cookie}
    )
    assert replayed.get("/admin/kb", follow_redirects=False).status_code == 303


def test_after_sign_in_the_browser_only_goes_to_our_own_pages(staff) -> None:
    user = staff.users["editor"].username
    for target in ("https://evil.example/admin", "//evil.example", "/api/chat", "/admin/kb"):
        response = attempt(staff.client, user, PASSWORD, next=target)
        expected = "/admin/kb" if target == "/admin/kb" else "/admin"
        assert response.headers["location"] == expected


def test_passwords_must_be_long_enough_and_the_last_admin_stays(staff) -> None:
    admin = staff.users["admin"]
    with pytest.raises(AccountError, match="at least 10"):
        staff.accounts.create_user("short", "Short", "editor", "123", admin.actor)
    with pytest.raises(AccountError, match="last active admin"):
        staff.accounts.update_user(admin.id, admin.actor, role="editor")
    with pytest.raises(AccountError, match="last active admin"):
        staff.accounts.update_user(admin.id, admin.actor, active=False)


def test_changing_ones_password_needs_the_current_one(staff) -> None:
    csrf = staff.login("editor")
    refused = staff.client.post(
        "/admin/account/password",
        data={"csrf_token": csrf, "current": "wrong one!", "password": "a brand new password"},
        follow_redirects=False,
    )
    assert "notice=refused" in refused.headers["location"]
    done = staff.client.post(
        "/admin/account/password",
        data={"csrf_token": csrf, "current": PASSWORD, "password": "a brand new password"},
        follow_redirects=False,
    )
    assert done.headers["location"].startswith("/admin/login")
    assert attempt(staff.client, staff.users["editor"].username, "a brand new password").status_code == 303


def test_staff_make_and_revoke_their_own_api_tokens_in_the_ui(staff) -> None:
    csrf = staff.login("editor")
    page = staff.client.post("/admin/account/tokens", data={"csrf_token": csrf, "name": "laptop"})
    token = page.text.split('<code class="token">')[1].split("</code>")[0]
    headers = {"Authorization": f"Bearer {token}"}
    assert staff.client.get("/admin/articles", headers=headers).status_code == 200
    [made] = [t for t in staff.accounts.tokens(staff.users["editor"].id) if t.name == "laptop"]
    other = staff.accounts.tokens(staff.users["clinician"].id)[0]
    assert (
        "refused"
        in staff.client.post(
            f"/admin/account/tokens/{other.id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
        ).headers["location"]
    ), "not someone else's"
    staff.client.post(f"/admin/account/tokens/{made.id}/revoke", data={"csrf_token": csrf})
    assert staff.client.get("/admin/articles", headers=headers).status_code == 401


def test_admins_create_users_and_change_roles_in_the_ui(staff) -> None:
    csrf = staff.login("admin")
    staff.client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "sam",
            "display_name": "Sam Reed",
            "role": "editor",
            "password": "sams first password",
        },
    )
    sam = staff.accounts.by_username("sam")
    assert (sam.display_name, sam.role) == ("Sam Reed", "editor")
    staff.client.post(
        f"/admin/users/{sam.id}", data={"csrf_token": csrf, "change": "role", "role": "clinician"}
    )
    assert staff.accounts.by_username("sam").role == "clinician"
    actions = [e.action for e in entries(staff.services.db, target_id="sam")]
    assert actions[:2] == ["role_changed", "user_created"]


def run_cli(
    var_dir: Path, *args: str, password: str | None = "first admin password"
) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASSISTANT_VAR_DIR": str(var_dir), "ASSISTANT_ENVIRONMENT": "test"}
    command = [sys.executable, "-m", "bot.staff", *args, *(["--password-stdin"] if password else [])]
    return subprocess.run(
        command, input=(password or "") + "\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def test_the_cli_creates_the_first_admin_once(tmp_path: Path) -> None:
    made = run_cli(tmp_path, "create-admin", "--username", "owner", "--display-name", "Clinic Owner")
    assert made.returncode == 0, made.stderr
    assert "created admin 'owner'" in made.stdout
    again = run_cli(tmp_path, "create-admin", "--username", "second")
    assert again.returncode == 1 and "an admin exists already" in again.stderr
    token = run_cli(tmp_path, "create-token", "--username", "owner", password=None)
    assert token.returncode == 0 and token.stdout.strip().startswith("mna_")
    short = run_cli(tmp_path, "create-user", "--username", "ed", "--role", "editor", password="short")
    assert short.returncode == 2 and "at least 10" in short.stderr, "a clear error, no traceback"


def test_every_sign_in_and_out_is_in_the_audit_log(staff) -> None:
    csrf = staff.login("clinician")
    staff.client.post("/admin/logout", data={"csrf_token": csrf})
    actions = [e.action for e in entries(staff.services.db, actor="Clinician One")]
    assert actions[:2] == ["signed_out", "signed_in"]


def test_a_user_deactivated_by_an_admin_is_signed_out(staff) -> None:
    staff.login("editor")
    staff.accounts.update_user(staff.users["editor"].id, Actor.system(), active=False)
    assert staff.client.get("/admin/kb", follow_redirects=False).status_code == 303
    assert attempt(staff.client, staff.users["editor"].username, PASSWORD).status_code == 401
