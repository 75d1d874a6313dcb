"""What every admin page shares: the templates, the role dependencies, rendering and redirects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from bot.staff.accounts import UserInfo
from bot.staff.auth import (
    SESSION_COOKIE,
    csrf_token,
    may,
    ui_permission,
)
from bot.staff.runtime import StaffRuntime

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
_markdown = MarkdownIt("commonmark", {"html": False})

Viewer = Annotated[UserInfo, Depends(ui_permission("view"))]
Editor = Annotated[UserInfo, Depends(ui_permission("edit"))]
Clinician = Annotated[UserInfo, Depends(ui_permission("publish"))]
QuestionsStaff = Annotated[UserInfo, Depends(ui_permission("questions"))]
CareStaff = Annotated[UserInfo, Depends(ui_permission("care"))]
Auditor = Annotated[UserInfo, Depends(ui_permission("audit"))]
Admin = Annotated[UserInfo, Depends(ui_permission("users"))]
Anyone = Annotated[UserInfo, Depends(ui_permission("account"))]


def markdown(text: str) -> Markup:
    """Markdown as safe HTML (raw HTML in the text is shown as text, not run)."""
    return Markup(_markdown.render(text or ""))  # noqa: S704 - markdown-it escapes with html disabled


TEMPLATES.env.filters["markdown"] = markdown
TEMPLATES.env.globals["may"] = may


def page(
    request: Request, template: str, user: UserInfo | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    runtime: StaffRuntime | None = getattr(request.app.state, "staff", None)
    session = request.cookies.get(SESSION_COOKIE) or ""
    context.update(
        request=request,
        user=user,
        csrf=csrf_token(runtime, session) if runtime and session else "",
        notice=request.query_params.get("notice", ""),
        clinic=runtime.services.clinic if runtime else None,
    )
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def error_page(request: Request, status_code: int, reason: str) -> HTMLResponse:
    user = getattr(request.state, "staff_user", None)
    return page(request, "error.html", user, status_code=status_code, reason=reason)


def back(path: str, notice: str = "", **params: Any) -> RedirectResponse:
    query = {key: value for key, value in {"notice": notice, **params}.items() if value not in ("", None)}
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


class NotFound(Exception):
    """No such article or conversation: a 404 page."""


def not_found_page(request: Request, error: Exception) -> HTMLResponse:
    return error_page(request, 404, "not_found")


def int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def note_of(form) -> str | None:  # noqa: ANN001 - a FormData
    return str(form.get("note", "")).strip()[:300] or None
