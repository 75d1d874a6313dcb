"""Who is calling the staff side, and what their role lets them do.

- The admin UI: a session cookie (HttpOnly, SameSite=Lax, Secure outside development, path /admin) whose
  value is a random secret; every form carries a CSRF token, an HMAC of the session under the app's secret
  key, checked before the form's data is used. The sign-in form has its own token, bound to a cookie.
- The staff JSON API: `Authorization: Bearer <personal token>`; no cookie is accepted there, so no CSRF.

Roles and what they may do (PERMISSIONS): editors write, clinicians review and publish, admins manage
accounts. Every route names its permission; the acting user is always the signed-in one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import FormData

from bot.staff.accounts import UserInfo
from bot.staff.runtime import StaffRuntime

SESSION_COOKIE = "assistant_staff"
LOGIN_COOKIE = "assistant_staff_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/admin"

PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset({"admin", "editor", "clinician"}),  # articles, versions, diffs, try it, export
    "edit": frozenset({"editor", "clinician"}),  # drafts, submit, import, rollback to a draft
    "publish": frozenset({"clinician"}),  # publish, send back, roll back live, retire
    "questions": frozenset({"editor", "clinician"}),  # the unanswered questions (redacted)
    "care": frozenset({"admin", "clinician"}),  # escalations, handoffs: patients' own words
    "audit": frozenset({"admin", "clinician"}),
    "users": frozenset({"admin"}),  # accounts, roles, other people's tokens
    "account": frozenset({"admin", "editor", "clinician"}),  # one's own password and tokens
}


class LoginRequired(Exception):
    """No valid session: the UI sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """Signed in, but the role does not allow this (403)."""


class CsrfFailed(Exception):
    """The form's CSRF token is missing or wrong (403)."""


def runtime_of(request: Request) -> StaffRuntime:
    runtime = getattr(request.app.state, "staff", None)
    if runtime is None:
        raise HTTPException(status_code=503, detail="the staff side is starting; try again in a moment")
    return runtime


RuntimeDep = Annotated[StaffRuntime, Depends(runtime_of)]


def may(user: UserInfo, permission: str) -> bool:
    return user.role in PERMISSIONS[permission]


# --- the admin UI --------------------------------------------------------------------------------------
def ui_user(request: Request, runtime: RuntimeDep) -> UserInfo:
    user = runtime.accounts.session_user(request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise LoginRequired(request.url.path)
    request.state.staff_user = user
    return user


def ui_permission(permission: str):  # noqa: ANN201 - a FastAPI dependency
    def check(user: Annotated[UserInfo, Depends(ui_user)]) -> UserInfo:
        if not may(user, permission):
            raise Forbidden(permission)
        return user

    return check


def csrf_token(runtime: StaffRuntime, session_secret: str) -> str:
    """The token every form of this session carries."""
    return _mac(runtime.secret, "csrf:" + hashlib.sha256(session_secret.encode()).hexdigest())


def login_token(runtime: StaffRuntime, login_cookie: str) -> str:
    return _mac(runtime.secret, "login:" + login_cookie)


def new_login_cookie() -> str:
    return secrets.token_urlsafe(24)


async def checked_form(request: Request, runtime: StaffRuntime) -> FormData:
    """The submitted form, once its CSRF token proved it comes from our own page (else CsrfFailed).

    Routes read the form only through this, after the session and the role were checked."""
    form = await request.form(max_files=20, max_fields=200)
    session_secret = request.cookies.get(SESSION_COOKIE) or ""
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    expected = csrf_token(runtime, session_secret)
    if not session_secret or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfFailed()
    return form


async def checked_header(request: Request, runtime: StaffRuntime) -> None:
    """For the UI's small JSON calls (Markdown preview): the CSRF token in the X-CSRF-Token header."""
    session_secret = request.cookies.get(SESSION_COOKIE) or ""
    sent = request.headers.get(CSRF_HEADER) or ""
    if not session_secret or not hmac.compare_digest(sent, csrf_token(runtime, session_secret)):
        raise CsrfFailed()


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- the JSON API --------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="a personal staff API token (Account page in /admin)")


def api_user(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> UserInfo:
    return _token_owner(runtime, credentials.credentials if credentials else None)


def api_user_of(request: Request) -> UserInfo:
    """The same check on the bare request, before its body is read (`bot.api.deps.checked_first`)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return _token_owner(runtime_of(request), token.strip() if scheme.lower() == "bearer" else None)


def _token_owner(runtime: StaffRuntime, token: str | None) -> UserInfo:
    user = runtime.accounts.token_user(token)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="a valid personal staff API token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def api_router(**options) -> APIRouter:  # noqa: ANN003 - APIRouter's own options
    """A router for the staff JSON API: who is calling is checked on the bare request, before FastAPI reads
    or parses a body (`checked_first`); each route then names the permission it needs."""
    from bot.api.deps import checked_first
    from bot.schemas import ErrorResponse

    responses = {
        401: {"model": ErrorResponse, "description": "missing or wrong personal staff token"},
        403: {"model": ErrorResponse, "description": "the token's role may not do this"},
        404: {"model": ErrorResponse, "description": "no such item"},
    }
    return APIRouter(prefix="/admin", route_class=checked_first(api_user_of), responses=responses, **options)


def api_permission(permission: str):  # noqa: ANN201 - a FastAPI dependency
    def check(user: Annotated[UserInfo, Depends(api_user)]) -> UserInfo:
        if not may(user, permission):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN, detail=f"your role may not do this ({permission})"
            )
        return user

    return check
