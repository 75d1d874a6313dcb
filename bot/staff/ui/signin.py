"""Signing in and out of the admin UI (its own CSRF token, rate limit, lock-out)."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.api.deps import client_address
from bot.staff.auth import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    RuntimeDep,
    checked_form,
    login_token,
    new_login_cookie,
)
from bot.staff.runtime import StaffRuntime
from bot.staff.ui.pages import (
    Anyone,
    back,
    page,
)

router = APIRouter(prefix="/admin", tags=["staff UI"], include_in_schema=False)


# --- signing in ----------------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, runtime: RuntimeDep, next: str = "/admin") -> HTMLResponse:  # noqa: A002
    cookie = request.cookies.get(LOGIN_COOKIE) or new_login_cookie()
    response = page(
        request, "login.html", None, next=_safe_next(next), login_csrf=login_token(runtime, cookie)
    )
    _set_cookie(response, runtime, LOGIN_COOKIE, cookie, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    client = client_address(request)
    if not runtime.login_limiter.allow(client):
        return _login_again(request, runtime, "rate", 429)
    form = await request.form(max_files=0, max_fields=10)
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    sent = form.get("csrf_token")
    if not cookie or not isinstance(sent, str) or not _same(sent, login_token(runtime, cookie)):
        return _login_again(request, runtime, "csrf", 403)
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:256]
    result = await asyncio.to_thread(runtime.accounts.authenticate, username, password)
    if result.outcome == "locked":
        return _login_again(request, runtime, "locked", 403)
    if result.outcome != "ok" or result.user is None:
        return _login_again(request, runtime, "wrong", 401)
    secret = await asyncio.to_thread(runtime.accounts.start_session, result.user)
    runtime.warm_gate_soon()
    response = back(_safe_next(str(form.get("next", "/admin"))))
    _set_cookie(
        response,
        runtime,
        SESSION_COOKIE,
        secret,
        max_age=runtime.services.settings.staff_session_hours * 3600,
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep, user: Anyone) -> Response:
    await checked_form(request, runtime)
    runtime.accounts.end_session(request.cookies.get(SESSION_COOKIE), user.actor)
    response = back("/admin/login", "signed_out")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def _login_again(request: Request, runtime: StaffRuntime, reason: str, status_code: int) -> HTMLResponse:
    cookie = request.cookies.get(LOGIN_COOKIE) or new_login_cookie()
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        error=reason,
        next=_safe_next(request.query_params.get("next", "/admin")),
        login_csrf=login_token(runtime, cookie),
    )
    _set_cookie(response, runtime, LOGIN_COOKIE, cookie, max_age=3600)
    return response


def _set_cookie(response: Response, runtime: StaffRuntime, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=runtime.cookie_secure,
    )


def _safe_next(target: str) -> str:
    """Only our own pages: never an open redirect to another site."""
    return (
        target
        if target.startswith("/admin") and not target.startswith("//") and "\\" not in target
        else "/admin"
    )


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
