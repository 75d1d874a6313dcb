"""The audit log, user accounts and one's own account (password, API tokens)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.staff import audit
from bot.staff.accounts import AccountError
from bot.staff.auth import (
    COOKIE_PATH,
    PERMISSIONS,
    SESSION_COOKIE,
    RuntimeDep,
    checked_form,
    may,
)
from bot.staff.models import ROLES
from bot.staff.ui.pages import (
    Admin,
    Anyone,
    Auditor,
    back,
    page,
)

router = APIRouter(prefix="/admin", tags=["staff UI"], include_in_schema=False)


# --- audit log -----------------------------------------------------------------------------------------
@router.get("/audit")
def audit_log(
    request: Request, runtime: RuntimeDep, user: Auditor, action: str = "", actor: str = "", target: str = ""
) -> HTMLResponse:
    lines = audit.entries(
        runtime.services.db,
        action=action[:32] or None,
        actor=actor[:80] or None,
        target_id=target[:80] or None,
        limit=300,
    )
    return page(
        request, "audit.html", user, lines=lines, filters={"action": action, "actor": actor, "target": target}
    )


# --- users and one's own account -----------------------------------------------------------------------
@router.get("/users")
def users(request: Request, runtime: RuntimeDep, user: Admin) -> HTMLResponse:
    return page(
        request, "users.html", user, users=runtime.accounts.users(), roles=ROLES, permissions=PERMISSIONS
    )


@router.post("/users")
async def create_user(request: Request, runtime: RuntimeDep, user: Admin) -> Response:
    form = await checked_form(request, runtime)
    try:
        runtime.accounts.create_user(
            str(form.get("username", "")),
            str(form.get("display_name", "")),
            str(form.get("role", "")),
            str(form.get("password", "")),
            user.actor,
        )
    except AccountError as error:
        return back("/admin/users", "refused", detail=str(error))
    return back("/admin/users", "user_created")


@router.post("/users/{user_id}")
async def change_user(request: Request, user_id: int, runtime: RuntimeDep, user: Admin) -> Response:
    form = await checked_form(request, runtime)
    change = str(form.get("change", ""))
    try:
        if change == "role":
            runtime.accounts.update_user(user_id, user.actor, role=str(form.get("role", "")))
        elif change in ("activate", "deactivate"):
            runtime.accounts.update_user(user_id, user.actor, active=change == "activate")
        elif change == "unlock":
            runtime.accounts.unlock(user_id, user.actor)
        elif change == "password":
            runtime.accounts.set_password(user_id, str(form.get("password", "")), user.actor)
        else:
            return back("/admin/users", "refused", detail="unknown change")
    except AccountError as error:
        return back("/admin/users", "refused", detail=str(error))
    return back("/admin/users", "user_changed")


@router.get("/account")
def account(request: Request, runtime: RuntimeDep, user: Anyone) -> HTMLResponse:
    return page(request, "account.html", user, tokens=runtime.accounts.tokens(user.id), new_token=None)


@router.post("/account/password")
async def change_password(request: Request, runtime: RuntimeDep, user: Anyone) -> Response:
    form = await checked_form(request, runtime)
    try:
        runtime.accounts.set_password(
            user.id, str(form.get("password", "")), user.actor, current=str(form.get("current", ""))
        )
    except AccountError as error:
        return back("/admin/account", "refused", detail=str(error))
    response = back("/admin/login", "password_changed")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/account/tokens")
async def create_token(request: Request, runtime: RuntimeDep, user: Anyone) -> HTMLResponse:
    form = await checked_form(request, runtime)
    token = runtime.accounts.create_token(user.id, str(form.get("name", "")), user.actor)
    return page(request, "account.html", user, tokens=runtime.accounts.tokens(user.id), new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, runtime: RuntimeDep, user: Anyone) -> Response:
    await checked_form(request, runtime)
    owner = None if may(user, "users") else user.id
    if not runtime.accounts.revoke_token(token_id, user.actor, owner_id=owner):
        return back("/admin/account", "refused", detail="no such token")
    return back("/admin/account", "token_revoked")
